"""Tests of course_lib.train: schedules, the training loop, checkpoints, resume and the CLI.

Everything runs on tiny data (a few hundred images, 2-3 epochs) to keep the suite fast.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from course_lib import train as T
from course_lib.data import MNISTError, ensure_mnist

REPO = Path(__file__).resolve().parents[1]


def _mnist_available() -> bool:
    try:
        ensure_mnist(download_missing=False)
        return True
    except MNISTError:
        return False


needs_mnist = pytest.mark.skipif(not _mnist_available(), reason="MNIST files not present")


@pytest.fixture(scope="module")
def tiny_data():
    """MNIST-shaped synthetic data: the label is the brightest quadrant (learnable fast)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 1, 28, 28, generator=g) * 0.3
    y = torch.randint(0, 4, (600,), generator=g)
    for k in range(4):
        r, c = divmod(k, 2)
        x[y == k, :, 14 * r:14 * r + 14, 14 * c:14 * c + 14] += 1.0
    return x[:400], y[:400], x[400:], y[400:]


# --- recipes ---------------------------------------------------------------------------

def test_center_inputs():
    g = torch.Generator().manual_seed(0)
    x_tr, x_te = torch.rand(50, 1, 4, 4, generator=g), torch.rand(7, 1, 4, 4, generator=g)
    x_tr[:, :, 0, 0] = 0.25  # a pixel that never changes ...
    c_tr, c_te = T.center_inputs(x_tr, x_te)
    assert torch.all(c_tr[:, :, 0, 0] == 0)  # ... is exactly 0 afterwards
    assert torch.allclose(c_tr.mean(0), torch.zeros(1, 4, 4), atol=1e-6)
    assert torch.allclose(c_te, x_te - x_tr.mean(0, keepdim=True))
    assert torch.equal(x_tr[0, 0, 0, 0], torch.tensor(0.25))  # inputs untouched
    with pytest.raises(ValueError, match="same shape per image"):
        T.center_inputs(x_tr, torch.rand(7, 1, 5, 4))


def test_paper_recipe_runs_and_records_its_settings(tiny_data):
    net, m = T.train("lenet300", recipe="paper", epochs=1, data=tiny_data, progress=False,
                     device="cpu")
    s = m["recipe_settings"]
    assert (s["init"], s["inputs"], s["train_clip"], s["lr_hold"]) == ("paper", "center", True, 100)
    assert all(layer.train_clip for _, layer in net.weight_layers())
    assert m["test_error"] < 0.5


def test_batches_cover_every_index_once_and_are_seeded():
    g = torch.Generator().manual_seed(1)
    parts = list(T.batches(23, 5, g, torch.device("cpu")))
    assert [len(p) for p in parts] == [5, 5, 5, 5, 3]
    assert sorted(torch.cat(parts).tolist()) == list(range(23))
    again = list(T.batches(23, 5, torch.Generator().manual_seed(1), torch.device("cpu")))
    assert all(torch.equal(a, b) for a, b in zip(parts, again))


def test_train_accepts_a_recipe_and_resume_checks_its_settings(tiny_data, tmp_path):
    quick = T.get_recipe("quick", "lenet300", epochs=2)
    clipped = dataclasses.replace(quick, train_clip=True)
    net, m = T.train("lenet300", recipe=clipped, epochs=1, data=tiny_data, out=tmp_path,
                     progress=False, device="cpu")
    assert m["recipe_settings"]["train_clip"] is True and m["epochs"] == 1
    assert net.fc1.train_clip
    with pytest.raises(T.CheckpointError, match="other settings"):
        T.train("lenet300", recipe=quick, epochs=1, data=tiny_data, out=tmp_path, resume=True,
                progress=False, device="cpu")
    with pytest.raises(ValueError, match="model_name .*must be one of 'lenet300', 'lenet5', got 'lenet4'"):
        T.train("lenet4", recipe=quick, data=tiny_data, progress=False)


# --- the loop --------------------------------------------------------------------------

def test_train_learns_and_reports(tiny_data, tmp_path):
    net, m = T.train("lenet300", recipe="quick", epochs=3, data=tiny_data, out=tmp_path,
                     progress=False, device="cpu")
    for key in ("model", "recipe", "epochs", "device", "torch_version", "seconds", "test_error",
                "compression", "layer_sparsity", "history", "commit", "seed"):
        assert key in m, key
    assert m["model"] == "lenet300" and m["recipe"] == "quick" and m["epochs"] == 3
    assert len(m["history"]) == 3 and m["history"][-1]["epoch"] == 3
    assert m["test_error"] < 0.2  # chance is 0.75 on the 4-class toy data
    assert m["history"][0]["kl_weight"] == T.get_recipe("quick", "lenet300").kl_weight(1.0)
    assert m["history"][-1]["kl_weight"] == 1.0 and m["history"][-1]["kl"] > 0
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["test_error"] == m["test_error"]
    assert set(on_disk["layer_sparsity"]) == {"fc1", "fc2", "fc3"}
    assert not net.training


