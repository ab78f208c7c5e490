"""`groklab capacity emc`: search a model's effective model complexity (EMC) on a data set."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from groklab import console as cli
from groklab import store

capacity_app = typer.Typer(no_args_is_help=True, help="Capacity lab (seed 003): effective model complexity, the "
                           "largest number of samples a model fits to 100% train accuracy.")

JSON_KEYS = ("run_dir", "wall_s", "emc", "emc_std", "bracket", "params", "trainings", "per_seed", "batching")


def register(app: typer.Typer, runs_app: typer.Typer) -> None:
    app.add_typer(capacity_app, name="capacity")


@capacity_app.command("emc")
def emc(preset: str | None = cli.PRESET, config_file: Path | None = cli.CONFIG, set_: list[str] | None = cli.SET,
        seeds: int | None = typer.Option(None, help="independent searches (seeds train.seed, +1, ...)"),
        data_dir: str | None = typer.Option(None, "--data-dir", help="folder with MNIST / CIFAR files"),
        device: str | None = cli.DEVICE, threads: int | None = cli.THREADS,
        resume: str | None = typer.Option(None, "--resume", help="continue a killed search (folder or id): its "
                                          "finished rounds are kept, the rest trained"),
        out_dir: Path | None = cli.OUT, as_json: bool = cli.JSON):
    """Search EMC: each round trains k candidate sizes x seeds as one ensemble until every bracket is tight."""
    from groklab.labs.capacity.config import load
    from groklab.labs.capacity.run import expected_rounds, prepare, run_emc

    path = None
    if resume is not None:
        path, cfg = cli.resume_config(resume, out_dir, "capacity",
                                      {"--preset": preset, "--config": config_file, "--set": set_, "--seeds": seeds,
                                       "--data-dir": data_dir},
                                      {"train.device": device, "train.threads": threads})
        root = path.parent
    else:
        cfg = load(preset or "emc-demo", config_file, set_ or [], train__seeds=seeds, data__data_dir=data_dir,
                   train__device=device, train__threads=threads)
        root = Path(out_dir or store.default_root())
    prepared = prepare(cfg, root)  # bad data, model or device: one line, before any bar or run folder
    total = expected_rounds(cfg)
    prog, update = cli.progress_bar(total, f"capacity emc {cfg.name} (rounds)", not as_json)
    with prog:
        summary = run_emc(cfg, root, on_progress=update, prepared=prepared, resume=path)
    if as_json:
        return cli.emit_json({**{k: summary[k] for k in JSON_KEYS}, "config": cfg.to_dict()})
    print_emc(summary)


def _n(v) -> str:
    return "-" if v is None else f"{v:,.0f}"


def print_emc(s: dict) -> None:
    out = cli.out
    d, m = s["data"], s["model"]
    t = Table(title=f"capacity {s['preset']}: {m['kind']} w{m['width']} d{m['depth']} {m['act']} "
                    f"({s['params']:,} parameters), {d['name']} {d['labels']} labels / {d['inputs']} inputs, "
                    f"{d['classes']} classes, {s['optim']}")
    for c in ("seed", "EMC", "bracket", "state", "trainings", "rounds", "inv.", "test acc@EMC"):
        t.add_column(c)
    for p in s["per_seed"]:
        lo, hi = p["bracket"]
        ta = p.get("test_acc_at_emc")
        t.add_row(str(p["seed"]), _n(p["emc"]), f"[{_n(lo)}, {_n(hi)}]", p["state"], str(p["trainings"]),
                  str(p["rounds"]), str(p["inversions"]), "-" if ta is None else f"{ta:.3f}")
    out.print(t)
    std = f" ± {s['emc_std']:.0f}" if s["emc_std"] else ""
    out.print(f"EMC {_n(s['emc'])}{std} samples (bracket [{_n(s['bracket'][0])}, {_n(s['bracket'][1])}], "
              f"tolerance {s['tol']:g}); {s['trainings']} trainings in {s['rounds']} rounds, {s['wall_s']:.1f} s "
              f"({s['device']}, {s['threads']} threads)", highlight=False)
    out.print(f"rule: {s['rule']}", highlight=False, soft_wrap=True)
    out.print(f"run folder: {s['run_dir']}")
    out.print(f"report: groklab report {s['run_dir']}", soft_wrap=True, highlight=False)
    for f in s.get("figures", []):
        out.print(f"figure: {f}")
