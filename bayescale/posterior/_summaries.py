"""Summaries and sampler diagnostics of a :class:`~bayescale.posterior.core.Fit`.

The bodies of :meth:`Fit.summary`, :attr:`Fit.diagnostics` and :meth:`Fit.to_dict` (the
``bayescale summary --json`` object): each function takes the fit first.

Example:
    >>> summary(fit, 0.9).loc["alpha", ["lower", "upper"]]   # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._util import check_prob
from .results import Diagnostics, _round

if TYPE_CHECKING:  # pragma: no cover
    from .core import Fit

R_HAT_MAX = 1.01
EBFMI_MIN = 0.3


def summary(fit: Fit, prob: float = 0.95) -> pd.DataFrame:
    prob = check_prob(prob)
    if prob in fit._summary_cache:
        return fit._summary_cache[prob].copy()
    from ._mcmc_stats import ess_bulk, ess_tail, rhat

    q = ((1 - prob) / 2, 1 - (1 - prob) / 2)
    reported = fit.reported_flat()
    # every parameter at once: (parameters, chains, draws)
    draws = np.stack([np.asarray(v, np.float64) for v in reported.values()])
    flat = draws.reshape(len(draws), -1)
    lower, upper = np.quantile(flat, q, axis=1)
    # moments of each parameter in units of its largest draw: a coefficient near 1e158
    # squares past float64 (R-hat and ESS do not depend on the unit)
    with np.errstate(invalid="ignore"):
        scale = np.max(np.abs(flat), axis=1, initial=0.0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    unit = flat / scale[:, None]
    columns = {
        "mean": unit.mean(axis=1) * scale,
        "sd": unit.std(axis=1, ddof=1) * scale,
        "median": np.median(flat, axis=1),
        "lower": lower,
        "upper": upper,
        "r_hat": rhat(draws / scale[:, None, None]),
        "ess_bulk": ess_bulk(draws / scale[:, None, None]),
        "ess_tail": ess_tail(draws / scale[:, None, None]),
    }
    frame = pd.DataFrame(columns, index=list(reported))
    frame.index.name = "parameter"
    fit._summary_cache[prob] = frame
    return frame.copy()


def diagnostics(fit: Fit) -> Diagnostics:
    from ._mcmc_stats import rhat

    summary = fit.summary()
    r_hats = list(summary["r_hat"].dropna())
    # internal sites too: a hidden non-mixing latent must not pass silently
    columns = [
        np.moveaxis(np.reshape(v, (v.shape[0], v.shape[1], -1)), -1, 0)
        for v in fit.samples.values()
    ]
    if columns:
        r_hats += list(rhat(np.concatenate(columns).astype(np.float64)))
    r_hats = [r for r in r_hats if math.isfinite(r)]
    max_r_hat = max(r_hats) if r_hats else float("nan")
    divergences = int(fit.stats.get("diverging", np.zeros(1)).sum())
    ess_bulk = float(summary["ess_bulk"].min())
    ess_tail = float(summary["ess_tail"].min())
    ebfmi = _ebfmi(fit.stats.get("energy"))
    required = min(400.0, 0.1 * fit.n_chains * fit.n_draws)
    messages = []
    if fit.n_chains < 2:
        messages.append("R-hat needs at least 2 chains: run more chains")
    if not max_r_hat <= R_HAT_MAX:
        messages.append(
            f"max R-hat {max_r_hat:.3f} > {R_HAT_MAX}: chains disagree; run more "
            "warmup/draws or check for several modes (tighter priors help)"
        )
    if divergences:
        messages.append(
            f"{divergences} divergent transitions: raise target_accept above "
            f"{fit.info.get('target_accept', 0.95)} (e.g. 0.99) or tighten priors on "
            "weakly identified parameters"
        )
    if not ess_bulk >= required or not ess_tail >= required:
        messages.append(
            f"min ESS bulk {ess_bulk:.0f} / tail {ess_tail:.0f} < {required:.0f}: run more draws"
        )
    if math.isfinite(ebfmi) and ebfmi < EBFMI_MIN:
        messages.append(
            f"E-BFMI {ebfmi:.2f} < {EBFMI_MIN}: poor exploration of the energy; "
            "reparameterise or tighten priors"
        )
    return Diagnostics(
        divergences, max_r_hat, ess_bulk, ess_tail, ebfmi, required, not messages, messages
    )


def summary_dict(fit: Fit, prob: float = 0.95) -> dict:
    summary = fit.summary(prob)
    params = {
        name: {
            k: _round(row[k])
            for k in ("mean", "sd", "median", "lower", "upper", "r_hat", "ess_bulk")
        }
        for name, row in summary.iterrows()
    }
    return {
        "parameters": params,
        "diagnostics": fit.diagnostics.to_dict(),
        "prob": prob,
        "law": fit.law.name,
        "model": fit.spec.name,
        "likelihood": fit.spec.likelihood,
        "pooling": fit.spec.pooling,
        "groups": list(fit.group_names) if fit.model.grouped else [],
        "n_runs": int(fit.runs.n_runs),
    }


def _ebfmi(energy: np.ndarray | None) -> float:
    if energy is None or energy.shape[-1] < 3:
        return float("nan")
    num = np.mean(np.diff(energy, axis=-1) ** 2, axis=-1)
    den = np.var(energy, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.min(num / den))
