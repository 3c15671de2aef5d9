"""The computations behind the chapters' widgets, kept separate from the UI so they are tested.

Each chapter's widget is a thin ``ipywidgets`` layer over one function here; the
function's defaults are the widget's defaults, chosen so that the static book
already shows the point of the cell.  Sections follow the chapters.
"""
from __future__ import annotations

from collections.abc import Mapping

from course_lib.probability import Table

# ---------------------------------------------------------------------------------------
# Chapter 1 — arbitrary conditioning
# ---------------------------------------------------------------------------------------

#: The roles a variable can play in the conditioning widget.
ROLES = ("target", "observed", "integrated out")


def conditioning_view(table: Table, roles: Mapping[str, str], observed_values: Mapping[str, object]) -> Table:
    """Compute p(targets | observed) from a joint table, integrating out the rest.

    Parameters
    ----------
    table : Table
        A joint distribution.
    roles : mapping of str to str
        For every variable of ``table``, one of :data:`ROLES`.
    observed_values : mapping of str to object
        The observed state of each variable whose role is ``"observed"`` (others ignored).

    Returns
    -------
    Table
        The joint distribution of the target variables given the observations.

    Raises
    ------
    ValueError
        A variable without a role or with an unknown role, no target variable, or an
        observed value missing, not a state, or of probability zero.
    """
    missing = [n for n in table.names if n not in roles]
    if missing:
        raise ValueError(f"every variable needs a role; missing for {missing}. Roles are {ROLES}.")
    bad = {n: r for n, r in roles.items() if r not in ROLES}
    if bad:
        raise ValueError(f"unknown role(s) {bad}; choose from {ROLES}.")
    targets = [n for n in table.names if roles[n] == "target"]
    if not targets:
        raise ValueError("choose at least one target variable (the one you want to predict).")
    observed = [n for n in table.names if roles[n] == "observed"]
    absent = [n for n in observed if n not in observed_values]
    if absent:
        raise ValueError(f"observed variable(s) {absent} need an observed value.")
    return table.query(targets, {n: observed_values[n] for n in observed})
