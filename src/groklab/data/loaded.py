"""Loaded data sets: MNIST-1D (built offline), scikit-learn's bundled sets and torchvision-format files.

`load_dataset(name, data_dir, cache_dir, **kw)` is the one entry point. Nothing here downloads: MNIST-1D is
generated with `mnist1d.data.make_dataset` (never `get_dataset`, which downloads), scikit-learn's sets ship
with the package, and MNIST / CIFAR files are read from `data_dir` as torchvision lays them out, without
torchvision. Images come as float32 (N, C, H, W) in [0, 1], tabular sets standardized with train statistics,
MNIST-1D as float32 (N, 40); labels int64.

Common options: `n_train`, `n_test` (keep the first n after a permutation seeded by `seed`: a larger n contains
a smaller one) and `seed`. Sets built in-process (mnist1d, scikit-learn) are cached under `cache_dir` (e.g.
`<store root>/.cache/data`) as `<name>-<hash of options>.safetensors` with a checksum; a corrupt cache file
is rebuilt. Sets read from `data_dir` are not cached: the files are already the cache.
"""

from __future__ import annotations

import _codecs
import functools
import gzip
import hashlib
import json
import pickle
import random
import struct
import zlib
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from groklab import GroklabError
from groklab.data import TaskData
from groklab.store import atomic_write

CACHE_VERSION = 1
SKLEARN_SETS = ("digits", "breast_cancer", "wine", "iris")
FILE_SETS = ("mnist", "cifar10", "cifar100")
DATASETS = ("mnist1d", *SKLEARN_SETS, *FILE_SETS)
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


def load_dataset(name: str, data_dir: Path | None = None, cache_dir: Path | None = None, **kw) -> TaskData:
    """Load the set `name` (one of DATASETS) with options `kw` (see `dataset_options(name)`)."""
    if name not in DATASETS:
        raise GroklabError(f"unknown data set {name!r}; allowed: {', '.join(DATASETS)}")
    defaults = dataset_options(name)
    unknown = sorted(set(kw) - set(defaults))
    if unknown:
        raise GroklabError(f"{name}: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(defaults))}")
    args = {**defaults, **kw}
    n_train, n_test = args.pop("n_train"), args.pop("n_test")
    cache = key = None
    if cache_dir is not None and name not in FILE_SETS:
        pkg = "mnist1d" if name == "mnist1d" else "scikit-learn"
        key = json.dumps({"name": name, "args": args, "n_train": n_train, "n_test": n_test,
                          "format": CACHE_VERSION, pkg: version(pkg)}, sort_keys=True, default=str)
        cache = Path(cache_dir) / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.safetensors"
        data = read_cache(cache, key)
        if data is not None:
            return data
    if name == "mnist1d":
        data = mnist1d(**args)
    elif name in SKLEARN_SETS:
        data = sklearn_set(name, **args)
    else:
        if data_dir is None:
            raise GroklabError(f"{name} is read from files: give the data directory (--data-dir) holding them")
        root = Path(data_dir)
        data = mnist(root) if name == "mnist" else cifar(root, 10 if name == "cifar10" else 100)
    data = _cap(data, n_train, n_test, args["seed"], name)
    if cache is not None:
        write_cache(cache, key, data)
    return data


def dataset_options(name: str) -> dict:
    """Every option `load_dataset(name, ...)` accepts, with its default."""
    common = {"n_train": None, "n_test": None, "seed": 0}
    if name == "mnist1d":
        from mnist1d.data import get_dataset_args
        return {**common, **{k: v for k, v in get_dataset_args(as_dict=True).items() if k != "url"}}
    if name in SKLEARN_SETS:
        return {**common, "test_fraction": 0.2}
    return common


# ------------------------------------------------------------------------------------ built in-process

def mnist1d(**args) -> TaskData:
    """MNIST-1D from explicit args (package defaults overridden by `args`); global RNG states restored."""
    import mnist1d.data as m1d
    from mnist1d.utils import ObjectView
    if not (isinstance(args["num_samples"], int) and args["num_samples"] >= 10):
        raise GroklabError(f"mnist1d: num_samples must be an integer >= 10, got {args['num_samples']!r}")
    if not 0 < args["train_split"] < 1:
        raise GroklabError(f"mnist1d: train_split must be in (0, 1), got {args['train_split']!r}")
    py_state, np_state = random.getstate(), np.random.get_state()
    try:  # make_dataset reseeds Python's and numpy's global RNGs
        d = m1d.make_dataset(ObjectView(dict(args)))
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x, x_test = (torch.from_numpy(np.ascontiguousarray(d[k], dtype=np.float32)) for k in ("x", "x_test"))  # (N, 40)
    y, y_test = (torch.from_numpy(np.asarray(d[k], dtype=np.int64)) for k in ("y", "y_test"))  # (N,)
    return TaskData(x, y, x_test, y_test, n_classes=10)


