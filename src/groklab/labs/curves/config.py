"""The curves lab's config (seed 000: the U-shaped risk curve versus double descent; scaling laws).

Sections: [experiment] (which study the preset sets up), [features] (random-features regression and the
Belkin-Hsu-Xu Gaussian model), [ucurve] (the classical polynomial-degree U-curve), [data] (MNIST-1D with
label noise), [model] (the width sweep), the engine's [optim] and [train], [epochs] (epoch-wise curve),
[baselines] (MNIST-1D's published models), [scaling] (fits of L(N) and L(N, D)) and [addition] (the addition
GPT scaled when scaling.source = addition).

Which command reads what: `curves double-descent` runs [features] + [ucurve] (experiment.kind = features) or
trains [model] over its widths on [data] (kind = network); `curves epochs` trains one width, epochs.width, of
[model] on [data] and evaluates it at log-spaced epochs; `curves baselines` reads [baselines] + [data];
`curves scaling` reads [scaling] (+ [data], [model], [optim], [train] for the networks it trains; with
scaling.source = addition: [addition], [optim] (optim.lr is the base of the per-width rule) and [train]'s
seed, seeds, device, threads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from groklab import GroklabError, config
from groklab.config import OptimConfig, RootConfig, TrainConfig, opt

KINDS = ("features", "network", "baselines", "scaling")
MODELS = ("mlp", "cnn")
BASELINES = ("logistic", "mlp", "cnn", "gru")
FORMS = ("power", "hoffmann_n", "hoffmann_nd")
SOURCES = ("mnist1d", "addition")
FORM_PARAMS = {"power": 2, "hoffmann_n": 3, "hoffmann_nd": 5}  # fitted parameters of each form


@dataclass
class ExperimentConfig:
    kind: str = opt("features", "the study: features (random features + U-curve), network (MNIST-1D width "
                    "sweep), baselines, scaling", choices=KINDS)


@dataclass
class FeaturesConfig:
    kinds: list = opt(["relu", "fourier"], "random feature maps swept over p (relu, fourier)")
    n: int = opt(100, "training examples of the random-features regression (the interpolation threshold is "
                 "p = n)", ge=2)
    d: int = opt(8, "input dimension of the synthetic regression", ge=1)
    n_test: int = opt(1000, "test examples", ge=1)
    noise: float = opt(0.3, "standard deviation of the additive target noise", ge=0.0)
    p_min: float = opt(0.1, "smallest feature count as a fraction of n", gt=0.0)
    p_max: float = opt(10.0, "largest feature count as a fraction of n", gt=0.0)
    points: int = opt(31, "feature counts, log-spaced in [p_min n, p_max n] (p = n always included)", ge=3)
    ridge: float = opt(0.01, "ridge penalty λ of the ridge variant (min ‖Φw−y‖²/n + λ‖w‖²)", gt=0.0)
    trials: int = opt(20, "independent draws (data, features) averaged per point", ge=2)
    gauss_n: int = opt(40, "Gaussian model (Belkin, Hsu & Xu 2020): training examples", ge=4)
    gauss_d: int = opt(200, "Gaussian model: total features D (the learner uses the first p)", ge=8)
    gauss_noise: float = opt(0.5, "Gaussian model: noise standard deviation σ", ge=0.0)
    gauss_trials: int = opt(300, "Gaussian model: Monte-Carlo trials per p", ge=10)
    seed: int = opt(0, "seed of every draw", ge=0)


@dataclass
class UCurveConfig:
    n: int = opt(24, "training points of the 1-D regression y = sin(πx) + noise", ge=3)
    noise: float = opt(0.3, "noise standard deviation", ge=0.0)
    max_degree: int = opt(18, "polynomial degrees 0..max_degree (at most n − 1: the classical regime)", ge=1)
    trials: int = opt(200, "independent training sets averaged per degree", ge=1)
    n_test: int = opt(500, "test points", ge=1)


@dataclass
class CurvesDataConfig:
    name: str = opt("mnist1d", "data set (MNIST-1D, built offline)", choices=("mnist1d",))
    samples: int = opt(16000, "MNIST-1D examples generated (num_samples)", ge=20)
    train_split: float = opt(0.25, "fraction of the examples used for training (the rest is the test set)",
                             gt=0.0, lt=1.0)
    label_noise: float = opt(0.15, "probability that a train label is replaced by a uniformly drawn class "
                             "(test labels stay clean)", ge=0.0, lt=1.0)
    n_train: int = opt(0, "keep this many training examples (0 = all)", ge=0)
    seed: int = opt(42, "MNIST-1D generator seed (package default 42) and label-noise seed", ge=0)


@dataclass
class CurvesModelConfig:
    kind: str = opt("mlp", "mlp = 40→H→H→10 ReLU (H² + 52H + 10 parameters); cnn = three Conv1d of C channels "
                    "(k5 s2, k3 s2, k3 s2) + Linear(5C→10)", choices=MODELS)
    widths: list = opt([2, 3, 4, 5, 7, 9, 12, 16, 21, 28, 37, 49, 65, 86, 113, 150, 198, 261, 300],
                       "widths H (mlp) or channels C (cnn) swept; the default is unique(round(geomspace(2, 300, "
                       "20)))")
    groups: int = opt(0, "batched trainings the widths are split into (contiguous in width, each padded to its "
                      "widest); 0 = choose by the cost model, len(widths) = one training per width", ge=0)


@dataclass
class CurvesOptimConfig(OptimConfig):
    """The engine's [optim] with the MNIST-1D double-descent defaults (SGD lr 0.01 momentum 0.9, no decay)."""

    name: str = opt("sgd", "optimizer (sgd with momentum, or adamw)", choices=("sgd", "adamw"))
    lr: float = opt(0.01, "learning rate", gt=0.0)
    weight_decay: float = opt(0.0, "weight decay (the experiment uses none)", ge=0.0)
    momentum: float = opt(0.9, "SGD momentum", ge=0.0, lt=1.0)


