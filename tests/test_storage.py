"""Tests of course_lib.storage: CSR round trips, the saved file and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.models import LeNet5, LeNet300100
from course_lib.sparsity import compression
from course_lib.storage import from_csr, load_sparse, save_sparse, sparse_state, to_csr


def _pruned_lenet5(seed: int = 0, keep: float = 0.05) -> LeNet5:
    """A sparse LeNet-5 with random theta and about ``keep`` of its weights kept."""
    g = torch.Generator().manual_seed(seed)
    net = LeNet5()
    with torch.no_grad():
        for _, m in net.weight_layers():
            m.theta.copy_(torch.randn(m.theta.shape, generator=g) * 0.1)
            kept = torch.rand(m.theta.shape, generator=g) < keep
            m.log_sigma2.copy_(
                torch.where(kept, torch.full_like(m.theta, -12.0), torch.full_like(m.theta, 4.0))
            )
            m.bias.copy_(torch.randn(m.bias.shape, generator=g))
    return net.eval()


def test_to_csr_by_hand():
    w = torch.tensor([[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, -3.0]])
    csr = to_csr(w)
    assert csr["shape"] == [3, 4]
    assert csr["crow_indices"].tolist() == [0, 1, 1, 3]
    assert csr["col_indices"].tolist() == [1, 0, 3]
    assert csr["values"].tolist() == [2.0, 1.0, -3.0]
    assert csr["crow_indices"].dtype == torch.int32
    assert csr["col_indices"].dtype == torch.int16


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_to_csr_matches_torch_sparse_csr_and_round_trips_a_conv_kernel():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(50, 20, 5, 5, generator=g)
    w[torch.rand(w.shape, generator=g) < 0.9] = 0.0
    csr = to_csr(w)
    ref = w.reshape(50, -1).to_sparse_csr()
    assert torch.equal(csr["crow_indices"].long(), ref.crow_indices())
    assert torch.equal(csr["col_indices"].long(), ref.col_indices())
    assert torch.equal(csr["values"], ref.values())
    assert torch.equal(from_csr(csr), w)


def test_wide_matrices_use_int32_column_indices():
    w = torch.zeros(2, 40_000)
    w[1, 39_999] = 1.5
    csr = to_csr(w)
    assert csr["col_indices"].dtype == torch.int32
    assert torch.equal(from_csr(csr), w)


def test_all_pruned_and_dense_weights_round_trip():
    assert torch.equal(from_csr(to_csr(torch.zeros(3, 2))), torch.zeros(3, 2))
    w = torch.arange(1.0, 7.0).reshape(2, 3)
    assert torch.equal(from_csr(to_csr(w)), w)


def test_sparse_state_stores_the_eval_mode_weights_only():
    net = _pruned_lenet5()
    state = sparse_state(net)
    assert state["model"] == "lenet5" and list(state["layers"]) == ["conv1", "conv2", "fc1", "fc2"]
    for name, m in net.weight_layers():
        entry = state["layers"][name]
        assert len(entry["values"]) == int(m.mask().sum())
        assert torch.equal(from_csr(entry), m.sparse_weight().detach())
        assert torch.equal(entry["bias"], m.bias.detach())
    assert "log_sigma2" not in str(state)


@pytest.mark.parametrize("make", [lambda: _pruned_lenet5(), lambda: LeNet300100().eval()])
def test_reloaded_network_gives_identical_outputs(tmp_path, make):
    net = make()
    path = tmp_path / "net.pt"
    size = save_sparse(net, path)
    assert size == path.stat().st_size > 0
    dense = load_sparse(path)
    assert not dense.sparse and not dense.training
    x = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(dense(x), net(x))
    assert compression(dense) == pytest.approx(compression(net))


def test_file_is_much_smaller_than_the_dense_state_dict(tmp_path):
    net = _pruned_lenet5(keep=0.01)  # about 100x compression
    sparse_size = save_sparse(net, tmp_path / "sparse.pt")
    torch.save(LeNet5(sparse=False).state_dict(), tmp_path / "dense.pt")
    dense_size = (tmp_path / "dense.pt").stat().st_size
    kept = sum(len(e["values"]) for e in sparse_state(net)["layers"].values())
    # 4 bytes per value + 2 per column index, plus row pointers, biases and archive overhead
    assert sparse_size >= 6 * kept
    assert dense_size / sparse_size > 30


def test_a_dense_network_can_be_stored_too(tmp_path):
    net = LeNet5(sparse=False).eval()
    save_sparse(net, tmp_path / "d.pt")
    back = load_sparse(tmp_path / "d.pt")
    for (_, a), (_, b) in zip(net.weight_layers(), back.weight_layers()):
        assert torch.equal(a.weight, b.weight)


# ---------------------------------------------------------------- bad input
def test_to_csr_rejects_a_bias_or_an_integer_tensor():
    with pytest.raises(ValueError, match="at least 2 dimensions.*not its bias"):
        to_csr(torch.zeros(5))
    with pytest.raises(TypeError, match="floating-point"):
        to_csr(torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="got list"):
        to_csr([[1.0]])


def test_from_csr_rejects_missing_keys_and_damaged_arrays():
    with pytest.raises(ValueError, match=r"lacks \['col_indices'.*to_csr"):
        from_csr(
            {"shape": [2, 2], "crow_indices": torch.zeros(3, dtype=torch.int32), "values": torch.zeros(0)}
        )
    csr = to_csr(torch.eye(3))
    csr["col_indices"][0] = 7
    with pytest.raises(ValueError, match="do not fit the shape"):
        from_csr(csr)


def test_save_sparse_rejects_other_modules(tmp_path):
    with pytest.raises(TypeError, match="course's networks.*build_model"):
        save_sparse(nn.Linear(3, 2), tmp_path / "x.pt")


def test_load_sparse_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file.*save_sparse"):
        load_sparse(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch archive")
    with pytest.raises(ValueError, match="not a readable torch file"):
        load_sparse(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save(LeNet5(sparse=False).state_dict(), foreign)
    with pytest.raises(ValueError, match="not a course_lib sparse file.*save_sparse"):
        load_sparse(foreign)


@pytest.mark.parametrize("fmt", [2, 0, "1", True])
def test_load_sparse_names_another_format_version(tmp_path, fmt):
    state = sparse_state(_pruned_lenet5())
    state["format"] = fmt
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(
        ValueError, match=rf"format {fmt!r}, but this course_lib reads format 1 only.*save_sparse"
    ):
        load_sparse(tmp_path / "other.pt")


def test_from_csr_refuses_what_torch_csr_refuses():
    csr = to_csr(torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]))
    assert csr["col_indices"].tolist() == [0, 2, 1]
    csr["col_indices"] = csr["col_indices"][[1, 0, 2]]  # row 0's columns [2, 0]: no longer sorted
    with pytest.raises(ValueError, match=r"do not fit the shape \[2, 3\].*torch: .*sorted and distinct"):
        from_csr(csr)


def test_load_sparse_rejects_a_file_that_does_not_fit_its_model(tmp_path):
    state = sparse_state(_pruned_lenet5())
    state["model"] = "lenet300"
    torch.save(state, tmp_path / "mixed.pt")
    with pytest.raises(ValueError, match="do not match lenet300"):
        load_sparse(tmp_path / "mixed.pt")
    state = sparse_state(_pruned_lenet5())
    state["model"] = "resnet"
    torch.save(state, tmp_path / "unknown.pt")
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        load_sparse(tmp_path / "unknown.pt")


@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0, 3, 5, 5), (2, 3, 0, 0)])
def test_an_empty_weight_round_trips(shape):
    """A layer with no output (or no input) unit has an empty CSR form, not a reshape error."""
    csr = to_csr(torch.zeros(shape))
    assert csr["shape"] == list(shape) and csr["values"].numel() == 0
    assert csr["crow_indices"].tolist() == [0] * (shape[0] + 1)
    back = from_csr(csr)
    assert back.shape == torch.Size(shape) and back.dtype == torch.float32
