"""How many studies a calibrated forecaster would put above a sharpness ratio, by chance.

    .venv/bin/python bench/sharpness.py                     # reads bench/results/backtest.json
    .venv/bin/python bench/sharpness.py FILE.json --threshold 3 --replicates 1000

A study's sharpness is its median 95% half-width over its median relative error (about 2.9
for calibrated normal errors). This script takes the intervals the corpus run
(`make backtest`, which writes bench/results/backtest.json) gave every held-out run, and
simulates outcomes that a perfectly calibrated forecaster would see. Each outcome is drawn
from the run's own predictive distribution, a normal on log loss with the run's 95% width.
A share ``rho`` of its variance is common to the runs of one fold, as a law's extrapolation
error is. The script then counts the studies above the threshold, and prints that count's
mean and 90% range next to the observed count and the within-fold correlation of the
observed z-scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _folds(payload: dict) -> dict[str, list[list[dict]]]:
    studies = {}
    for name, backtest in payload["backtests"].items():
        folds: dict[str, list[dict]] = {}
        for run in backtest["runs"]:
            if run["z"] is not None and run["median"] is not None:
                folds.setdefault(run["fold"], []).append(run)
        if folds:
            studies[name] = list(folds.values())
    return studies


def within_fold_correlation(studies: dict[str, list[list[dict]]]) -> float:
    """Intra-class correlation of the z-scores (clipped to +-4) of runs sharing a fold."""
    groups = [
        np.clip([r["z"] for r in fold], -4, 4) for folds in studies.values() for fold in folds
    ]
    values = np.concatenate(groups)
    k, n = len(groups), len(values)
    grand = values.mean()
    between = sum(len(g) * (g.mean() - grand) ** 2 for g in groups) / (k - 1)
    within = sum(((g - g.mean()) ** 2).sum() for g in groups) / (n - k)
    size = (n - sum(len(g) ** 2 for g in groups) / n) / (k - 1)
    return float((between - within) / (between + (size - 1) * within))


def simulated_counts(studies, rho: float, threshold: float, replicates: int, seed: int):
    """Studies above ``threshold`` in each of ``replicates`` calibrated worlds."""
    rng = np.random.default_rng(seed)
    prepared = []
    for folds in studies.values():
        scale = [
            np.array([(np.log(r["upper_95"]) - np.log(r["lower_95"])) / (2 * 1.959964) for r in f])
            for f in folds
        ]
        half = np.median(
            [(r["upper_95"] - r["lower_95"]) / 2 / r["median"] for f in folds for r in f]
        )
        prepared.append((scale, half))
    counts = np.zeros(replicates, int)
    for i in range(replicates):
        for scale, half in prepared:
            errors = []
            for s in scale:
                z = np.sqrt(rho) * rng.standard_normal() + np.sqrt(1 - rho) * rng.standard_normal(
                    len(s)
                )
                errors.append(np.abs(np.expm1(s * z)))
            counts[i] += half > threshold * np.median(np.concatenate(errors))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default="bench/results/backtest.json")
    parser.add_argument("--threshold", type=float, default=3.0)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = Path(args.file)
    if not path.exists():
        print(f"error: {str(path)!r} not found; run `make backtest` first", file=sys.stderr)
        return 2
    payload = json.loads(path.read_text())
    studies = _folds(payload)
    observed = sum(
        1
        for name, row in payload["studies"].items()
        if name in studies
        and row.get("sharpness") is not None
        and row["sharpness"] > args.threshold
    )
    icc = within_fold_correlation(studies)
    runs = sum(len(f) for folds in studies.values() for f in folds)
    print(f"{len(studies)} studies, {runs} held-out runs; within-fold correlation of z: {icc:.2f}")
    print(f"observed: {observed} studies with half-width > {args.threshold:g}x error")
    for rho in (0.0, 0.5, round(icc, 2)):
        counts = simulated_counts(studies, rho, args.threshold, args.replicates, args.seed)
        lo, hi = np.percentile(counts, [5, 95])
        print(
            f"calibrated forecaster, shared share {rho:.2f}: mean {counts.mean():.1f} "
            f"(90%: {lo:.0f}-{hi:.0f}) of {len(studies)} above {args.threshold:g}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
