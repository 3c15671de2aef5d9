"""Tests of course_lib.recipes: the paper's and the quick schedules, bad settings, the paper's init."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from course_lib.models import build_model
from course_lib.recipes import Recipe, get_recipe, init_like_paper_


def test_paper_recipe_is_the_papers():
    for model in ("lenet300", "lenet5"):
        r = get_recipe("paper", model)
        assert (r.epochs, r.batch_size, r.lr, r.log_sigma2_init, r.threshold) == (200, 100, 1e-3, -10.0, 3.0)
        assert (r.init, r.inputs, r.train_clip) == ("paper", "center", True)
        assert r.kl_weight(0.0) == 0.0 and r.kl_weight(5.0) == 0.0
        assert r.kl_weight(12.5) == pytest.approx(0.5) and r.kl_weight(20.0) == 1.0
        assert r.kl_weight(150) == 1.0
        assert r.lr_at(0) == 1e-3
    # LeNet-5: linear decay from the first epoch (the authors' lr_linear_to0) ...
    r = get_recipe("paper", "lenet5")
    assert r.lr_at(199) == pytest.approx(1e-3 / 200) and r.lr_at(100) < r.lr_at(99)
    # ... LeNet-300-100: 1e-3 for 100 epochs, then linear (lr_linear: 1e-3 * min(1, 2 - e/100))
    r = get_recipe("paper", "lenet300")
    for e in (0, 50, 99, 100, 101, 150, 199):
        assert r.lr_at(e) == pytest.approx(1e-3 * min(1.0, 2.0 - e / 100)), e


def test_lr_hold_longer_than_the_run_keeps_lr_constant():
    r = get_recipe("paper", "lenet300", epochs=40)
    assert {r.lr_at(e) for e in range(40)} == {1e-3}


def test_epochs_override_and_quick_recipes():
    assert get_recipe("quick", "lenet300", epochs=3).epochs == 3
    for model in ("lenet300", "lenet5"):
        q = get_recipe("quick", model)
        assert q.name == "quick" and q.epochs < 50 and q.kl_full > q.kl_start


def test_get_recipe_takes_a_recipe_of_your_own():
    clipped = dataclasses.replace(get_recipe("quick", "lenet300"), train_clip=True)
    assert get_recipe(clipped, "lenet300") is clipped
    assert get_recipe(clipped, "lenet5", epochs=2) == dataclasses.replace(clipped, epochs=2)


def test_a_numpy_integer_is_an_integer():
    r = get_recipe("quick", "lenet300", epochs=np.int64(3))
    assert r.epochs == 3 and type(r.epochs) is int
    assert type(dataclasses.replace(r, batch_size=np.int32(50)).batch_size) is int


@pytest.mark.parametrize(
    "args, exc, match",
    [
        (("fast", "lenet5"), ValueError, "recipe must be one of 'paper', 'quick', got 'fast'"),
        (
            ("quick", "lenet6"),
            ValueError,
            r"model_name \(the network\) must be one of 'lenet300', "
            r"'lenet5', got 'lenet6'",
        ),
        ((get_recipe("quick", "lenet5"), "lenet6"), ValueError, "got 'lenet6'"),
    ],
)
def test_get_recipe_bad_names(args, exc, match):
    with pytest.raises(exc, match=match):
        get_recipe(*args)


@pytest.mark.parametrize("epochs, exc", [(0, ValueError), (2.0, TypeError), (True, TypeError)])
def test_get_recipe_bad_epochs(epochs, exc):
    with pytest.raises(exc, match=f"epochs must be a positive integer, got {epochs!r}"):
        get_recipe("quick", "lenet5", epochs=epochs)


@pytest.mark.parametrize(
    "change, exc, match",
    [
        (dict(epochs=0), ValueError, r"Recipe.epochs must be a positive integer, got 0"),
        (dict(batch_size=2.5), TypeError, r"Recipe.batch_size must be a positive integer, got 2.5"),
        (dict(lr_hold=-1), ValueError, r"Recipe.lr_hold must be a non-negative integer, got -1"),
        (dict(lr=float("nan")), ValueError, r"Recipe.lr must be a positive finite number, got nan"),
        (dict(lr=0.0), ValueError, r"Recipe.lr must be a positive finite number, got 0.0"),
        (dict(lr_final_frac=-0.1), ValueError, r"Recipe.lr_final_frac must be a positive finite number"),
        (dict(kl_start="5"), TypeError, r"Recipe.kl_start must be a finite number, got '5'"),
        (dict(threshold=float("inf")), ValueError, r"Recipe.threshold must be a finite number, got inf"),
        (dict(init="xavier"), ValueError, r"Recipe.init must be one of 'torch', 'paper', got 'xavier'"),
        (dict(inputs="whiten"), ValueError, r"Recipe.inputs must be one of 'standardize', 'center'"),
        (dict(train_clip="yes"), TypeError, r"Recipe.train_clip must be True or False"),
    ],
)
def test_recipe_rejects_bad_settings(change, exc, match):
    with pytest.raises(exc, match=match):
        dataclasses.replace(get_recipe("quick", "lenet300"), **change)


def test_kl_weight_of_a_step_switch():
    r = Recipe(
        "step",
        epochs=3,
        batch_size=10,
        lr=1e-3,
        lr_final_frac=1.0,
        kl_start=1.0,
        kl_full=1.0,
        log_sigma2_init=-10.0,
        threshold=3.0,
    )
    assert [r.kl_weight(t) for t in (0.0, 0.99, 1.0, 2.5)] == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("sparse", [True, False])
def test_init_like_paper(sparse):
    torch.manual_seed(0)
    model = init_like_paper_(build_model("lenet5", sparse=sparse, log_sigma2_init=-9.0))
    for name, m in model.weight_layers():
        w = (m.theta if sparse else m.weight).detach()
        if w.dim() == 2:  # N(0, 0.01^2)
            assert abs(float(w.std()) - 0.01) < 0.001 and abs(float(w.mean())) < 0.001, name
        else:  # Glorot uniform: |w| <= sqrt(6 / (fan_in + fan_out))
            fan_in, fan_out = w[0].numel(), w.shape[0] * w[0, 0].numel()
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound, name
        assert torch.all(m.bias == 0), name
        if sparse:
            assert torch.all(m.log_sigma2 == -9.0)  # left alone
