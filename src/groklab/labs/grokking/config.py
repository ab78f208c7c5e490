"""The grokking lab's config: [task] [data] [model] (+ one sub-table per architecture) [analysis], with the
engine's shared [optim] and [train] sections."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

from groklab import GroklabError
from groklab.config import OptimConfig, RootConfig, TrainConfig, is_prime, opt

MOD_OPS = ("add", "sub", "mul", "div", "x2+y2", "x2+xy+y2", "x3+xy", "x2+xy+y2+x", "x3+xy2+y", "s5")
ACTS = ("relu", "gelu", "tanh", "quadratic")


@dataclass
class TaskConfig:
    kind: str = opt("modular", "which task generates the data", choices=("modular", "parity"))
    p: int = opt(67, "modulus of the modular task (a ∘ b mod p)", ge=2)
    op: str = opt("add", "modular operation (Power et al.); s5 = composition of permutations of 5 items, "
                  "120 tokens, p ignored", choices=MOD_OPS)
    n_bits: int = opt(30, "parity: number of input bits", ge=1)
    k_bits: int = opt(3, "parity: the label is the parity of the first k bits", ge=1)
    bias_column: bool = opt(False, "parity: append a constant-1 input column as a bias (PAIR)")


@dataclass
class DataConfig:
    train_fraction: float = opt(0.4, "modular: fraction of all pairs used for training", gt=0.0, lt=1.0)
    only_a_le_b: bool = opt(False, "modular: keep only pairs with a <= b (PAIR's symmetric input)")
    n_train: int = opt(1200, "parity: number of training sequences (fixed set)", ge=1)
    n_test: int = opt(2000, "parity: number of test sequences", ge=1)
    seed: int = opt(0, "seed of the data split / parity samples (shared by all members)", ge=0)
    nonzero_b: bool = opt(False, "modular: drop the pairs with b = 0 (Grokfast's x·y mod p with 0 < y < p; "
                          "always dropped for div)")
    split: str = opt("shared", "modular: 'shared' = one split from data.seed for every member; 'per_seed' = the "
                     "member with seed s trains on its own split, numpy RandomState(s).permutation of the pairs "
                     "(PAIR's np.random.seed(seed) + np.random.permutation; pair_mlp only); 'python' = one "
                     "split, Python's random.seed(data.seed) + random.shuffle of the row-major pairs (Nanda's "
                     "gen_train_test)", choices=("shared", "per_seed", "python"))


@dataclass
class PairMLPConfig:
    hidden: int = opt(24, "hidden neurons", ge=1)
    embed_size: int = opt(0, "width of the factored embedding (0 = no factoring)", ge=0)
    tied: bool = opt(True, "output weights are the transposed embedding")
    act: str = opt("relu", "hidden activation", choices=ACTS)
    init: str = opt("pair", "initializer: pair = haiku defaults as PAIR's notebook; torch = nn defaults",
                    choices=("pair", "torch"))
    fixed_embed: str = opt("none", "'fourier' fixes the embedding to cos/sin(2πi/p) (PAIR's 5-neuron "
                           "construction; set embed_size = 2)", choices=("none", "fourier"))


@dataclass
class BitMLPConfig:
    hidden: int = opt(24, "hidden neurons", ge=1)
    act: str = opt("relu", "hidden activation", choices=ACTS)
    init: str = opt("pair", "initializer: pair = haiku defaults; torch = nn defaults", choices=("pair", "torch"))
    bits: str = opt("pm1", "how the first layer reads a bit: pm1 = -1/+1, 01 = 0/1 (PAIR's sequences of 0s "
                    "and 1s); the bias column stays 1", choices=("pm1", "01"))


@dataclass
class TransformerConfig:
    d_model: int = opt(128, "residual width", ge=1)
    n_heads: int = opt(4, "attention heads (d_model divisible by n_heads)", ge=1)
    d_mlp: int = opt(512, "MLP width", ge=1)
    n_layers: int = opt(1, "blocks", ge=1)
    layernorm: bool = opt(False, "LayerNorm before attention/MLP (Nanda: none)")
    init: str = opt("pair", "initializer: pair = normal 1/sqrt(fan_in) truncated at 2 std; normal = the same, not "
                    "truncated (Nanda's code); torch = nn defaults", choices=("pair", "normal", "torch"))


@dataclass
class DecoderConfig:
    dim: int = opt(128, "residual width (Grokfast: 128)", ge=1)
    layers: int = opt(2, "blocks (Grokfast: 2)", ge=1)
    heads: int = opt(4, "attention heads, dividing dim (Grokfast: 4)", ge=1)


@dataclass
class ModelConfig:
    kind: str = opt("pair_mlp", "architecture; its settings are the sub-table of the same name (decoder = "
                    "Grokfast's 2-layer transformer on (a, op, b, =), nn/grokfast.py)",
                    choices=("pair_mlp", "mlp", "transformer", "decoder"))
    init_scale: float = opt(1.0, "multiplies every initial weight (Omnigrok's alpha)", gt=0.0)
    pair_mlp: PairMLPConfig = field(default_factory=PairMLPConfig)
    mlp: BitMLPConfig = field(default_factory=BitMLPConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    @property
    def arch(self):
        """The sub-table of the chosen architecture."""
        return getattr(self, self.kind)


@dataclass
class AnalysisConfig:
    memorized_acc: float = opt(0.99, "step_memorized = first log step with train acc >= this", gt=0, le=1)
    generalized_acc: float = opt(0.95, "step_generalized = first log step with test acc >= this", gt=0, le=1)
    fail_loss: float = opt(1e-5, "PAIR rule 1: min train loss above this -> fail", gt=0)
    memorize_loss: float = opt(1e-5, "PAIR rule 2: min test loss above this -> memorize", gt=0)
    direct_ratio: float = opt(5e4, "PAIR rule 3: max test/train loss ratio below this -> direct", gt=0)
    loss_floor: float = opt(0.0, "rule 3 reads losses below this as this (PAIR's float32 parity sweep: "
                            "1.1920929e-7 = 2^-23); 0 = off", ge=0)
    settle_window: int = opt(0, "steps: a member whose train loss, test loss (both read as at least loss_floor) and "
                             "weight norm each stayed within a band over the last this many logged steps is "
                             "stationary and stops (train.early_stop) with its outcome as it stands; 0 = off", ge=0)
    settle_loss_band: float = opt(0.1, "stationary: max - min of ln(loss) over the window below this", gt=0)
    settle_norm_band: float = opt(0.01, "stationary: max - min of ln(weight L2 norm) over the window below this",
                                  gt=0)
    freq_threshold: float = opt(0.5, "a neuron counts in Fourier analysis if its top coefficient has "
                                "at least this fraction of its weight norm", ge=0, le=1)


@dataclass
class GrokConfig(RootConfig):
    """The grokking lab's root config."""

    lab: ClassVar[str] = "grokking"
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    @classmethod
    def upgrade(cls, raw: dict) -> dict:
        """Before the per-architecture sub-tables, [model] was flat: move its keys into [model.<kind>]."""
        model = raw.get("model")
        if not isinstance(model, dict) or any(isinstance(v, dict) for v in model.values()):
            return raw
        kind = model.get("kind", "pair_mlp")
        arch_cls = {"pair_mlp": PairMLPConfig, "mlp": BitMLPConfig, "transformer": TransformerConfig}.get(kind)
        if arch_cls is None:
            return raw
        keep = {f.name for f in fields(arch_cls)}
        new = {k: v for k, v in model.items() if k in ("kind", "init_scale")}
        new[kind] = {k: v for k, v in model.items() if k in keep}
        return {**raw, "model": new}

    def check(self) -> None:
        t, d, m = self.task, self.data, self.model
        if t.kind == "modular" and t.op == "div" and not is_prime(t.p):
            raise GroklabError(f"task.p: op 'div' needs a prime modulus, got {t.p}")
        if t.kind == "parity" and t.k_bits > t.n_bits:
            raise GroklabError(f"task.k_bits: must be <= task.n_bits ({t.n_bits}), got {t.k_bits}")
        if t.kind == "parity" and m.kind != "mlp":
            raise GroklabError("model.kind: the parity task needs 'mlp'")
        if t.kind == "modular" and m.kind not in ("pair_mlp", "transformer", "decoder"):
            raise GroklabError("model.kind: the modular task needs 'pair_mlp', 'transformer' or 'decoder'")
        if m.kind == "decoder" and m.decoder.dim % m.decoder.heads:
            raise GroklabError(f"model.decoder.heads: must divide model.decoder.dim ({m.decoder.dim}), "
                               f"got {m.decoder.heads}")
        if m.kind == "pair_mlp" and m.pair_mlp.fixed_embed == "fourier" and m.pair_mlp.embed_size != 2:
            raise GroklabError(f"model.pair_mlp.embed_size: the fixed Fourier embedding is 2 wide, "
                               f"got {m.pair_mlp.embed_size}")
        if m.kind == "transformer" and m.transformer.d_model % m.transformer.n_heads:
            raise GroklabError(f"model.transformer.n_heads: must divide model.transformer.d_model "
                               f"({m.transformer.d_model}), got {m.transformer.n_heads}")
        if d.split == "per_seed" and (t.kind != "modular" or m.kind != "pair_mlp"):
            raise GroklabError("data.split: 'per_seed' needs task.kind 'modular' and model.kind 'pair_mlp'; "
                               "allowed otherwise: shared")
        if d.split == "python" and t.kind != "modular":
            raise GroklabError("data.split: 'python' needs task.kind 'modular'; allowed otherwise: shared")
        if d.split == "per_seed" and self.train.progress_every:
            raise GroklabError("train.progress_every: progress measures read one shared split; with "
                               "data.split = 'per_seed' allowed: 0")
        if t.kind == "parity" and t.n_bits < 60 and d.n_train > 2**t.n_bits:
            raise GroklabError(f"data.n_train: at most 2**task.n_bits = {2**t.n_bits}, got {d.n_train}")


ROOT = GrokConfig
Config = GrokConfig
