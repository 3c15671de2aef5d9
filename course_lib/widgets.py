"""The computations behind the chapters' widgets and explorables, one tested function per chapter.

Each chapter's widget is a thin ``ipywidgets`` layer over one ``*_view`` function here; the
function's defaults are the widget's defaults, chosen so that the static book already shows
the point of the cell.  The chapters build those layers themselves, except chapter 1's
kernel-only widget, :func:`conditioning_widget`, which lives here beside its computation
(:func:`conditioning_view`) and imports ``ipywidgets`` only when called.  Sections follow
the chapters.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from course_lib import kl as _kl
from course_lib import vi
from course_lib import validation as V
from course_lib.inference import BetaBernoulli
from course_lib.probability import Table
from course_lib.regression import (
    BayesianLinearRegression,
    gaussian_features,
    least_squares,
    sinusoidal_data,
)

# ---------------------------------------------------------------------------------------
# Chapter 1 — arbitrary conditioning
# ---------------------------------------------------------------------------------------

#: The roles a variable can play in the conditioning widget.
ROLES = ("target", "observed", "integrated out")
#: CSS class of a widget that needs a running kernel (its cell is hidden from the book).
KERNEL_WIDGET_CLASS = "course-kernel-widget"


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


def conditioning_widget(table: Table, defaults: Mapping[str, tuple[str, object]]):
    """Interactive :func:`conditioning_view`: a role and a value per variable, and a bar plot.

    Parameters
    ----------
    table : Table
        A joint distribution.
    defaults : mapping of str to (role, value)
        The initial role and observed value of every variable (the static book shows this state).

    Returns
    -------
    ipywidgets.VBox
        The controls above the plot of p(targets | observed).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def show(**kwargs):
        roles = {n: kwargs[f"{n}_role"] for n in table.names}
        values = {n: kwargs[f"{n}_value"] for n in table.names}
        try:
            result = conditioning_view(table, roles, values)
        except ValueError as err:  # still a figure, so that every change of a control redraws it
            fig, ax = plt.subplots(figsize=(6.4, 2.4))
            ax.axis("off")
            ax.text(0.5, 0.5, f"Cannot compute: {err}", ha="center", va="center", wrap=True)
            plt.show()
            return
        observed = ", ".join(f"{n}={values[n]}" for n in table.names if roles[n] == "observed")
        label = f"p({', '.join(result.names)}" + (f" | {observed})" if observed else ")")
        bars = [
            ", ".join(str(result.states[n][i]) for n, i in zip(result.names, idx))
            for idx in np.ndindex(result.probs.shape)
        ]
        fig, ax = plt.subplots(figsize=(6.4, 2.4))
        ax.bar(bars, result.probs.ravel(), color="#1f77b4")
        ax.set_ylim(0, 1)
        ax.set_ylabel(label)
        plt.show()

    controls = {}
    for name in table.names:
        role, value = defaults[name]
        controls[f"{name}_role"] = widgets.Dropdown(options=ROLES, value=role, description=name)
        # only an observed variable's value enters the computation; the others are greyed out
        controls[f"{name}_value"] = widgets.Dropdown(
            options=table.states[name], value=value, description="value", disabled=role != "observed"
        )

        def follow(change, value_box=controls[f"{name}_value"]):
            value_box.disabled = change["new"] != "observed"

        controls[f"{name}_role"].observe(follow, names="value")
    grid = widgets.GridBox(
        list(controls.values()), layout=widgets.Layout(grid_template_columns="repeat(2, 280px)")
    )
    box = widgets.VBox([grid, widgets.interactive_output(show, controls)])
    box.add_class(KERNEL_WIDGET_CLASS)  # needs a running kernel; the book hides its cell
    return box


