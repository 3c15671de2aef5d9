"""Tests of course_lib.train: the training loop, its hooks, divergence, resume, bad arguments.

Everything runs on tiny data (the ``tiny_data`` fixture of conftest.py: a few hundred images,
1-3 epochs) to keep the suite fast.  The recipes, the checkpoint files and the command line
have their own test files (test_recipes.py, test_checkpoints.py, test_train_cli.py).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from course_lib import train as T
from course_lib.checkpoints import CheckpointError, load_checkpoint
from course_lib.prediction import predict
from course_lib.scores import error_rate


# --- recipes ---------------------------------------------------------------------------


def test_paper_recipe_runs_and_records_its_settings(tiny_data):
    net, m = T.train("lenet300", recipe="paper", epochs=1, data=tiny_data, progress=False, device="cpu")
    s = m["recipe_settings"]
    assert (s["init"], s["inputs"], s["train_clip"], s["lr_hold"]) == ("paper", "center", True, 100)
    assert all(layer.train_clip for _, layer in net.weight_layers())
    assert m["test_error"] < 0.5


def test_train_accepts_a_recipe_and_resume_checks_its_settings(tiny_data, tmp_path):
    quick = T.get_recipe("quick", "lenet300", epochs=2)
    clipped = dataclasses.replace(quick, train_clip=True)
    net, m = T.train(
        "lenet300", recipe=clipped, epochs=1, data=tiny_data, out=tmp_path, progress=False, device="cpu"
    )
    assert m["recipe_settings"]["train_clip"] is True and m["epochs"] == 1
    assert net.fc1.train_clip
    with pytest.raises(CheckpointError, match="other settings"):
        T.train(
            "lenet300",
            recipe=quick,
            epochs=1,
            data=tiny_data,
            out=tmp_path,
            resume=True,
            progress=False,
            device="cpu",
        )
    with pytest.raises(ValueError, match="model_name .*must be one of 'lenet300', 'lenet5', got 'lenet4'"):
        T.train("lenet4", recipe=quick, data=tiny_data, progress=False)


# --- the loop --------------------------------------------------------------------------


def test_train_learns_and_reports(tiny_data, tmp_path):
    net, m = T.train(
        "lenet300", recipe="quick", epochs=3, data=tiny_data, out=tmp_path, progress=False, device="cpu"
    )
    for key in (
        "model",
        "recipe",
        "epochs",
        "device",
        "torch_version",
        "seconds",
        "test_error",
        "compression",
        "layer_sparsity",
        "history",
        "commit",
        "seed",
    ):
        assert key in m, key
    assert m["model"] == "lenet300" and m["recipe"] == "quick" and m["epochs"] == 3
    assert len(m["history"]) == 3 and m["history"][-1]["epoch"] == 3
    assert m["test_error"] < 0.2  # chance is 0.75 on the 4-class toy data
    assert m["history"][0]["kl_weight"] == T.get_recipe("quick", "lenet300").kl_weight(1.0)
    assert m["history"][-1]["kl_weight"] == 1.0 and m["history"][-1]["kl"] > 0
    x_te, y_te = tiny_data[2:]  # the test error is the one of course_lib.prediction/scores
    assert m["test_error"] == error_rate(predict(net, x_te), y_te)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["test_error"] == m["test_error"]
    assert set(on_disk["layer_sparsity"]) == {"fc1", "fc2", "fc3"}
    assert not net.training


def test_divergence_is_reported_and_the_last_good_checkpoint_kept(tiny_data, tmp_path):
    x_tr, y_tr, x_te, y_te = tiny_data
    bad = x_tr.clone()
    bad[3, 0, 5, 5] = float("nan")
    with pytest.raises(
        T.TrainingDiverged,
        match=r"diverged in epoch 1: mean train CE = nan.*"
        r"nothing was saved.*inputs for NaN",
    ):
        T.train("lenet300", recipe="quick", epochs=2, data=(bad, y_tr, x_te, y_te), progress=False)
    # a run that diverges after a saved epoch names the checkpoint and leaves it untouched
    calls = []

    def poison(epoch, step):
        if epoch == 1 and not calls:
            calls.append(step)
            bad_x[:] = float("inf")

    bad_x = x_tr.clone()
    with pytest.raises(T.TrainingDiverged, match=r"diverged in epoch 2.*checkpoint.pt \(epoch 1\)"):
        T.train(
            "lenet300",
            recipe="quick",
            epochs=2,
            data=(bad_x, y_tr, x_te, y_te),
            out=tmp_path / "b",
            progress=False,
            on_step=poison,
            device="cpu",
        )
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1


def test_on_epoch_is_called_once_per_epoch_with_the_model_and_the_row(tiny_data):
    seen = []

    def record(epoch, model, row):
        seen.append((epoch, row, model.fc1.log_alpha.detach().clone()))

    net, m = T.train("lenet300", epochs=3, data=tiny_data, progress=False, on_epoch=record)
    assert [e for e, _, _ in seen] == [1, 2, 3]
    assert [row for _, row, _ in seen] == m["history"]  # the epoch's row, as in the history
    assert torch.equal(seen[-1][2], net.fc1.log_alpha.detach())  # the model after that epoch
    assert not torch.equal(seen[0][2], seen[-1][2])  # ... a snapshot, not the same tensor
    seen[0][1]["layer_sparsity"]["fc1"] = -1.0  # the hook gets a copy
    assert m["history"][0]["layer_sparsity"]["fc1"] >= 0


def test_on_epoch_cannot_change_the_run(tiny_data):
    def noisy(epoch, model, row):  # draws from the global RNG that the training noise uses
        torch.randn(1000)

    _, plain = T.train("lenet300", epochs=2, data=tiny_data, progress=False, seed=2)
    _, hooked = T.train("lenet300", epochs=2, data=tiny_data, progress=False, seed=2, on_epoch=noisy)
    assert hooked["history"] == [
        dict(h, seconds=hooked["history"][i]["seconds"]) for i, h in enumerate(plain["history"])
    ]


def test_on_epoch_resume_calls_only_the_remaining_epochs(tiny_data, tmp_path):
    kw = dict(model_name="lenet300", epochs=3, data=tiny_data, progress=False, out=tmp_path)

    def stop(epoch, step):
        if epoch == 1:
            raise _Killed

    first, second = [], []
    with pytest.raises(_Killed):
        T.train(on_step=stop, on_epoch=lambda e, m, r: first.append(e), **kw)
    T.train(resume=True, on_epoch=lambda e, m, r: second.append(e), **kw)
    assert first == [1] and second == [2, 3]


def test_a_raising_on_epoch_hook_is_reported_with_the_epoch_and_the_checkpoint(tiny_data, tmp_path):
    def broken(epoch, model, row):
        if epoch == 2:
            raise KeyError("fc9")

    with pytest.raises(
        T.EpochHookError,
        match=r"on_epoch hook .*broken raised KeyError after "
        r"epoch 2: 'fc9'.*checkpoint of epoch 2 is in "
        r".*resume=True",
    ) as info:
        T.train("lenet300", epochs=3, data=tiny_data, progress=False, out=tmp_path, on_epoch=broken)
    assert isinstance(info.value.__cause__, KeyError)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 2
    with pytest.raises(T.EpochHookError, match="after epoch 1: boom.*fix the hook and run again"):
        T.train(
            "lenet300",
            epochs=1,
            data=tiny_data,
            progress=False,
            on_epoch=lambda e, m, r: (_ for _ in ()).throw(ValueError("boom")),
        )


@pytest.mark.parametrize("hook", ["on_step", "on_epoch"])
def test_hooks_must_be_callable(tiny_data, hook):
    with pytest.raises(TypeError, match=f"{hook} must be a function \\(or None\\), got list"):
        T.train("lenet300", epochs=1, data=tiny_data, progress=False, **{hook: []})


def test_dense_baseline_has_no_kl(tiny_data):
    _, m = T.train("lenet300", sparse=False, epochs=1, data=tiny_data, progress=False)
    assert m["sparse"] is False and m["history"][0]["kl"] == 0.0 and m["compression"] == 1.0


def test_same_seed_same_run(tiny_data):
    runs = [T.train("lenet300", epochs=1, data=tiny_data, progress=False, seed=3)[1] for _ in range(2)]
    assert runs[0]["history"][0]["train_ce"] == runs[1]["history"][0]["train_ce"]


class _Killed(Exception):
    pass


def test_resume_after_kill_gives_the_same_final_metrics(tiny_data, tmp_path):
    kw = dict(model_name="lenet5", epochs=3, data=tiny_data, progress=False, seed=1)
    _, full = T.train(out=tmp_path / "full", **kw)

    def kill(epoch, step):
        if epoch == 1 and step == 2:  # mid-epoch 2, after epoch 1's checkpoint
            raise _Killed

    with pytest.raises(_Killed):
        T.train(out=tmp_path / "cut", on_step=kill, **kw)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    net, resumed = T.train(out=tmp_path / "cut", resume=True, **kw)
    for key in ("test_error", "compression", "layer_sparsity"):
        assert resumed[key] == full[key], key
    assert [h["train_ce"] for h in resumed["history"]] == [h["train_ce"] for h in full["history"]]


def test_resume_of_a_finished_run_changes_nothing(tiny_data, tmp_path):
    kw = dict(model_name="lenet300", epochs=2, data=tiny_data, progress=False, out=tmp_path)
    _, first = T.train(**kw)
    _, again = T.train(resume=True, **kw)
    assert again["test_error"] == first["test_error"] and again["history"] == first["history"]


# --- bad input -------------------------------------------------------------------------


def test_train_bad_arguments(tiny_data):
    with pytest.raises(ValueError, match=r"limit \(training images\) must be a positive integer, got 0"):
        T.train("lenet300", data=tiny_data, limit=0, progress=False)
    with pytest.raises(TypeError, match=r"limit \(training images\) must be a positive integer, got 2.5"):
        T.train("lenet300", data=tiny_data, limit=2.5, progress=False)
    with pytest.raises(TypeError, match="sparse must be True or False, got 'yes'"):
        T.train("lenet300", data=tiny_data, sparse="yes", progress=False)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        T.train("lenet300", data=tiny_data, seed=-1, progress=False)
    with pytest.raises(ValueError, match="4-tuple"):
        T.train("lenet300", data=tiny_data[:2], progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            T.train("lenet300", data=tiny_data, device="cuda", progress=False)
