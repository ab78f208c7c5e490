"""Any single-member `torch.nn.Module` as a batched ensemble: the engine's functional protocol
(`init(seeds, scales) -> params (M, ...)`, `forward(params, x) -> logits (M, N, C)`) built from
`torch.func.stack_module_state` + `functional_call` + `vmap`.

    ens = ModuleEnsemble(lambda: build_module("mnist1d_cnn", channels=25))
    params = ens.init([0, 1, 2], torch.ones(3))   # {"conv1.weight": (3, 25, 1, 5), ...}
    logits = ens.forward(params, x)               # x (N, 40) shared -> (3, N, 10)
    logits = ens.forward(params, xs, per_member=True)  # xs (3, N, 40), one batch per member

Rules:
- Initialization: member i is exactly the module `make()` builds right after `torch.manual_seed(seeds[i])`
  (inside `torch.random.fork_rng`, so the caller's RNG is untouched), then *every* parameter (weights,
  biases, norm gains) is multiplied by `scales[i]`.
- Parameters are the module's `named_parameters()` (tied weights appear once); keys are their dotted names.
- Buffers are constants shared by all members (masks, position tables): they are taken from the modules
  at `init`, must be identical across members (else GroklabError), are never trained, and are passed
  unbatched to every member. A module must not write to its buffers in `forward`.
- Normalization: BatchNorm is rejected with GroklabError. Its running statistics are per-member state
  updated in place during forward, which a stateless vmap ensemble (whose members the trainer slices,
  compacts and evaluates in chunks) cannot carry. Use GroupNorm or LayerNorm (per-example statistics,
  no running state) — `groklab.nn.modules` offers norm="group" | "layer". InstanceNorm without running
  stats has no buffers and is allowed.
- Train/eval mode (matters for Dropout only, BatchNorm being rejected): `mode="auto"` (default) runs the
  module in train mode while autograd records and in eval mode under `torch.no_grad()`, which is how
  the trainer calls forward (train_step records, evaluate is no_grad). Set `mode="train" | "eval"` to fix it.
- Randomness: with Dropout present, vmap runs with `randomness="different"`: every member draws its own
  mask, from the global RNG, so masks do not reproduce those of a lone module with the same seed
  (initial weights do). Without Dropout vmap runs with `randomness="error"`, so a stray random op fails
  loudly instead of silently sharing or diverging.
- Inputs: shared `x (N, ...)` by default (vmap in_dims None, no copies); `per_member=True` takes
  `x (M, N, ...)`, one batch per member. The trainer always passes shared inputs.
- M == 1 skips vmap (a plain functional_call on the squeezed weights); the result is the same.
- Fast path: a module class with a static `batched_forward(params, x, per_member) -> (M, N, C)` (the same
  function written for stacked members, e.g. nn/modules.MNIST1DCNN's im2col matmuls) is used instead of vmap
  for M > 1 on CPU when it has no buffers, dropout, hooks or parametrizations (the class's own method, not an
  inherited one); `batched=False` forces vmap (benchmarks' before/after).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.modules.batchnorm import _BatchNorm

from groklab import GroklabError

MODES = ("auto", "train", "eval")


def check_module(module: nn.Module) -> None:
    """Raise GroklabError for layers a stateless ensemble cannot run (BatchNorm; see the module docstring)."""
    for name, sub in module.named_modules():
        if isinstance(sub, _BatchNorm):
            raise GroklabError(
                f"ModuleEnsemble: layer {name or '<root>'!r} is {type(sub).__name__}, whose running statistics "
                "do not fit a stateless batched ensemble; use nn.GroupNorm or nn.LayerNorm instead "
                "(groklab.nn.modules: norm='group' or norm='layer')")


def _has_dropout(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in module.modules())


class ModuleEnsemble:
    """M members of the architecture `make()` builds, trained as one batched model (module docstring)."""

    def __init__(self, make: Callable[[], nn.Module], mode: str = "auto", batched: bool = True):
        if mode not in MODES:
            raise GroklabError(f"ModuleEnsemble: mode {mode!r} is not allowed; choose one of: {', '.join(MODES)}")
        self.make, self.mode = make, mode
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            template = make()
        if not isinstance(template, nn.Module):
            raise GroklabError(f"ModuleEnsemble: make() returned {type(template).__name__}, not an nn.Module")
        check_module(template)
        self.param_names = [k for k, _ in template.named_parameters()]
        self.n_params = sum(p.numel() for p in template.parameters())  # per member
        self.randomness = "different" if _has_dropout(template) else "error"
        # shared constant buffers (CPU master copy), and a per-device cache
        self._buffers = {k: b.detach().clone() for k, b in template.named_buffers()}
        self._buffers_on: dict[tuple, dict[str, torch.Tensor]] = {}
        self._base = copy.deepcopy(template).to("meta")  # stateless skeleton for functional_call
        self._vmapped: dict[int | None, Callable] = {}  # x's in_dim -> vmapped call
        fast = type(template).__dict__.get("batched_forward")  # the class's own: a subclass may change forward
        plain = not (template._forward_hooks or template._forward_pre_hooks or
                     torch.nn.utils.parametrize.is_parametrized(template))
        self._batched = (fast.__func__ if isinstance(fast, staticmethod) else fast) if (
            fast is not None and batched and plain and not self._buffers and self.randomness == "error") else None

    def build(self, seed: int) -> nn.Module:
        """One member exactly as a lone module would be built: `make()` right after manual_seed(seed)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return self.make()

    def init(self, seeds: list[int], scales: torch.Tensor) -> dict[str, torch.Tensor]:
        """Stacked initial parameters {name: (M, ...)}; member i built from seeds[i], scaled by scales[i]."""
        mods = [self.build(s) for s in seeds]
        for i, mod in enumerate(mods):
            bufs = dict(mod.named_buffers())
            if bufs.keys() != self._buffers.keys():
                raise GroklabError(f"ModuleEnsemble: member {i} has buffers {sorted(bufs)}, the template "
                                   f"{sorted(self._buffers)}; make() must build one architecture")
            for k, b in bufs.items():
                if not torch.equal(b.detach().cpu(), self._buffers[k]):
                    raise GroklabError(f"ModuleEnsemble: buffer {k!r} differs between members; buffers are "
                                       "shared constants here — register it as a parameter, or make it "
                                       "deterministic")
        params, _ = stack_module_state(mods)  # {name: (M, ...)}, buffers checked above
        scales = torch.as_tensor(scales, dtype=torch.float32).reshape(-1)
        if len(scales) != len(mods):
            raise GroklabError(f"ModuleEnsemble.init: {len(scales)} scales for {len(mods)} seeds")
        out = {}
        for k in self.param_names:
            v = params[k].detach()
            out[k] = (v * scales.to(v.dtype).reshape(-1, *([1] * (v.dim() - 1)))).contiguous()  # (M, ...)
        return out

    def buffers(self, device: torch.device, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """The shared buffers on `device` (floating ones cast to `dtype` if given)."""
        key = (str(device), dtype)
        if key not in self._buffers_on:
            self._buffers_on[key] = {k: b.to(device, dtype if dtype is not None and b.is_floating_point() else None)
                                     for k, b in self._buffers.items()}
        return self._buffers_on[key]

    def _training(self) -> bool:
        return torch.is_grad_enabled() if self.mode == "auto" else self.mode == "train"

    def _call(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor):
        return functional_call(self._base, (params, buffers), (x,))  # one member: (N, C)

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        """params {name: (M, ...)}; x shared (N, ...) or, with per_member, (M, N, ...) -> logits (M, N, C)."""
        first = next(iter(params.values()))
        m = first.shape[0]
        if per_member and x.shape[0] != m:
            raise GroklabError(f"ModuleEnsemble.forward: per_member inputs have {x.shape[0]} batches for {m} members")
        bufs = self.buffers(first.device, first.dtype)
        self._base.train(self._training())
        if m == 1:  # no vmap: plain functional_call on member 0
            return self._call({k: v[0] for k, v in params.items()}, bufs, x[0] if per_member else x).unsqueeze(0)
        if self._batched is not None and first.device.type == "cpu":  # measured on CPU only (nn/batched_conv.py)
            return self._batched(params, x, per_member)  # (M, N, C)
        x_dim = 0 if per_member else None
        if x_dim not in self._vmapped:
            self._vmapped[x_dim] = vmap(self._call, in_dims=(0, None, x_dim), randomness=self.randomness)
        return self._vmapped[x_dim](params, bufs, x)  # (M, N, C)

    __call__ = forward

    def to_module(self, params: dict[str, torch.Tensor], i: int) -> nn.Module:
        """Member i as a lone nn.Module (a fresh `make()` loaded with its weights and the shared buffers)."""
        mod = self.build(0)
        state = {k: v[i].detach().clone() for k, v in params.items()}
        state.update({k: b.clone() for k, b in self._buffers.items()})
        mod.load_state_dict(state, strict=False)  # tied parameters appear once in params
        return mod.to(next(iter(params.values())).device)
