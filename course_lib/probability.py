"""Discrete joint distributions with named axes: the sum rule, the product rule, conditioning.

A :class:`Table` stores probabilities in a NumPy array whose axes are named after
random variables.  A table is either a *joint* p(X, Y, ...) that sums to one, or a
*conditional* p(X | Z) whose entries sum to one over the target axes for every value
of the ``given`` axes.  The three operations of chapter 1 are methods:

* :meth:`Table.marginal` — the sum rule, p(y) = Σ_x p(x, y);
* :meth:`Table.conditional` — conditional = joint / marginal, p(x | y) = p(x, y) / p(y);
* :meth:`Table.query` — arbitrary conditioning, p(X | Z = z) with the nuisance Y summed out;

and ``*`` multiplies tables with matching names (the product rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from course_lib import validation as V

#: Tolerance for "sums to one": the normalization check of :class:`Table`.
ATOL = 1e-6


class Table:
    """A probability table over named discrete variables.

    Parameters
    ----------
    probs : array_like
        Non-negative probabilities, one axis per variable.
    names : sequence of str
        One distinct name per axis of ``probs``.
    states : mapping of str to sequence, optional
        Labels of each variable's values (default ``0 .. size-1``).
    given : sequence of str, default ()
        Names of conditioning variables: the table then sums to one over the
        other axes for every value of these.

    Raises
    ------
    ValueError
        Negative, NaN or infinite entries; names that do not match the axes;
        state labels of the wrong length; a table that is not normalized.

    Examples
    --------
    >>> p = Table([[0.3, 0.1], [0.2, 0.4]], names=["x", "y"])
    >>> p.marginal(["y"]).probs
    array([0.5, 0.5])
    >>> p.conditional(["x"], given=["y"]).probs
    array([[0.6, 0.2],
           [0.4, 0.8]])
    """

    def __init__(
        self,
        probs,
        names: Sequence[str],
        states: Mapping[str, Sequence] | None = None,
        given: Sequence[str] = (),
    ) -> None:
        p = np.asarray(probs, dtype=float)
        if not isinstance(names, str):
            names = tuple(names)
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError(
                f"names must be a sequence of strings, one per axis (e.g. names=['x', 'y']), got {names!r}."
            )
        if len(set(names)) != len(names):
            raise ValueError(f"variable names must be distinct, got {names}.")
        if p.ndim != len(names):
            raise ValueError(
                f"probs has {p.ndim} axes (shape {p.shape}) but {len(names)} names {names} were given; "
                "give one name per axis."
            )
        if not np.all(np.isfinite(p)):
            raise ValueError("probabilities must be finite numbers; the table contains NaN or inf.")
        if np.any(p < 0):
            raise ValueError(f"probabilities must be non-negative; the smallest entry is {p.min():.3g}.")
        given = tuple(given)
        unknown = [g for g in given if g not in names]
        if unknown:
            raise ValueError(f"given variables {unknown} are not among the table's names {names}.")
        self.probs = p
        self.names = names
        self.given = given
        self.states = {}
        for n, size in zip(names, p.shape):
            labels = list((states or {}).get(n, range(size)))
            if len(labels) != size:
                raise ValueError(f"variable {n!r} has {size} values but {len(labels)} state labels.")
            self.states[n] = labels
        extra = set(states or {}) - set(names)
        if extra:
            raise ValueError(f"states given for unknown variables {sorted(extra)}; names are {names}.")
        target_axes = tuple(i for i, n in enumerate(names) if n not in given)
        sums = p.sum(axis=target_axes)
        if not np.allclose(sums, 1.0, atol=ATOL):
            what = "the whole table" if not given else f"each value of {list(given)}"
            raise ValueError(
                f"the table is not normalized: it must sum to 1 over {what}, but sums range "
                f"from {np.min(sums):.6g} to {np.max(sums):.6g}. Divide by the sum first "
                "(Table.from_weights does that)."
            )

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_weights(cls, weights, names: Sequence[str], states=None) -> Table:
        """A joint table from non-negative weights, normalized to sum to one."""
        w = np.asarray(weights, dtype=float)
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite and non-negative.")
        total = w.sum()
        if total <= 0:
            raise ValueError("weights sum to zero; there is no distribution to normalize.")
        return cls(w / total, names, states)

    # -- helpers ------------------------------------------------------------------
    def _check_names(self, names: Sequence[str], what: str) -> tuple[str, ...]:
        if isinstance(names, str):
            names = (names,)
        names = tuple(names)
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise ValueError(f"unknown {what} variable(s) {unknown}; this table has {list(self.names)}.")
        if len(set(names)) != len(names):
            raise ValueError(f"{what} variables repeat: {list(names)}.")
        return names

    def _axes(self, names: Sequence[str]) -> tuple[int, ...]:
        return tuple(self.names.index(n) for n in names)

    def _index(self, name: str, value) -> int:
        labels = self.states[name]
        if value in labels:
            return labels.index(value)
        raise ValueError(f"{name}={value!r} is not a state of {name}; its states are {labels}.")

    @property
    def is_joint(self) -> bool:
        """True for a joint distribution (no conditioning variables)."""
        return not self.given

    def transpose(self, names: Sequence[str]) -> Table:
        """The same table with its axes in the order ``names``."""
        names = self._check_names(names, "axis")
        if set(names) != set(self.names):
            raise ValueError(f"transpose needs every variable {list(self.names)}, got {list(names)}.")
        return Table(
            self.probs.transpose(self._axes(names)),
            names,
            {n: self.states[n] for n in names},
            self.given,
        )

    # -- the sum rule --------------------------------------------------------------
    def marginal(self, keep: Sequence[str]) -> Table:
        """Sum out every variable not in ``keep`` (the sum rule).

        Only defined for joint tables: summing a conditional over its target
        does not give a distribution.
        """
        if not self.is_joint:
            raise ValueError(
                f"marginal() needs a joint table; this one is conditional on {list(self.given)}. "
                "Multiply by the marginal of the given variables first."
            )
        keep = self._check_names(keep, "kept")
        drop = tuple(i for i, n in enumerate(self.names) if n not in keep)
        p = self.probs.sum(axis=drop)
        remaining = [n for n in self.names if n in keep]
        t = Table(p, remaining, {n: self.states[n] for n in remaining})
        return t.transpose(keep)

    def sum_out(self, *names: str) -> Table:
        """Sum out ``names`` (integrate them out); the complement of :meth:`marginal`."""
        names = self._check_names(names, "summed-out")
        return self.marginal([n for n in self.names if n not in names])

    # -- conditional = joint / marginal -----------------------------------------------
    def conditional(self, target: Sequence[str], given: Sequence[str]) -> Table:
        """p(target | given) = p(target, given) / p(given); other variables are summed out.

        Raises
        ------
        ValueError
            If a variable is unknown, appears in both lists, or some value of
            ``given`` has probability zero (the conditional is then undefined).
        """
        target = self._check_names(target, "target")
        given = self._check_names(given, "given")
        if set(target) & set(given):
            raise ValueError(f"{sorted(set(target) & set(given))} cannot be both target and given.")
        if not target:
            raise ValueError("target must name at least one variable.")
        joint = self.marginal(target + given)
        if not given:
            return joint
        denom = joint.probs.sum(axis=tuple(range(len(target))), keepdims=True)
        if np.any(denom == 0):
            idx = np.argwhere(denom.reshape(denom.shape[len(target) :]) == 0)[0]
            where = ", ".join(f"{g}={self.states[g][i]!r}" for g, i in zip(given, idx))
            raise ValueError(f"p({where}) = 0: conditioning on an event of probability zero is undefined.")
        return Table(
            joint.probs / denom,
            target + given,
            {n: self.states[n] for n in target + given},
            given,
        )

    # -- arbitrary conditioning -------------------------------------------------------
    def query(self, target: Sequence[str], evidence: Mapping[str, object]) -> Table:
        """p(target | evidence) for observed values, with every other variable summed out.

        ``evidence`` maps observed variable names to observed state labels.  The
        result is a joint table over ``target``:
        p(X | Z=z) = Σ_Y p(X, Y, Z=z) / Σ_{X,Y} p(X, Y, Z=z).
        """
        target = self._check_names(target, "target")
        observed = self._check_names(tuple(evidence), "observed")
        if set(target) & set(observed):
            raise ValueError(f"{sorted(set(target) & set(observed))} cannot be both target and observed.")
        if not self.is_joint:
            raise ValueError("query() needs a joint table.")
        joint = self.marginal(target + observed)
        index = (slice(None),) * len(target) + tuple(self._index(n, evidence[n]) for n in observed)
        slab = joint.probs[index]
        z = slab.sum()
        if z == 0:
            where = ", ".join(f"{n}={evidence[n]!r}" for n in observed)
            raise ValueError(f"p({where}) = 0: the evidence is impossible under this table.")
        return Table(slab / z, target, {n: self.states[n] for n in target})

    # -- the product rule --------------------------------------------------------------
    def __mul__(self, other: Table) -> Table:
        """Multiply two tables, matching axes by name: p(x|y,z) * p(y|z) = p(x,y|z).

        The result's ``given`` is what stays conditioned on: variables given in
        either factor that the other factor does not supply.
        """
        if not isinstance(other, Table):
            return NotImplemented
        for n in set(self.names) & set(other.names):
            if self.states[n] != other.states[n]:
                raise ValueError(f"variable {n!r} has different states in the two tables.")
        names = list(dict.fromkeys(self.names + other.names))
        letters = {n: chr(97 + i) for i, n in enumerate(names)}
        spec = (
            "".join(letters[n] for n in self.names)
            + ","
            + "".join(letters[n] for n in other.names)
            + "->"
            + "".join(letters[n] for n in names)
        )
        p = np.einsum(spec, self.probs, other.probs)
        targets = (set(self.names) - set(self.given)) | (set(other.names) - set(other.given))
        given = [n for n in names if n not in targets]
        states = {**self.states, **other.states}
        return Table(p, names, {n: states[n] for n in names}, given)

    def allclose(self, other: Table, atol: float = 1e-12) -> bool:
        """True when both tables hold the same variables and (after alignment) the same numbers."""
        if set(self.names) != set(other.names) or set(self.given) != set(other.given):
            return False
        return bool(np.allclose(self.probs, other.transpose(self.names).probs, atol=atol))

    def __repr__(self) -> str:
        head = f"p({', '.join(n for n in self.names if n not in self.given)}"
        head += f" | {', '.join(self.given)})" if self.given else ")"
        return f"Table {head}, shape {self.probs.shape}"

    def to_text(self, precision: int = 3) -> str:
        """A plain-text listing of every entry, one row per state combination."""
        precision = V.nonnegative_int(precision, "precision", meaning="decimal places")
        rows = []
        it = np.nditer(self.probs, flags=["multi_index"])
        for v in it:
            labels = ", ".join(f"{n}={self.states[n][i]}" for n, i in zip(self.names, it.multi_index))
            rows.append(f"{labels:<40} {float(v):.{precision}f}")
        return "\n".join([repr(self)] + rows)
