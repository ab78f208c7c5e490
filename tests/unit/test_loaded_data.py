"""Loaded data sets: real on-disk formats built in tmp_path, mnist1d offline, scikit-learn sets, the cache."""

import gzip
import io
import os
import pickle
import random
import struct

import numpy as np
import pytest
import torch

from groklab import GroklabError
from groklab.data.loaded import DATASETS, load_dataset


def write_idx(path, arr: np.ndarray, gz: bool = False) -> None:
    raw = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def make_mnist(folder, gz: bool, n=(5, 3), seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, count in zip(("train", "t10k"), n):
        x, y = rng.integers(0, 256, (count, 28, 28)), rng.integers(0, 10, count)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", x, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", y, gz)
        arrays[prefix] = (x, y)
    return arrays


def one_line_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("gz,layout", [(True, "torchvision"), (False, "flat")])
def test_mnist_idx_files(tmp_path, gz, layout):
    folder = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path
    arrays = make_mnist(folder, gz)
    d = load_dataset("mnist", data_dir=tmp_path)
    assert d.x_train.shape == (5, 1, 28, 28) and d.x_test.shape == (3, 1, 28, 28) and d.n_classes == 10
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    torch.testing.assert_close(d.x_train[:, 0], torch.tensor(arrays["train"][0] / 255.0, dtype=torch.float32),
                               rtol=0, atol=1e-6)
    assert d.y_test.tolist() == arrays["t10k"][1].tolist()


