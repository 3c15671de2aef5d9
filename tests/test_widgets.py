"""Tests for the computations behind the chapters' widgets (course_lib.widgets)."""
from __future__ import annotations

import numpy as np
import pytest

from course_lib.probability import Table
from course_lib.widgets import conditioning_view


# ---- chapter 1: conditioning ----------------------------------------------------------

@pytest.fixture
def rain_table() -> Table:
    rng = np.random.default_rng(0)
    return Table.from_weights(rng.random((2, 2, 2)), ["rain", "sprinkler", "grass"])


def test_conditioning_view_is_arbitrary_conditioning(rain_table):
    roles = {"rain": "target", "sprinkler": "integrated out", "grass": "observed"}
    view = conditioning_view(rain_table, roles, {"grass": 1, "sprinkler": 0})
    p = rain_table.probs[:, :, 1].sum(axis=1)
    assert np.allclose(view.probs, p / p.sum())


def test_conditioning_view_no_observation_is_marginal(rain_table):
    roles = {"rain": "target", "sprinkler": "target", "grass": "integrated out"}
    assert conditioning_view(rain_table, roles, {}).allclose(rain_table.marginal(["rain", "sprinkler"]))


def test_conditioning_view_needs_a_target(rain_table):
    roles = {"rain": "observed", "sprinkler": "integrated out", "grass": "observed"}
    with pytest.raises(ValueError, match="choose at least one target"):
        conditioning_view(rain_table, roles, {"rain": 0, "grass": 0})


def test_conditioning_view_rejects_unknown_role(rain_table):
    roles = {"rain": "target", "sprinkler": "ignored", "grass": "observed"}
    with pytest.raises(ValueError, match=r"unknown role\(s\) \{'sprinkler': 'ignored'\}"):
        conditioning_view(rain_table, roles, {"grass": 0})


def test_conditioning_view_needs_every_role(rain_table):
    with pytest.raises(ValueError, match=r"missing for \['grass'\]"):
        conditioning_view(rain_table, {"rain": "target", "sprinkler": "target"}, {})