@dataclass
class CurvesTrainConfig(TrainConfig):
    """The engine's [train] in epochs of mini-batches (steps are derived from epochs)."""

    epochs: int = opt(500, "epochs of training", ge=1)
    eval_every: int = opt(50, "evaluate train and test error every k epochs (and at the end)", ge=1)
    steps: int = opt(1, "not used: steps = epochs × ceil(n_train / batch_size)", ge=1)
    batch_size: int = opt(100, "examples per step", ge=1)
    batching: str = opt("epochs", "epochs = each model sees each example once per epoch in its own order",
                        choices=("draws", "epochs"))
    snapshots: int = opt(0, "not used by the curves lab", ge=0)
    log_every: int = opt(100, "not used: see eval_every", ge=1)
    early_stop: bool = opt(False, "not used: every model trains all its epochs")
    seed: int = opt(0, "first seed (initialization and batch order)", ge=0)
    seeds: int = opt(1, "seeds per width (seed, seed+1, ...); curves show their mean", ge=1)


@dataclass
class EpochsConfig:
    width: int = opt(64, "width (mlp) or channels (cnn) of the model trained (past the interpolation "
                     "threshold with label noise)", ge=1)
    points: int = opt(60, "evaluations, log-spaced in steps from 1 to the last step", ge=5)


@dataclass
class BaselinesConfig:
    models: list = opt(list(BASELINES), "models: logistic, mlp (MLPBase, residual, hidden 256), cnn "
                       "(ConvBase, 25 channels), gru (bidirectional, hidden 6)")
    seeds: int = opt(3, "seeds per model", ge=1)
    steps: int = opt(8000, "Adam steps of batch 100 (mnist1d/notebooks/train.py: 8,000)", ge=1)
    lr: float = opt(1e-2, "Adam learning rate (mnist1d: 1e-2)", gt=0.0)
    eval_every: int = opt(1000, "evaluate every k steps", ge=1)


