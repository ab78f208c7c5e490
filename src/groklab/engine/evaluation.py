"""Per-member losses and chunked evaluation.

Inputs are shared, x (N, ...) with y (N,), or per member, x (M, N, ...) with y (M, N) and an optional mask
(M, N) of the rows that count (padding of members with fewer examples, the last partial batch of an epoch).
A model takes per-member inputs if its `forward` has a `per_member` argument (ModuleEnsemble); for the
hand-written models, which take shared inputs only, the rows of all members go through as one shared batch
and each member's own rows are picked out of the logits (loop-free, M times the forward work).
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
import torch.nn.functional as F


def stablemax_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """log StableMax: s(x) = x + 1 for x >= 0, 1 / (1 - x) for x < 0, normalized over the last axis."""
    s = torch.where(logits >= 0, logits + 1, 1 / (1 - logits.clamp_max(0)))
    return s.log() - s.sum(-1, keepdim=True).log()


def example_losses(logits: torch.Tensor, y: torch.Tensor, softmax: str = "softmax",
                   dtype: str = "float32") -> torch.Tensor:
    """Cross-entropy of every example. logits (M, N, C), y (N,) or (M, N) -> (M, N) (float64 if dtype is)."""
    m, n, c = logits.shape
    if dtype == "float64":
        logits = logits.double()
    yy = y.expand(m, n)  # (M, N)
    if softmax == "stablemax":
        return -stablemax_log_probs(logits).gather(-1, yy.unsqueeze(-1)).squeeze(-1)
    return F.cross_entropy(logits.reshape(m * n, c), yy.reshape(-1), reduction="none").view(m, n)


def member_losses(logits: torch.Tensor, y: torch.Tensor, reduction: str = "ce", softmax: str = "softmax",
                  dtype: str = "float32", mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy per member. logits (M, N, C), y (N,) or (M, N), mask (M, N) -> (M,).
    With a mask: the mean over each member's masked-in rows (0 for a member with none). 'pair' divides by C.
    `softmax='stablemax'` swaps exp for StableMax; `dtype='float64'` computes the loss in float64."""
    ce = example_losses(logits, y, softmax, dtype)  # (M, N)
    if mask is None:
        ce = ce.mean(1)
    else:
        w = mask.to(ce.dtype)
        ce = (ce * w).sum(1) / w.sum(1).clamp_min(1)
    ce = ce.float() if dtype == "float64" else ce
    return ce / logits.shape[-1] if reduction == "pair" else ce


def loss_kwargs(train_cfg) -> dict:
    return {"reduction": train_cfg.loss, "softmax": train_cfg.softmax, "dtype": train_cfg.logits_dtype}


def accepts_per_member(model) -> bool:
    """Does model.forward take per-member inputs (a `per_member` argument, as ModuleEnsemble's)?"""
    try:
        return "per_member" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def forward_members(model, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of per-member inputs x (M, N, ...) -> (M, N, C): natively, or (shared-input models) all M·N
    rows through every member and member i's own rows picked out."""
    if accepts_per_member(model):
        return model.forward(params, x, per_member=True)
    m, n = x.shape[:2]
    out = model.forward(params, x.reshape(m * n, *x.shape[2:]))  # (M, M·N, C)
    ar = torch.arange(m, device=out.device)
    return out.view(m, m, n, -1)[ar, ar]  # (M, N, C)


def _correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(-1) == y).float()  # (M, N)