def test_divergence_is_reported_and_the_last_good_checkpoint_kept(tiny_data, tmp_path):
    x_tr, y_tr, x_te, y_te = tiny_data
    bad = x_tr.clone()
    bad[3, 0, 5, 5] = float("nan")
    with pytest.raises(T.TrainingDiverged, match=r"diverged in epoch 1: mean train CE = nan.*"
                                                 r"nothing was saved.*inputs for NaN"):
        T.train("lenet300", recipe="quick", epochs=2, data=(bad, y_tr, x_te, y_te), progress=False)
    # a run that diverges after a saved epoch names the checkpoint and leaves it untouched
    calls = []

    def poison(epoch, step):
        if epoch == 1 and not calls:
            calls.append(step)
            bad_x[:] = float("inf")

    bad_x = x_tr.clone()
    with pytest.raises(T.TrainingDiverged, match=r"diverged in epoch 2.*checkpoint.pt \(epoch 1\)"):
        T.train("lenet300", recipe="quick", epochs=2, data=(bad_x, y_tr, x_te, y_te),
                out=tmp_path / "b", progress=False, on_step=poison, device="cpu")
    assert T.load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1


def test_on_epoch_is_called_once_per_epoch_with_the_model_and_the_row(tiny_data):
    seen = []

    def record(epoch, model, row):
        seen.append((epoch, row, model.fc1.log_alpha.detach().clone()))

    net, m = T.train("lenet300", epochs=3, data=tiny_data, progress=False, on_epoch=record)
    assert [e for e, _, _ in seen] == [1, 2, 3]
    assert [row for _, row, _ in seen] == m["history"]       # the epoch's row, as in the history
    assert torch.equal(seen[-1][2], net.fc1.log_alpha.detach())  # the model after that epoch
    assert not torch.equal(seen[0][2], seen[-1][2])           # ... a snapshot, not the same tensor
    seen[0][1]["layer_sparsity"]["fc1"] = -1.0                # the hook gets a copy
    assert m["history"][0]["layer_sparsity"]["fc1"] >= 0


def test_on_epoch_cannot_change_the_run(tiny_data):
    def noisy(epoch, model, row):  # draws from the global RNG that the training noise uses
        torch.randn(1000)

    _, plain = T.train("lenet300", epochs=2, data=tiny_data, progress=False, seed=2)
    _, hooked = T.train("lenet300", epochs=2, data=tiny_data, progress=False, seed=2,
                        on_epoch=noisy)
    assert hooked["history"] == [dict(h, seconds=hooked["history"][i]["seconds"])
                                 for i, h in enumerate(plain["history"])]


def test_on_epoch_resume_calls_only_the_remaining_epochs(tiny_data, tmp_path):
    kw = dict(model="lenet300", epochs=3, data=tiny_data, progress=False, out=tmp_path)

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

    with pytest.raises(T.EpochHookError, match=r"on_epoch hook .*broken raised KeyError after "
                                                r"epoch 2: 'fc9'.*checkpoint of epoch 2 is in "
                                                r".*resume=True") as info:
        T.train("lenet300", epochs=3, data=tiny_data, progress=False, out=tmp_path,
                on_epoch=broken)
    assert isinstance(info.value.__cause__, KeyError)
    assert T.load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 2
    with pytest.raises(T.EpochHookError, match="after epoch 1: boom.*fix the hook and run again"):
        T.train("lenet300", epochs=1, data=tiny_data, progress=False,
                on_epoch=lambda e, m, r: (_ for _ in ()).throw(ValueError("boom")))


@pytest.mark.parametrize("hook", ["on_step", "on_epoch"])
def test_hooks_must_be_callable(tiny_data, hook):
    with pytest.raises(TypeError, match=f"{hook} must be a function \\(or None\\), got list"):
        T.train("lenet300", epochs=1, data=tiny_data, progress=False, **{hook: []})


def test_dense_baseline_has_no_kl(tiny_data):
    _, m = T.train("lenet300", sparse=False, epochs=1, data=tiny_data, progress=False)
    assert m["sparse"] is False and m["history"][0]["kl"] == 0.0 and m["compression"] == 1.0


def test_same_seed_same_run(tiny_data):
    runs = [T.train("lenet300", epochs=1, data=tiny_data, progress=False, seed=3)[1]
            for _ in range(2)]
    assert runs[0]["history"][0]["train_ce"] == runs[1]["history"][0]["train_ce"]


def test_checkpoint_loads_with_weights_only(tiny_data, tmp_path):
    T.train("lenet5", epochs=1, data=tiny_data, out=tmp_path, progress=False, limit=100)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and "conv1.theta" in state["model"]


class _Killed(Exception):
    pass