@dataclass
class ScalingConfig:
    source: str = opt("mnist1d", "what is scaled: mnist1d (MLP/CNN over width × training-set size) or addition "
                      "(seed 002's addition GPT over width, [addition])", choices=SOURCES)
    widths: list = opt([4, 8, 16, 32, 64], "widths (N axis; parameters are counted)")
    n_trains: list = opt([500, 1000, 2000, 4000], "training-set sizes (D axis)")
    forms: list = opt(list(FORMS), "fitted forms: power L = A/N^α, hoffmann_n L = E + A/N^α, hoffmann_nd "
                      "L = E + A/N^α + B/D^β")
    bootstrap: int = opt(200, "bootstrap resamples (over runs: width × size × seed points) for the 95% CIs",
                         ge=0)
    huber: float = opt(1e-3, "Huber δ on log-loss residuals (Hoffmann et al.: 1e-3)", gt=0.0)
    holdout: bool = opt(True, "also fit without the largest N and report the relative error of the prediction "
                        "there")


@dataclass
class AdditionScalingConfig:
    """scaling.source = addition: the GPT of nn/gpt.py on fresh n-digit sums, one training per width × seed."""

    n_digits: int = opt(3, "digits per operand (seed 002: 8; small operands keep it CPU-feasible)", ge=1, le=17)
    sampling: str = opt("uniform", "operands: uniform = 0..10^n-1 zero-padded; leading19 = first digit 1-9 "
                        "(yulundu/compression)", choices=("uniform", "leading19"))
    reverse: bool = opt(False, "write the answer least-significant digit first (same entropy floor; Lee et al. 2023: "
                        "small transformers learn addition faster so)")
    layers: int = opt(2, "transformer blocks (fixed across widths: only the width is scaled)", ge=1)
    heads: int = opt(2, "attention heads (every scaling.widths entry must be divisible by it)", ge=1)
    rope: bool = opt(True, "rotary positions on queries and keys (as the compression lab's addition8 preset)")
    batch_size: int = opt(128, "fresh examples per step", ge=1)
    lr_rule: str = opt("inverse_width", "per-width learning rate: inverse_width = optim.lr × lr_width / width "
                       "(μP's Adam rule for hidden matrices, Yang et al. 2022, applied to all parameters); constant = "
                       "optim.lr at every width",
                       choices=("inverse_width", "constant"))
    lr_width: int = opt(32, "the width at which the learning rate is optim.lr", ge=1)
    lr_max: float = opt(2e-2, "upper bound on any width's learning rate", gt=0.0)
    eval_every: int = opt(250, "evaluate the held-out sets every k steps", ge=1)
    min_steps: int = opt(2000, "never stop before this many steps", ge=1)
    max_steps: int = opt(20000, "step cap: a width still improving here is reported as not converged", ge=1)
    window: float = opt(0.5, "plateau window as a fraction of the steps so far: converged when the last window "
                        "improved the best held-out loss by less than tol", gt=0.0, lt=1.0)
    tol: float = opt(0.02, "converged when the window's improvement < max(tol × (best before − floor), abs_tol)",
                     ge=0.0)
    abs_tol: float = opt(1e-3, "absolute improvement (nats per target) below which the window counts as flat",
                         ge=0.0)
    val_examples: int = opt(2000, "held-out examples that decide convergence and pick the best evaluation", ge=10)
    test_examples: int = opt(4000, "separate held-out examples whose loss is reported and fitted", ge=10)
    data_seed: int = opt(0, "seed of the training stream (validation and test sets: seed + 1e9, + 2e9)", ge=0)


