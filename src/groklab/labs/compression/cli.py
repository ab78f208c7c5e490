"""`groklab compress ...`: train the addition GPT, write data, encode/decode with the model, compare."""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer
from rich.table import Table

from groklab import GroklabError, store
from groklab import console as cli
from groklab.engine.device import resolve_device
from groklab.labs.compression import config as cconfig

compress_app = typer.Typer(no_args_is_help=True, help="Compression lab (seed 002): next-token prediction is "
                           "compression, measured on n-digit addition.")

PRESET = typer.Option(None, "--preset", "-p", help="named setup (addition8, addition8-cpu, ...)")
CONFIG = typer.Option(None, "--config", help="TOML file with [data] [model] [optim] [train] tables")
SET = typer.Option(None, "--set", help="override: section.key=value (repeatable)")
JSON = typer.Option(False, "--json", help="print exactly one JSON object and nothing else on stdout")
MODEL = typer.Option(..., "--model", help="run folder or run id of a `compress train` run")
THREADS = typer.Option(0, "--threads", help="torch CPU threads (0 = all cores)")
CHUNK = typer.Option(2000, "--chunk", help="examples per forward pass (batch layout of the coder)")
PRECISION = typer.Option("fp32", "--precision", help="matmuls of the coder's model: fp32 | bf16 (AMX / tensor "
                         "cores; stored in the file, the decoder follows it)")


def register(app: typer.Typer, runs_app: typer.Typer) -> None:
    app.add_typer(compress_app, name="compress")


@compress_app.command("train")
def train(preset: str | None = PRESET, config_file: Path | None = CONFIG, set_: list[str] | None = SET,
          steps: int | None = typer.Option(None, help="optimizer steps"),
          device: str | None = typer.Option(None, help="auto | cpu | cuda"),
          threads: int | None = typer.Option(None, help="torch CPU threads (0 = all cores)"),
          resume: str | None = cli.RESUME,
          out_dir: Path | None = typer.Option(None, "--out", help="run store root (default ./runs or $GROKLAB_RUNS)"),
          as_json: bool = JSON):
    """Train the addition GPT one pass over fresh examples; log prequential and held-out loss."""
    from groklab import config
    from groklab.labs.compression.train import run_train

    if resume is not None:
        path, cfg = cli.resume_config(resume, out_dir, "compression",
                                      {"--preset": preset, "--config": config_file, "--set": set_, "--steps": steps},
                                      {"train.device": device, "train.threads": threads})
        config.validate(cfg)
    else:
        path = None
        cfg = cconfig.load(preset or "addition8-cpu", config_file, set_ or [], train__steps=steps,
                           train__device=device, train__threads=threads)
    resolve_device(cfg.train.device)  # a bad device is one line before any progress bar or run folder
    prog, _ = cli.progress_bar(cfg.train.steps, f"compress {cfg.name}", not as_json)
    task = prog.task_ids[0]

    def on_log(step, ev):
        prog.update(task, info=f"val {ev['loss']:.4f} em {ev['exact_match']:.3f}")

    with prog:
        s = run_train(cfg, out_dir, on_progress=lambda step, _: prog.update(task, completed=step), on_log=on_log,
                      resume=path)
    if as_json:
        return cli.emit_json({k: s[k] for k in ("run_dir", "val_loss", "floor", "exact_match", "steps", "wall_s")})
    print_train(s)


def print_train(s: dict) -> None:
    out = cli.out
    t = Table(title=f"compress {s['preset']}: {s['steps']} steps, {s['n_params']:,} parameters, {s['wall_s']:.0f} s "
                    f"({s['device']}, {s['threads']} threads)")
    t.add_column("measure")
    t.add_column("value")
    p, tp = s["prequential"], s["two_part"]
    rows = [("held-out loss (nats/token)", f"{s['val_loss']:.5f}"), ("entropy floor", f"{s['floor']:.5f}"),
            ("gap to floor", f"{s['gap_pct']:.3f} %"),
            (f"exact match ({s['val_examples']:,} held-out)", f"{s['exact_match']:.4f}"),
            ("prequential bits / example", f"{p['bits_per_example']:.3f}"),
            ("final model bits / example", f"{tp['final_bits_per_example']:.3f}"),
            ("floor bits / example", f"{p['floor_bits_per_example']:.3f}"),
            ("model description (xz float32)", f"{tp['description_bits']['xz_bits']:,} bits")]
    for r in rows:
        t.add_row(*r)
    out.print(t)
    out.print(f"run folder: {s['run_dir']}")
    for f in s["figures"]:
        out.print(f"figure: {f}")
    out.print(f"report: groklab report {s['run_dir']}", soft_wrap=True, highlight=False)


