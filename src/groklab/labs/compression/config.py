"""The compression lab's config: addition data, the GPT, AdamW with warm-up + cosine, one-pass training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from groklab import GroklabError, config
from groklab.config import RootConfig, opt


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
class AddOptimConfig:
    lr: float = opt(1e-3, "peak learning rate (AdamW)", gt=0.0)
    min_lr_frac: float = opt(1.0, "final lr as a fraction of the peak (1 = constant after warm-up)",
                             ge=0.0, le=1.0)
    warmup: int = opt(0, "linear warm-up steps", ge=0)
    cooldown: int = opt(0, "last steps, after the cosine: the lr falls linearly from lr * min_lr_frac to 0", ge=0)
    weight_decay: float = opt(0.1, "AdamW decoupled weight decay on weight matrices", ge=0.0)
    beta1: float = opt(0.9, "Adam beta1", ge=0.0, lt=1.0)
    beta2: float = opt(0.98, "Adam beta2", ge=0.0, lt=1.0)
    grad_clip: float = opt(1.0, "clip the gradient norm to this (0 = no clipping)", ge=0.0)


@dataclass
class AddTrainConfig:
    steps: int = opt(20_000, "optimizer steps; each sees batch_size fresh examples (one pass)", ge=1)
    batch_size: int = opt(512, "fresh examples per step", ge=1)
    seed: int = opt(0, "model init seed", ge=0)
    log_every: int = opt(250, "evaluate the held-out set every k steps", ge=1)
    eval_batch: int = opt(2000, "examples per forward pass in evaluation and coding", ge=1)
    device: str = opt("auto", "where to train", choices=("auto", "cpu", "cuda"))
    threads: int = opt(0, "torch CPU threads (0 = all cores)", ge=0)


@dataclass
class CompressConfig(RootConfig):
    """The compression lab's root config (seed 002)."""

    lab: ClassVar[str] = "compression"
    data: AddDataConfig = field(default_factory=AddDataConfig)
    model: GPTConfig = field(default_factory=GPTConfig)
    optim: AddOptimConfig = field(default_factory=AddOptimConfig)
    train: AddTrainConfig = field(default_factory=AddTrainConfig)

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
