"""Backtests: fit the small part of a ladder, predict the large part, score the intervals.

A scaling law is used to predict a run it has not seen. :func:`backtest` checks how far to
trust that on the user's own runs: it fits every run below a cutoff and predicts every run
above it (``holdout="compute>=6.4e18"``, ``"params>=1e9"``, ``"isoflop_group==max"``), or
rolls the origin through the ladder's levels (fit every budget up to one, predict the next
``rolling`` budgets). Each held-out run gets its posterior predictive median, 50/80/95%
intervals, PIT value and log-distance beyond the fit set; the summary gives coverage,
errors, widths and proper scores (interval score, CRPS), the sampler's diagnostics per fold
and the same split scored for a point fit (Huber on log loss with L-BFGS-B and bootstrap
intervals, as in Hoffmann et al. 2022), so that the two can be compared.

A fold whose sampler diagnostics fail is reported as such (``ok: false``) and left out of
the summary, which says how many runs it left out (``n_excluded``).

Example:
    >>> bt = backtest("runs.csv", "chinchilla", params="N", tokens="D", loss="loss",
    ...               holdout="compute>=1e20")                               # doctest: +SKIP
    >>> bt.summary()["coverage_95"]                                          # doctest: +SKIP
    0.93
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._util import target_kwargs
from ..data.runs import Runs, RunsError, read_runs
from ..settings import FIELDS as SAMPLER_FIELDS
from ..settings import SamplerOptions
from ._holdout import level_order, parse_holdout, rolling_folds, rule_mask
from ._scores import LEVELS, crps, interval_score, intervals, pit

__all__ = ["Backtest", "backtest"]


@dataclass
class Backtest:
    """The result of :func:`backtest`.

    Attributes:
        runs: one row per held-out run and fold: ``fold``, ``row`` (the table's row label),
            ``group``, ``params``, ``tokens``, ``compute``, ``observed``, ``median``,
            ``lower_50`` ... ``upper_95``, ``pit``, ``z`` (the PIT as a standard normal
            quantile), ``beyond`` (log compute beyond the fit set), ``rel_error``,
            ``covered_50/80/95``, ``crps`` and, with the baseline, ``baseline_median``,
            ``baseline_lower``, ``baseline_upper``.
        folds: one row per fold: ``fold``, ``n_fit``, ``n_held``, ``max_r_hat``,
            ``divergences``, ``min_ess_bulk``, ``ok``, ``seconds``, ``drift`` (the fit's
            learned drift per e-fold, when it has one).
        fitted: per fold, the fit set's runs (for the figure).
        settings: law, split, sampler settings.
        seconds: wall time.
    """

    runs: pd.DataFrame
    folds: pd.DataFrame
    fitted: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    def scored(self) -> pd.DataFrame:
        """The held-out runs of the folds whose diagnostics are ok."""
        ok = set(self.folds.loc[self.folds["ok"], "fold"])
        return self.runs[self.runs["fold"].isin(ok)]

    def summary(self) -> dict:
        """Coverage at 50/80/95%, errors, widths and scores over the folds that are ok.

        Keys: ``n`` (held-out runs scored), ``n_excluded`` (runs of folds whose
        diagnostics failed), ``folds``, ``folds_not_ok``, ``coverage_50/80/95``,
        ``median_abs_error``, ``median_rel_error``, ``median_width_95`` (full width over
        the median), ``sharpness`` (median 95% half-width over the median relative error),
        ``interval_score_95`` and ``crps`` (means, relative to the observed loss),
        ``mean_pit``, ``divergences``, ``max_r_hat``, ``seconds`` and ``baseline``
        (``median_rel_error``, ``coverage_95``, ``median_width_95``), or None.

        Example:
            >>> bt.summary()["coverage_95"]   # doctest: +SKIP
        """
        p = self.scored()
        folds = self.folds
        out = {
            "n": len(p),
            "n_excluded": int(len(self.runs) - len(p)),
            "folds": len(folds),
            "folds_not_ok": int((~folds["ok"]).sum()),
        }
        if len(p):
            rel_width = (p["upper_95"] - p["lower_95"]) / p["median"]
            out.update(
                {f"coverage_{100 * q:g}": float(p[f"covered_{100 * q:g}"].mean()) for q in LEVELS}
            )
            med_err = float(np.median(p["rel_error"]))
            out.update(
                {
                    "median_abs_error": float(np.median(np.abs(p["median"] - p["observed"]))),
                    "median_rel_error": med_err,
                    "median_width_95": float(rel_width.median()),
                    "sharpness": float(rel_width.median() / 2 / med_err) if med_err > 0 else None,
                    "interval_score_95": float(
                        np.mean(
                            interval_score(p["lower_95"], p["upper_95"], p["observed"], 0.95)
                            / p["observed"]
                        )
                    ),
                    "crps": float(np.mean(p["crps"] / p["observed"])),
                    "mean_pit": float(p["pit"].mean()),
                }
            )
        out.update(
            {
                "divergences": int(folds["divergences"].sum()),
                "max_r_hat": float(folds["max_r_hat"].max()),
                "seconds": round(float(self.seconds), 2),
                "baseline": self._baseline(p),
            }
        )
        return out

    def _baseline(self, p: pd.DataFrame) -> dict | None:
        if "baseline_median" not in p or not len(p) or p["baseline_median"].isna().all():
            return None
        b = p.dropna(subset=["baseline_median"])
        covered = (b["observed"] >= b["baseline_lower"]) & (b["observed"] <= b["baseline_upper"])
        return {
            "n": len(b),
            "median_rel_error": float(
                np.median(np.abs(b["baseline_median"] - b["observed"]) / b["observed"])
            ),
            "coverage_95": float(covered.mean()),
            "median_width_95": float(
                np.median((b["baseline_upper"] - b["baseline_lower"]) / b["baseline_median"])
            ),
        }

    def to_dict(self) -> dict:
        """JSON-ready: ``{"summary", "folds", "runs", "settings"}`` (nan/inf become null)."""
        from ..decide._metrics import clean

        def records(frame: pd.DataFrame) -> list[dict]:
            rows = []
            for row in frame.to_dict(orient="records"):
                rows.append({k: _plain(v) for k, v in row.items()})
            return rows

        return clean(
            {
                "summary": self.summary(),
                "folds": records(self.folds),
                "runs": records(self.runs),
                "settings": dict(self.settings),
            }
        )

    def to_text(self) -> str:
        """A short human-readable account: the summary and the folds."""
        s = self.summary()
        lines = [
            f"backtest of {self.settings.get('law')} ({self.settings.get('split')}): "
            f"{s['n']} held-out runs in {s['folds']} folds"
        ]
        if s["n"]:
            lines.append(
                f"coverage 50/80/95%: {s['coverage_50']:.0%} / {s['coverage_80']:.0%} / "
                f"{s['coverage_95']:.0%}; median error {100 * s['median_rel_error']:.2f}%; "
                f"median 95% width {100 * s['median_width_95']:.1f}% of the loss"
            )
        if s["baseline"]:
            b = s["baseline"]
            lines.append(
                f"point fit (Huber + bootstrap): median error {100 * b['median_rel_error']:.2f}%, "
                f"95% coverage {b['coverage_95']:.0%}, width {100 * b['median_width_95']:.1f}%"
            )
        if s["folds_not_ok"]:
            lines.append(
                f"{s['folds_not_ok']} folds failed their sampler diagnostics; their "
                f"{s['n_excluded']} runs are not in the scores above"
            )
        cols = ["fold", "n_fit", "n_held", "max_r_hat", "divergences", "ok", "seconds"]
        cols += ["drift"] if "drift" in self.folds else []
        lines += ["", self.folds[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Observed and predicted loss against compute, fit set and held-out runs marked."""
        from ..plots.backtest import plot_backtest

        return plot_backtest(self, ax=ax)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def _table_and_runs(data, columns: Mapping[str, str | None], flops_per_token: float, inputs=None):
    """``(frame, runs)``: the user's table aligned with the validated runs, roles added."""
    if isinstance(data, Runs):
        if inputs:
            raise ValueError(
                "inputs= maps columns of a table; these Runs already carry their inputs "
                f"({', '.join(data.input_names)})"
            )
        runs = data
        table = pd.DataFrame(index=pd.Index(runs.rows))
    else:
        if columns.get("loss") is None:
            raise ValueError("name the loss column (loss=... / --loss COLUMN)")
        table = pd.read_csv(data) if isinstance(data, str | Path) else data.copy()
        if not table.index.is_unique:
            table = table.reset_index(drop=True)
        runs = read_runs(
            table,
            flops_per_token=flops_per_token,
            inputs=inputs,
            **{k: v for k, v in columns.items() if v},
        )
        table = table.loc[list(runs.rows)]
    frame = table.copy()
    for role in ("params", "tokens", "compute", "loss"):
        if getattr(runs, role) is not None:
            frame[role] = np.asarray(getattr(runs, role))
    for role in ("group", "sweep"):
        codes = getattr(runs, role)
        if codes is not None:
            frame[role] = np.asarray(getattr(runs, f"{role}_names"), dtype=object)[codes]
    return frame.reset_index(drop=True), runs


def _splits(frame, runs, holdout, fit_set, rolling, by, first):
    """``[(fold name, fit mask, held mask)]`` from the rules."""
    compute = np.asarray(runs.compute) if runs.compute is not None else None
    groups = frame["group"].to_numpy() if "group" in frame else None
    if rolling is not None:
        if holdout is not None:
            raise ValueError("give either holdout or rolling, not both")
        column = by or ("sweep" if "sweep" in frame else "compute")
        if column not in frame:
            raise ValueError(
                f"rolling by {column!r}: no such column; columns: {', '.join(map(str, frame.columns))}"
            )
        levels = frame[column].to_numpy()
        order = level_order(levels, compute)
        if len(order) < first + 1:
            raise ValueError(
                f"rolling by {column!r} needs at least {first + 1} levels ({first} to fit, 1 to "
                f"predict) but the runs have {len(order)}"
            )
        return [
            (f"{column}<={_name(o)}", fit, held)
            for o, fit, held in rolling_folds(levels, order, int(rolling), first)
        ], f"rolling origin by {column}, horizon {int(rolling)}"
    if holdout is None:
        raise ValueError("give a holdout rule (e.g. holdout='compute>=6.4e18') or rolling=K")
    rule = parse_holdout(holdout)
    held = rule_mask(rule, frame, compute, groups)
    fit = ~held if fit_set is None else rule_mask(parse_holdout(fit_set), frame, compute, groups)
    overlap = fit & held
    if overlap.any():
        raise ValueError(
            f"fit set {fit_set!r} and holdout {holdout!r} share {int(overlap.sum())} runs; "
            "a run is either fitted or predicted"
        )
    split = str(rule) + ("" if fit_set is None else f", fit {parse_holdout(fit_set)}")
    return [(str(rule), fit, held)], split


def _name(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _check_fold(name, fit_mask, held_mask, runs, law, n_total):
    n_fit, n_held = int(fit_mask.sum()), int(held_mask.sum())
    if n_held == 0:
        raise ValueError(f"holdout {name!r} holds out no runs (of {n_total}): nothing to predict")
    if n_fit == 0:
        raise ValueError(f"holdout {name!r} holds out all {n_total} runs: nothing left to fit")
    try:
        runs.select(fit_mask).require(tuple(law.inputs), len(law.parameter_names), law.name)
    except RunsError as exc:
        raise ValueError(
            f"holdout {name!r} leaves {n_fit} runs to fit and {n_held} to predict, too few to "
            f"fit: {exc}"
        ) from None


def backtest(
    data: Runs | pd.DataFrame | str | Path,
    law="chinchilla",
    *,
    holdout: str | None = None,
    fit_set: str | None = None,
    rolling: int | None = None,
    by: str | None = None,
    first: int = 3,
    params: str | None = None,
    tokens: str | None = None,
    compute: str | None = None,
    loss: str | None = None,
    group: str | None = None,
    sweep: str | None = None,
    inputs: Mapping[str, str] | None = None,
    flops_per_token: float = 6.0,
    baseline: bool = True,
    bootstrap: int = 100,
    chains: int = 4,
    draws: int = 1000,
    warmup: int | None = None,
    seed: int = 0,
    progress: bool | None = False,
    **fit_kwargs,
) -> Backtest:
    """Fit the runs below a cutoff (or each rolling origin) and score the predictions above it.

    Args:
        data: a runs table (DataFrame or CSV path: the holdout may then name any of its
            columns) or a :class:`~bayescale.data.runs.Runs` (roles only).
        law: as in :func:`bayescale.fit`.
        holdout: the runs to predict, ``COLUMN OP VALUE`` (``compute>=6.4e18``,
            ``params>=1e9``, ``isoflop_group==max``; see :mod:`bayescale.trust._holdout`).
        fit_set: the runs to fit (default: every run not held out), e.g.
            ``flop_budget<=1.6e18`` to leave a gap between the two.
        rolling: instead of ``holdout``: predict the next ``rolling`` levels of ``by``
            from every origin (``by`` defaults to the sweep column, else compute).
        first: with ``rolling``, the fewest levels a fit set spans.
        params, tokens, compute, loss, group, sweep: column names of a table.
        inputs: named inputs beyond params/tokens/compute, ``{name: column}`` (e.g.
            ``{"U": "unique_tokens"}`` for ``muennighoff2023``), as in :func:`bayescale.read_runs`.
        baseline: also score the point fit (Huber L-BFGS-B + ``bootstrap`` refits).
        chains, draws, warmup, seed, progress, fit_kwargs: passed to :func:`bayescale.fit`.

    Returns:
        A :class:`Backtest`.

    Raises:
        ValueError: a rule that names no column, holds out nothing or everything, or
            leaves too few runs to fit the law (one line naming the rule and the counts).

    Example:
        >>> bt = backtest(bs.load_chinchilla(), holdout="compute>=3e20",
        ...               fit_set="compute<1e20")                 # doctest: +SKIP
        >>> print(bt.to_text())                                   # doctest: +SKIP
    """
    from .._util import FitWarning
    from ..inference.fitting import fit, resolve_spec
    from ._pointfit import point_fit

    started = time.perf_counter()
    columns = dict(
        params=params, tokens=tokens, compute=compute, loss=loss, group=group, sweep=sweep
    )
    frame, runs = _table_and_runs(data, columns, flops_per_token, inputs)
    spec = resolve_spec(law)
    splits, split_name = _splits(frame, runs, holdout, fit_set, rolling, by, first)
    for name, fit_mask, held_mask in splits:
        if rolling is None:
            _check_fold(name, fit_mask, held_mask, runs, spec.law, runs.n_runs)
    run_rows, fold_rows, fitted = [], [], {}
    for name, fit_mask, held_mask in splits:
        if rolling is not None:
            try:
                _check_fold(name, fit_mask, held_mask, runs, spec.law, runs.n_runs)
            except ValueError:
                continue  # an early origin too small for the law: not a fold
        train, held = runs.select(fit_mask), runs.select(held_mask)
        unseen = _unseen_groups(train, held)
        if unseen:
            raise ValueError(
                f"holdout {name!r} holds out every run of group {unseen[0]!r}: a grouped fit "
                "cannot predict a group it has not seen"
            )
        t0 = time.perf_counter()
        # sampler options among fit's keywords (target_accept=0.99) travel in the options
        tuning = {k: v for k, v in fit_kwargs.items() if k in SAMPLER_FIELDS}
        model_kwargs = {k: v for k, v in fit_kwargs.items() if k not in SAMPLER_FIELDS}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            result = fit(
                train,
                law,
                seed=seed,
                sampler=SamplerOptions(
                    chains=chains, draws=draws, warmup=warmup, progress=progress, **tuning
                ),
                **model_kwargs,
            )
            result.info["warn"] = False  # the fold's verdict goes into the table
            frame_k = _score(result, held, name, seed)
        if baseline:
            base = point_fit(train, spec.law, bootstrap=bootstrap, seed=seed)
            _add_baseline(frame_k, held, result, base)
        d = result.diagnostics
        fold = {
            "fold": name,
            "n_fit": train.n_runs,
            "n_held": held.n_runs,
            "max_r_hat": float(d.max_r_hat),
            "divergences": int(d.divergences),
            "min_ess_bulk": float(d.min_ess_bulk),
            "ok": bool(d.ok),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        if "drift" in result.samples:
            fold["drift"] = float(np.median(result.flat("drift")))
        fold_rows.append(fold)
        run_rows.append(frame_k)
        fitted[name] = train.frame()
    if not fold_rows:
        raise ValueError(f"{split_name}: no origin leaves enough runs to fit law {spec.law.name!r}")
    settings = {
        "law": spec.name,
        "split": split_name,
        "chains": chains,
        "draws": draws,
        "warmup": warmup,
        "seed": seed,
        "baseline": bool(baseline),
        **{k: v for k, v in fit_kwargs.items() if isinstance(v, str | int | float | bool)},
    }
    return Backtest(
        pd.concat(run_rows, ignore_index=True),
        pd.DataFrame(fold_rows),
        fitted,
        settings,
        time.perf_counter() - started,
    )


def _unseen_groups(train: Runs, held: Runs) -> list[str]:
    if held.group is None or len(held.group_names) < 2:
        return []
    seen = set(np.unique(train.group).tolist())
    return [held.group_names[g] for g in np.unique(held.group) if g not in seen]


def _score(result, held: Runs, fold: str, seed: int) -> pd.DataFrame:
    values = {k: held.input(k) for k in result.law.inputs}
    groups = None
    if result.model.grouped:
        groups = [held.group_names[c] for c in held.group]
    prediction = result.predict(**target_kwargs(values), group=groups, seed=seed)
    draws = prediction.draws
    observed = np.asarray(held.loss)
    q = intervals(draws)
    u = pit(draws, observed)
    codes = result._group_codes(groups, held.n_runs) if groups is not None else None
    known = {
        k: getattr(held, k) for k in ("params", "tokens", "compute") if getattr(held, k) is not None
    }
    out = pd.DataFrame(
        {
            "fold": fold,
            "row": [str(r) for r in held.rows],
            "group": groups if groups is not None else None,
            **{k: np.asarray(v) for k, v in known.items()},
            "observed": observed,
            **q,
            "pit": u,
            "z": _normal_quantile(u, draws.shape[0]),
            "beyond": result.beyond_data(known, codes),
            "rel_error": np.abs(q["median"] - observed) / observed,
            "crps": crps(draws, observed),
        }
    )
    for p in LEVELS:
        tag = f"{100 * p:g}"
        out[f"covered_{tag}"] = (observed >= out[f"lower_{tag}"]) & (
            observed <= out[f"upper_{tag}"]
        )
    return out


def _normal_quantile(u: np.ndarray, n: int) -> np.ndarray:
    from scipy.special import ndtri

    eps = 0.5 / n  # a PIT of 0 or 1 means beyond every draw: cap at half a draw
    return ndtri(np.clip(u, eps, 1 - eps))


def _add_baseline(frame_k, held: Runs, result, base) -> None:
    """The point fit ``base``'s predictions of the held-out runs, as ``baseline_*`` columns."""
    values = {k: np.asarray(held.input(k)) for k in result.law.inputs}
    # select() keeps every group name, so the held-out codes index the fit set's groups
    codes = held.group if held.group is not None else np.zeros(held.n_runs, np.int64)
    predicted = base.predict(values, codes, prob=0.95)
    frame_k["baseline_median"] = predicted["median"]
    frame_k["baseline_lower"] = predicted["lower"]
    frame_k["baseline_upper"] = predicted["upper"]