@compress_app.command("data")
def data(n_examples: int = typer.Option(..., "--n-examples", help="examples to write"),
         out_file: Path = typer.Option(..., "--out", help="text file to write (one example per line)"),
         n_digits: int | None = typer.Option(None, "--digits", help="digits per operand (default 8)"),
         sampling: str | None = typer.Option(None, help="uniform | leading19"),
         reverse: bool | None = typer.Option(None, "--reverse/--no-reverse", help="answer least-significant first"),
         seed: int = typer.Option(0, help="seed of the examples"),
         preset: str | None = PRESET, set_: list[str] | None = SET, as_json: bool = JSON):
    """Write n fresh examples in seed 002's format (`s17282456+79546852=096829308e`)."""
    from groklab.data.addition import format_text

    if n_examples < 1:
        raise GroklabError(f"--n-examples: must be >= 1, got {n_examples}")
    if seed < 0:
        raise GroklabError(f"--seed: must be >= 0, got {seed}")
    cfg = cconfig.load(preset, None, set_ or [], data__n_digits=n_digits, data__sampling=sampling,
                       data__reverse=reverse)
    fmt = cfg.fmt()
    tokens = fmt.sample(n_examples, torch.Generator().manual_seed(seed))
    store.atomic_write_bytes(out_file, format_text(tokens).encode())
    res = {"path": str(out_file), "n_examples": n_examples, "floor_nats_per_token": fmt.floor(),
           "floor_bits_per_example": fmt.floor_bits()}
    if as_json:
        return cli.emit_json(res)
    cli.out.print(f"wrote {n_examples:,} examples to {out_file} (floor {res['floor_bits_per_example']:.2f} "
                     "bits/example)")


def _coder_setup(model: str, threads: int, chunk: int):
    from groklab.engine import device as devmod
    from groklab.labs.compression.train import load_model

    if chunk < 1:
        raise GroklabError(f"--chunk: must be >= 1, got {chunk}")
    if threads < 0:
        raise GroklabError(f"--threads: must be >= 0, got {threads}")
    devmod.setup("cpu", threads)
    return load_model(model)


@compress_app.command("encode")
def encode(in_file: Path = typer.Argument(..., help="text file of examples"),
           out_file: Path = typer.Argument(..., help="compressed file to write"),
           model: str = MODEL, threads: int = THREADS, chunk: int = CHUNK, precision: str = PRECISION,
           as_json: bool = JSON):
    """Arithmetic-code a file of examples with a trained model (lossless)."""
    from groklab.labs.compression import coder

    coder.check_precision(precision)  # before the model loads
    data = coder.read_input(in_file)
    net, cfg, mhash, _ = _coder_setup(model, threads, chunk)
    t0 = time.perf_counter()
    blob = coder.encode_bytes(net, mhash, cfg.fmt(), data, chunk, str(in_file), precision)
    wall = time.perf_counter() - t0
    store.atomic_write_bytes(out_file, blob)
    n = coder.read_header(blob)["n_examples"]
    res = {"path": str(out_file), "n_examples": n, "bytes_in": len(data), "bytes_out": len(blob),
           "bits_per_example": 8 * len(blob) / n, "wall_s": wall,
           "tokens_per_s": n * (cfg.fmt().n_targets) / wall}
    if as_json:
        return cli.emit_json(res)
    cli.out.print(f"{in_file} ({len(data):,} B, {n:,} examples) -> {out_file} ({len(blob):,} B, "
                     f"{res['bits_per_example']:.2f} bits/example) in {wall:.2f} s")


@compress_app.command("decode")
def decode(in_file: Path = typer.Argument(..., help="compressed file"),
           out_file: Path = typer.Argument(..., help="text file to write"),
           model: str = MODEL, threads: int = THREADS, as_json: bool = JSON):
    """Decode a file written by `compress encode` with the same model."""
    from groklab.labs.compression import coder

    blob = coder.read_input(in_file)
    coder.read_header(blob, str(in_file))  # reject non-groklab files before loading a model
    net, cfg, mhash, _ = _coder_setup(model, threads, 1)
    t0 = time.perf_counter()
    data = coder.decode_bytes(net, mhash, cfg.fmt(), blob, str(in_file))
    wall = time.perf_counter() - t0
    store.atomic_write_bytes(out_file, data)
    n = coder.read_header(blob)["n_examples"]
    res = {"path": str(out_file), "n_examples": n, "bytes_out": len(data), "wall_s": wall,
           "tokens_per_s": n * cfg.fmt().n_targets / wall}
    if as_json:
        return cli.emit_json(res)
    cli.out.print(f"{in_file} -> {out_file} ({len(data):,} B, {n:,} examples) in {wall:.2f} s")


