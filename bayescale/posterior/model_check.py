"""Can the law describe the data? Model checks, kept apart from sampler diagnostics.

:attr:`Fit.diagnostics <bayescale.posterior.Fit.diagnostics>` judges the *sampler* (R-hat,
ESS, divergences, E-BFMI). A perfectly mixed posterior can still come from a law that cannot
describe the runs, and then its extrapolations are overconfident. :func:`check_fit` scores
every run by where it falls in its PSIS leave-one-out predictive (LOO-PIT, as a normal
score: standard normal when the law describes the runs) and looks for:

* **the frontier**: the runs at the largest compute (the top quarter, at least 3) lying
  together above or below their leave-one-out predictions (a z-test of their mean score).
  These are the runs that matter for extrapolation;
* **a smooth trend**: scores that drift with log compute (a cubic's R^2, permutation
  p-value), the signature of a law that misses a bend inside the data.

Either with p < 0.01 fails the check. Runs with PSIS Pareto k > 0.7 are listed as a *note*:
on ladders of a few dozen runs the smallest and largest runs often exceed it under a
correct law (in our simulations half of well-specified 16-run ladders had one), so k flags
influence and outliers, not misfit.

Limits, measured in :func:`bayescale.trust.misspecification`: a slope that *flattens*
inside the data is absorbed by the irreducible loss ``E`` and no in-sample check can see it;
nor can any check see a break beyond the data. That is what ``fit(..., discrepancy=True)``
is for.

Example:
    >>> result = bs.fit(runs, "chinchilla")     # doctest: +SKIP
    >>> result.check().verdict()                # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PARETO_K_MAX",
    "PPC_P_MIN",
    "ModelCheck",
    "ModelCheckWarning",
    "check_fit",
]

#: Pareto k above which PSIS-LOO is unreliable for a run (Vehtari et al. 2024).
PARETO_K_MAX = 0.7
#: p-value below which a pattern of leave-one-out residuals is flagged.
PPC_P_MIN = 0.01


class ModelCheckWarning(UserWarning):
    """The law does not describe the data well: extrapolations may be overconfident."""


@dataclass
class ModelCheck:
    """Result of :func:`check_fit`.

    Attributes:
        ok: no check fired.
        max_pareto_k: largest PSIS-LOO Pareto k over runs.
        high_k_runs: row labels of runs with ``k > 0.7``.
        largest_runs: row labels of the runs in the largest-runs check.
        largest_runs_residual: their mean leave-one-out normal score (0 when described).
        largest_runs_p: two-sided p-value of that mean (z-test).
        trend_p: permutation p-value of a smooth trend of leave-one-out residuals in log
            compute.
        messages: what fired and what to try.
        notes: findings that do not fail the check (runs with Pareto k > 0.7: on ladders of
            a few dozen runs the smallest and largest runs often exceed it under a correct
            law, so it flags influence, not misfit).
    """

    ok: bool
    max_pareto_k: float
    high_k_runs: list[str]
    largest_runs: list[str]
    largest_runs_residual: float
    largest_runs_p: float
    trend_p: float
    messages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def verdict(self) -> str:
        """``ok`` or the messages joined by ``; ``."""
        return "ok" if self.ok else "; ".join(self.messages)

    def to_dict(self) -> dict:
        """JSON-ready form (the ``model_check`` entry next to ``diagnostics``)."""

        def num(x):
            return float(round(x, 6)) if x is not None and math.isfinite(x) else None

        return {
            "ok": bool(self.ok),
            "max_pareto_k": num(self.max_pareto_k),
            "high_k_runs": list(self.high_k_runs),
            "largest_runs": list(self.largest_runs),
            "largest_runs_residual": num(self.largest_runs_residual),
            "largest_runs_p": num(self.largest_runs_p),
            "trend_p": num(self.trend_p),
            "messages": list(self.messages),
            "notes": list(self.notes),
        }


def _loo(log_lik: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pareto k per run and normalised PSIS log weights ``(draws, runs)``, via arviz."""
    import arviz as az

    tree = az.from_dict(
        {
            "posterior": {"draw_index": np.zeros(log_lik.shape[:2])},
            "log_likelihood": {"log_loss": log_lik},
        },
        dims={"log_loss": ["run"]},
    )
    with warnings.catch_warnings():
        # arviz's own warning repeats what the returned k values say
        warnings.simplefilter("ignore")
        result = az.loo(tree, pointwise=True)
    k = np.asarray(result.pareto_k.values, np.float64).reshape(-1)
    lw = result.log_weights.transpose("chain", "draw", "run").values.reshape(-1, log_lik.shape[-1])
    lw = lw - np.logaddexp.reduce(lw, axis=0, keepdims=True)
    return k, lw