def test_resume_after_kill_gives_the_same_final_metrics(tiny_data, tmp_path):
    kw = dict(model="lenet5", epochs=3, data=tiny_data, progress=False, seed=1)
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
    kw = dict(model="lenet300", epochs=2, data=tiny_data, progress=False, out=tmp_path)
    _, first = T.train(**kw)
    _, again = T.train(resume=True, **kw)
    assert again["test_error"] == first["test_error"] and again["history"] == first["history"]


def test_a_checkpoint_with_the_old_beta_column_resumes_with_kl_weight(tiny_data, tmp_path):
    kw = dict(epochs=1, data=tiny_data, progress=False, out=tmp_path)
    _, first = T.train("lenet300", **kw)
    ckpt = tmp_path / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)  # as written before the rename (issue 17)
    state["history"] = [{("beta" if k == "kl_weight" else k): v for k, v in row.items()}
                        for row in state["history"]]
    torch.save(state, ckpt)
    assert list(T.load_checkpoint(ckpt)["history"][0]) == list(first["history"][0])
    _, again = T.train("lenet300", resume=True, **kw)
    assert again["history"] == first["history"]


# --- bad input -------------------------------------------------------------------------

def test_existing_checkpoint_without_resume(tiny_data, tmp_path):
    T.train("lenet300", epochs=1, data=tiny_data, progress=False, out=tmp_path)
    with pytest.raises(ValueError, match="already exists; pass resume=True"):
        T.train("lenet300", epochs=1, data=tiny_data, progress=False, out=tmp_path)


def test_resume_with_other_settings(tiny_data, tmp_path):
    T.train("lenet300", epochs=1, data=tiny_data, progress=False, out=tmp_path)
    with pytest.raises(T.CheckpointError, match=r"other settings.*'epochs': \(1, 2\)"):
        T.train("lenet300", epochs=2, data=tiny_data, progress=False, out=tmp_path, resume=True)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_corrupt_checkpoint(tiny_data, tmp_path, content):
    (tmp_path / "checkpoint.pt").write_bytes(content)
    with pytest.raises(T.CheckpointError, match=r"(?s)corrupt or unreadable.*Delete it"):
        T.train("lenet300", epochs=1, data=tiny_data, progress=False, out=tmp_path, resume=True)


def test_foreign_checkpoint(tiny_data, tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "checkpoint.pt")
    with pytest.raises(T.CheckpointError, match="not a course_lib.train checkpoint"):
        T.train("lenet300", epochs=1, data=tiny_data, progress=False, out=tmp_path, resume=True)


def test_train_bad_arguments(tiny_data):
    with pytest.raises(ValueError, match="limit must be a positive number"):
        T.train("lenet300", data=tiny_data, limit=0, progress=False)
    with pytest.raises(ValueError, match="4-tuple"):
        T.train("lenet300", data=tiny_data[:2], progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            T.train("lenet300", data=tiny_data, device="cuda", progress=False)


@pytest.mark.parametrize("argv, match", [
    (["--model", "lenet7"], "invalid choice: 'lenet7'"),
    (["--model", "lenet5", "--recipe", "slow"], "invalid choice: 'slow'"),
    (["--model", "lenet5", "--epochs", "0"], "expected a positive integer, got 0"),
    (["--model", "lenet5", "--epochs", "two"], "expected a positive integer, got 'two'"),
    (["--model", "lenet5", "--device", "tpu"], "not a torch device name"),
    (["--model", "lenet5", "--threads", "0"], "expected a positive integer, got 0"),
    ([], "the following arguments are required: --model"),
])
def test_cli_bad_flags(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        T.main(argv)
    assert info.value.code == 2
    assert match in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cli_unavailable_device(capsys):
    with pytest.raises(SystemExit):
        T.main(["--model", "lenet5", "--device", "cuda"])
    assert "sees no CUDA GPU" in capsys.readouterr().err


def test_cli_corrupt_checkpoint(tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00" * 10)
    assert T.main(["--model", "lenet300", "--out", str(tmp_path), "--resume", "--quiet"]) == 2
    assert "corrupt or unreadable" in capsys.readouterr().err


# --- the CLI, end to end, with a real kill -9 ------------------------------------------

def _cli(out, *extra):
    return [sys.executable, "-m", "course_lib.train", "--model", "lenet300", "--epochs", "3",
            "--limit", "2000", "--device", "cpu", "--threads", "1", "--quiet", "--out", str(out),
            *extra]


@needs_mnist
def test_cli_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    # The uninterrupted reference runs in this process, with the CLI's settings (one thread).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _, full = T.train("lenet300", epochs=3, limit=2000, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    env = dict(os.environ)

    ckpt = tmp_path / "cut" / "checkpoint.pt"
    proc = subprocess.Popen(_cli(tmp_path / "cut"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "cut" / "metrics.json").exists()  # it really died mid-run
    done = subprocess.run(_cli(tmp_path / "cut", "--resume"), env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    resumed = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    for key in ("test_error", "compression", "layer_sparsity", "epochs"):
        assert resumed[key] == full[key], key
    assert [h["train_ce"] for h in resumed["history"]] == [h["train_ce"] for h in full["history"]]
