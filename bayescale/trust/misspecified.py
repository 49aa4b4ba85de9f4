"""What SBC cannot show: extrapolation coverage when the law itself is wrong.

The truth is a broken power law in compute and the fit ``kaplan_c`` with an irreducible
loss, the same law without the break: the break is the only misspecification. A control
whose truth has no break runs on the same ladders.

Example:
    >>> out = misspecification(20, break_at="beyond")          # doctest: +SKIP
    >>> out["misspecified"].coverage()                          # doctest: +SKIP
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..laws.core import get_law
from ..settings import SamplerOptions
from .calibration_design import _runs, _targets, simulate_design
from .calibration_result import LEVELS, Calibration, _score

__all__ = ["misspecification"]


def _fit_quietly(runs, law, **kwargs):
    """Fit without the diagnostics warning; return (fit, ok).

    The fit's ``info["warn"]`` is turned off so that its predictions do not warn either:
    calibration counts not-ok fits (``Calibration.not_ok``) instead.
    """
    from .._util import FitWarning
    from ..inference.fitting import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        result = fit(runs, law, **kwargs)
    result.info["warn"] = False
    return result, bool(result.diagnostics.ok)


def _bnsl_truth(
    rng: np.random.Generator, log_c: np.ndarray, break_at: str, kind: str = "flatten"
) -> dict:
    """A broken power law in compute with a clear change of slope."""
    c_lo, c_hi = float(log_c.min()), float(log_c.max())
    if break_at == "inside":
        log_d = c_lo + rng.uniform(0.45, 0.65) * (c_hi - c_lo)
    else:  # just beyond: between the data and the 10x target
        log_d = c_hi + rng.uniform(0.3, 1.5)
    c0 = rng.uniform(0.15, 0.3)
    return {
        "a": rng.uniform(1.5, 2.0),
        "b": float(np.exp(rng.uniform(0.0, 0.7) + c0 * np.mean(log_c))),
        "c0": c0,
        # flatten: the slope halves after the break (extrapolations turn optimistic);
        # steepen: it doubles (pessimistic)
        "c_1": -0.5 * c0 if kind == "flatten" else c0,
        "d_1": float(np.exp(log_d)),
        "f_1": rng.uniform(0.1, 0.4),
    }


def misspecification(
    replicates: int,
    seed: int = 0,
    *,
    break_at: str = "inside",
    kind: str = "flatten",
    runs_per_fit: int = 16,
    noise: float = 0.01,
    chains: int = 2,
    draws: int = 300,
    warmup: int = 300,
    discrepancy: bool = False,
    levels: Sequence[float] = LEVELS,
    check: bool = True,
) -> dict[str, Calibration]:
    """Extrapolation coverage when the law is wrong: bnsl truth, kaplan_c (+E) fit.

    The pairing is nested: ``kaplan_c`` with an irreducible loss, ``L = E + (C_c/C)^alpha``,
    is a broken power law with no break, on the same input (compute). So the *only*
    misspecification is the break; fitting a law of N and D to a truth of compute alone would
    mix misspecification with an unidentified N/D split. Each replicate draws a bnsl truth
    (slope halving at a break ``inside`` the ladder's compute range or just ``beyond`` it),
    fits ``kaplan_c`` to the same ladder as a control whose truth has no break (``c_1 = 0``)
    and to the broken one, and scores ``loss@10x``/``loss@100x``. ``kind="flatten"`` halves
    the slope after the break (an irreducible loss can mimic it), ``"steepen"`` doubles it
    (no ``E`` can).

    Returns:
        ``{"well_specified": Calibration, "misspecified": Calibration}`` with ``check_fired``
        counting replicates whose :meth:`Fit.check` fired.

    Example:
        >>> out = misspecification(20, break_at="beyond")          # doctest: +SKIP
        >>> out["misspecified"].coverage()                          # doctest: +SKIP
    """
    if break_at not in ("inside", "beyond"):
        raise ValueError(f"break_at must be 'inside' or 'beyond' but got {break_at!r}")
    if kind not in ("flatten", "steepen"):
        raise ValueError(f"kind must be 'flatten' or 'steepen' but got {kind!r}")
    bnsl = get_law("bnsl", k=1, x="compute")
    fit_law = get_law("kaplan_c", irreducible=True)
    rng = np.random.default_rng(seed)
    levels = tuple(float(lvl) for lvl in levels)
    started = time.perf_counter()
    rows = {
        name: {"cov": [], "rank": [], "truth": [], "fired": 0, "not_ok": 0}
        for name in ("well_specified", "misspecified")
    }
    for _ in range(replicates):
        design = simulate_design(bnsl, runs_per_fit, rng)
        log_c = np.log(design["compute"])
        truth = _bnsl_truth(rng, log_c, break_at, kind)
        eps = rng.standard_normal(runs_per_fit)
        fit_seed = int(rng.integers(2**31 - 1))
        for name, c1 in (("well_specified", 0.0), ("misspecified", truth["c_1"])):
            t = {**truth, "c_1": c1}
            mean = np.asarray(bnsl.loss(t, compute=design["compute"]), np.float64)
            runs = _runs(bnsl, design, mean * np.exp(noise * eps))
            result, ok = _fit_quietly(
                runs,
                fit_law,
                sampler=SamplerOptions(chains=chains, draws=draws, warmup=warmup, progress=False),
                seed=fit_seed,
                discrepancy=discrepancy,
            )
            rows[name]["not_ok"] += not ok
            if check:
                rows[name]["fired"] += not result.check(warn=False).ok
            cov_row, rank_row, truth_row = {lvl: {} for lvl in levels}, {}, {}
            for label, target in _targets(bnsl, design).items():
                value = float(np.asarray(bnsl.loss(t, compute=target["compute"])).reshape(-1)[0])
                draws_ = result.predict(compute=target["compute"], noise=False).draws
                rank, cov = _score(draws_, value, 99, levels)
                rank_row[f"loss@{label}"] = rank
                truth_row[f"loss@{label}"] = value
                for lvl in levels:
                    cov_row[lvl][f"loss@{label}"] = cov[lvl]
            rows[name]["cov"].append(cov_row)
            rows[name]["rank"].append(rank_row)
            rows[name]["truth"].append(truth_row)
    seconds = time.perf_counter() - started
    out = {}
    for name, r in rows.items():
        out[name] = Calibration(
            law=fit_law.name,
            ranks=pd.DataFrame(r["rank"]),
            covered={lvl: pd.DataFrame([c[lvl] for c in r["cov"]]) for lvl in levels},
            truths=pd.DataFrame(r["truth"]),
            n_ranked=99,
            not_ok=r["not_ok"],
            check_fired=r["fired"] if check else None,
            settings={
                "truth": "bnsl k=1 (compute)" + ("" if name == "misspecified" else ", c_1 = 0"),
                "break_at": break_at,
                "kind": kind,
                "runs_per_fit": runs_per_fit,
                "noise": noise,
                "discrepancy": discrepancy,
                "chains": chains,
                "draws": draws,
                "warmup": warmup,
                "seed": seed,
            },
            seconds=seconds,
        )
    return out