def sklearn_set(name: str, seed: int = 0, test_fraction: float = 0.2) -> TaskData:
    """A scikit-learn bundled set, split by a seeded permutation: digits as (N, 1, 8, 8) in [0, 1], the
    tabular ones as (N, d) standardized with the train set's mean and std."""
    from sklearn import datasets
    bunch = getattr(datasets, f"load_{name}")()
    x, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)  # (N, d), (N,)
    n = len(y)
    n_test = round(n * test_fraction)
    if not 1 <= n_test < n:
        raise GroklabError(f"{name}: test_fraction {test_fraction} leaves no train or no test example of {n}")
    perm = np.random.default_rng(seed).permutation(n)
    tr, te = perm[n_test:], perm[:n_test]
    if name == "digits":
        x = (x / 16.0).reshape(n, 1, 8, 8)  # (N, 1, 8, 8), pixel values 0..16
    else:
        mean, std = x[tr].mean(0), x[tr].std(0)
        x = (x - mean) / np.where(std > 0, std, 1.0)  # (N, d)
    x, y, tr, te = torch.from_numpy(x).float(), torch.from_numpy(y), torch.from_numpy(tr), torch.from_numpy(te)
    return TaskData(x[tr], y[tr], x[te], y[te], n_classes=len(bunch.target_names))


def _cap(data: TaskData, n_train: int | None, n_test: int | None, seed: int, name: str) -> TaskData:
    """Keep the first n of a seeded permutation of each split (nested in n for a fixed seed)."""
    out = []
    for stream, (x, y, n, what) in enumerate(((data.x_train, data.y_train, n_train, "n_train"),
                                              (data.x_test, data.y_test, n_test, "n_test"))):
        if n is not None:
            if not (isinstance(n, int) and 1 <= n <= len(y)):
                raise GroklabError(f"{name}: {what} must be an integer in 1..{len(y)}, got {n!r}")
            g = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, stream]).generate_state(1)[0]))
            idx = torch.randperm(len(y), generator=g)[:n]
            x, y = x[idx], y[idx]
        out += [x, y]
    return TaskData(*out, n_classes=data.n_classes, n_tokens=data.n_tokens)


# ----------------------------------------------------------------------------------------------- cache