@compress_app.command("compare")
def compare(in_file: Path = typer.Argument(..., help="text file of examples"), model: str = MODEL,
            threads: int = THREADS, chunk: int = CHUNK, as_json: bool = JSON):
    """Model vs gzip, bz2, xz, zstd, brotli on the same file: bits per example and ratio to the floor."""
    from groklab.labs.compression.compare import compare_file

    data_bytes = _read(in_file)
    net, cfg, mhash, _ = _coder_setup(model, threads, chunk)
    res = compare_file(net, mhash, cfg.fmt(), data_bytes, chunk, str(in_file))
    if as_json:
        return cli.emit_json(res)
    t = Table(title=f"{in_file}: {res['n_examples']:,} examples, floor {res['floor_bits_per_example']:.2f} "
                    "bits/example")
    for c in ("compressor", "bytes", "bits/example", "bits/char", "x floor", "round trip"):
        t.add_column(c)
    for name, bpe in res["bits_per_example"].items():
        d = res["detail"][name]
        t.add_row(name, f"{d['bytes']:,}", f"{bpe:.2f}", f"{d['bits_per_char']:.3f}", f"{d['ratio_to_floor']:.3f}",
                  "ok" if d["roundtrip_ok"] else "FAILED")
    cli.out.print(t)


def _read(path: Path) -> bytes:
    from groklab.labs.compression.coder import read_input
    return read_input(path)


@compress_app.command("joint")
def joint(preset: str | None = PRESET, config_file: Path | None = CONFIG, set_: list[str] | None = SET,
          n_file: int = typer.Option(10_000, "--n-file", help="examples in each of the files X and Y"),
          out_dir: Path | None = typer.Option(None, "--out", help="run store root"), as_json: bool = JSON):
    """Joint compression: C(X)+C(Y) vs C(X‖Y) for a related and an unrelated pair, classical and GPT coders."""
    from groklab.labs.compression.joint import run_joint

    if n_file < 1:
        raise GroklabError(f"--n-file: must be >= 1, got {n_file}")
    cfg = cconfig.load(preset or "joint4", config_file, set_ or [])
    prog, _ = cli.progress_bar(5, f"joint {cfg.name} (trainings)", not as_json)
    task = prog.task_ids[0]
    with prog:
        s = run_joint(cfg, n_file, out_dir, on_progress=lambda i, n: prog.update(task, completed=i))
    if as_json:
        return cli.emit_json({k: s[k] for k in ("run_dir", "rows", "models", "wall_s")})
    t = Table(title=f"joint compression, bits per example ({s['n_file']:,} examples per file)")
    for c in ("pair", "coder", "C(X)", "C(Y)", "C(X)+C(Y)", "C(X||Y)", "saving"):
        t.add_column(c)
    for r in s["rows"]:
        t.add_row(r["pair"], r["coder"], *(f"{r[k]:.2f}" for k in ("C(X)", "C(Y)", "C(X)+C(Y)", "C(X||Y)")),
                  f"{r['saving_pct']:+.1f} %")
    cli.out.print(t)
    cli.out.print(f"run folder: {s['run_dir']}")


@compress_app.command("sizes")
def sizes(preset: str | None = PRESET, config_file: Path | None = CONFIG, set_: list[str] | None = SET,
          widths: str = typer.Option("32,64,128,192", help="comma-separated model widths"),
          out_dir: Path | None = typer.Option(None, "--out", help="run store root"), as_json: bool = JSON):
    """Model-size sweep on the same data: code length and gap to the floor vs parameters."""
    from groklab.labs.compression.sizes import parse_widths, run_sizes

    cfg = cconfig.load(preset or "sizes4", config_file, set_ or [])
    ws = parse_widths(widths, cfg.model.heads)
    prog, _ = cli.progress_bar(len(ws), f"sizes {cfg.name}", not as_json)
    task = prog.task_ids[0]
    with prog:
        s = run_sizes(cfg, ws, out_dir, on_progress=lambda i, n: prog.update(task, completed=i))
    if as_json:
        return cli.emit_json({k: s[k] for k in ("run_dir", "floor", "floor_bits_per_example", "sizes", "wall_s")})
    t = Table(title=f"model sizes: {s['steps']} steps x {s['batch_size']} (floor {s['floor_bits_per_example']:.2f} "
                    "bits/example)")
    for c in ("width", "params", "val loss", "gap %", "exact match", "bits/ex", "prequential bits/ex"):
        t.add_column(c)
    for r in s["sizes"]:
        t.add_row(str(r["width"]), f"{r['n_params']:,}", f"{r['val_loss']:.4f}", f"{r['gap_pct']:.2f}",
                  f"{r['exact_match']:.4f}", f"{r['bits_per_example']:.2f}", f"{r['prequential_bits_per_example']:.2f}")
    cli.out.print(t)
    cli.out.print(f"run folder: {s['run_dir']}")
