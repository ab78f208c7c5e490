"""PAIR's one-hidden-layer modular-arithmetic MLP and a plain MLP for bit vectors, both batched over
members. Shapes: M members, N examples, p tokens, E embed width, H hidden, C classes."""

from __future__ import annotations

import torch

from groklab.nn import activation, init_members


def act_backward(act, pre: torch.Tensor, d_out: torch.Tensor) -> torch.Tensor:
    """d_out · act'(pre) by autograd, for activations without a hand-written derivative. # shape of pre"""
    with torch.enable_grad():
        pre = pre.detach().requires_grad_(True)
        return torch.autograd.grad(act(pre), pre, d_out)[0]


class PairMLP:
    """hidden = act(emb[a] @ W_h + emb[b] @ W_h); logits = (hidden @ W_out) @ embᵀ (tied).

    With embed_size E > 0 the embedding is factored (PAIR: E = 500): embed (p, E), w_hidden (E, H),
    w_out (H, E) and, untied, unembed (E, p). With E = 0: embed (p, H) feeds the hidden layer directly
    and the output is embedᵀ (tied) or unembed (H, p). No biases anywhere.

    Forward collapses the factored products first — A = embed @ w_hidden (p, H) and U = w_out @ embedᵀ
    (H, p) — which is the same function with far fewer FLOPs than pushing every example through E.
    """

    per_member_loss_grads = True  # loss_grads also takes per-member x (M, N, 2), y (M, N)
    loss_grads_out = True  # loss_grads(..., out=) writes the embedding gradient into out["embed"]

    def __init__(self, n_tokens: int, n_classes: int, hidden: int, embed_size: int = 0,
                 tied: bool = True, act: str = "relu", init: str = "pair", fixed_embed: str = "none"):
        if tied and n_classes != n_tokens:
            raise ValueError("tied output needs n_classes == n_tokens")
        self.p, self.c, self.h, self.e, self.tied = n_tokens, n_classes, hidden, embed_size, tied
        self.act_name, self.act, self.init_scheme = act, activation(act), init
        # PAIR's 5-neuron construction: embedding fixed to (cos, sin)(2πi/p), not trained. # (p, 2)
        self.fixed = None
        if fixed_embed == "fourier":
            ang = 2 * torch.pi * torch.arange(n_tokens, dtype=torch.float64) / n_tokens
            self.fixed = torch.stack([ang.cos(), ang.sin()], 1).float()

    def _embed(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """The (M, p, E) embedding: trained, or the fixed one broadcast over members."""
        if self.fixed is None:
            return params["embed"]
        m = next(iter(params.values())).shape[0]
        return self.fixed.to(next(iter(params.values())).device).expand(m, -1, -1)

    def param_specs(self) -> list[tuple[str, tuple, int, bool]]:
        p, h, e, c = self.p, self.h, self.e, self.c
        if e:
            specs = [("embed", (p, e), p, True), ("w_hidden", (e, h), e, False), ("w_out", (h, e), h, False)]
            if not self.tied:
                specs.append(("unembed", (e, c), e, True))
            if self.fixed is not None:
                specs = specs[1:]
        else:
            specs = [("embed", (p, h), p, True)]
            if not self.tied:
                specs.append(("unembed", (h, c), h, False))
        return specs

    def init(self, seeds: list[int], scales: torch.Tensor) -> dict[str, torch.Tensor]:
        return init_members(self.param_specs(), seeds, scales, self.init_scheme)

    def input_weights(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Collapsed per-token input weights A. # (M, p, H)"""
        if self.e:
            return self._embed(params) @ params["w_hidden"]
        return params["embed"]

    def output_weights(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Collapsed hidden-to-logit weights U. # (M, H, C)"""
        if self.e:
            out = self._embed(params) if self.tied else params["unembed"].transpose(1, 2)  # (M, C, E)
            return params["w_out"] @ out.transpose(1, 2)
        return params["embed"].transpose(1, 2) if self.tied else params["unembed"]

    def hidden(self, params: dict[str, torch.Tensor], x: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        """x: (N, 2) int64 operands, or per member (M, N, 2) -> post-activation hidden. # (M, N, H)"""
        a = self.input_weights(params)  # (M, p, H)
        return self.act(_rows(a, x[..., 0], per_member) + _rows(a, x[..., 1], per_member))

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        """Logits; with per_member, member i reads its own inputs x[i] (its own split). # (M, N, C)"""
        return self.hidden(params, x, per_member) @ self.output_weights(params)  # (M, N, C)

    def loss_grads(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   reduction: str = "ce", out: dict[str, torch.Tensor] | None = None
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-member softmax cross-entropy (M,) and its gradients, written by hand (no autograd graph
        over the (M, N, C) logits). Same function as `forward` + cross-entropy; gradients agree with
        autograd to float32 rounding (tests/unit/test_optim.py). BENCHMARKS.md has the speed-up.

        The factored tied model (PAIR's) is fully manual: A and Uᵀ come from one product
        embed @ [w_hidden | w_outᵀ] (M, p, 2H), and their gradients flow back through one product each
        for the embedding and the two weights. Other variants let autograd map dA, dU to the weights.
        out: optional {name: contiguous (M, ...) buffer}; the factored tied model writes its embedding gradient
        straight into out["embed"] (the engine's per-chunk gradient slice: no copy) and returns that tensor."""
        if self.e and self.tied and self.fixed is None:
            return self._loss_grads_tied(params, x, y, reduction, out)
        leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        with torch.enable_grad():
            a_w, u_w = self.input_weights(leaves), self.output_weights(leaves)  # (M, p, H), (M, H, C)
        ut = u_w.detach().transpose(1, 2)  # (M, C, H) view
        d_a, d_ut = torch.empty_like(a_w), torch.empty_like(ut)
        loss = self._head(a_w.detach(), ut, x, y, reduction, d_a, d_ut)
        grads = torch.autograd.grad([a_w, u_w], list(leaves.values()), [d_a, d_ut.transpose(1, 2)],
                                    allow_unused=True)
        return loss, {k: (g if g is not None else torch.zeros_like(leaves[k])) for k, g in zip(leaves, grads)}

    def _loss_grads_tied(self, params, x, y, reduction, out=None):
        emb, w_h, w_o = params["embed"].detach(), params["w_hidden"].detach(), params["w_out"].detach()
        h = self.h
        w_cat = torch.cat([w_h, w_o.transpose(1, 2)], -1)  # (M, E, 2H)
        au = torch.bmm(emb, w_cat)  # (M, p, 2H): A = emb @ w_hidden, Uᵀ = emb @ w_outᵀ
        d_au = torch.empty_like(au)  # (M, p, 2H)
        loss = self._head(au[..., :h], au[..., h:], x, y, reduction, d_au[..., :h], d_au[..., h:])
        d_w = torch.bmm(emb.transpose(1, 2), d_au)  # (M, E, 2H)
        d_emb = torch.bmm(d_au, w_cat.transpose(1, 2), out=out["embed"] if out else None)  # (M, p, E)
        return loss, {"embed": d_emb,
                      "w_hidden": d_w[..., :h], "w_out": d_w[..., h:].transpose(1, 2)}

    def _head(self, a: torch.Tensor, ut: torch.Tensor, x: torch.Tensor, y: torch.Tensor, reduction: str,
              d_a: torch.Tensor, d_ut: torch.Tensor) -> torch.Tensor:
        """Loss (M,) of logits = act(A[x0] + A[x1]) @ U, given Uᵀ; writes dA into d_a (M, p, H), dUᵀ into d_ut.

        One softmax pass gives both the gradient (softmax − onehot) and the loss −log softmax[y]; examples
        whose target probability is too small for float32 (< 1e-30) get their loss as logsumexp − logit."""
        per_member = x.dim() == 3  # (M, N, 2): every member its own examples (y (M, N))
        m, n, c = a.shape[0], y.shape[-1], ut.shape[1]
        i0, i1 = x[..., 0], x[..., 1]  # (N,) or (M, N)
        pre = _rows(a, i0, per_member) + _rows(a, i1, per_member)  # (M, N, H)
        h = self.act(pre)  # (M, N, H)
        logits = torch.bmm(h, ut.transpose(1, 2))  # (M, N, C)
        g = torch.softmax(logits, -1)  # (M, N, C)
        tgt = y.expand(m, n).unsqueeze(-1)  # (M, N, 1): shared y (N,) or per member (M, N)
        # the target entries of g as flat indices: take/index_put_ read and write them ~3x faster than
        # gather/scatter_ (BENCHMARKS.md, engine section); same values
        at_y = torch.arange(0, m * n * c, c, device=g.device).add_(tgt.reshape(-1))  # (M*N,)
        g_flat = g.view(-1)  # (M*N*C,)
        p_y = g_flat.take(at_y).view(m, n, 1)  # (M, N, 1)
        # 1 − p_y as the sum of the other classes' probabilities, never as 1 − p_y: in float32 p_y rounds to
        # a multiple of 2^-24 near 1, so p_y − 1 would lose the target's gradient of every well-fitted
        # example (all of it below a loss of 6e-8) while its wrong classes keep theirs
        rest = g_flat.index_put_((at_y,), g.new_zeros(())).view_as(g).sum(-1, keepdim=True)  # (M, N, 1)
        nll = torch.log1p(rest / p_y).squeeze(-1)  # (M, N) = −log p_y, exact for tiny losses
        tiny = p_y.squeeze(-1) < 1e-30
        if bool(tiny.any()):  # confidently wrong: recover the exact loss from the logits
            nll[tiny] = logits[tiny].logsumexp(-1) - logits.gather(-1, tgt).squeeze(-1)[tiny]
        del logits
        loss = nll.mean(1)  # (M,)
        g_flat.index_put_((at_y,), rest.view(-1).neg())  # softmax − onehot, the target's entry = −(1 − p_y)
        g.mul_(1.0 / (n * c) if reduction == "pair" else 1.0 / n)  # dloss/dlogits
        d_ut.copy_(torch.bmm(g.transpose(1, 2), h))  # (M, C, H), small
        d_pre = torch.bmm(g, ut)  # (M, N, H)
        if self.act_name == "relu":  # one pass: d_pre where h > 0 (= pre > 0), else 0
            d_pre = torch.ops.aten.threshold_backward(d_pre, h, 0.0)
        else:
            d_pre = act_backward(self.act, pre, d_pre)
        if per_member:
            hh = d_pre.shape[-1]
            d_a.zero_().scatter_add_(1, i0.unsqueeze(-1).expand(-1, -1, hh), d_pre)
            d_a.scatter_add_(1, i1.unsqueeze(-1).expand(-1, -1, hh), d_pre)
        else:
            d_a.zero_().index_add_(1, i0, d_pre).index_add_(1, i1, d_pre)
        return loss / c if reduction == "pair" else loss


def _rows(a: torch.Tensor, idx: torch.Tensor, per_member: bool) -> torch.Tensor:
    """Rows idx of every member's table a (M, p, H): shared idx (N,) or per member (M, N). # (M, N, H)"""
    if not per_member:
        return a.index_select(1, idx)  # same rows as a[:, idx], ~2x faster (one pass, no advanced indexing)
    return a.gather(1, idx.unsqueeze(-1).expand(-1, -1, a.shape[-1]))


class BitMLP:
    """logits = act(x @ W1) @ W2 for x in {-1, +1}^d (a bias, if any, is a constant input column).

    bits = "01" reads each ±1 input as (x + 1) / 2 ∈ {0, 1} (PAIR's sequences of 0s and 1s); a constant-1
    bias column stays 1. Same functions, but weight decay and the gradient of a 0 bit differ."""

    def __init__(self, d_in: int, n_classes: int, hidden: int, act: str = "relu", init: str = "pair",
                 bits: str = "pm1"):
        self.d, self.c, self.h = d_in, n_classes, hidden
        self.act_name, self.act, self.init_scheme = act, activation(act), init
        self.bits01 = bits == "01"

    def _x(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1) * 0.5 if self.bits01 else x  # (N, d)

    def param_specs(self) -> list[tuple[str, tuple, int, bool]]:
        return [("w1", (self.d, self.h), self.d, False), ("w2", (self.h, self.c), self.h, False)]

    def init(self, seeds: list[int], scales: torch.Tensor) -> dict[str, torch.Tensor]:
        return init_members(self.param_specs(), seeds, scales, self.init_scheme)

    def hidden(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return self.act(torch.matmul(self._x(x), params["w1"]))  # (N, d) @ (M, d, H) -> (M, N, H)

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return self.hidden(params, x) @ params["w2"]  # (M, N, C)

    def loss_grads(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   reduction: str = "ce", chunk_elems: int = 2**19) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-member softmax cross-entropy (M,) and its gradients, by hand and in chunks of examples.

        Same function as `forward` + cross-entropy, arranged for speed (BENCHMARKS.md, sweep section):
        examples go through in chunks of about `chunk_elems` activations (2 MiB, so the live (M, n, H)
        tensors stay in cache) with the weight gradients accumulated over chunks; the ReLU is applied in
        place and its mask read back from h in one pass; the two products with the C-wide output layer
        run classes-first."""
        w1, w2 = params["w1"].detach(), params["w2"].detach()  # (M, d, H), (M, H, C)
        m, n_all, c = w1.shape[0], len(y), self.c
        w2t = w2.transpose(1, 2)  # (M, C, H)
        g1, g2t = torch.zeros_like(w1), torch.zeros_like(w2t)  # (M, d, H), (M, C, H)
        loss = torch.zeros(m, device=w1.device)
        step = max(16, chunk_elems // (m * self.h))
        relu = self.act_name == "relu"
        for s in range(0, n_all, step):
            xc, yc = self._x(x[s:s + step]), y[s:s + step]  # (n, d), (n,)
            n = len(yc)
            pre = torch.matmul(xc, w1)  # (M, n, H)
            h = pre.relu_() if relu else self.act(pre)  # (M, n, H); for ReLU, pre is gone (h > 0 is the mask)
            # classes-first layout (M, C, n): with C = 2 these products run ~6x faster than (M, n, H) @ (M, H, C)
            logp = torch.log_softmax(torch.bmm(w2t, h.mT), 1)  # (M, C, n)
            tgt = yc.expand(m, 1, n)  # (M, 1, n)
            loss -= logp.gather(1, tgt).squeeze(1).sum(1)
            d_logits = logp.exp_().scatter_add_(1, tgt, torch.full((1, 1, 1), -1.0, device=w1.device).expand(m, 1, n))
            d_logits.mul_(1.0 / (n_all * c) if reduction == "pair" else 1.0 / n_all)  # (M, C, n)
            g2t += torch.bmm(d_logits, h)  # (M, C, H)
            d_pre = torch.bmm(d_logits.mT, w2t)  # (M, n, H)
            if relu:
                d_pre = torch.ops.aten.threshold_backward(d_pre, h, 0.0)  # one pass: d_pre where h > 0
            else:
                d_pre = act_backward(self.act, pre, d_pre)
            g1 += torch.matmul(xc.t(), d_pre)  # (M, d, H)
        loss /= n_all
        return (loss / c if reduction == "pair" else loss), {"w1": g1, "w2": g2t.mT.contiguous()}
