"""Out-of-sample checks on real sweeps: are predictive intervals honest where it matters?

A scaling law is used to predict runs it has not seen: a new compute budget, a larger
model. :func:`leave_one_group_out` refits without one sweep (an isoFLOP budget) or group at a
time and scores the posterior predictive of the held-out runs; :func:`leave_largest_out`
holds out the largest model size (or compute) and scores the extrapolation.

Each can be run with and without the structured noise terms (``structured=True``):

* the **sweep random effect** (a shared deviation of all runs in a sweep, ``Normal(0,
  tau_sweep)`` on log loss): a held-out sweep is a *new* sweep, so its predictions draw a
  new deviation; without it, runs of one budget count as independent evidence and the
  intervals are too narrow;
* the **discrepancy term** (``kappa * max(0, log C - log C_max)``): wider intervals the
  farther a target lies beyond the data.

Scores: coverage of the central ``prob`` predictive interval and the median absolute
percentage error of the predictive median, per held-out run.

Example:
    >>> runs = bs.load_porian2024()                                    # doctest: +SKIP
    >>> v = leave_one_group_out(runs, "chinchilla", by="sweep")        # doctest: +SKIP
    >>> v.summary()["coverage"]                                         # doctest: +SKIP
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .._util import target_kwargs
from ..data.sweeps import without_sweep  # one definition, re-exported here

__all__ = [
    "Validation",
    "compare_structured",
    "leave_largest_out",
    "leave_one_group_out",
    "with_sweep",
    "without_sweep",
]


@dataclass
class Validation:
    """Held-out predictions and their scores.

    Attributes:
        predictions: one row per held-out run: ``fold``, ``row``, ``observed``, ``median``,
            ``lower``, ``upper``, ``covered``, ``abs_pct_error``, ``beyond`` (log-distance
            beyond the training compute) and ``fold_ok`` (the fold's sampler diagnostics).
        prob: interval probability.
        settings: law, split, structured terms, sampler settings.
        seconds: wall time.
    """

    predictions: pd.DataFrame
    prob: float
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict:
        """``n``, ``coverage``, ``median_abs_pct_error``, ``median_rel_width`` (interval
        width over the median), ``folds``, ``folds_not_ok``.

        Example:
            >>> v.summary()["coverage"]    # doctest: +SKIP
            0.94
        """
        p = self.predictions
        width = (p["upper"] - p["lower"]) / p["median"]
        folds = p.drop_duplicates("fold")
        return {
            "n": len(p),
            "coverage": float(p["covered"].mean()),
            "median_abs_pct_error": float(np.median(p["abs_pct_error"])),
            "median_rel_width": float(width.median()),
            "folds": len(folds),
            "folds_not_ok": int((~folds["fold_ok"]).sum()),
            "prob": self.prob,
        }

    def per_fold(self) -> pd.DataFrame:
        """Coverage and median absolute % error per held-out fold."""
        return self.predictions.groupby("fold").agg(
            n=("covered", "size"),
            coverage=("covered", "mean"),
            median_abs_pct_error=("abs_pct_error", "median"),
            beyond=("beyond", "max"),
        )


def with_sweep(runs, key: str | np.ndarray):
    """The runs with a sweep column built from an input or an array of labels.

    Use it for groupings that share a deviation *and* are not a function of the law's
    inputs (a training recipe, a data snapshot, a hyper-parameter search). Do not make a
    sweep of model size for a law of N: one deviation per size is confounded with the law's
    N term (on Gadre et al.'s runs it absorbed it and left-largest-size-out predictions 25%
    too low).

    Example:
        >>> runs = with_sweep(runs, np.array(["v1"] * 10 + ["v2"] * 10))   # doctest: +SKIP
    """
    labels = np.asarray(getattr(runs, key) if isinstance(key, str) else key)
    if labels.shape != (runs.n_runs,):
        raise ValueError(
            f"sweep labels must have one entry per run ({runs.n_runs}) but got shape {labels.shape}"
        )
    uniq, codes = np.unique(labels, return_inverse=True)
    names = tuple(f"{u:.4g}" if isinstance(u, float | np.floating) else str(u) for u in uniq)
    return replace(runs, sweep=codes.astype(np.int64), sweep_names=names)


def _fit_fold(train, law, structured: bool, discrepancy: bool | None, fit_kwargs):
    from .._util import FitWarning
    from ..inference.fitting import fit
    from ..settings import FIELDS, SamplerOptions

    tuning = {"progress": False, **{k: v for k, v in fit_kwargs.items() if k in FIELDS}}
    fit_kwargs = {k: v for k, v in fit_kwargs.items() if k not in FIELDS}
    if not structured:
        train = without_sweep(train)
    use_discrepancy = structured if discrepancy is None else discrepancy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        result = fit(
            train,
            law,
            discrepancy=use_discrepancy,
            sampler=SamplerOptions(**tuning),
            **fit_kwargs,
        )
    result.info["warn"] = False  # the fold's verdict is reported in fold_ok
    return result


def _score_fold(result, held, fold: str, prob: float, seed: int) -> pd.DataFrame:
    values = {k: getattr(held, k) for k in ("params", "tokens", "compute")}
    groups = (
        [held.group_names[c] for c in held.group]
        if result.model.grouped and held.group is not None
        else None
    )
    kwargs = {k: held.input(k) for k in result.law.inputs}
    prediction = result.predict(**target_kwargs(kwargs), group=groups, prob=prob, seed=seed)
    codes = result._group_codes(groups, held.n_runs) if groups is not None else None
    beyond = result.beyond_data({k: v for k, v in values.items() if v is not None}, codes)
    observed = held.loss
    lower, upper, median = prediction.lower, prediction.upper, prediction.median
    return pd.DataFrame(
        {
            "fold": fold,
            "row": np.asarray(held.rows).astype(str),
            "observed": observed,
            "median": median,
            "lower": lower,
            "upper": upper,
            "covered": (observed >= lower) & (observed <= upper),
            "abs_pct_error": 100.0 * np.abs(median - observed) / observed,
            "beyond": beyond,
            "fold_ok": bool(result.diagnostics.ok),
        }
    )


def _fit_kwargs(chains, draws, warmup, seed, extra) -> dict:
    out = {"chains": chains, "draws": draws, "warmup": warmup, "seed": seed}
    out.update(extra)
    return out


def leave_one_group_out(
    runs,
    law="chinchilla",
    *,
    by: str = "sweep",
    structured: bool = True,
    discrepancy: bool | None = None,
    folds: Sequence[str] | None = None,
    prob: float = 0.95,
    chains: int = 4,
    draws: int = 500,
    warmup: int = 500,
    seed: int = 0,
    **fit_kwargs,
) -> Validation:
    """Refit without each sweep (or group) in turn and score its held-out runs.

    Args:
        runs: a :class:`~bayescale.data.runs.Runs` with a sweep (``by="sweep"``) or group column.
        law: law or spec (see :func:`bayescale.fit`).
        by: ``sweep`` (isoFLOP budgets, ladders) or ``group``.
        structured: keep the sweep random effect and add the discrepancy term; False fits
            the plain law (sweep column dropped).
        discrepancy: override the discrepancy term (default: follows ``structured``).
        folds: names of the sweeps/groups to hold out (default: all).
        prob: predictive interval probability.
        chains, draws, warmup, seed, fit_kwargs: passed to :func:`bayescale.fit`
            (``pooling``, ``priors``, ``likelihood``, ...).

    Returns:
        A :class:`Validation`.

    Example:
        >>> runs = bs.load_xlstm()                                            # doctest: +SKIP
        >>> leave_one_group_out(runs, "chinchilla", pooling="shared").summary()  # doctest: +SKIP
    """
    from .._util import check_prob

    prob = check_prob(prob)
    if by not in ("sweep", "group"):
        raise ValueError(f"by must be 'sweep' or 'group' but got {by!r}")
    codes, names = getattr(runs, by), getattr(runs, f"{by}_names")
    if codes is None:
        raise ValueError(f"the runs have no {by} column to leave out (read_runs({by}=COLUMN))")
    present = [names[c] for c in np.unique(codes)]
    if len(present) < 2:
        raise ValueError(f"leave-one-{by}-out needs at least 2 {by}s but found {len(present)}")
    chosen = present if folds is None else [str(f) for f in folds]
    unknown = [f for f in chosen if f not in present]
    if unknown:
        raise ValueError(f"unknown {by} {unknown[0]!r}; {by}s: {', '.join(present)}")
    started = time.perf_counter()
    frames = []
    kwargs = _fit_kwargs(chains, draws, warmup, seed, fit_kwargs)
    for fold in chosen:
        held_mask = np.asarray(names, dtype=object)[codes] == fold
        result = _fit_fold(runs.select(~held_mask), law, structured, discrepancy, kwargs)
        frames.append(_score_fold(result, runs.select(held_mask), fold, prob, seed))
    return Validation(
        pd.concat(frames, ignore_index=True),
        prob,
        _settings(law, f"leave-one-{by}-out", structured, discrepancy, kwargs),
        time.perf_counter() - started,
    )


def leave_largest_out(
    runs,
    law="chinchilla",
    *,
    input: str = "params",
    structured: bool = True,
    discrepancy: bool | None = None,
    prob: float = 0.95,
    chains: int = 4,
    draws: int = 500,
    warmup: int = 500,
    seed: int = 0,
    **fit_kwargs,
) -> Validation:
    """Hold out the runs at the largest value of ``input`` (model size by default).

    Args:
        runs: a :class:`~bayescale.data.runs.Runs`.
        law: law or spec.
        input: ``params``, ``tokens`` or ``compute``.
        structured: keep the runs' sweep effect (if any) and add the discrepancy term.
        discrepancy, prob, chains, draws, warmup, seed, fit_kwargs: as in
            :func:`leave_one_group_out`.

    Example:
        >>> runs = bs.load_gadre2024(downstream=None)                         # doctest: +SKIP
        >>> leave_largest_out(runs, "gadre2024", pooling="shared").summary()   # doctest: +SKIP
    """
    from .._util import check_prob

    prob = check_prob(prob)
    values = getattr(runs, input, None) if input in ("params", "tokens", "compute") else None
    if values is None:
        raise ValueError(
            f"input must name a column the runs have (params, tokens, compute) but got {input!r}"
        )
    held_mask = values == values.max()
    if held_mask.all():
        raise ValueError(f"every run has the largest {input}: nothing left to fit")
    started = time.perf_counter()
    kwargs = _fit_kwargs(chains, draws, warmup, seed, fit_kwargs)
    result = _fit_fold(runs.select(~held_mask), law, structured, discrepancy, kwargs)
    fold = f"{input}={values.max():.4g}"
    frame = _score_fold(result, runs.select(held_mask), fold, prob, seed)
    return Validation(
        frame,
        prob,
        _settings(law, f"leave-largest-{input}-out", structured, discrepancy, kwargs),
        time.perf_counter() - started,
    )


def _settings(law, split, structured, discrepancy, kwargs) -> dict:
    name = law if isinstance(law, str) else getattr(law, "name", str(law))
    return {
        "law": name,
        "split": split,
        "structured": bool(structured),
        "discrepancy": bool(structured if discrepancy is None else discrepancy),
        **{k: v for k, v in kwargs.items() if isinstance(v, str | int | float | bool)},
    }


def compare_structured(validate, *args, **kwargs) -> tuple[pd.DataFrame, Mapping[str, Validation]]:
    """Run a validation with and without the structured terms; one row of scores each.

    Args:
        validate: :func:`leave_one_group_out` or :func:`leave_largest_out`.
        args, kwargs: passed on (not ``structured``).

    Example:
        >>> table, _ = compare_structured(leave_one_group_out, bs.load_porian2024())  # doctest: +SKIP
    """
    out = {
        "plain": validate(*args, structured=False, **kwargs),
        "structured": validate(*args, structured=True, **kwargs),
    }
    table = pd.DataFrame({name: v.summary() for name, v in out.items()}).T
    return table, out