def conditioning_slice(table: Table, target: str, evidence: Mapping[str, object]) -> dict:
    """Which entries of a joint table agree with the evidence, and p(target | evidence).

    Arbitrary conditioning (chapter 1) seen on the table: keep the entries that agree with
    every observed value, sum them by the target's value, and divide by their total mass
    p(evidence).  Chapter 1's explorable draws this for several evidence sets.

    Parameters
    ----------
    table : Table
        A joint distribution.
    target : str
        The variable whose conditional distribution is wanted.
    evidence : mapping of str to object
        Observed variables and their observed states (may be empty: then the result is the
        marginal of ``target``).

    Returns
    -------
    dict
        ``entries`` (one tuple of state labels per entry of the table, in C order), ``joint``
        (their probabilities, flat), ``kept`` (bool mask: the entry agrees with the evidence),
        ``evidence_prob`` (the kept mass, p(evidence)), ``conditional`` (:class:`Table`
        p(target | evidence)) and ``marginal`` (:class:`Table` p(target), before any evidence).

    Raises
    ------
    TypeError
        ``target`` is not a string.
    ValueError
        ``target`` is not one variable of the table or is also observed, an observed name or
        state is unknown, or the evidence has probability zero.
    """
    if not isinstance(target, str):
        raise TypeError(
            f"target must be the name (a str) of one variable of the table {list(table.names)}, "
            f"got {target!r}."
        )
    if target not in table.names:
        raise ValueError(
            f"target must be the name of one variable of the table {list(table.names)}, got {target!r}."
        )
    if target in evidence:
        raise ValueError(f"{target!r} cannot be both the target and observed; drop it from the evidence.")
    conditional = table.query([target], evidence)  # checks names, states and p(evidence) > 0
    observed = {table.names.index(n): table._index(n, v) for n, v in evidence.items()}
    index = list(np.ndindex(table.probs.shape))
    kept = np.array([all(idx[a] == i for a, i in observed.items()) for idx in index])
    joint = table.probs.ravel().copy()
    return {
        "entries": [tuple(table.states[n][i] for n, i in zip(table.names, idx)) for idx in index],
        "joint": joint,
        "kept": kept,
        "evidence_prob": float(joint[kept].sum()),
        "conditional": conditional,
        "marginal": table.marginal([target]),
    }


# ---------------------------------------------------------------------------------------
# Chapter 2 — prior, likelihood and posterior of a coin
# ---------------------------------------------------------------------------------------


def coin_view(a: float = 2.0, b: float = 2.0, heads: int = 3, tails: int = 0, n_grid: int = 400) -> dict:
    """Prior Beta(a, b), likelihood and posterior of a coin after ``heads`` and ``tails``.

    The default (a Beta(2, 2) prior, three heads in three tosses) shows the point of
    chapter 2: the MLE says "always heads" (theta_ML = 1), the posterior does not.

    Parameters
    ----------
    a, b : float, default 2.0
        Prior pseudo-counts (> 0).
    heads, tails : int
        Observed counts (>= 0).
    n_grid : int, default 400
        Number of theta values (cell midpoints of [0, 1], so densities stay finite).

    Returns
    -------
    dict
        ``theta`` (grid), ``prior``, ``likelihood`` and ``posterior`` (densities on the
        grid; the likelihood is normalized over theta so it shares the axis), ``mle``
        (None without data), ``map`` (None when not unique), ``mean`` and
        ``interval`` (the central 95 % credible interval) of the posterior.

    Raises
    ------
    TypeError
        ``n_grid`` is not an integer.
    ValueError
        Non-positive ``a``/``b``, negative counts, ``n_grid < 2``.
    """
    n_grid = V.integer(n_grid, "n_grid", minimum=2)
    prior = BetaBernoulli(a, b)
    post = prior.update_counts(heads, tails)
    theta = (np.arange(n_grid) + 0.5) / n_grid
    # p(X | theta) = theta^k (1 - theta)^(n - k), normalized over theta: Beta(k + 1, n - k + 1)
    likelihood = BetaBernoulli(heads + 1, tails + 1).pdf(theta)
    try:
        theta_map = post.map
    except ValueError:
        theta_map = None
    return {
        "theta": theta,
        "prior": prior.pdf(theta),
        "likelihood": likelihood,
        "posterior": post.pdf(theta),
        "mle": heads / (heads + tails) if heads + tails > 0 else None,
        "map": theta_map,
        "mean": post.mean,
        "interval": post.credible_interval(0.95),
    }