def test_mnist_missing_file_names_the_path(tmp_path):
    make_mnist(tmp_path / "MNIST" / "raw", gz=True)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(GroklabError) as e:
        load_dataset("mnist", data_dir=tmp_path)
    assert str(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte") in one_line_error(e)
    with pytest.raises(GroklabError, match="data dir"):
        load_dataset("mnist", data_dir=None)


@pytest.mark.parametrize("damage", ["truncate", "truncate_gz", "magic"])
def test_mnist_corrupted_file_names_the_file(tmp_path, damage):
    make_mnist(tmp_path, gz=damage == "truncate_gz")
    name = "train-images-idx3-ubyte" + (".gz" if damage == "truncate_gz" else "")
    p = tmp_path / name
    raw = p.read_bytes()
    p.write_bytes(raw[:-7] if damage.startswith("truncate") else b"\x00\x00\x09\x03" + raw[4:])
    with pytest.raises(GroklabError) as e:
        load_dataset("mnist", data_dir=tmp_path)
    assert str(p) in one_line_error(e)


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the real CIFAR files: strings as BINSTRING, numpy.core names."""

    def save_bytes(self, obj):
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n))
        self.write(obj)
        self.memoize(obj)

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    def save_str(self, obj):  # Python 2's str ('u1', '|' in numpy's dtype state) was bytes
        self.save_bytes(obj.encode("ascii"))

    dispatch = {**pickle._Pickler.dispatch, bytes: save_bytes, str: save_str}


def dumps(obj, protocol) -> bytes:
    if protocol != "py2":
        return pickle.dumps(obj, protocol=protocol)
    f = io.BytesIO()
    Py2Pickler(f, protocol=2).dump(obj)
    return f.getvalue()


def make_cifar(root, n_classes: int, protocol, n=4, seed=0):
    rng = np.random.default_rng(seed)
    if n_classes == 10:
        folder, key = root / "cifar-10-batches-py", b"labels"
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    else:
        folder, names, key = root / "cifar-100-python", ["train", "test"], b"fine_labels"
    folder.mkdir(parents=True)
    written = {}
    for name in names:
        data = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        labels = rng.integers(0, n_classes, n).tolist()
        batch = {b"batch_label": name.encode(), b"data": data, key: labels, b"filenames": [b"a.png"] * n}
        if n_classes == 100:
            batch[b"coarse_labels"] = [v // 5 for v in labels]
        (folder / name).write_bytes(dumps(batch, protocol))
        written[name] = (data, labels)
    return folder, written


@pytest.mark.parametrize("protocol", ["py2", 2, 4, 5])
def test_cifar10_pickles(tmp_path, protocol):
    _, written = make_cifar(tmp_path, 10, protocol)
    d = load_dataset("cifar10", data_dir=tmp_path)
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_test.shape == (4, 3, 32, 32) and d.n_classes == 10
    data, labels = written["data_batch_2"]
    assert d.y_train[4:8].tolist() == labels
    # channel-major rows: x[i, c, h, w] = data[i, c * 1024 + h * 32 + w] / 255
    assert abs(d.x_train[5, 2, 3, 7].item() - data[1, 2 * 1024 + 3 * 32 + 7] / 255) < 1e-6
    torch.testing.assert_close(d.x_test.reshape(4, -1), torch.tensor(written["test_batch"][0] / 255.0,
                                                                     dtype=torch.float32), rtol=0, atol=1e-6)


def test_cifar100_fine_labels(tmp_path):
    _, written = make_cifar(tmp_path, 100, 2, n=6)
    d = load_dataset("cifar100", data_dir=tmp_path)
    assert d.n_classes == 100 and d.x_train.shape == (6, 3, 32, 32)
    assert d.y_train.tolist() == written["train"][1] and d.y_test.tolist() == written["test"][1]


def test_cifar_missing_and_truncated(tmp_path):
    with pytest.raises(GroklabError) as e:
        load_dataset("cifar10", data_dir=tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in msg and "cifar-10-python.tar.gz" in msg
    folder, _ = make_cifar(tmp_path, 10, 2)
    p = folder / "data_batch_3"
    p.write_bytes(p.read_bytes()[:5000])
    with pytest.raises(GroklabError) as e:
        load_dataset("cifar10", data_dir=tmp_path)
    assert str(p) in one_line_error(e)


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused(tmp_path):
    folder, _ = make_cifar(tmp_path / "d", 10, 2)
    evil = Evil()
    evil.marker = tmp_path / "pwned"
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": evil, b"labels": []}, protocol=2))
    with pytest.raises(GroklabError, match="refused") as e:
        load_dataset("cifar10", data_dir=tmp_path / "d")
    assert str(folder / "data_batch_1") in one_line_error(e)
    assert not evil.marker.exists()


def test_unknown_name_and_option():
    with pytest.raises(GroklabError) as e:
        load_dataset("imagenet")
    assert all(n in str(e.value) for n in DATASETS)
    with pytest.raises(GroklabError, match="num_samples"):
        load_dataset("mnist1d", num_sample=10)


@pytest.fixture(scope="module")
def mnist1d_default():
    random.seed(123)
    np.random.seed(456)
    before = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(456)
    d = load_dataset("mnist1d")
    after = (random.random(), np.random.rand())
    return d, before, after


def test_mnist1d_default_sizes(mnist1d_default):
    d, _, _ = mnist1d_default
    assert d.x_train.shape == (4000, 40) and d.x_test.shape == (1000, 40)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64 and d.n_classes == 10
    assert sorted(d.y_train.unique().tolist()) == list(range(10))
    # make_dataset centres the whole set and scales it to std 1
    x = torch.cat([d.x_train, d.x_test]).double()
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-3


def test_mnist1d_restores_global_rngs(mnist1d_default):
    _, before, after = mnist1d_default
    assert before == after


def test_mnist1d_options_and_determinism():
    a = load_dataset("mnist1d", num_samples=200, train_split=0.5)
    assert a.x_train.shape == (100, 40) and a.x_test.shape == (100, 40)
    b = load_dataset("mnist1d", num_samples=200, train_split=0.5)
    assert torch.equal(a.x_train, b.x_train)
    c = load_dataset("mnist1d", num_samples=200, train_split=0.5, seed=1)
    assert not torch.equal(a.x_train, c.x_train)


def test_sklearn_digits_and_tabular():
    d = load_dataset("digits")
    assert d.x_train.shape == (1438, 1, 8, 8) and d.x_test.shape == (359, 1, 8, 8) and d.n_classes == 10
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1 and d.x_train.max() > 0.99
    e = load_dataset("digits", seed=1)
    assert not torch.equal(d.y_train, e.y_train) and torch.equal(d.y_train, load_dataset("digits").y_train)
    for name, n, dim, classes in (("iris", 150, 4, 3), ("wine", 178, 13, 3), ("breast_cancer", 569, 30, 2)):
        t = load_dataset(name, test_fraction=0.25)
        assert len(t.x_train) + len(t.x_test) == n and t.x_train.shape[1] == dim and t.n_classes == classes
        torch.testing.assert_close(t.x_train.double().mean(0), torch.zeros(dim, dtype=torch.float64), atol=1e-5,
                                   rtol=0)
        torch.testing.assert_close(t.x_train.double().std(0, correction=0), torch.ones(dim, dtype=torch.float64),
                                   atol=1e-4, rtol=0)


def test_caps_are_nested_and_checked():
    small, large = load_dataset("digits", n_train=100, n_test=50), load_dataset("digits", n_train=300, n_test=50)
    assert small.x_train.shape == (100, 1, 8, 8) and small.x_test.shape == (50, 1, 8, 8)
    assert torch.equal(small.x_train, large.x_train[:100]) and torch.equal(small.y_train, large.y_train[:100])
    with pytest.raises(GroklabError, match="n_train"):
        load_dataset("digits", n_train=5000)


def test_cache_is_read_and_corrupt_cache_rebuilt(tmp_path, monkeypatch):
    import mnist1d.data as m1d
    calls = []
    real = m1d.make_dataset

    def counting(args):
        calls.append(1)
        return real(args)
    monkeypatch.setattr(m1d, "make_dataset", counting)
    kw = {"num_samples": 200, "n_train": 50}
    a = load_dataset("mnist1d", cache_dir=tmp_path, **kw)
    files = list(tmp_path.glob("mnist1d-*.safetensors"))
    assert len(calls) == 1 and len(files) == 1
    b = load_dataset("mnist1d", cache_dir=tmp_path, **kw)
    assert len(calls) == 1 and torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert b.n_classes == 10 and b.x_train.shape == (50, 40)
    raw = bytearray(files[0].read_bytes())
    raw[-3] ^= 0xFF  # flip a data byte: the checksum catches it
    files[0].write_bytes(bytes(raw))
    c = load_dataset("mnist1d", cache_dir=tmp_path, **kw)
    assert len(calls) == 2 and torch.equal(a.x_test, c.x_test)
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncated
    load_dataset("mnist1d", cache_dir=tmp_path, **kw)
    assert len(calls) == 3
    load_dataset("mnist1d", cache_dir=tmp_path, **kw)
    assert len(calls) == 3  # rebuilt file is good again
    load_dataset("mnist1d", cache_dir=tmp_path, num_samples=200, n_train=60)
    assert len(calls) == 4 and len(list(tmp_path.glob("mnist1d-*.safetensors"))) == 2
