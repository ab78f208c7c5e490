"""The compression lab's config: addition data, the GPT, the engine's shared [optim] section (AdamW with
warm-up, cosine and cool-down), one-pass training on a fresh stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from groklab import GroklabError, config
from groklab.config import OptimConfig, RootConfig, opt


@dataclass
class AddDataConfig:
    n_digits: int = opt(8, "digits per operand (seed 002: 8)", ge=1, le=17)
    sampling: str = opt("uniform", "operand distribution: uniform = 0..10^n-1 zero-padded; leading19 = "
                        "10^(n-1)..10^n-1 as yulundu/compression", choices=("uniform", "leading19"))
    reverse: bool = opt(False, "write the answer least-significant digit first")
    seed: int = opt(0, "seed of the fresh training stream (held-out sets use seed + 1e9, + 2e9)", ge=0)
    val_examples: int = opt(10_000, "fixed held-out set, evaluated every log_every steps and at the end",
                            ge=1)
    carry_boost: float = opt(0.0, "curriculum: fraction of each training batch with a planted carry chain "
                             "(a run of digit pairs summing to 9); held-out sets, exact match and the "
                             "prequential code length use only the seed's distribution", ge=0.0, lt=1.0)


@dataclass
class GPTConfig:
    layers: int = opt(6, "transformer blocks", ge=1)
    heads: int = opt(6, "attention heads per block", ge=1)
    width: int = opt(192, "embedding width (d_model)", ge=1)
    rope: bool = opt(False, "add rotary position embeddings to queries and keys (relative offsets: "
                     "answer digit i attends to operand digit i at a fixed distance)")
    dropout: float = opt(0.0, "dropout (minGPT's default is 0.1; 0 keeps train loss = code length)",
                         ge=0.0, lt=1.0)


@dataclass
class AddTrainConfig:
    steps: int = opt(20_000, "optimizer steps; each sees batch_size fresh examples (one pass)", ge=1)
    batch_size: int = opt(512, "fresh examples per step", ge=1)
    seed: int = opt(0, "model init seed", ge=0)
    log_every: int = opt(250, "evaluate the held-out set every k steps", ge=1)
    checkpoint_every: int = opt(0, "write a resumable checkpoint every k steps (0 = at log steps, at most "
                                "one per minute)", ge=0)
    eval_batch: int = opt(2000, "examples per forward pass in evaluation and coding", ge=1)
    device: str = opt("auto", "where to train", choices=("auto", "cpu", "cuda"))
    threads: int = opt(0, "torch CPU threads (0 = all cores)", ge=0)
    precision: str = opt("fp32", "training matmuls: fp32, or bf16 = bfloat16 autocast (AMX on recent Xeons, tensor "
                         "cores on GPUs); the prequential code comes from that forward; weights, optimizer, "
                         "held-out evaluation and `compress encode` stay float32",
                         choices=("fp32", "bf16"))


@dataclass
class CompressConfig(RootConfig):
    """The compression lab's root config (seed 002)."""

    lab: ClassVar[str] = "compression"
    data: AddDataConfig = field(default_factory=AddDataConfig)
    model: GPTConfig = field(default_factory=GPTConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: AddTrainConfig = field(default_factory=AddTrainConfig)

    @classmethod
    def upgrade(cls, raw: dict) -> dict:
        """Before the shared [optim] section (run folders written until then): `grad_clip` (now `clip`), no
        `schedule` — the lr always went by a cosine from lr to lr * min_lr_frac (constant when it is 1) — and
        the defaults weight_decay 0.1, grad_clip 1.0. Such a section (it has grad_clip, or min_lr_frac
        without schedule) is rewritten to the same meaning; any other config is left alone."""
        o = raw.get("optim")
        if not isinstance(o, dict) or not ("grad_clip" in o or ("min_lr_frac" in o and "schedule" not in o)):
            return raw
        new = {k: v for k, v in o.items() if k != "grad_clip"}
        new["clip"] = o.get("grad_clip", o.get("clip", 1.0))
        new.setdefault("schedule", "cosine")
        new.setdefault("weight_decay", 0.1)
        return {**raw, "optim": new}

    def check(self) -> None:
        m = self.model
        if m.width % m.heads:
            raise GroklabError(f"model.width: must be divisible by model.heads ({m.heads}), got {m.width}")
        o = self.optim
        if o.warmup + o.cooldown > self.train.steps:
            raise GroklabError(f"optim.warmup + optim.cooldown: at most train.steps ({self.train.steps}), "
                               f"got {o.warmup} + {o.cooldown}")

    def fmt(self):
        """The data generator (groklab.data.addition.Addition)."""
        from groklab.data.addition import Addition

        d = self.data
        return Addition(d.n_digits, d.sampling, d.reverse)

    def shape(self):
        """The GPT's shape (groklab.nn.gpt.GPTShape)."""
        from groklab.nn.gpt import GPTShape

        m = self.model
        return GPTShape(vocab=14, block=self.fmt().seq_len - 1, layers=m.layers, heads=m.heads,
                        width=m.width, dropout=m.dropout, rope=m.rope)


ROOT = CompressConfig


def load(preset=None, config_file=None, overrides=(), **cli) -> CompressConfig:
    return config.load_config(preset, config_file, list(overrides), cls=CompressConfig, **cli)