def _loo_pit(fit, runs, values) -> tuple[np.ndarray, np.ndarray]:
    """PSIS-LOO Pareto k and LOO-PIT of every run, computed in chunks of runs.

    PSIS smooths each run's weights on its own, so chunks of runs give the same values
    as all runs at once, with at most :data:`bayescale._chunks.CHUNK_VALUES` draws x runs
    per array (100,000 runs x 4,000 draws would be 3.2 GB each).
    """
    from scipy import stats

    from .._chunks import row_chunks
    from ._predict import scatter_factor
    from .core import _log_density

    model = fit.model
    codes = runs.group if model.grouped else np.zeros(runs.n_runs, np.int32)
    names = ["sigma"] + (["nu"] if "nu" in fit.samples else [])
    flat_noise = {n: fit.flat(n) for n in names}
    sweeps = model.sweep_codes(runs) if model.n_sweeps else None
    log_y = np.log(runs.loss)
    ks, pits = [], []
    for c in row_chunks(runs.n_runs, draws=fit.n_chains * fit.n_draws):
        log_mu = fit.log_loss_draws({k: v[c] for k, v in values.items()}, codes[c])
        if sweeps is not None:
            log_mu = log_mu + fit.flat("sweep_effect")[:, sweeps[c]]
        noise = model.theta_for_rows(flat_noise, codes[c], names)
        part = {k: v[c] for k, v in values.items()}
        factor = scatter_factor(fit, part, codes[c])
        sigma = np.broadcast_to(noise["sigma"] * factor, log_mu.shape)
        nu = np.broadcast_to(noise["nu"], log_mu.shape) if "nu" in noise else None
        resid = (log_y[None, c] - log_mu) / sigma
        cdf = stats.t.cdf(resid, nu) if nu is not None else stats.norm.cdf(resid)
        log_lik = _log_density(log_y[None, c], log_mu, sigma, nu)
        k, log_w = _loo(log_lik.reshape(fit.n_chains, fit.n_draws, -1))
        ks.append(k)
        pits.append(np.sum(np.exp(log_w) * cdf, axis=0))
    return np.concatenate(ks), np.concatenate(pits)


def _trend_p(score: np.ndarray, log_x: np.ndarray, seed: int, n_perm: int = 4000) -> float:
    """Permutation p-value of a smooth trend of scores in log compute (cubic R^2).

    A law that misses a bend leaves leave-one-out residuals that drift smoothly with
    compute (negative in the middle and positive at the ends, or the reverse); a cubic in
    log compute picks that up, scale-free, whatever the noise level.
    """
    t = (log_x - log_x.mean()) / (log_x.std() or 1.0)
    basis = np.column_stack([t, t**2, t**3])
    basis = basis - basis.mean(axis=0)
    q, _ = np.linalg.qr(basis)

    def r2(z):
        z = z - z.mean(axis=-1, keepdims=True)
        return np.sum((z @ q) ** 2, axis=-1) / np.maximum(np.sum(z**2, axis=-1), 1e-300)

    from .._chunks import row_chunks

    rng = np.random.default_rng(seed)
    observed, above = r2(score), 0
    # permutations in blocks of bounded size (4000 x 100,000 runs would be 3.2 GB); the
    # generator permutes row by row, so the blocks draw the same permutations as one array
    for block in row_chunks(n_perm, draws=score.size):
        shape = (block.stop - block.start, score.size)
        shuffled = rng.permuted(np.broadcast_to(score, shape), axis=1)
        above += int(np.sum(r2(shuffled) >= observed))
    return float((1 + above) / (n_perm + 1))


