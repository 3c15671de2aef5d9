"""Tests for course_lib.probability: sum rule, product rule, conditioning, and bad input."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest

from course_lib.probability import Table


@pytest.fixture
def joint() -> Table:
    rng = np.random.default_rng(1)
    return Table.from_weights(rng.random((2, 3, 4)), ["x", "y", "z"])


def test_marginal_is_sum_rule(joint):
    m = joint.marginal(["z", "x"])
    assert m.names == ("z", "x")
    assert np.allclose(m.probs, joint.probs.sum(axis=1).T)
    assert np.isclose(m.probs.sum(), 1.0)


def test_sum_out_is_complement_of_marginal(joint):
    assert joint.sum_out("y").allclose(joint.marginal(["x", "z"]))


def test_conditional_is_joint_over_marginal(joint):
    c = joint.conditional(["x"], given=["y"])
    pxy = joint.probs.sum(axis=2)
    assert np.allclose(c.probs, pxy / pxy.sum(axis=0, keepdims=True))
    assert c.given == ("y",)
    assert np.allclose(c.probs.sum(axis=0), 1.0)


@pytest.mark.parametrize("order", list(permutations(["x", "y", "z"])))
def test_product_rule_in_every_order(joint, order):
    a, b, c = order
    rebuilt = joint.conditional([a], [b, c]) * joint.conditional([b], [c]) * joint.marginal([c])
    assert rebuilt.is_joint
    assert rebuilt.allclose(joint, atol=1e-14)


def test_query_matches_explicit_formula(joint):
    q = joint.query(["x"], {"z": 2})
    expected = joint.probs[:, :, 2].sum(axis=1) / joint.probs[:, :, 2].sum()
    assert np.allclose(q.probs, expected)


def test_query_with_labelled_states():
    t = Table([[0.1, 0.2], [0.3, 0.4]], ["a", "b"], states={"a": ["lo", "hi"], "b": ["no", "yes"]})
    q = t.query(["a"], {"b": "yes"})
    assert np.allclose(q.probs, [0.2 / 0.6, 0.4 / 0.6])
    assert q.states["a"] == ["lo", "hi"]


def test_conditional_table_must_normalize_per_given_value():
    Table([[0.5, 0.1], [0.5, 0.9]], ["x", "y"], given=["y"])  # columns sum to one: fine
    with pytest.raises(ValueError, match=r"not normalized: it must sum to 1 over each value of \['y'\]"):
        Table([[0.5, 0.1], [0.4, 0.9]], ["x", "y"], given=["y"])


# ---- bad input -----------------------------------------------------------------------


def test_negative_entries_rejected():
    with pytest.raises(ValueError, match="must be non-negative; the smallest entry is -0.1"):
        Table([[-0.1, 0.6], [0.3, 0.2]], ["x", "y"])


def test_not_normalized_rejected_with_fix():
    with pytest.raises(ValueError, match=r"not normalized.*sums range from 2.*Table.from_weights"):
        Table([[1.0, 0.5], [0.3, 0.2]], ["x", "y"])


def test_nan_rejected():
    with pytest.raises(ValueError, match="NaN or inf"):
        Table([np.nan, 1.0], ["x"])


def test_names_must_match_axes():
    with pytest.raises(ValueError, match=r"probs has 2 axes .* but 1 names"):
        Table([[0.25, 0.25], [0.25, 0.25]], ["x"])


@pytest.mark.parametrize("names", ["xy", ["x", 1]])
def test_names_must_be_strings_one_per_axis(names):
    # a single string used to pass as its letters ("xy" -> ('x', 'y')); it is a wrong type
    with pytest.raises(TypeError, match=r"names must be a sequence of strings, one per axis \(e\.g\. names="):
        Table([[0.25, 0.25], [0.25, 0.25]], names)


def test_to_text_precision_is_a_count(joint):
    rows = joint.to_text(precision=np.int64(2)).splitlines()[1:]
    assert all(len(r.split()[-1].split(".")[1]) == 2 for r in rows)
    with pytest.raises(
        TypeError, match=r"precision \(decimal places\) must be a non-negative integer, got 2\.5"
    ):
        joint.to_text(precision=2.5)


def test_duplicate_names_rejected():
    with pytest.raises(ValueError, match="must be distinct"):
        Table([[0.25, 0.25], [0.25, 0.25]], ["x", "x"])


def test_unknown_variable_names(joint):
    with pytest.raises(
        ValueError, match=r"unknown target variable\(s\) \['w'\]; this table has \['x', 'y', 'z'\]"
    ):
        joint.conditional(["w"], given=["x"])
    with pytest.raises(ValueError, match=r"unknown observed variable"):
        joint.query(["x"], {"rain": 1})


def test_unknown_state_value(joint):
    with pytest.raises(ValueError, match=r"z=7 is not a state of z; its states are \[0, 1, 2, 3\]"):
        joint.query(["x"], {"z": 7})


def test_conditioning_on_zero_probability_event():
    t = Table([[0.5, 0.0], [0.5, 0.0]], ["x", "y"])
    with pytest.raises(ValueError, match=r"p\(y=1\) = 0: conditioning on an event of probability zero"):
        t.conditional(["x"], given=["y"])
    with pytest.raises(ValueError, match=r"p\(y=1\) = 0: the evidence is impossible"):
        t.query(["x"], {"y": 1})


def test_target_and_given_overlap(joint):
    with pytest.raises(ValueError, match="cannot be both target and given"):
        joint.conditional(["x"], given=["x"])


def test_marginal_of_conditional_refused(joint):
    c = joint.conditional(["x"], given=["y"])
    with pytest.raises(ValueError, match="marginal\\(\\) needs a joint table"):
        c.marginal(["x"])


def test_state_labels_length_checked():
    with pytest.raises(ValueError, match="variable 'x' has 2 values but 3 state labels"):
        Table([0.5, 0.5], ["x"], states={"x": ["a", "b", "c"]})


def test_from_weights_rejects_zero_total():
    with pytest.raises(ValueError, match="weights sum to zero"):
        Table.from_weights([0.0, 0.0], ["x"])