# ---------------------------------------------------------------------------------------
# Chapter 3 — Bayesian linear regression as data arrive
# ---------------------------------------------------------------------------------------

#: Largest number of training points the chapter-3 widget offers.
REGRESSION_MAX_POINTS = 50


def regression_view(
    n_points: int = 8,
    prior_precision: float = 2.0,
    beta: float = 25.0,
    n_basis: int = 9,
    width: float = 0.1,
    n_samples: int = 5,
    seed: int = 0,
    n_grid: int = 201,
) -> dict:
    """Bayesian linear regression on the first ``n_points`` of a fixed sine data set.

    Data: :func:`course_lib.regression.sinusoidal_data` (noise 0.2, no inputs in
    (0.35, 0.65)); features: a bias and ``n_basis`` Gaussian bumps on [0, 1].  Adding
    points with the same ``seed`` keeps the earlier ones.  The default (8 points, prior
    precision 2) shows the chapter's point: the ML fit interpolates wildly; the Bayesian
    error bars widen in the gap.

    Parameters
    ----------
    n_points : int, default 8
        Training points used, 1 .. :data:`REGRESSION_MAX_POINTS`.
    prior_precision, beta : float
        Prior precision λ and noise precision β (> 0).
    n_basis : int, default 9
        Number of Gaussian bumps (>= 1).
    width : float, default 0.1
        Width of the bumps (> 0).
    n_samples : int, default 5
        Functions drawn from the posterior (>= 1).
    seed : int, default 0
        Seed of the data set and of the posterior samples.
    n_grid : int, default 201
        Number of test inputs on [0, 1].

    Returns
    -------
    dict
        ``x``, ``t`` (training data); ``x_grid``; ``truth`` = sin(2 pi x_grid); ``mean``
        and ``std`` of the predictive; ``ml`` (the least-squares fit on the grid);
        ``samples`` (n_samples, n_grid) posterior functions; ``log_evidence``.

    Raises
    ------
    TypeError
        ``n_points`` or ``n_basis`` is not an integer.
    ValueError
        ``n_points`` outside 1 .. REGRESSION_MAX_POINTS, or invalid model settings.
    """
    n_points = V.integer(n_points, "n_points", minimum=1, maximum=REGRESSION_MAX_POINTS)
    n_basis = V.positive_int(n_basis, "n_basis")
    x_all, t_all = sinusoidal_data(REGRESSION_MAX_POINTS, np.random.default_rng(seed))
    x, t = x_all[:n_points], t_all[:n_points]
    centers = np.linspace(0.0, 1.0, n_basis)
    x_grid = np.linspace(0.0, 1.0, n_grid)
    Phi, Phi_grid = gaussian_features(x, centers, width), gaussian_features(x_grid, centers, width)
    model = BayesianLinearRegression(prior_precision, beta).fit(Phi, t)
    mean, std = model.predict(Phi_grid, return_std=True)
    w_ml, _ = least_squares(Phi, t)
    samples = model.sample_weights(n_samples, np.random.default_rng(seed)) @ Phi_grid.T
    return {
        "x": x,
        "t": t,
        "x_grid": x_grid,
        "truth": np.sin(2 * np.pi * x_grid),
        "mean": mean,
        "std": std,
        "ml": Phi_grid @ w_ml,
        "samples": samples,
        "log_evidence": model.log_evidence(),
    }


# ---------------------------------------------------------------------------------------
# Chapter 4 — the ELBO, the KL and the log evidence as q moves
# ---------------------------------------------------------------------------------------
#: The true slope of the chapter-4 widget's one-weight regression t = w x + noise.
ELBO_TRUE_W = 0.8


