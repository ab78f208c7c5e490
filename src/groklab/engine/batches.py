"""Which examples each member trains on at each step, and the batch that carries them to the model.

Modes (`train.batching`):
- "draws" (the engine's original mini-batch): every step draws `batch_size` examples without replacement,
  independently of earlier steps. Shared data: one generator, one batch for all members (as before).
  Per-member data: one generator per member, each member its own batch.
- "epochs": each member walks through a permutation of its own examples, `batch_size` at a time, and
  reshuffles when it has seen all of them. The permutation of member i's epoch e is drawn from a generator
  seeded with a number derived from (seeds[i], 7, e), as `MemberData.epoch_order` does, so a member's order
  does not depend on the rest of the ensemble. The last partial batch of an epoch is MASKED, not dropped:
  its missing rows do not count in the loss (mean over the real rows), so every example is seen exactly
  once per epoch. Members keep their own epoch clocks: one with fewer examples starts its next epoch
  sooner instead of idling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from groklab.engine.evaluation import accepts_per_member, derive_seed, forward_members


@dataclass
class Batch:
    """A training batch. Shared: x (N, ...), y (N,). Per member (`per_member`): x (M, B, ...), y (M, B).
    `pick` (M, B): x is a shared pool (U, ...) and member i's rows are pick[i] of the pool's logits
    (per-member batches for a model that only takes shared inputs). mask (M, B): rows that count."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor | None = None
    per_member: bool = False
    pick: torch.Tensor | None = None

    @property
    def plain(self) -> bool:
        """Shared inputs, every row counting: the hand-written losses apply."""
        return not self.per_member and self.pick is None and self.mask is None

    @property
    def whole_rows(self) -> bool:
        """Per-member inputs where every row counts (no mask, or an all-True one): a model with
        `per_member_loss_grads` takes them in its hand-written loss."""
        return self.per_member and self.pick is None and (self.mask is None or bool(self.mask.all()))

    def members(self, s: int, e: int) -> Batch:
        """The batch of members s..e-1."""
        if self.plain:
            return self
        return Batch(self.x[s:e] if self.per_member else self.x, self.y[s:e],
                     None if self.mask is None else self.mask[s:e], self.per_member,
                     None if self.pick is None else self.pick[s:e])

    def logits(self, model, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """# (M, B, C)"""
        if self.per_member:
            return forward_members(model, params, self.x)
        out = model.forward(params, self.x)  # (M, N or U, C)
        if self.pick is None:
            return out
        return out.gather(1, self.pick.unsqueeze(-1).expand(-1, -1, out.shape[-1]))


def gen_states(gens: list[torch.Generator]) -> torch.Tensor:
    """# (G, state bytes) uint8"""
    return torch.stack([g.get_state() for g in gens]) if gens else torch.zeros(0, 0, dtype=torch.uint8)


class SharedDraws:
    """One batch for all members: randperm(n)[:B] from one generator (the engine's original mini-batch)."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.b, self.gen = n, batch_size, torch.Generator().manual_seed(seed)

    def next(self) -> torch.Tensor:
        return torch.randperm(self.n, generator=self.gen)[:self.b]  # (B,)

    def select(self, keep: torch.Tensor) -> None:
        pass

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {"gen": self.gen.get_state()}, {"kind": "shared_draws"}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.gen.set_state(tensors["gen"])


class MemberDraws:
    """Per member: B of its count[i] examples drawn afresh each step from its own generator."""

    def __init__(self, counts: torch.Tensor, batch_size: int, seeds: list[int]):
        self.counts, self.b = counts.clone(), batch_size
        self.gens = [torch.Generator().manual_seed(derive_seed(s, 8)) for s in seeds]

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """idx (M, B) into each member's rows, valid (M, B) (members with fewer than B examples: masked)."""
        b = min(self.b, int(self.counts.max()))
        idx = torch.zeros(len(self.gens), b, dtype=torch.int64)
        for i, (g, n) in enumerate(zip(self.gens, self.counts.tolist())):
            row = torch.randperm(n, generator=g)[:b]
            idx[i, :len(row)] = row
        return idx, torch.arange(b) < self.counts.clamp_max(b).unsqueeze(1)

    def select(self, keep: torch.Tensor) -> None:
        keep = keep.cpu()
        self.counts, self.gens = self.counts[keep], [self.gens[i] for i in keep.tolist()]

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {"gens": gen_states(self.gens)}, {"kind": "member_draws"}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        for g, st in zip(self.gens, tensors["gens"]):
            g.set_state(st.clone())


class MemberEpochs:
    """Per member: its own permutation of its count[i] examples each epoch, B at a time (module docstring)."""

    def __init__(self, counts: torch.Tensor, batch_size: int, seeds: list[int]):
        self.counts, self.b, self.seeds = counts.clone(), batch_size, [int(s) for s in seeds]
        self.order = torch.zeros(len(seeds), int(counts.max()), dtype=torch.int64)  # (M, n_max)
        self.epoch = torch.full((len(seeds),), -1, dtype=torch.int64)  # (M,) epochs begun
        self.pos = self.counts.clone()  # (M,) next position in the order; >= count: epoch over

    def _shuffle(self, i: int) -> None:
        n = int(self.counts[i])
        g = torch.Generator().manual_seed(derive_seed(self.seeds[i], 7, int(self.epoch[i])))
        self.order[i, :n] = torch.randperm(n, generator=g)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """idx (M, B) into each member's rows, valid (M, B): False on the missing rows of a last batch."""
        for i in (self.pos >= self.counts).nonzero().flatten().tolist():
            self.epoch[i] += 1
            self.pos[i] = 0
            self._shuffle(i)
        cols = self.pos.unsqueeze(1) + torch.arange(self.b)  # (M, B)
        valid = cols < self.counts.unsqueeze(1)
        idx = self.order.gather(1, cols.clamp_max(self.order.shape[1] - 1))
        self.pos += self.b
        return idx, valid

    def select(self, keep: torch.Tensor) -> None:
        keep = keep.cpu()
        self.counts, self.order, self.epoch, self.pos = (t[keep] for t in (self.counts, self.order, self.epoch,
                                                                           self.pos))
        self.seeds = [self.seeds[i] for i in keep.tolist()]

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {"epoch": self.epoch.clone(), "pos": self.pos.clone()}, {"kind": "member_epochs"}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.epoch, self.pos = tensors["epoch"].clone(), tensors["pos"].clone()
        for i in (self.epoch >= 0).nonzero().flatten().tolist():  # the orders are functions of (seed, epoch)
            self._shuffle(i)


class Batcher:
    """Batches of a run: shared data (x (N, ...), y (N,)) or per-member data (x (M, n_max, ...), y, mask)."""

    def __init__(self, model, x: torch.Tensor, y: torch.Tensor, batch_size: int, mode: str, seeds: list[int],
                 draw_seed: int, counts: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        if mode not in ("draws", "epochs"):
            raise ValueError(f"train.batching: 'draws' or 'epochs', got {mode!r}")
        self.model, self.x, self.y, self.mask = model, x, y, mask
        self.per_member_data = counts is not None
        n = int(counts.max()) if self.per_member_data else len(y)
        self.full = not batch_size or batch_size >= n  # full batch: no sampler, no state
        self.rows = torch.arange(len(seeds), device=x.device)  # data row of each active member
        self.sampler, self._full = None, None
        if self.full:
            return
        if not self.per_member_data:
            counts = torch.full((len(seeds),), n, dtype=torch.int64)
        if mode == "epochs":
            self.sampler = MemberEpochs(counts.cpu(), batch_size, seeds)
        elif self.per_member_data:
            self.sampler = MemberDraws(counts.cpu(), batch_size, seeds)
        else:
            self.sampler = SharedDraws(n, batch_size, draw_seed)

    def select(self, keep: torch.Tensor) -> None:
        self.rows, self._full = self.rows[keep.to(self.rows.device)], None
        if self.sampler is not None:
            self.sampler.select(keep)

    def next(self) -> Batch:
        dev = self.x.device
        if self.full:
            if not self.per_member_data:
                return Batch(self.x, self.y)
            if self._full is None:  # every member's whole data: no copy until members are dropped
                r = slice(None) if len(self.rows) == len(self.x) else self.rows
                self._full = Batch(self.x[r], self.y[r], self.mask[r], per_member=True)
            return self._full
        if isinstance(self.sampler, SharedDraws):
            idx = self.sampler.next().to(dev)
            return Batch(self.x[idx], self.y[idx])
        idx, valid = (t.to(dev) for t in self.sampler.next())  # (M, B) each
        if self.per_member_data:
            flat = self.rows.unsqueeze(1) * self.x.shape[1] + idx  # (M, B) rows of the flattened data
            return Batch(self.x.flatten(0, 1)[flat], self.y.flatten(0, 1)[flat], valid, per_member=True)
        if accepts_per_member(self.model):
            return Batch(self.x[idx], self.y[idx], valid, per_member=True)
        pool, pick = torch.unique(idx, return_inverse=True)  # the rows any member needs: (U,), (M, B)
        return Batch(self.x[pool], self.y[idx], valid, pick=pick)

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return self.sampler.state() if self.sampler is not None else ({}, {"kind": "full"})

    def load(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        if self.sampler is not None:
            self.sampler.load(tensors, meta)
