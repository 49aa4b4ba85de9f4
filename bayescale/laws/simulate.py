"""Simulated training ladders with known truth (for demos, tests and calibration).

Example:
    >>> frame = simulate_ladder("chinchilla", seed=0)
    >>> sorted(frame.columns)
    ['compute', 'loss', 'params', 'tokens']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .base import Law
from .core import get_law

__all__ = ["HOFFMANN_2022", "simulate_ladder"]

#: Hoffmann et al. 2022, Approach 3 point estimates.
HOFFMANN_2022 = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def simulate_ladder(
    law: str | Law = "chinchilla",
    truth: Mapping[str, float] | None = None,
    *,
    params: Sequence[float] = (2e7, 5e7, 1.2e8, 3e8, 7e8, 1.5e9),
    tokens_per_param: Sequence[float] = (5.0, 10.0, 20.0, 40.0, 80.0),
    compute: Sequence[float] | None = None,
    noise: float = 0.01,
    seed: int = 0,
    group: str | None = None,
) -> pd.DataFrame:
    """Simulate runs from a law with log-normal run-to-run noise.

    Args:
        law: law name or object; ``truth`` holds its reported (natural-scale) parameters
            (default: Hoffmann et al.'s values for ``chinchilla``).
        params: model sizes N.
        tokens_per_param: token multipliers M = D/N; every (N, M) pair is one run.
        compute: for laws of compute alone (kaplan_c, bnsl), the budgets to simulate.
        noise: standard deviation of the log-loss noise.
        seed: seed of the noise.
        group: adds a ``group`` column with this name.

    Returns:
        A DataFrame with columns params, tokens, compute, loss (and group).
    """
    law = get_law(law)
    if truth is None:
        if law.name != "chinchilla":
            raise ValueError(f"give the true parameters of law {law.name!r} as truth={{...}}")
        truth = HOFFMANN_2022
    missing = [k for k in law.reported_names if k not in truth]
    if missing:
        raise ValueError(f"truth for law {law.name!r} lacks {', '.join(missing)}")
    if law.inputs == ("compute",) or (compute is not None and "params" not in law.inputs):
        c = np.asarray(compute if compute is not None else np.geomspace(1e17, 1e21, 12), np.float64)
        n = np.full_like(c, np.nan)
        d = np.full_like(c, np.nan)
    else:
        n_grid, m_grid = np.meshgrid(
            np.asarray(params, np.float64), np.asarray(tokens_per_param, np.float64)
        )
        n, d = n_grid.ravel(), (n_grid * m_grid).ravel()
        c = 6.0 * n * d
    inputs = {"params": n, "tokens": d, "compute": c}
    mean = law.loss(truth, **{k: inputs[k] for k in law.inputs})
    rng = np.random.default_rng(seed)
    loss = np.asarray(mean) * np.exp(noise * rng.standard_normal(np.shape(mean)))
    frame = pd.DataFrame({"params": n, "tokens": d, "compute": c, "loss": loss})
    if law.inputs == ("compute",):
        frame = frame[["compute", "loss"]]
    if group is not None:
        frame["group"] = group
    return frame
