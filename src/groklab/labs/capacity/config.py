"""The capacity lab's config (seed 003, effective model complexity): [data] [model] [search], the engine's
shared [optim] (with the capacity optimizers) and [train] sections.

The EMC rule (Shwartz-Ziv et al. 2024) as configured here — the paper publishes no code or schedule:
- a training FITS when its train accuracy over all of its n samples is exactly 100% at a check;
- it has CONVERGED without fitting when, over the last `search.window` epochs, its train loss fell by less
  than `search.plateau` (relative) AND the norm of its full-batch gradient is at most `search.grad_tol`;
- it is CAPPED when it reaches `search.max_epochs` epochs (or train.steps optimizer steps) first; a capped
  training counts as not fitted and is reported as capped.
Checks run every `search.check_every` epochs of the round's largest candidate; a training stops as soon as
it fits, converges or is capped (it no longer costs compute). See labs/capacity/search.py for the search.

Which [train] fields this lab reads: batch_size, batching, steps (a step cap per round), seed and seeds (one
EMC search per seed: seeds train.seed, +1, ...), loss, softmax, logits_dtype, member_chunk, early_stop,
device, threads. log_every, snapshots, eval_examples, checkpoint_every and progress_every are not used (the
check interval comes from search.check_every; every check is over all of a training's samples).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from groklab import GroklabError, config
from groklab.config import OptimConfig, RootConfig, TrainConfig, opt

DATA_NAMES = ("mnist1d", "digits", "tabular", "breast_cancer", "wine", "iris", "mnist", "cifar10", "cifar100")
TABULAR = "breast_cancer"  # what data.name = "tabular" means: scikit-learn's largest bundled tabular set
OPTIMIZERS = ("sgd", "gd", "adam", "adamw", "shampoo")


@dataclass
class CapDataConfig:
    name: str = opt("mnist1d", "data set: mnist1d (built offline), digits (scikit-learn 8x8), tabular (= "
                    "breast_cancer; also wine, iris), mnist / cifar10 / cifar100 (files in data_dir)",
                    choices=DATA_NAMES)
    labels: str = opt("semantic", "labels: semantic (true) or random (uniform over the classes, drawn once per "
                      "seed, nested in n)", choices=("semantic", "random"))
    inputs: str = opt("real", "inputs: real, gaussian (noise with the train set's per-feature mean and std), "
                      "permuted (one fixed permutation of the positions per seed)",
                      choices=("real", "gaussian", "permuted"))
    classes: int = opt(0, "merge the classes at random into this many (0 = all classes)", ge=0)
    data_dir: str = opt("", "folder holding MNIST / CIFAR files (torchvision layout); '' = none")
    cache_dir: str = opt("", "folder caching the built mnist1d / scikit-learn sets; '' = <store root>/.cache/data "
                         "for `capacity emc` (its --out), none on disk for a sweep (built once per process)")
    mnist1d_samples: int = opt(5000, "mnist1d: examples generated (80% train, 20% test); package default 5,000",
                               ge=10)
    n_test: int = opt(1000, "test examples kept for the test accuracy (0 = all)", ge=0)
    seed: int = opt(0, "seed of the data split and of the class merge (shared by every seed's search)", ge=0)


@dataclass
class CapModelConfig:
    kind: str = opt("mlp", "architecture: mlp (depth hidden layers of width), cnn (depth stride-2 conv blocks "
                    "of width channels, 1-D for sequences and tables, 2-D for images), resnet (width k, depth "
                    "blocks per stage), vit (patches -> depth pre-LayerNorm transformer blocks of width)",
                    choices=("mlp", "cnn", "resnet", "vit"))
    width: int = opt(64, "hidden units (mlp), channels (cnn), base width k (resnet), embedding width (vit)", ge=1)
    depth: int = opt(2, "hidden layers (mlp), conv blocks (cnn), basic blocks per stage (resnet), transformer "
                     "blocks (vit)", ge=1)
    act: str = opt("relu", "activation of every hidden layer (vit: its MLPs)", choices=("relu", "tanh", "gelu"))
    heads: int = opt(2, "vit: attention heads (must divide width)", ge=1)
    patch: int = opt(4, "vit: patch length (1-D sequences and tables) or side (2-D images)", ge=1)
    norm: str = opt("none", "cnn: normalization after each conv (resnet always uses GroupNorm)",
                    choices=("none", "group", "layer"))


@dataclass
class CapOptimConfig(OptimConfig):
    """The engine's [optim] with the capacity optimizers and EMC's defaults (no weight decay)."""

    name: str = opt("adam", "optimizer: sgd (mini-batch, momentum), gd (full-batch gradient descent: "
                    "train.batch_size ignored), adam (no weight decay), adamw (decoupled decay), shampoo "
                    "(pytorch-optimizer's Shampoo; trainings run one at a time, not batched)",
                    choices=OPTIMIZERS)
    lr: float = opt(1e-3, "learning rate", gt=0.0)
    weight_decay: float = opt(0.0, "weight decay (adamw, sgd, gd; EMC: none)", ge=0.0)
    beta2: float = opt(0.999, "Adam beta2", ge=0.0, lt=1.0)
    momentum: float = opt(0.9, "momentum of sgd, gd and shampoo", ge=0.0, lt=1.0)
    precondition_every: int = opt(1, "shampoo: recompute the preconditioner roots every k steps", ge=1)
    shampoo_momentum: float = opt(0.0, "shampoo's momentum (pytorch-optimizer mixes the raw gradient with the last "
                                  "preconditioned update; 0.9 stalled training in our checks)", ge=0.0, lt=1.0)
    lrs: str = opt("", "per-optimizer learning rates 'name:lr,...' overriding lr for the optimizers named (one sweep "
                   "axis over optim.name, each optimizer at its own tuned lr); '' = lr for every optimizer")

    def lr_of(self) -> float:
        """The learning rate of optim.name: its entry in lrs, else lr (GroklabError on a malformed lrs)."""
        table = {}
        for item in filter(None, (t.strip() for t in self.lrs.split(","))):
            name, _, val = item.partition(":")
            try:
                table[name.strip()] = float(val)
            except ValueError:
                table[name.strip()] = -1.0
            if name.strip() not in OPTIMIZERS or not table[name.strip()] > 0:
                raise GroklabError(f"optim.lrs: {item!r} is not 'name:lr' with name one of {', '.join(OPTIMIZERS)} "
                                   "and lr > 0")
        return table.get(self.name, self.lr)


@dataclass
class CapTrainConfig(TrainConfig):
    """The engine's [train] with the capacity lab's defaults (epochs of mini-batches, no snapshots)."""

    steps: int = opt(1_000_000, "step cap of one round's training (search.max_epochs usually binds first)", ge=1)
    batch_size: int = opt(128, "examples per step (0 = full batch)", ge=0)
    batching: str = opt("epochs", "epochs = each training sees each of its samples once per epoch (the lab "
                        "needs it); draws = random batches", choices=("draws", "epochs"))
    snapshots: int = opt(0, "not used by the capacity lab", ge=0)
    log_every: int = opt(100, "not used by the capacity lab (checks: search.check_every)", ge=1)
    checkpoint_every: int = opt(0, "not used by the capacity lab (no resume: a round is short)", ge=0)
    progress_every: int = opt(0, "not used by the capacity lab", ge=0)
    eval_examples: int = opt(0, "must be 0: fitting is judged on every sample", ge=0)
    seed: int = opt(0, "first seed: its search's initialization, subsets, labels and inputs", ge=0)
    seeds: int = opt(1, "independent EMC searches (seeds seed, seed+1, ...); all searches' candidates train "
                     "together as one ensemble per round", ge=1)


@dataclass
class SearchConfig:
    n_min: int = opt(50, "smallest candidate sample count (if it does not fit, EMC < n_min is reported)", ge=1)
    n_max: int = opt(4000, "largest candidate sample count (at most the train set's size; if it fits, EMC >= "
                     "n_max is reported)", ge=1)
    tol: float = opt(0.05, "stop when the bracket [lo, hi] of every seed has (hi - lo) / lo <= tol", gt=0.0)
    k: int = opt(3, "candidate sizes per seed and round (log-spaced; the first round includes n_min, n_max)",
                 ge=2)
    max_rounds: int = opt(12, "round cap (the bracket is reported as reached)", ge=1)
    max_epochs: int = opt(300, "epoch cap of one training: not fitted by then = capped (counted unfitted)", ge=1)
    check_every: int = opt(2, "check fit/convergence every k epochs of the round's largest candidate", ge=1)
    window: int = opt(30, "plateau window in epochs", ge=1)
    plateau: float = opt(0.01, "plateau: train loss fell by less than this fraction over the window", ge=0.0)
    grad_tol: float = opt(0.01, "converged only if the full-batch gradient norm is at most this "
                          "(inf = plateau alone)", gt=0.0)


@dataclass
class CapacityConfig(RootConfig):
    """The capacity lab's root config (seed 003: effective model complexity)."""

    lab: ClassVar[str] = "capacity"
    data: CapDataConfig = field(default_factory=CapDataConfig)
    model: CapModelConfig = field(default_factory=CapModelConfig)
    optim: CapOptimConfig = field(default_factory=CapOptimConfig)
    train: CapTrainConfig = field(default_factory=CapTrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)

    def check(self) -> None:
        s, o = self.search, self.optim
        if s.n_min >= s.n_max:
            raise GroklabError(f"search.n_min: must be below search.n_max ({s.n_max}), got {s.n_min}")
        if o.name == "adam" and o.weight_decay > 0:
            raise GroklabError("optim.weight_decay: adam has no weight decay; use optim.name = adamw, or 0")
        if o.name == "sgd" and self.train.batch_size == 0:
            raise GroklabError("train.batch_size: sgd is mini-batch; give a batch size >= 1 (or optim.name = gd)")
        if o.decay != "l2" or o.grokfast != "none" or o.orthograd:
            raise GroklabError("optim.decay/grokfast/orthograd: the capacity lab uses plain l2 decay only")
        if self.train.batching != "epochs":
            raise GroklabError("train.batching: the capacity lab counts epochs; allowed: epochs")
        if self.train.eval_examples:
            raise GroklabError("train.eval_examples: fitting is judged on every sample; allowed: 0")
        o.lr_of()  # a malformed optim.lrs is one line
        if self.model.kind == "vit" and self.model.width % self.model.heads:
            raise GroklabError(f"model.heads: must divide model.width ({self.model.width}), got {self.model.heads}")
        if s.window < s.check_every:
            raise GroklabError(f"search.window: at least search.check_every ({s.check_every}), got {s.window}")

    @property
    def data_name(self) -> str:
        """The loaded data set behind data.name (tabular -> breast_cancer)."""
        return TABULAR if self.data.name == "tabular" else self.data.name

    def engine_optim(self) -> OptimConfig:
        """The [optim] the engine's BatchedOptimizer understands: adam/adamw -> adamw, sgd/gd -> sgd."""
        import dataclasses
        fields = {f.name: getattr(self.optim, f.name) for f in dataclasses.fields(OptimConfig)}
        fields["name"] = "adamw" if self.optim.name in ("adam", "adamw") else "sgd"
        return OptimConfig(**fields)

    def batch_size(self) -> int:
        """Examples per step: 0 (full batch) for gd."""
        return 0 if self.optim.name == "gd" else self.train.batch_size


ROOT = CapacityConfig


def load(preset=None, config_file=None, overrides=(), **cli) -> CapacityConfig:
    return config.load_config(preset, config_file, list(overrides), cls=CapacityConfig, **cli)
