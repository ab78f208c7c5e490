"""The emc-gap study needs both EMCs of all 12 configurations: its search range must start low enough that
even the smallest networks (width 4) fit n_min (else `below_range`, no gap; n_min = 50 left 7 of 8 width-4
searches there). Real trainings of the small scale at n = n_min: they fit within a few hundred epochs and stop.
(The full scale's 3 seeds are not checked here: MNIST-1D's build dominates and one width-4 depth-2 ReLU seed
gets stuck — converged unfitted at n = 8 — whatever the range; docs/capacity.md.)"""

from groklab.config import load_preset_raw
from groklab.engine import device as devmod
from groklab.labs.capacity.train import ensemble, load_base, train_round
from groklab.sweep.grid import groups, parse_spec


def test_every_width4_configuration_of_the_small_scale_fits_n_min():
    spec = parse_spec(load_preset_raw("emc-gap", "sweep"), "emc-gap", "small")
    smallest = [(cfg, pts) for cfg, pts in groups(spec) if cfg.model.width == min(spec.grid["model.width"])]
    assert len(smallest) == 8  # depth x act x labels
    dev = devmod.setup("cpu", 1)
    for cfg, pts in smallest:
        base = load_base(cfg, None)  # built once (in-process cache), shared by the 8 configurations
        res = train_round(cfg, base, ensemble(cfg, base), [(p["seed"], cfg.search.n_min) for p in pts], dev)
        what = f"w{cfg.model.width} d{cfg.model.depth} {cfg.model.act} {cfg.data.labels}"
        assert res.fitted.all(), f"{what}: n_min = {cfg.search.n_min} not fitted: {res.status}"