@torch.no_grad()
def evaluate(model, params, x, y, loss_kw: dict, max_elems: int = 2**25, *, per_member: bool = False,
             mask: torch.Tensor | None = None, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, acc) per member -> (M,), (M,), chunked over members and examples to bound memory: a chunk
    holds about max_elems / 64 (member, example) pairs (64 ≈ activations per example, a rough guess).

    Shared x (N, ...), y (N,); or per_member: x (R, N, ...), y (R, N), mask (R, N) or None, where member i of
    `params` owns row rows[i] (rows=None: row i), so the caller need not copy the active members' data."""
    m = next(iter(params.values())).shape[0]
    n = x.shape[1] if per_member else len(x)
    fallback = per_member and not accepts_per_member(model)
    n_chunk = n if n * 64 <= max_elems else max(1, max_elems // 64)
    m_chunk = max(1, max_elems // max(1, n_chunk * 64))
    if fallback:  # every member sees every member's rows of the chunk
        m_chunk = max(1, int(m_chunk**0.5))
    if rows is None and per_member:
        rows = torch.arange(m, device=x.device)
    losses, accs = [], []
    for s in range(0, m, m_chunk):
        sub = {k: v[s:s + m_chunk] for k, v in params.items()}
        r = rows[s:s + m_chunk] if per_member else None
        if n_chunk == n:  # one pass over the examples (the engine's evaluation as it always was)
            xs, ys, ms = (x[r], y[r], None if mask is None else mask[r]) if per_member else (x, y, None)
            logits = forward_members(model, sub, xs) if per_member else model.forward(sub, xs)  # (m, N, C)
            losses.append(member_losses(logits, ys, mask=ms, **loss_kw))
            c = _correct(logits, ys)
            accs.append(c.mean(1) if ms is None else (c * ms).sum(1) / ms.sum(1).clamp_min(1))
            continue
        tot = torch.zeros(3, len(next(iter(sub.values()))), dtype=torch.float64, device=x.device)  # loss, hits, n
        for a in range(0, n, n_chunk):
            if per_member:
                xs, ys = x[r, a:a + n_chunk], y[r, a:a + n_chunk]
                w = torch.ones_like(ys, dtype=torch.float64) if mask is None else mask[r, a:a + n_chunk].double()
                logits = forward_members(model, sub, xs)  # (m, n_chunk, C)
            else:
                xs, ys = x[a:a + n_chunk], y[a:a + n_chunk]
                logits = model.forward(sub, xs)
                w = torch.ones(logits.shape[:2], dtype=torch.float64, device=x.device)
            ex = example_losses(logits, ys, loss_kw.get("softmax", "softmax"), loss_kw.get("dtype", "float32"))
            tot += torch.stack([(ex.double() * w).sum(1), (_correct(logits, ys).double() * w).sum(1), w.sum(1)])
        loss = (tot[0] / tot[2].clamp_min(1)).float()
        if loss_kw.get("reduction", "ce") == "pair":
            loss = loss / logits.shape[-1]
        losses.append(loss)
        accs.append((tot[1] / tot[2].clamp_min(1)).float())
    return torch.cat(losses), torch.cat(accs)


def derive_seed(seed: int, *keys: int) -> int:
    """A torch seed from (seed, keys) — the derivation groklab.data.members uses for epoch orders."""
    return int(np.random.SeedSequence([int(seed), *keys]).generate_state(1)[0])



def eval_rows(n: int, k: int, seed: int = 2_000_003) -> torch.Tensor | None:
    """A fixed subset of k of n examples (sorted), None for all (k = 0 or k >= n)."""
    if not k or k >= n:
        return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


def member_eval_rows(counts: torch.Tensor, k: int, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per member a fixed subset of min(k, count) of its rows: idx (M, k), valid (M, k); None for all rows."""
    if not k or k >= int(counts.max()):
        return None
    counts = counts.cpu()
    idx = torch.zeros(len(seeds), k, dtype=torch.int64)
    for i, (s, n) in enumerate(zip(seeds, counts.tolist())):
        row = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(s, 9)))[:k].sort().values
        idx[i, :len(row)] = row
    return idx, torch.arange(k) < counts.clamp_max(k).unsqueeze(1)


class EvalSets:
    """The train and test sets of the evaluation (subsets with train.eval_examples), per member or shared."""

    def __init__(self, data, per_member: bool, k: int, seeds: list[int], device):
        self.per_member = per_member
        if per_member:
            sub = member_eval_rows(data.count, k, seeds)
            if sub is None:
                self.tr = (data.x, data.y, data.mask)
            else:
                idx, valid = (t.to(device) for t in sub)  # (M, k)
                flat = torch.arange(len(seeds), device=device).unsqueeze(1) * data.x.shape[1] + idx
                self.tr = (data.x.flatten(0, 1)[flat], data.y.flatten(0, 1)[flat], valid)
            shared_test = data.x_test.stride(0) == 0 and data.y_test.stride(0) == 0  # an expanded view
            x_te, y_te = (data.x_test[0], data.y_test[0]) if shared_test else (data.x_test, data.y_test)
            self.test_per_member = not shared_test
        else:
            r = eval_rows(len(data.y_train), k)
            self.tr = (data.x_train, data.y_train, None) if r is None else (data.x_train[r.to(device)],
                                                                             data.y_train[r.to(device)], None)
            x_te, y_te = data.x_test, data.y_test
            self.test_per_member = False
        r = eval_rows(x_te.shape[1] if self.test_per_member else len(x_te), k, seed=2_000_004)
        if r is not None:
            r = r.to(device)
            x_te, y_te = (x_te[:, r], y_te[:, r]) if self.test_per_member else (x_te[r], y_te[r])
        self.te = (x_te, y_te)

    def train(self, model, p, rows, loss_kw, max_elems):
        x, y, mask = self.tr
        if not self.per_member:
            return evaluate(model, p, x, y, loss_kw, max_elems)
        return evaluate(model, p, x, y, loss_kw, max_elems, per_member=True, mask=mask, rows=rows)

    def test(self, model, p, rows, loss_kw, max_elems):
        x, y = self.te
        if not self.test_per_member:
            return evaluate(model, p, x, y, loss_kw, max_elems)
        return evaluate(model, p, x, y, loss_kw, max_elems, per_member=True, rows=rows)
