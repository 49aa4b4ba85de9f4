"""The warm-up schedule: its tree depths per adaptation window and a warm start's entry.

numpyro adapts the step size in a first window (Stan's 75-iteration initial buffer), then
the mass matrix in doubling windows. Trees in that first window stop at
:data:`FIRST_WINDOW_TREE_DEPTH` (the metric is still the identity), in the rest of warm-up
at :data:`WARMUP_TREE_DEPTH`; a warm start runs the last ``warmup`` iterations of the
schedule it came from (:func:`_schedule`), so it reuses that schedule's programs.

Example:
    >>> _capped_until(1000), _schedule(1000, None)
    (75, 1000)
"""

from __future__ import annotations

import numpy as np

#: Deepest NUTS tree in the first warm-up window, where the metric is still the identity:
#: trees there max out (1023 steps) and made those 75 iterations cost more than all 1000
#: draws; 2^6 - 1 leapfrog steps halved the cost of a whole fit.
FIRST_WINDOW_TREE_DEPTH = 6
#: Deepest NUTS tree in the rest of warm-up (the draws use ``max_tree_depth``). Capped at 6
#: there too, a chain whose metric came out of a window badly scaled could not move far
#: enough to estimate the next one: it ran its draws at a tenth of its siblings' step size
#: with ~300 leapfrog steps each (2 of 64 Chinchilla bootstrap fits, seed 0), and every
#: lane of a vmapped GPU batch waits for such a chain. 2^8 - 1 steps leave room to repair
#: the metric; uncapped (10), a GPU batch's warm-up waits for the deepest lane's trees.
#: Measured (bench/gpu.py, H100, 1024 fits): 102 s at 6, 52 s at 10, 40 s at 8.
WARMUP_TREE_DEPTH = 8


class _TreeDepths(tuple):
    """numpyro's ``(warm-up, draws)`` max tree depths, where the warm-up one may be traced.

    numpyro picks ``self[0]`` or ``self[1]`` by iteration, which takes a traced depth, and
    sizes its trajectory buffers by ``max()`` of the pair, which must stay a Python int:
    iterating yields the draws' depth alone, never below the warm-up one.
    """

    def __iter__(self):
        return iter((self[1],))


def _capped_until(warmup: int) -> int:
    """Iterations whose trees stop at ``FIRST_WINDOW_TREE_DEPTH``: numpyro's first window.

    In that window the metric is still the identity and trees would max out; from the
    first mass-matrix window on they may grow to ``WARMUP_TREE_DEPTH``. A schedule of one
    window (fewer than 20 iterations) never adapts the metric and stays capped.

    Example:
        >>> _capped_until(1000), _capped_until(100), _capped_until(10)
        (75, 15, 10)
    """
    from numpyro.infer.hmc_util import build_adaptation_schedule

    windows = build_adaptation_schedule(warmup)
    return windows[0].end + 1 if len(windows) > 1 else warmup


#: Warm-up schedule of a warm start whose ``start`` does not name the schedule it came
#: from (a default fit's). A warm start reuses the programs of that schedule: it enters
#: it ``warmup`` iterations before its end, with its own metric.
SHARED_WARMUP = 1000
#: Length of numpyro's first adaptation window (Stan's 75-iteration initial buffer) in
#: every schedule of 150 iterations or more.
FIRST_WINDOW = 75


def _schedule(warmup: int, start) -> int:
    """The warm-up schedule length the programs of a run are compiled for.

    A cold start runs all ``warmup`` iterations of its own schedule. A warm start runs
    the last ``warmup`` iterations of the schedule its ``start`` came from (so a refit
    compiles no new ``advance`` or ``finish``: only its ``init``). numpyro's adaptation
    moves to its first mass-matrix window only when an iteration hits the end of its
    first (step-size-only) window, which a warm start, beginning later, never does: its
    metric is kept and its step size is adapted by dual averaging to the end of warm-up.
    A warm-up too long to begin after that first window gets a schedule of its own.
    """
    if start is None:
        return warmup
    length = int(np.max(start["schedule"])) if "schedule" in start else SHARED_WARMUP
    return max(length, warmup + FIRST_WINDOW)
