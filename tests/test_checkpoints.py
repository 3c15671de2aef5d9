"""Tests of course_lib.checkpoints: the checkpoint and metrics files of a run, resume checks.

The checkpoints are written by real (tiny) runs of :func:`course_lib.train.train`; the
``tiny_data`` fixture is in conftest.py.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from course_lib.checkpoints import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    git_commit,
    load_checkpoint,
    provenance,
    restore_state,
    resume_state,
    save_checkpoint,
    write_metrics,
)
from course_lib.train import build, train
from course_lib.recipes import get_recipe


def test_checkpoint_loads_with_weights_only(tiny_data, tmp_path):
    train("lenet5", epochs=1, data=tiny_data, out=tmp_path, progress=False, limit=100)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and "conv1.theta" in state["model"]


def test_a_checkpoint_with_the_old_beta_column_resumes_with_kl_weight(tiny_data, tmp_path):
    kw = dict(epochs=1, data=tiny_data, progress=False, out=tmp_path)
    _, first = train("lenet300", **kw)
    ckpt = tmp_path / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)  # as written before the rename (issue 17)
    state["history"] = [
        {("beta" if k == "kl_weight" else k): v for k, v in row.items()} for row in state["history"]
    ]
    torch.save(state, ckpt)
    assert list(load_checkpoint(ckpt)["history"][0]) == list(first["history"][0])
    _, again = train("lenet300", resume=True, **kw)
    assert again["history"] == first["history"]


def test_existing_checkpoint_without_resume(tiny_data, tmp_path):
    train("lenet300", epochs=1, data=tiny_data, progress=False, out=tmp_path)
    with pytest.raises(ValueError, match="already exists; pass resume=True"):
        train("lenet300", epochs=1, data=tiny_data, progress=False, out=tmp_path)


def test_resume_with_other_settings(tiny_data, tmp_path):
    train("lenet300", epochs=1, data=tiny_data, progress=False, out=tmp_path)
    with pytest.raises(CheckpointError, match=r"other settings.*'epochs': \(1, 2\)"):
        train("lenet300", epochs=2, data=tiny_data, progress=False, out=tmp_path, resume=True)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_corrupt_checkpoint(tiny_data, tmp_path, content):
    (tmp_path / "checkpoint.pt").write_bytes(content)
    with pytest.raises(CheckpointError, match=r"(?s)corrupt or unreadable.*Delete it"):
        train("lenet300", epochs=1, data=tiny_data, progress=False, out=tmp_path, resume=True)


def test_foreign_checkpoint(tiny_data, tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="not a course_lib.train checkpoint"):
        train("lenet300", epochs=1, data=tiny_data, progress=False, out=tmp_path, resume=True)


def test_save_is_atomic_and_load_checks_the_format(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "history": [], "epoch": 3})
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no .tmp left behind
    assert load_checkpoint(path)["epoch"] == 3
    save_checkpoint(path, {"format": CHECKPOINT_FORMAT + 1, "history": []})
    with pytest.raises(
        CheckpointError, match=f"not a course_lib.train checkpoint of format {CHECKPOINT_FORMAT}"
    ):
        load_checkpoint(path)


def test_resume_state_of_a_fresh_run_is_none(tmp_path):
    assert resume_state(None, {}, resume=True) is None
    assert resume_state(tmp_path / "checkpoint.pt", {}, resume=False) is None


def test_restore_state_gives_back_the_models_optimizers_and_rngs(tiny_data, tmp_path):
    train("lenet300", epochs=1, data=tiny_data, progress=False, out=tmp_path, seed=4)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    net, opt, gen = build("lenet300", True, get_recipe("quick", "lenet300"), 0, torch.device("cpu"))
    torch.manual_seed(123)
    history, epoch, seconds = restore_state(state, net, opt, gen, torch.device("cpu"))
    assert (epoch, len(history)) == (1, 1) and seconds == state["seconds"]
    assert torch.equal(net.fc1.theta, state["model"]["fc1.theta"])
    assert torch.equal(gen.get_state(), state["rng"]["batch"])
    assert torch.equal(torch.get_rng_state(), state["rng"]["torch"])
    assert opt.state_dict()["state"][0]["step"] == state["optimizer"]["state"][0]["step"]


def test_metrics_and_provenance(tmp_path):
    where = provenance(torch.device("cpu"))
    assert list(where) == ["device", "device_name", "torch_version", "num_threads"]
    assert where["device"] == "cpu" and where["torch_version"] == torch.__version__
    path = write_metrics(tmp_path, {"test_error": 0.25, **where})
    assert path == tmp_path / "metrics.json" and json.loads(path.read_text())["test_error"] == 0.25
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    commit = git_commit()  # a checkout here; None where git or the repository is missing
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)
