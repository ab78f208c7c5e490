"""Flush-to-zero of CPU denormals (engine/device.py): on by default, GROKLAB_DENORMALS=keep turns it off."""

import pytest
import torch

from groklab import GroklabError
from groklab.engine import device as devmod

TINY = 1e-39  # below float32's smallest normal number (1.18e-38)


@pytest.fixture(autouse=True)
def restore():
    yield
    torch.set_flush_denormal(False)  # torch's default for the rest of this process


def _survives() -> bool:
    return float(torch.tensor([TINY]) * torch.tensor([1.0])) != 0.0


@pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU cannot flush denormals")
@pytest.mark.parametrize("value, flushed", [("", True), ("flush", True), ("FLUSH", True), ("keep", False)])
def test_setup_flushes_denormals_unless_kept(monkeypatch, value, flushed):
    monkeypatch.setenv("GROKLAB_DENORMALS", value)
    monkeypatch.setenv("GROKLAB_THREAD_SHARING", "off")
    devmod.setup("cpu", 1)
    assert _survives() is not flushed
    assert devmod.environment(torch.device("cpu"))["flush_denormal"] is flushed
    assert float(torch.tensor([2e-38]) * torch.tensor([1.0])) == pytest.approx(2e-38)  # normal numbers untouched


def test_bad_value_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv("GROKLAB_DENORMALS", "sometimes")
    with pytest.raises(GroklabError, match=r"GROKLAB_DENORMALS: expected one of flush, keep, got 'sometimes'"):
        devmod.setup("cpu", 1)