def check_fit(fit, warn: bool = True, p_min: float = PPC_P_MIN, seed: int = 0) -> ModelCheck:
    """Check whether the fitted law describes the runs (see the module docstring).

    Args:
        fit: a :class:`~bayescale.posterior.Fit`.
        warn: issue a :class:`ModelCheckWarning` when a check fires.
        p_min: p-value threshold of the frontier and trend checks.
        seed: seed of the permutation test.

    Returns:
        A :class:`ModelCheck`.

    Example:
        >>> check_fit(result, warn=False).to_dict()["ok"]   # doctest: +SKIP
        True
    """
    from scipy import stats

    runs = fit.runs
    informing = fit.loss_runs() if hasattr(fit, "loss_runs") else np.ones(runs.n_runs, bool)
    if not informing.all():  # runs left out of the loss likelihood (loss_mask) are not checked
        runs = runs.select(informing)
    values = {k: runs.input(k) for k in fit.law.inputs}
    # LOO-PIT: where each run falls in its leave-one-out predictive (PSIS weights), as a
    # normal score. Uniform/standard normal when the law describes the runs.
    k, pit = _loo_pit(fit, runs, values)
    score = stats.norm.ppf(np.clip(pit, 1e-6, 1 - 1e-6))

    # the frontier: runs at the largest compute (or the law's single input)
    order_key = runs.compute if runs.compute is not None else values[fit.law.inputs[0]]
    order = np.argsort(order_key, kind="stable")
    n_top = min(runs.n_runs, max(3, math.ceil(runs.n_runs / 4)))
    top = np.flatnonzero(order_key >= order_key[order[-n_top]])
    frontier_z = float(np.mean(score[top]) * math.sqrt(top.size))
    largest_p = float(2 * stats.norm.sf(abs(frontier_z)))
    if runs.n_runs >= 8:
        trend_p = _trend_p(score, np.log(order_key), seed)
    else:
        trend_p = float("nan")

    high = np.flatnonzero(k > PARETO_K_MAX)
    rows = np.asarray(runs.rows).astype(str)
    messages, notes = [], []
    if high.size:
        shown = ", ".join(rows[high[:8]]) + (", ..." if high.size > 8 else "")
        notes.append(
            f"{high.size} runs with PSIS-LOO Pareto k > {PARETO_K_MAX} (rows {shown}; max "
            f"{float(k.max()):.2f}): they pull the fit hard (outliers, or the edges of a small "
            "ladder); their leave-one-out scores are approximate"
        )
    if largest_p < p_min:
        side = "above" if frontier_z > 0 else "below"
        messages.append(
            f"the {top.size} largest-compute runs lie systematically {side} their "
            f"leave-one-out predictions (p = {largest_p:.3g}): the law misses the data's bend "
            "near the frontier; extrapolations are unreliable (try another law, or "
            "discrepancy=True to widen them)"
        )
    if math.isfinite(trend_p) and trend_p < p_min:
        messages.append(
            f"leave-one-out residuals drift smoothly with compute (p = {trend_p:.3g}): a "
            "systematic misfit; compare laws or add structure"
        )
    result = ModelCheck(
        ok=not messages,
        max_pareto_k=float(k.max()) if k.size else float("nan"),
        high_k_runs=[str(r) for r in rows[high]],
        largest_runs=[str(r) for r in rows[top]],
        largest_runs_residual=float(np.mean(score[top])),
        largest_runs_p=largest_p,
        trend_p=trend_p,
        messages=messages,
        notes=notes,
    )
    if warn and not result.ok:
        warnings.warn(f"model check: {result.verdict()}", ModelCheckWarning, stacklevel=3)
    return result
