"""Warm-up on a subsample: how :func:`~bayescale.inference.fit` adapts NUTS on large tables.

On a table of many runs the posterior is narrow and its exponents and coefficients are
strongly correlated, and NUTS's warm-up, which starts from an identity metric, spends
most of its iterations on trees of the deepest size warm-up allows (255 leapfrog steps)
before its windows have estimated the metric. Each step costs a pass over every run:
on 10,000 simulated Chinchilla runs the warm-up took 118 of a fit's 153 s, the 1,000
draws 11 s (one chain without the pilot, each sampler call timed, 2 cores).

A table of at least :data:`PILOT_MIN_ROWS` runs therefore adapts on a pilot: the same
model (its priors, reference scale and parameterisation) sampled on a random
:data:`PILOT_ROWS` of the runs, every group and sweep among them, with the whole warm-up
schedule. The full table then starts each chain where its pilot chain ended, with the
pilot's metric, and re-adapts the step size for :data:`FULL_WARMUP` iterations
(numpyro's first window: its initial step size search corrects the pilot's
``sqrt(n / m)``-times wider posterior). The posterior shape of ``m`` runs is that of
``n`` runs up to that scale, so the metric carries over. With the CLI's defaults
(``bench/rows.py``, 2 cores) 10,000 runs fit in 26 s and 100,000 in 68 s (peak memory
1.05 GB, 0 divergences, R-hat 1.004), and the posterior is that of the full warm-up
within Monte Carlo error (``tests/test_pilot.py``). The draws are judged by the usual
diagnostics; the pilot's own draws are not kept.

Example:
    >>> import bayescale as bs
    >>> runs = bs.read_runs(bs.simulate_ladder(seed=0), params="params", tokens="tokens",
    ...                     loss="loss")
    >>> pilot_rows(runs, 5, seed=0).tolist()
    [3, 11, 16, 28, 29]
"""

from __future__ import annotations

import time

import numpy as np

from ..data.runs import Runs
from .sampling import sample

__all__ = [
    "FULL_WARMUP",
    "PILOT_DRAWS",
    "PILOT_MIN_ROWS",
    "PILOT_ROWS",
    "pilot_rows",
    "pilot_start",
]

#: tables of at least this many runs adapt NUTS on a pilot subsample
PILOT_MIN_ROWS = 8192
#: runs in the pilot subsample (a padded size of its own: its programs are compiled once)
PILOT_ROWS = 4096
#: draws the pilot runs after its warm-up (only its end state is kept)
PILOT_DRAWS = 20
#: step-size-only warm-up of the full table after the pilot
FULL_WARMUP = 200


def uses_pilot(runs: Runs, *, warm_start, loss_mask) -> bool:
    """Whether :func:`~bayescale.inference.fit` adapts on a pilot for these runs.

    Not with a user's ``warm_start`` (it brings its own metric) nor a ``loss_mask``.
    """
    return warm_start is None and loss_mask is None and runs.n_runs >= PILOT_MIN_ROWS


def pilot_rows(runs: Runs, size: int, *, seed: int) -> np.ndarray:
    """Sorted positions of ``size`` runs (all, if fewer): a random choice holding at least
    one run of every group and sweep, so that each group's and sweep's parameters are
    informed in the pilot."""
    n = runs.n_runs
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng([int(seed), 4096])
    order = rng.permutation(n)
    must = [order[:1]]
    for codes in (runs.group, runs.sweep):
        if codes is not None:  # the first run of each group / sweep in the random order
            must.append(order[np.unique(np.asarray(codes)[order], return_index=True)[1]])
    must = np.unique(np.concatenate(must))
    rest = order[~np.isin(order, must)][: max(0, size - must.size)]
    return np.sort(np.concatenate([must, rest]))


def pilot_start(scaling_model, runs: Runs, *, seed: int, warmup: int, **settings):
    """NUTS adapted on a pilot subsample of ``runs``: the ``start`` of the full fit.

    ``settings`` are :func:`~bayescale.inference.sampling.sample`'s (chains, device,
    target_accept, dense_mass). Returns ``(start, info)``: each chain's end state and
    metric, and what the pilot ran (rows, warm-up, draws, seconds).
    """
    started = time.perf_counter()
    rows = pilot_rows(runs, PILOT_ROWS, seed=seed)
    _, _, end = sample(
        scaling_model, runs.select(rows), seed=seed, warmup=warmup, draws=PILOT_DRAWS, **settings
    )
    info = {
        "rows": int(rows.size),
        "warmup": int(warmup),
        "draws": PILOT_DRAWS,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return end, info
