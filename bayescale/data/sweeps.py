"""IsoFLOP sweeps in a runs table: the runs of each FLOP budget, near-optimal subsets, budgets.

An isoFLOP sweep trains several model sizes at one budget C; ``read_runs(..., sweep=COLUMN)``
names each run's budget. These helpers select and summarise sweeps before any fit;
:mod:`bayescale.allocate.isoflop` reads the compute-optimal N off them.

Example:
    >>> import bayescale as bs
    >>> runs = bs.read_runs(bs.simulate_ladder(seed=0), params="params", tokens="tokens", loss="loss")
    >>> without_sweep(runs).sweep is None
    True
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

__all__ = ["near_optimum", "sweep_budgets", "without_sweep"]


def _require_sweep(runs) -> None:
    if getattr(runs, "sweep", None) is None:
        raise ValueError(
            "isoFLOP analysis needs a sweep column naming each run's FLOP budget "
            "(read_runs(..., sweep=COLUMN)); these runs have none"
        )
    if runs.params is None or runs.compute is None:
        raise ValueError("isoFLOP analysis needs params and compute (or tokens) for every run")


def _select_group(runs, group):
    if group is None:
        return runs
    if runs.group is None:
        raise ValueError(f"these runs have no group column but group {group!r} was given")
    if str(group) not in runs.group_names:
        raise ValueError(f"unknown group {group!r}; groups: {', '.join(runs.group_names)}")
    return runs.select(runs.group == runs.group_names.index(str(group)))


def without_sweep(runs):
    """The same runs without their sweep column: the fit then has no per-sweep deviation.

    Example:
        >>> bs.fit(without_sweep(bs.load_porian2024()), "chinchilla")   # doctest: +SKIP
    """
    return replace(runs, sweep=None, sweep_names=())


def near_optimum(runs, max_excess: float = 0.1, min_points: int = 3):
    """Keep, per sweep, the runs whose loss is within ``max_excess`` of the sweep's best.

    A run is kept when ``loss <= (1 + max_excess) * min(loss in its sweep)``; each sweep keeps
    at least its ``min_points`` lowest-loss runs (a parabola needs three). Runs without a
    sweep are kept as they are.

    Example:
        >>> near_optimum(bs.load_porian2024(), max_excess=0.1).n_runs   # doctest: +SKIP
        86
    """
    _require_sweep(runs)
    if not (isinstance(max_excess, int | float) and max_excess > 0):
        raise ValueError(f"max_excess must be a number > 0 but got {max_excess!r}")
    if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 1:
        raise ValueError(f"min_points must be an integer >= 1 but got {min_points!r}")
    frame = pd.DataFrame({"sweep": runs.sweep, "loss": runs.loss})
    if runs.group is not None:
        frame["group"] = runs.group
    keys = ["group", "sweep"] if runs.group is not None else ["sweep"]
    best = frame.groupby(keys).loss.transform("min")
    rank = frame.groupby(keys).loss.rank(method="first")
    keep = (frame.loss <= (1 + max_excess) * best) | (rank <= min_points)
    return runs.select(keep.to_numpy())


def sweep_budgets(runs) -> pd.DataFrame:
    """One row per sweep: ``sweep``, ``compute`` (geometric mean of its runs' compute),
    ``compute_spread`` (max/min compute within it) and ``n_runs``, sorted by compute.

    Example:
        >>> sweep_budgets(bs.load_porian2024())["compute"].iloc[0]     # doctest: +SKIP
        1.25e+16
    """
    _require_sweep(runs)
    frame = pd.DataFrame(
        {"sweep": np.asarray(runs.sweep_names, dtype=object)[runs.sweep], "compute": runs.compute}
    )
    out = frame.groupby("sweep", sort=False).compute.agg(
        compute=lambda c: float(np.exp(np.mean(np.log(c)))),
        compute_spread=lambda c: float(np.max(c) / np.min(c)),
        n_runs="size",
    )
    return out.reset_index().sort_values("compute", ignore_index=True)