@dataclass
class CurvesConfig(RootConfig):
    """The curves lab's root config (seed 000: U-curve vs double descent, scaling)."""

    lab: ClassVar[str] = "curves"
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    ucurve: UCurveConfig = field(default_factory=UCurveConfig)
    data: CurvesDataConfig = field(default_factory=CurvesDataConfig)
    model: CurvesModelConfig = field(default_factory=CurvesModelConfig)
    optim: CurvesOptimConfig = field(default_factory=CurvesOptimConfig)
    train: CurvesTrainConfig = field(default_factory=CurvesTrainConfig)
    epochs: EpochsConfig = field(default_factory=EpochsConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    addition: AdditionScalingConfig = field(default_factory=AdditionScalingConfig)

    def check(self) -> None:
        f, u = self.features, self.ucurve
        _ints("model.widths", self.model.widths)
        for k in f.kinds:
            if k not in ("relu", "fourier"):
                raise GroklabError(f"features.kinds: {k!r} is not allowed; choose from: relu, fourier")
        if not f.kinds:
            raise GroklabError("features.kinds: give at least one of: relu, fourier")
        if f.p_min >= 1 or f.p_max <= 1:
            raise GroklabError(f"features.p_min/p_max: need p_min < 1 < p_max so p = n is crossed, got "
                               f"{f.p_min:g}, {f.p_max:g}")
        if f.gauss_d < f.gauss_n + 4:
            raise GroklabError(f"features.gauss_d: must be >= gauss_n + 4 ({f.gauss_n + 4}) to cross p = n")
        if u.max_degree > u.n - 1:
            raise GroklabError(f"ucurve.max_degree: at most ucurve.n - 1 ({u.n - 1}), got {u.max_degree}")
        for m in self.baselines.models:
            if m not in BASELINES:
                raise GroklabError(f"baselines.models: {m!r} is not allowed; choose from: {', '.join(BASELINES)}")
        if self.optim.decay != "l2" or self.optim.grokfast != "none" or self.optim.orthograd:
            raise GroklabError("optim.decay/grokfast/orthograd: the curves lab uses plain l2 decay only")
        s = self.scaling
        _ints("scaling.widths", s.widths)
        _ints("scaling.n_trains", s.n_trains)
        for form in s.forms:
            if form not in FORMS:
                raise GroklabError(f"scaling.forms: {form!r} is not allowed; choose from: {', '.join(FORMS)}")
        if self.experiment.kind == "scaling" and s.source == "addition":
            _check_addition(self)
        elif self.experiment.kind == "scaling":
            n_pts = len(set(s.widths)) * len(set(s.n_trains))
            for form in s.forms:
                need = FORM_PARAMS[form] + (1 if s.holdout else 0)
                if len(set(s.widths)) * (len(set(s.n_trains)) if form == "hoffmann_nd" else 1) < need:
                    raise GroklabError(f"scaling.widths/n_trains: the {form} fit has {FORM_PARAMS[form]} parameters "
                                       f"and needs at least {need} distinct points (with the held-out check); got "
                                       f"{n_pts} (widths × n_trains)")

    def train_size(self) -> int:
        """Training examples the network studies use."""
        n = round(self.data.samples * self.data.train_split)
        return min(n, self.data.n_train) if self.data.n_train else n


def _ints(name: str, values: list) -> None:
    if not values:
        raise GroklabError(f"{name}: empty; give a list of integers >= 1, e.g. [4, 16, 64]")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if bad:
        raise GroklabError(f"{name}: every entry must be an integer >= 1, got {bad[0]!r}")


def _check_addition(cfg: CurvesConfig) -> None:
    s, a = cfg.scaling, cfg.addition
    if "hoffmann_nd" in s.forms:
        raise GroklabError("scaling.forms: hoffmann_nd needs a data axis, and scaling.source = addition streams fresh "
                           "examples; choose from: power, hoffmann_n")
    step = a.heads * (2 if a.rope else 1)  # rotary embedding rotates pairs: an even head width
    odd = [w for w in s.widths if w % step]
    if odd:
        raise GroklabError(f"scaling.widths: every width must be a multiple of {step} (addition.heads = {a.heads}"
                           f"{', × 2 for rope' if a.rope else ''}), got {odd[0]}")
    for form in s.forms:
        need = FORM_PARAMS[form] + (1 if s.holdout else 0)
        if len(set(s.widths)) < need:
            raise GroklabError(f"scaling.widths: the {form} fit has {FORM_PARAMS[form]} parameters and needs at least "
                               f"{need} distinct widths (with the held-out check); got {len(set(s.widths))}")
    if a.max_steps < a.min_steps:
        raise GroklabError(f"addition.max_steps: must be >= addition.min_steps ({a.min_steps}), got {a.max_steps}")


ROOT = CurvesConfig


def load(preset=None, config_file=None, overrides=(), **cli) -> CurvesConfig:
    return config.load_config(preset, config_file, list(overrides), cls=CurvesConfig, **cli)
