r"""IsoFLOP analysis: where is the loss-minimising N at each FLOP budget?

An isoFLOP sweep trains several model sizes at one budget C (``sweep`` = the budget). Two
ways to read the compute-optimal N off such data:

- **the law** (Hoffmann's Approach 3, here as a posterior): fit a law of N and D to all
  points; at each budget the loss-minimising N is :math:`N_{opt}(C)` of the fitted law, per
  posterior draw, and the exponent of :math:`N_{opt} \propto C^a` follows from the law
  (:func:`bayescale.allocate.scaling_exponents`);
- **parabolas** (Hoffmann's Approach 2, the classical baseline, :func:`parabola_baseline`):
  per budget fit ``loss = c0 + c1 log N + c2 (log N)^2``, take the vertex, then fit
  :math:`\log N_{opt} = a \log C + \text{const}` by least squares across budgets; a pairs
  bootstrap within each budget gives the interval.

Losses far from a budget's minimum (huge models trained on few tokens, read off the start of
a training curve) are often off any law and wreck a parabola; :func:`near_optimum` keeps the
runs within a given excess loss of each budget's best run, for both methods alike.
:func:`isoflop_table` puts the per-budget results side by side in a tidy DataFrame.

Example:
    >>> runs = near_optimum(bs.load_porian2024())                   # doctest: +SKIP
    >>> base = parabola_baseline(runs)                               # doctest: +SKIP
    >>> base.interval()                                              # doctest: +SKIP
    {'estimate': 0.49, 'median': 0.49, 'lower': 0.47, 'upper': 0.51}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._util import check_prob
from ..data.sweeps import _require_sweep, _select_group, near_optimum, sweep_budgets, without_sweep

__all__ = [
    "ParabolaBaseline",
    "exponent_table",
    "isoflop_table",
    "near_optimum",
    "parabola_baseline",
    "sweep_budgets",
    "sweep_residuals",
    "without_sweep",
]


def sweep_residuals(fit, runs=None, *, group=None) -> pd.DataFrame:
    """Per sweep: the mean and spread of the runs' log-loss residuals from the law.

    Residuals are ``log(loss) - log L(N, D)`` at the posterior median of the law's log loss,
    without any sweep deviation. Means that move together across budgets (a trend, or
    offsets much larger than the within-sweep spread) say the losses of one budget share a
    deviation from the law: fit with ``sweep=`` (the per-sweep random effect).

    Columns: ``sweep``, ``compute``, ``n_runs``, ``mean_residual``, ``sd_residual``.

    Example:
        >>> sweep_residuals(bs.fit(without_sweep(runs), "chinchilla"), runs)   # doctest: +SKIP
    """
    runs = _select_group(fit.runs if runs is None else runs, group)
    _require_sweep(runs)
    values = {k: runs.input(k) for k in fit.law.inputs}
    codes = fit._group_codes(group, runs.n_runs)
    residual = np.log(runs.loss) - np.median(fit.log_loss_draws(values, codes), axis=0)
    names = np.asarray(runs.sweep_names, dtype=object)[runs.sweep]
    frame = pd.DataFrame({"sweep": names, "residual": residual})
    stats = frame.groupby("sweep").residual.agg(mean_residual="mean", sd_residual="std")
    budgets = sweep_budgets(runs)
    return budgets.join(stats, on="sweep")[
        ["sweep", "compute", "n_runs", "mean_residual", "sd_residual"]
    ]


# --------------------------------------------------------------------------- parabolas


def _weighted_vertices(x: np.ndarray, loss: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Vertices of weighted least-squares parabolas ``loss ~ 1 + x + x^2``, one per weight row.

    NaN where the weights leave fewer than three distinct x, the parabola opens downwards,
    or the vertex lies outside the sampled x.
    """
    centre = np.mean(x)
    xc = x - centre
    design = np.stack([np.ones_like(xc), xc, xc**2], axis=-1)  # (n, 3)
    gram = np.einsum("bn,ni,nj->bij", weights, design, design)
    moment = np.einsum("bn,ni,n->bi", weights, design, loss)
    distinct = np.array([len(np.unique(x[w > 0])) for w in weights])
    ok = distinct >= 3
    coef = np.full((len(weights), 3), np.nan)
    if np.any(ok):
        coef[ok] = np.linalg.solve(gram[ok], moment[ok][..., None])[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        vertex = np.where(coef[:, 2] > 0, -coef[:, 1] / (2 * coef[:, 2]), np.nan) + centre
    inside = (vertex >= x.min()) & (vertex <= x.max())
    return np.where(inside, vertex, np.nan)


def _line_slopes(log_c: np.ndarray, log_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept of ``log_n ~ log_c`` per row, skipping NaNs."""
    valid = np.isfinite(log_n)
    count = valid.sum(axis=-1)
    xv = np.where(valid, log_c, 0.0)
    yv = np.where(valid, log_n, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = xv.sum(-1) / count
        my = yv.sum(-1) / count
        sxx = (np.where(valid, (log_c - mx[..., None]) ** 2, 0.0)).sum(-1)
        sxy = (np.where(valid, (log_c - mx[..., None]) * (log_n - my[..., None]), 0.0)).sum(-1)
        slope = np.where(count >= 2, sxy / sxx, np.nan)
    return slope, my - slope * mx


@dataclass
class ParabolaBaseline:
    """Hoffmann's Approach 2: parabola vertices per budget and the fitted exponent a.

    Attributes:
        vertices: one row per budget: ``sweep``, ``compute``, ``n_runs``, ``params``
            (the vertex; NaN when the parabola has no minimum inside the sampled sizes),
            ``params_lower``/``params_upper`` (bootstrap, at ``prob``), ``used``.
        a: the least-squares slope of log vertex on log C (the point estimate).
        intercept: its intercept (log N at C = 1).
        a_draws: bootstrap replicates of a.
        prob: interval probability of ``vertices``.
    """

    vertices: pd.DataFrame
    a: float
    intercept: float
    a_draws: np.ndarray
    prob: float = 0.95

    def interval(self, prob: float | None = None) -> dict[str, float]:
        """``{"estimate", "median", "lower", "upper", "sd"}`` of a (bootstrap percentiles).

        Example:
            >>> parabola_baseline(runs).interval()                 # doctest: +SKIP
        """
        prob = self.prob if prob is None else check_prob(prob)
        draws = self.a_draws[np.isfinite(self.a_draws)]
        return {
            "estimate": float(self.a),
            "median": float(np.median(draws)),
            "lower": float(np.quantile(draws, (1 - prob) / 2)),
            "upper": float(np.quantile(draws, 1 - (1 - prob) / 2)),
            "sd": float(np.std(draws, ddof=1)),
        }

    def params_at(self, compute) -> np.ndarray:
        """``N_opt`` of the fitted line ``log N = a log C + intercept`` at ``compute``."""
        return np.exp(self.intercept + self.a * np.log(np.asarray(compute, np.float64)))


def parabola_baseline(
    runs,
    *,
    group=None,
    bootstrap: int = 1000,
    prob: float = 0.95,
    seed: int = 0,
) -> ParabolaBaseline:
    """Approach 2: a parabola in log N per budget, its vertex, a line across budgets.

    Per sweep, ``loss = c0 + c1 log N + c2 (log N)^2`` by least squares; the vertex
    ``-c1 / (2 c2)`` is that budget's loss-minimising N. Budgets whose parabola opens
    downwards or whose vertex lies outside the sampled sizes are left out (``used``
    False), as Porian et al. leave out budgets whose minimum sits at the edge. Then
    ``log N_opt = a log C + const`` by least squares. The interval resamples runs with
    replacement within every budget (``bootstrap`` times) and refits both steps.

    Args:
        runs: runs with a sweep column (one sweep per budget); consider
            :func:`near_optimum` first.
        group: for grouped runs, the arm to analyse.
        bootstrap: number of bootstrap replicates (>= 10).
        prob: interval probability of the per-budget vertices.
        seed: seed of the bootstrap.

    Example:
        >>> base = parabola_baseline(near_optimum(bs.load_porian2024()))   # doctest: +SKIP
        >>> round(base.a, 3)                                                 # doctest: +SKIP
    """
    prob = check_prob(prob)
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 10:
        raise ValueError(f"bootstrap must be an integer >= 10 but got {bootstrap!r}")
    runs = _select_group(runs, group)
    _require_sweep(runs)
    budgets = sweep_budgets(runs)
    rng = np.random.default_rng(seed)
    log_c = np.log(budgets["compute"].to_numpy())
    point = np.full(len(budgets), np.nan)
    boot = np.full((bootstrap, len(budgets)), np.nan)
    names = np.asarray(runs.sweep_names, dtype=object)[runs.sweep]
    for j, sweep in enumerate(budgets["sweep"]):
        mine = names == sweep
        x = np.log(runs.params[mine])
        loss = runs.loss[mine]
        point[j] = _weighted_vertices(x, loss, np.ones((1, len(x))))[0]
        counts = rng.multinomial(len(x), np.full(len(x), 1.0 / len(x)), size=bootstrap)
        boot[:, j] = _weighted_vertices(x, loss, counts.astype(np.float64))
    used = np.isfinite(point)
    if used.sum() < 2:
        raise ValueError(
            f"only {int(used.sum())} budget(s) have a parabola with a minimum inside their "
            "sampled sizes; Approach 2 needs at least 2"
        )
    slope, intercept = _line_slopes(log_c[used], point[used])
    boot_used = np.where(used[None, :], boot, np.nan)
    a_draws, _ = _line_slopes(np.broadcast_to(log_c, boot.shape), boot_used)
    q = ((1 - prob) / 2, 1 - (1 - prob) / 2)
    lower, upper = np.full(len(budgets), np.nan), np.full(len(budgets), np.nan)
    for j in range(len(budgets)):
        finite = boot[np.isfinite(boot[:, j]), j]
        if finite.size:
            lower[j], upper[j] = np.quantile(finite, q)
    vertices = budgets.assign(
        params=np.exp(point),
        params_lower=np.exp(lower),
        params_upper=np.exp(upper),
        used=used,
    )
    return ParabolaBaseline(vertices, float(slope), float(intercept), a_draws, prob)


# --------------------------------------------------------------------------- tables


def isoflop_table(
    fit,
    runs=None,
    *,
    group=None,
    baseline: ParabolaBaseline | None = None,
    prob: float = 0.95,
) -> pd.DataFrame:
    """Per budget: the observed best run, the law's posterior N_opt, the parabola vertex.

    Columns: ``sweep``, ``compute``, ``n_runs``, ``best_params`` and ``best_loss`` (the
    lowest-loss run of the sweep), ``params_median``/``params_lower``/``params_upper``
    (the fitted law's compute-optimal N at that budget), ``loss_median``/``loss_lower``/
    ``loss_upper`` (the law's loss there, without any sweep deviation),
    ``tokens_per_param_median``, and with a baseline ``parabola_params`` and its bootstrap
    ``parabola_lower``/``parabola_upper`` and ``parabola_used``.

    Args:
        fit: a fit of a law in N and D.
        runs: the isoFLOP runs (default: the fit's runs; they need a sweep column).
        group: the arm, for grouped fits.
        baseline: a :func:`parabola_baseline` result to put alongside.
        prob: interval probability.

    Example:
        >>> isoflop_table(fit, runs, baseline=parabola_baseline(runs))   # doctest: +SKIP
    """
    from .optimal import compute_optimal

    prob = check_prob(prob)
    runs = _select_group(fit.runs if runs is None else runs, group)
    _require_sweep(runs)
    budgets = sweep_budgets(runs)
    alloc = compute_optimal(fit, budgets["compute"].to_numpy(), group=group)
    frame = alloc.to_frame(prob).drop(columns="compute")
    names = np.asarray(runs.sweep_names, dtype=object)[runs.sweep]
    best = [int(np.argmin(np.where(names == s, runs.loss, np.inf))) for s in budgets["sweep"]]
    out = budgets.assign(best_params=runs.params[best], best_loss=runs.loss[best])
    keep = [
        "params_median",
        "params_lower",
        "params_upper",
        "loss_median",
        "loss_lower",
        "loss_upper",
        "tokens_per_param_median",
    ]
    out = pd.concat([out, frame[keep]], axis=1)
    if baseline is not None:
        vert = baseline.vertices.set_index("sweep")
        missing = sorted(set(out["sweep"]) - set(vert.index))
        if missing:
            raise ValueError(f"baseline has no budget {missing[0]!r}: compute it on the same runs")
        out["parabola_params"] = vert.loc[out["sweep"], "params"].to_numpy()
        out["parabola_lower"] = vert.loc[out["sweep"], "params_lower"].to_numpy()
        out["parabola_upper"] = vert.loc[out["sweep"], "params_upper"].to_numpy()
        out["parabola_used"] = vert.loc[out["sweep"], "used"].to_numpy()
    return out


def exponent_table(
    fits: dict,
    baselines: dict | None = None,
    published: dict | None = None,
    prob: float = 0.95,
    compute=None,
) -> pd.DataFrame:
    """The exponent a by several methods, one row each: ``setup``, ``method``,
    ``median``, ``lower``, ``upper`` and ``sd`` (NaN where unknown), grouped by setup.

    Keys are a setup name, or a ``(setup, method label)`` pair to tell several rows of one
    setup apart (e.g. fits with and without a sweep effect).

    Args:
        fits: ``{setup: fit}``; a is the law's posterior (closed form or the local slope
            at ``compute``).
        baselines: ``{setup: ParabolaBaseline}``; the row's median is the point estimate.
        published: ``{setup: (median, lower, upper)}`` or ``{setup: {"median", ...}}``.
        prob: interval probability.
        compute: budget of the local slope for laws without a closed form.

    Example:
        >>> exponent_table({("rw tuned", "posterior"): fit}, {"rw tuned": base},
        ...                {"rw tuned": (0.497, 0.491, 0.505)})          # doctest: +SKIP
    """
    from .optimal import scaling_exponents

    prob = check_prob(prob)

    def split(key, default: str) -> tuple[str, str]:
        return (str(key[0]), str(key[1])) if isinstance(key, tuple) else (str(key), default)

    rows = []
    for key, fit in fits.items():
        setup, method = split(key, f"posterior ({fit.spec.name})")
        stats = scaling_exponents(fit, compute).interval("a", prob)
        rows.append(
            {"setup": setup, "method": method}
            | {k: stats[k] for k in ("median", "lower", "upper", "sd")}
        )
    for key, base in (baselines or {}).items():
        setup, method = split(key, "parabola vertices (Approach 2, bootstrap)")
        stats = base.interval(prob)
        rows.append(
            {"setup": setup, "method": method, "median": stats["estimate"]}
            | {k: stats[k] for k in ("lower", "upper", "sd")}
        )
    for key, value in (published or {}).items():
        setup, method = split(key, "published")
        if isinstance(value, dict):
            row = {k: float(value.get(k, np.nan)) for k in ("median", "lower", "upper", "sd")}
        else:
            row = dict(zip(("median", "lower", "upper"), map(float, value), strict=True))
        rows.append({"setup": setup, "method": method} | row)
    frame = pd.DataFrame(rows, columns=["setup", "method", "median", "lower", "upper", "sd"])
    order = {name: i for i, name in enumerate(dict.fromkeys(frame["setup"]))}
    return frame.sort_values("setup", key=lambda s: s.map(order), kind="stable", ignore_index=True)