def elbo_data(n_points: int = 20, beta: float = 4.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The fixed data set of the chapter-4 widget: t = 0.8 x + N(0, 1/β), x uniform on [−1, 1].

    Returns
    -------
    Phi : ndarray, shape (n_points, 1)
        The one-column design matrix (the inputs x).
    t : ndarray, shape (n_points,)
    """
    n_points = V.positive_int(n_points, "n_points")
    beta = V.positive_float(beta, "beta", meaning="the noise precision")
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, n_points)
    t = ELBO_TRUE_W * x + rng.standard_normal(n_points) / np.sqrt(beta)
    return x[:, None], t


def elbo_view(
    mu: float = 0.2,
    sigma: float = 0.4,
    prior_precision: float = 1.0,
    beta: float = 4.0,
    n_points: int = 20,
    seed: int = 0,
    n_grid: int = 401,
) -> dict:
    """log p(T|X) = ELBO + KL(q ‖ posterior) for q(w) = N(μ, σ²) on a one-weight regression.

    The model is Bayesian linear regression (chapter 3) with one weight, prior N(0, 1/λ),
    noise precision β, on :func:`elbo_data`. The exact ELBO comes from
    :func:`course_lib.vi.linear_gaussian_elbo`, the exact posterior and evidence from
    :class:`course_lib.regression.BayesianLinearRegression`. The default q (too far left,
    too wide) leaves a visible gap; at μ = posterior mean, σ = posterior std the KL is 0
    and the ELBO touches the evidence.

    Parameters
    ----------
    mu : float, default 0.2
        Mean of q.
    sigma : float, default 0.4
        Standard deviation of q (> 0).
    prior_precision, beta : float
        Prior precision λ and noise precision β (> 0).
    n_points : int, default 20
    seed : int, default 0
        Seed of the data set.
    n_grid : int, default 401
        Points of the weight grid for the densities.

    Returns
    -------
    dict
        ``elbo``, ``kl`` (KL(q ‖ posterior)), ``log_evidence`` (floats, with
        ``elbo + kl == log_evidence``); ``data_term`` (E_q log p(T|X,w)) and ``kl_prior``
        (KL(q ‖ p(w))), whose difference is the ELBO; ``post_mean``, ``post_std``;
        ``w`` (grid), ``q`` and ``posterior`` (densities on the grid).

    Raises
    ------
    TypeError
        If ``n_grid`` or ``n_points`` is not an integer.
    ValueError
        If ``sigma`` is not positive, a precision is not positive, or ``n_grid`` < 3.
    """
    n_grid = V.integer(n_grid, "n_grid", minimum=3)
    q = vi.MeanFieldGaussian([float(mu)], sigma)
    Phi, t = elbo_data(n_points, beta, seed)
    blr = BayesianLinearRegression(prior_precision, beta).fit(Phi, t)
    with torch.no_grad():
        Phi_t, t_t = torch.from_numpy(Phi), torch.from_numpy(t)
        data_term = vi.linear_gaussian_elbo(q, Phi_t, t_t, prior_precision, beta, kl_weight=0).item()
        kl_prior = vi.kl_divergence(q, *vi.isotropic_prior(1, prior_precision)).item()
        kl_post = vi.gaussian_kl(q.mu, q.covariance(), blr.mean, blr.cov).item()
    post_mean, post_std = float(blr.mean[0]), float(np.sqrt(blr.cov[0, 0]))
    lo = min(post_mean - 5 * post_std, mu - 4 * sigma)
    hi = max(post_mean + 5 * post_std, mu + 4 * sigma)
    w = np.linspace(lo, hi, n_grid)

    def normal_pdf(m, s):
        return np.exp(-0.5 * ((w - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))

    return {
        "elbo": data_term - kl_prior,
        "kl": kl_post,
        "log_evidence": blr.log_evidence(),
        "data_term": data_term,
        "kl_prior": kl_prior,
        "post_mean": post_mean,
        "post_std": post_std,
        "w": w,
        "q": normal_pdf(float(mu), float(sigma)),
        "posterior": normal_pdf(post_mean, post_std),
    }


# ---------------------------------------------------------------------------------------
# Chapter 7 — refitting Molchanov et al.'s KL approximation
# ---------------------------------------------------------------------------------------


def kl_fit_view(
    log_alpha_min: float = -10.0,
    log_alpha_max: float = 10.0,
    n_grid: int = 2001,
    n_samples: int = 0,
    tied: bool = False,
    seed: int = 0,
    eval_min: float = -15.0,
    eval_max: float = 15.0,
    n_eval: int = 301,
) -> dict:
    """Refit k1, k2, k3 with a chosen fit range, grid and reference, and measure the error.

    The defaults are the paper's procedure (chapter 7): 2001 points on log alpha in [-10, 10],
    the quadrature reference and C fixed at -(gamma + ln 2)/2.

    Parameters
    ----------
    log_alpha_min, log_alpha_max : float, default -10, 10
        The fit range.
    n_grid : int, default 2001
        Grid points in the fit range (at least 4).
    n_samples : int, default 0
        0 fits the quadrature reference; a positive number fits a Monte Carlo reference with
        that many samples (at least 2).
    tied : bool, default False
        Tie C = -k1 during the fit.
    seed : int, default 0
        Seed of the Monte Carlo reference.
    eval_min, eval_max, n_eval
        The wider grid on which the error against the quadrature reference is reported.

    Returns
    -------
    dict
        ``fit`` (:class:`course_lib.kl.MolchanovFit`), ``k`` (k1, k2, k3), ``relative_difference``
        (fractions vs the published constants), ``log_alpha`` and ``error`` (fit minus the
        quadrature reference on the evaluation grid), ``error_published`` (the published
        constants with C = -k1, same grid), ``max_error_in_range`` and ``max_error_outside``
        (max abs error on the evaluation grid inside / outside the fit range; NaN if none).

    Raises
    ------
    TypeError
        ``n_samples`` or ``n_eval`` is not an integer, ``eval_min``/``eval_max`` not a number.
    ValueError
        A bad fit range or grid (from :func:`course_lib.kl.fit_molchanov`), a negative or
        single-sample ``n_samples``, or an empty evaluation range.
    """
    if V.integer(n_samples, "n_samples") < 0 or n_samples == 1:
        raise ValueError(f"n_samples must be 0 (use the quadrature) or an integer >= 2, got {n_samples!r}.")
    eval_min, eval_max = V.finite_float(eval_min, "eval_min"), V.finite_float(eval_max, "eval_max")
    n_eval = V.integer(n_eval, "n_eval", minimum=2, meaning="points of the evaluation grid")
    if eval_min >= eval_max:
        raise ValueError(
            f"the evaluation grid needs finite eval_min < eval_max and n_eval >= 2, got "
            f"[{eval_min}, {eval_max}] with {n_eval} points."
        )
    fit = _kl.fit_molchanov(
        log_alpha_min, log_alpha_max, n_grid, tied=tied, n_samples=int(n_samples) or None, seed=seed
    )
    grid = np.linspace(eval_min, eval_max, n_eval)
    reference = _kl.neg_kl(grid)
    error = fit(grid) - reference
    inside = (grid >= log_alpha_min) & (grid <= log_alpha_max)
    return {
        "fit": fit,
        "k": fit.constants,
        "relative_difference": fit.relative_difference(),
        "log_alpha": grid,
        "error": error,
        "error_published": _kl.neg_kl_molchanov(grid) - reference,
        "max_error_in_range": float(np.max(np.abs(error[inside]))) if inside.any() else float("nan"),
        "max_error_outside": float(np.max(np.abs(error[~inside]))) if (~inside).any() else float("nan"),
    }
