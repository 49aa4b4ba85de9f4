r"""Next experiment: the expected value of sample information (EVSI) of candidate runs.

Simulated outcomes of a candidate run reweight the existing posterior draws (Pareto-
smoothed importance sampling, :mod:`bayescale.decide._psis`); no MCMC is re-run. See
:func:`next_experiment` for the definition.

Example:
    >>> ranked = next_experiment(fit, "cands.csv", compute=1e22)   # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._arms import Arm, ArmSet, resolve_arms
from ._metrics import (
    Target,
    check_metric,
    gate,
    metric_draws,
    number,
    rngs,
    scatter_factor,
    structured_scale,
)
from ._psis import K_THRESHOLD, psis

__all__ = ["NextRuns", "next_experiment", "read_candidates"]

#: the columns of a ranked candidate; any other is a named input of the candidate (E, U)
_COLUMNS = ("params", "tokens", "group", "cost", "evsi", "evsi_mcse", "evsi_per_flop")
_COLUMNS += ("pareto_k", "reliable", "ess", "source")


def read_candidates(candidates, inputs: Sequence[str] = ()) -> pd.DataFrame:
    """Candidate runs as a validated table with columns params, tokens, group.

    Args:
        candidates: a CSV path, a DataFrame or a list of dicts with ``params``, ``tokens``
            and optionally ``group`` (empty: every arm).
        inputs: named inputs (``U``, ``E``) whose columns, where the table has them, are
            kept and checked like params (a candidate without one takes the ``--at`` value).

    Example:
        >>> read_candidates([{"params": 1e8, "tokens": 2e9}]).to_dict("records")
        [{'params': 100000000.0, 'tokens': 2000000000.0, 'group': None}]
    """
    where = "table"
    if isinstance(candidates, str | Path):
        path = Path(candidates)
        where = f"file {str(path)!r}"
        if not path.is_file():
            raise ValueError(f"candidates file {str(path)!r} not found")
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"candidates {where} is not a readable CSV: {reason}") from None
    elif isinstance(candidates, pd.DataFrame):
        frame = candidates
    elif isinstance(candidates, Sequence) and all(isinstance(c, Mapping) for c in candidates):
        frame = pd.DataFrame(list(candidates))
    else:
        raise ValueError(
            "candidates must be a CSV path, a DataFrame or a list of dicts with params, "
            f"tokens[, group] but got {type(candidates).__name__}"
        )
    frame = frame.rename(columns=lambda c: str(c).strip())
    for column in ("params", "tokens"):
        if column not in frame.columns:
            raise ValueError(
                f"candidates {where} lacks column {column!r} (needs params, tokens and "
                f"optionally group; has {', '.join(map(str, frame.columns)) or 'none'})"
            )
    if len(frame) == 0:
        raise ValueError(f"candidates {where} has no rows")
    out = {}
    named = [str(k) for k in inputs if str(k) in frame.columns]
    for column in ("params", "tokens", *named):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            row = frame.index[int(np.argmax(bad))]
            raw = frame[column][row]
            shown = repr(raw) if isinstance(raw, str) else str(raw)
            raise ValueError(
                f"candidates column {column!r} row {row}: value {shown} must be a finite number > 0"
            )
        out[column] = values
    groups = [None] * len(frame)
    if "group" in frame.columns:
        groups = [
            None if pd.isna(g) or str(g).strip() == "" else str(g).strip() for g in frame["group"]
        ]
    # object dtype keeps None ("every arm"); a string column would turn it into nan
    table = pd.DataFrame(
        {"params": out["params"], "tokens": out["tokens"], "group": pd.Series(groups, dtype=object)}
    )
    for column in named:
        table[column] = out[column]
    return table


@dataclass
class NextRuns:
    """Expected value of sample information (EVSI) of candidate small runs.

    Attributes:
        candidates: one row per candidate (params, tokens, group, cost, evsi, evsi_mcse,
            evsi_per_flop, pareto_k, reliable, ess, source), ranked by ``evsi_per_flop``;
            ``ess`` is the median importance-sampling ESS of the reweighted draws.
        evpi: the current decision's EVPI (the ceiling on any EVSI).
        recommended: the current recommendation at the target.
        target, metric, simulations, paired, diagnostics, warning: as in :class:`Comparison`.
    """

    candidates: pd.DataFrame
    evpi: float
    recommended: str
    target: dict
    metric: str
    simulations: int
    paired: bool
    diagnostics: dict | None = None
    warning: str | None = None

    def to_dict(self) -> dict:
        """The ``bayescale next --json`` object: ``{"candidates": [...], "evpi", "target", ...}``."""
        rows = []
        named = [c for c in self.candidates.columns if c not in _COLUMNS]
        for row in self.candidates.itertuples(index=False):
            own = {k: float(getattr(row, k)) for k in named if pd.notna(getattr(row, k))}
            rows.append(
                {
                    **({"at": own} if own else {}),
                    "params": float(row.params),
                    "tokens": float(row.tokens),
                    "group": row.group,
                    "cost": float(row.cost),
                    "evsi": float(row.evsi),
                    "evsi_mcse": number(row.evsi_mcse),
                    "evsi_per_flop": float(row.evsi_per_flop),
                    "pareto_k": number(row.pareto_k),
                    "reliable": bool(row.reliable),
                    "ess": float(row.ess),
                    "source": row.source,
                }
            )
        out = {
            "candidates": rows,
            "evpi": self.evpi,
            "recommended": self.recommended,
            "target": dict(self.target),
            "metric": self.metric,
            "simulations": self.simulations,
            "k_threshold": K_THRESHOLD,
            "paired": self.paired,
            "diagnostics": self.diagnostics,
        }
        if self.warning:
            out["warning"] = self.warning
        return out


def _replicate_candidates(arm_set: ArmSet, per_arm: int) -> list[dict]:
    """The ``per_arm`` largest-compute run sizes already trained in each arm."""
    out = []
    if per_arm <= 0:
        return out
    for arm in arm_set.arms:
        runs = arm.fit.runs
        if runs.params is None or runs.tokens is None:
            continue
        mask = np.ones(runs.n_runs, bool)
        if arm.group is not None:
            names = np.asarray(runs.group_names, dtype=object)[np.asarray(runs.group)]
            mask = names == arm.group
        rows = np.flatnonzero(mask)
        rows = rows[np.argsort(-(runs.params[rows] * runs.tokens[rows]), kind="stable")]
        seen = set()
        for r in rows:
            key = (float(runs.params[r]), float(runs.tokens[r]))
            if key in seen:
                continue
            seen.add(key)
            sweep = None
            if getattr(runs, "sweep", None) is not None and getattr(arm.fit.model, "n_sweeps", 0):
                sweep = str(runs.sweep_names[int(runs.sweep[r])])
            out.append(
                {
                    "params": key[0],
                    "tokens": key[1],
                    "group": arm.name,
                    "sweep": sweep,
                    "source": "replicate",
                }
            )
            if len(seen) >= per_arm:
                break
    return out


def _log_likelihood_matrix(arm: Arm, candidate: dict, n_sim: int, rng) -> np.ndarray:
    """Log-likelihood of ``n_sim`` simulated outcomes under every draw, ``(n_sim, S)``.

    Outcomes come from the posterior predictive of a new run at the candidate's size:
    a random draw, its law, a new sweep's deviation (fits with a sweep column; a replicate
    in a known sweep uses that sweep's fitted deviation), run noise, and for downstream
    fits the error through the link with its own noise. The likelihood integrates the new
    sweep's deviation approximately, by widening the scale to sqrt(sigma^2 + tau^2).
    """
    from scipy import stats

    fit = arm.fit
    fpt = arm.flops_per_token
    values = {
        "params": candidate["params"],
        "tokens": candidate["tokens"],
        "compute": fpt * candidate["params"] * candidate["tokens"],
    }
    values.update(candidate.get("at") or {})  # the candidate's own named inputs (U, E)
    # named inputs it lacks come from the arm's ``at`` (the target's)
    log_mu = arm.law_log_loss({k: math.log(values[k]) for k in arm.law.inputs if k in values})
    log_mu = log_mu[:, 0]
    n_draws = log_mu.shape[0]
    sweep = candidate.get("sweep")
    if sweep is not None:
        index = list(fit.model.sweep_names).index(sweep)
        log_mu = log_mu + fit.flat("sweep_effect")[:, index][arm.order]
    extra = structured_scale(arm, values["compute"], new_sweep=sweep is None)
    noise = arm.sites(["sigma"] + (["nu"] if arm.has_site("nu") else []))
    sigma = noise["sigma"] * scatter_factor(arm, values)  # a small candidate scatters more
    scale = np.sqrt(sigma**2 + extra**2)
    source = rng.integers(n_draws, size=n_sim)
    if "nu" in noise:
        eps = rng.standard_t(noise["nu"][source])
    else:
        eps = rng.standard_normal(n_sim)
    y = log_mu[source] + extra[source] * rng.standard_normal(n_sim) + sigma[source] * eps
    if "nu" in noise:
        loglik = stats.t.logpdf(y[:, None], noise["nu"][None, :], log_mu[None, :], scale[None, :])
    else:
        loglik = stats.norm.logpdf(y[:, None], log_mu[None, :], scale[None, :])
    if fit.spec.downstream:
        t = arm.sites(("eps", "k", "gamma"))
        link = t["eps"][None, :] - t["k"][None, :] * np.exp(
            -t["gamma"][None, :] * np.exp(y)[:, None]
        )
        d_noise = arm.sites(
            ["sigma_downstream"] + (["nu_downstream"] if arm.has_site("nu_downstream") else [])
        )
        sd = d_noise["sigma_downstream"]
        rows = np.arange(n_sim)
        if "nu_downstream" in d_noise:
            nud = d_noise["nu_downstream"]
            err = link[rows, source] + sd[source] * rng.standard_t(nud[source])
            loglik = loglik + stats.t.logpdf(err[:, None], nud[None, :], link, sd[None, :])
        else:
            err = link[rows, source] + sd[source] * rng.standard_normal(n_sim)
            loglik = loglik + stats.norm.logpdf(err[:, None], link, sd[None, :])
    return loglik


def next_experiment(
    source,
    candidates=None,
    *,
    params: float | None = None,
    tokens: float | None = None,
    compute: float | None = None,
    arms: Sequence[str] | None = None,
    metric: str = "loss",
    simulations: int = 200,
    replicates: int = 0,
    seed: int = 0,
    at: Mapping[str, float] | None = None,
) -> NextRuns:
    r"""Rank candidate small runs by the expected value of their information per FLOP.

    The decision: pick the arm with the smallest expected metric at the target (its laws,
    ``noise=False``). Now that is worth :math:`\min_a E[L_a]`. After seeing a candidate's
    outcome ``y`` it would be worth :math:`\min_a E[L_a \mid y]`, so

    .. math::  \mathrm{EVSI} = E_y\big[E[L_{rec} \mid y] - \min_a E[L_a \mid y]\big]
               = \min_a E[L_a] - E_y\big[\min_a E[L_a \mid y]\big]

    (the two agree because :math:`E_y E[L_a \mid y] = E[L_a]`; the first form, the expected
    regret of today's choice after seeing ``y``, is never negative and has the smaller
    Monte Carlo error). ``y`` is simulated ``simulations`` times from the posterior
    predictive; :math:`E[\cdot \mid y]` reweights the existing draws by the likelihood of
    ``y`` with Pareto-smoothed importance sampling, no MCMC re-run. The Pareto ``k``
    reported is the 90th percentile over simulated outcomes; above 0.7 the estimate is
    flagged ``reliable = False`` (the run would teach more than the current draws can
    represent: the EVSI is then at best a rough guide, refit after the run instead).

    Args:
        source: a grouped Fit or ``{name: Fit}``.
        candidates: CSV path, DataFrame or list of dicts (params, tokens[, group]); a
            candidate without a group is evaluated in every arm.
        params, tokens, compute: the target (as in :func:`compare`).
        arms: the decision's arms (default all); candidates may be in any arm of the source.
        metric: ``loss`` or ``downstream``.
        simulations: simulated outcomes per candidate.
        replicates: also propose a replicate (new seed) of the ``replicates`` largest runs
            already trained in each arm.
        seed: seed of the simulations and the random pairing.
        at: the target's named inputs, ``{"E": 256}`` (as in :func:`compare`); a candidate
            takes them too unless its table has a column of that name.

    Returns:
        :class:`NextRuns`, ranked by ``evsi_per_flop`` (cost ``C = 6ND``).

    Example:
        >>> ranked = next_experiment(fit, "cands.csv", compute=1e22)      # doctest: +SKIP
        >>> ranked.candidates.head(3)                                     # doctest: +SKIP
    """
    check_metric(metric)
    target = Target.make(params, tokens, compute)
    if isinstance(simulations, bool) or not isinstance(simulations, int | np.integer):
        raise ValueError(f"simulations must be an integer >= 20 but got {simulations!r}")
    if simulations < 20:
        raise ValueError(f"simulations must be an integer >= 20 but got {simulations}")
    if (
        isinstance(replicates, bool)
        or not isinstance(replicates, int | np.integer)
        or replicates < 0
    ):
        raise ValueError(f"replicates must be an integer >= 0 but got {replicates!r}")
    if candidates is None and not replicates:
        raise ValueError(
            "give candidate runs (a CSV with params, tokens[, group]) or replicates > 0"
        )
    arm_set = resolve_arms(source, arms, seed=seed, at=at)
    named = sorted(
        {k for a in arm_set.arms for k in a.law.inputs} - {"params", "tokens", "compute"}
    )
    generators = rngs(seed, len(arm_set.arms))
    values = np.column_stack(
        [
            metric_draws(arm, target, metric, False, rng)
            for arm, rng in zip(arm_set.arms, generators, strict=True)
        ]
    )
    expected = values.mean(axis=0)
    rec = int(np.argmin(expected))
    evpi = float(np.mean(values[:, rec] - values.min(axis=1)))
    rows: list[dict] = []
    if candidates is not None:
        table = read_candidates(candidates, named)
        for row in table.to_dict("records"):
            groups = [row["group"]] if row["group"] is not None else arm_set.names
            own = {k: float(row[k]) for k in named if k in row}
            if own:
                arm_set.arms[0].law.check_inputs(own, "in a candidate")
            for g in groups:
                rows.append(
                    {
                        "params": row["params"],
                        "tokens": row["tokens"],
                        "group": g,
                        "sweep": None,
                        "source": "candidates",
                        "at": own,
                    }
                )
    rows += _replicate_candidates(arm_set, int(replicates))
    results = []
    for i, cand in enumerate(rows):
        arm = arm_set.arm(cand["group"])
        rng = np.random.default_rng([int(seed), 271828, i])
        loglik = _log_likelihood_matrix(arm, cand, int(simulations), rng)
        log_w, k = psis(loglik)
        posterior_means = np.exp(log_w) @ values  # (n_sim, K)
        regret = posterior_means[:, rec] - posterior_means.min(axis=1)
        cost = arm.flops_per_token * cand["params"] * cand["tokens"]
        evsi = float(regret.mean())
        k90 = float(np.quantile(k, 0.9))
        ess = 1.0 / np.sum(np.exp(2 * log_w), axis=1)
        results.append(
            {
                "params": cand["params"],
                "tokens": cand["tokens"],
                "group": cand["group"],
                "cost": cost,
                "evsi": evsi,
                "evsi_mcse": float(regret.std(ddof=1) / math.sqrt(len(regret))),
                "evsi_per_flop": evsi / cost,
                "pareto_k": k90,
                "reliable": bool(k90 <= K_THRESHOLD),
                "ess": float(np.median(ess)),
                "source": cand["source"],
                **cand.get("at", {}),
            }
        )
    table = pd.DataFrame(results)
    table = table.sort_values(["evsi_per_flop", "cost"], ascending=[False, True], kind="stable")
    warning = gate(arm_set)
    return NextRuns(
        table.reset_index(drop=True),
        evpi,
        arm_set.names[rec],
        {**target.to_dict(), **arm_set.arms[0].at},
        metric,
        int(simulations),
        arm_set.paired,
        arm_set.diagnostics(),
        warning,
    )