def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].contiguous()
        h.update(f"{k}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def write_cache(path: Path, key: str, data: TaskData) -> None:
    from safetensors.torch import save_file
    tensors = {k: getattr(data, k).detach().cpu().contiguous() for k in ("x_train", "y_train", "x_test", "y_test")}
    meta = {"key": key, "sha256": _checksum(tensors), "n_classes": str(data.n_classes),
            "n_tokens": str(data.n_tokens)}
    try:
        atomic_write(path, lambda t: save_file(tensors, str(t), metadata=meta))
    except OSError as e:
        raise GroklabError(f"cannot write the data cache {path}: {e}") from e


def read_cache(path: Path, key: str) -> TaskData | None:
    """The cached set, or None when the file is absent, unreadable, for other options or fails its checksum."""
    from safetensors import safe_open
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("key") != key or meta.get("sha256") != _checksum(tensors):
            return None
        return TaskData(tensors["x_train"], tensors["y_train"], tensors["x_test"], tensors["y_test"],
                        n_classes=int(meta["n_classes"]), n_tokens=int(meta["n_tokens"]))
    except Exception:  # any damage (truncated header, bad metadata): rebuild
        return None


# ----------------------------------------------------------------------------------- torchvision files

def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise GroklabError(f"{path}: truncated or corrupted gzip file ({_one_line(e)}); download it again") from e


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte idx file (magic 0x0000080<ndim>, big-endian int32 dims), checked for size."""
    raw = _read_bytes(path)
    if len(raw) < 4 + 4 * ndim or raw[:4] != bytes([0, 0, 0x08, ndim]):
        raise GroklabError(f"{path}: not an idx{ndim}-ubyte file (magic {raw[:4].hex() or 'missing'}, expected "
                           f"0000080{ndim}); truncated or corrupted, download it again")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(dims)):
        raise GroklabError(f"{path}: {len(body)} data bytes, header says {dims} = {int(np.prod(dims))}; "
                           "truncated or corrupted, download it again")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _find_mnist(root: Path, base: str) -> Path:
    for folder in (root / "MNIST" / "raw", root):
        for p in (folder / base, folder / f"{base}.gz"):
            if p.is_file():
                return p
    raw = root / "MNIST" / "raw"
    raise GroklabError(f"mnist: {raw / base}[.gz] not found (nor in {root}); put the four MNIST idx files "
                       "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                       f"t10k-labels-idx1-ubyte.gz (e.g. from a torchvision MNIST download) into {raw}")


def mnist(root: Path) -> TaskData:
    """MNIST from idx files in root/MNIST/raw (torchvision's layout) or root: x (N, 1, 28, 28) in [0, 1]."""
    out = []
    for prefix in ("train", "t10k"):
        xp, yp = _find_mnist(root, f"{prefix}-images-idx3-ubyte"), _find_mnist(root, f"{prefix}-labels-idx1-ubyte")
        x, y = read_idx(xp, 3), read_idx(yp, 1)  # (N, 28, 28), (N,) uint8
        if x.shape[1:] != (28, 28):
            raise GroklabError(f"{xp}: images are {x.shape[1]}x{x.shape[2]}, MNIST's are 28x28")
        if len(x) != len(y) or (len(y) and y.max() > 9):
            raise GroklabError(f"{yp}: {len(y)} labels (max {y.max() if len(y) else '-'}) for {len(x)} images "
                               "in 0..9; mismatched or corrupted files")
        out += [torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1),  # (N, 1, 28, 28)
                torch.from_numpy(y.astype(np.int64))]
    return TaskData(*out, n_classes=10)


class _Refused(pickle.UnpicklingError):
    pass


def _latin1(s: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    if encoding != "latin1":  # how Python 3 protocol-2 pickles store bytes; nothing else is allowed
        raise _Refused(f"_codecs.encode with encoding {encoding!r}")
    return _codecs.encode(s, "latin1")


@functools.cache
def _numpy_globals() -> dict:
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    ok = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1}
    for mod in ("numpy.core", "numpy._core"):
        ok[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        ok[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer
    return ok


class SafeUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, dicts, lists, bytes and numbers; refuses every other global (no code runs)."""

    def find_class(self, module, name):
        found = _numpy_globals().get((module, name))
        if found is None:
            raise _Refused(f"{module}.{name}")
        return found


def read_cifar_file(path: Path, label_key: str, n_classes: int, hint: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR pickle -> data (n, 3072) uint8, labels (n,) int64, validated."""
    if not path.is_file():
        raise GroklabError(f"cifar{n_classes}: {path} not found; {hint}")
    try:
        with open(path, "rb") as f:
            obj = SafeUnpickler(f, encoding="bytes").load()
    except _Refused as e:
        raise GroklabError(f"{path}: refused to unpickle {e} (a CIFAR file holds only numpy arrays and lists); "
                           "not loading it") from e
    except Exception as e:
        raise GroklabError(f"{path}: truncated or corrupted CIFAR file ({_one_line(e)}); {hint}") from e
    obj = {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()} if isinstance(obj, dict) else {}
    data, labels = obj.get("data"), obj.get(label_key)
    try:
        labels = np.asarray(labels, dtype=np.int64)  # (n,)
    except (TypeError, ValueError):
        labels = None
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072
            and labels is not None and labels.shape == (len(data),)
            and (not len(labels) or 0 <= labels.min() <= labels.max() < n_classes)):
        raise GroklabError(f"{path}: not a CIFAR-{n_classes} batch (expected b'data' uint8 (n, 3072) and "
                           f"b'{label_key}' with n labels in 0..{n_classes - 1}); {hint}")
    return data, labels


def cifar(root: Path, n_classes: int) -> TaskData:
    """CIFAR-10/100 from the python-version pickles unpacked in root: x (N, 3, 32, 32) in [0, 1]."""
    if n_classes == 10:
        folder, tar, key = root / "cifar-10-batches-py", "cifar-10-python.tar.gz", "labels"
        splits = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"])
    else:
        folder, tar, key = root / "cifar-100-python", "cifar-100-python.tar.gz", "fine_labels"
        splits = (["train"], ["test"])
    hint = f"download {tar} from {CIFAR_URL} and unpack it into {root}"
    out = []
    for names in splits:
        parts = [read_cifar_file(folder / n, key, n_classes, hint) for n in names]
        x = np.concatenate([p[0] for p in parts]).reshape(-1, 3, 32, 32)  # (N, 3, 32, 32) uint8
        out += [torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(np.concatenate([p[1] for p in parts]))]
    return TaskData(*out, n_classes=n_classes)
