"""Checkpoint and resume: a run interrupted at step 20 and resumed ends bit-identical to a straight run."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from groklab import GroklabError
from groklab.data.members import member_data
from groklab.data.modular import modular_task
from groklab.engine.ensemble import ModuleEnsemble
from groklab.engine.trainer import train
from groklab.nn.mlp import BitMLP, PairMLP
from tests.unit.test_epochs import CPU, MEMBERS, optim_cfg, parity, train_cfg


def _stop_member_0_at(step):
    def settled(h):  # h: metrics of the active members up to now; stop member 0 at `step` (log_every 10)
        n_logged = h["train_loss"].shape[1]
        return (np.arange(len(h["train_loss"])) == 0) & (n_logged == 4 + step // 10)  # logs 0,1,2,5,10,20,...
    return settled


CASES = {
    "full-batch ma, member stopped at 10": dict(
        make=lambda: BitMLP(9, 2, 8), data=lambda: parity(), optim=dict(grokfast="ma", grokfast_window=7),
        train=dict(), settled=_stop_member_0_at(10)),
    "epochs ema sgd, stopped at the checkpoint": dict(
        make=lambda: BitMLP(9, 2, 8), data=lambda: parity(),
        optim=dict(name="sgd", momentum=0.9, lr=0.1, grokfast="ema", orthograd=True),
        train=dict(batch_size=12, batching="epochs"), settled=_stop_member_0_at(20)),
    "draws, cosine schedule, clipping, l1": dict(
        make=lambda: PairMLP(11, 11, hidden=8, embed_size=6), data=lambda: modular_task(11, "add", 0.5, False, 0),
        optim=dict(decay="l1", warmup=5, schedule="cosine", min_lr_frac=0.1, cooldown=8, clip=0.5),
        train=dict(batch_size=16, member_chunk=2), settled=None),
    "member data epochs, dropout ensemble, ma": dict(
        make=lambda: ModuleEnsemble(lambda: nn.Sequential(nn.Linear(9, 16), nn.ReLU(), nn.Dropout(0.2),
                                                          nn.Linear(16, 2))),
        data=lambda: member_data(parity(48), [20, 33, 48], [0, 1, 2]), optim=dict(grokfast="ma"),
        train=dict(batch_size=8, batching="epochs"), settled=_stop_member_0_at(10)),
}


def _run(case, **kw):
    snaps = []
    res = train(case["make"](), case["data"](), MEMBERS, optim_cfg(**case["optim"]),
                train_cfg(steps=40, log_every=10, snapshots=12, **case["train"]), CPU, settled=case["settled"],
                on_snapshot=lambda s, p: snaps.append((s, {k: v.clone() for k, v in p.items()})), **kw)
    return res, snaps


def _through_disk(state, path):
    """What the store does: safetensors for the tensors, JSON for the meta."""
    tensors, meta = state
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return load_file(str(path)), json.loads(json.dumps(meta))


@pytest.mark.parametrize("name", list(CASES))
def test_resume_continues_bit_identically(name, tmp_path):
    case = CASES[name]
    torch.manual_seed(0)
    states = []
    straight, snaps = _run(case, checkpoint_every=20, on_checkpoint=lambda t, m: states.append((t, m)))
    assert [m["step"] for _, m in states] == [20, 40]
    state = _through_disk(states[0], tmp_path / "ck.safetensors")
    torch.manual_seed(123)  # the global RNG (dropout masks) comes from the checkpoint, not from here
    resumed, snaps_r = _run(case, resume=state)
    assert resumed.extra["resumed_from"] == 20
    assert np.array_equal(resumed.steps, straight.steps)
    assert resumed.stopped_at.tolist() == straight.stopped_at.tolist()
    assert resumed.model_steps == straight.model_steps
    assert list(resumed.metrics) == list(straight.metrics)
    for k, v in straight.metrics.items():
        assert np.array_equal(resumed.metrics[k], v, equal_nan=True), k
    assert list(resumed.params) == list(straight.params)
    for k, v in straight.params.items():
        assert torch.equal(resumed.params[k], v), k
    later = [(s, p) for s, p in snaps if s > 20]
    assert [s for s, _ in snaps_r] == [s for s, _ in later] and later
    for (_, p), (_, q) in zip(later, snaps_r):
        assert all(torch.equal(p[k], q[k]) for k in p)
    if case["settled"] is not None:
        assert straight.stopped_at[0] >= 0 and states[0][1]["active"] == [1, 2]


def test_checkpoint_holds_the_complete_state():
    case = CASES["full-batch ma, member stopped at 10"]
    states = []
    _run(case, checkpoint_every=20, on_checkpoint=lambda t, m: states.append((t, m)))
    tensors, meta = states[0]
    json.dumps(meta)  # JSON-able
    assert meta["step"] == 20 and meta["active"] == [1, 2] and meta["stopped_at"] == [10, -1, -1]
    assert tensors["params/w1"].shape[0] == 2 and tensors["full/w1"].shape[0] == 3
    assert tensors["opt/m/w1"].shape == tensors["opt/v/w1"].shape == tensors["params/w1"].shape
    assert tensors["grad/hist/w1"].shape[:2] == (7, 2)  # the full MA window
    assert meta["opt"]["t"] == 20 and all(v.device.type == "cpu" for v in tensors.values())
    assert np.isnan(tensors["metrics/test_acc"][0, -1].item()) and tensors["metrics/test_acc"].shape[0] == 3


def test_resume_rejects_another_runs_checkpoint():
    case = CASES["full-batch ma, member stopped at 10"]
    states = []
    _run(case, checkpoint_every=20, on_checkpoint=lambda t, m: states.append((t, m)))
    with pytest.raises(GroklabError, match="seeds"):
        train(case["make"](), case["data"](), MEMBERS[:2], optim_cfg(), train_cfg(steps=40, log_every=10), CPU,
              resume=states[0])
    with pytest.raises(GroklabError, match="train.steps"):
        train(case["make"](), case["data"](), MEMBERS, optim_cfg(), train_cfg(steps=50, log_every=10), CPU,
              resume=states[0])


def test_checkpoints_are_throttled_by_checkpoint_min_s():
    case = CASES["draws, cosine schedule, clipping, l1"]
    states = []
    _run(case, checkpoint_every=10, checkpoint_min_s=1e9, on_checkpoint=lambda t, m: states.append(m["step"]))
    assert states == [10]
