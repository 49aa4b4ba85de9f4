"""Bounded memory for computations over many runs: how finely to split them.

Two places grow with the number of runs times something long:

* **NUTS on host devices.** XLA's CPU runtime, running one program on several host
  devices at once (``shard_map``, the parallel chains of :mod:`bayescale.inference.sampler`),
  holds memory for the loop iterations it has executed until the program returns: a
  fit of 20,000 runs whose 600 iterations ran in one call of ``advance`` peaked at
  5.1 GB, against 0.83 GB on one host device, and 16.4 GB at 100,000 runs. Calls of a
  few iterations each release it as they return (the same draws, bit for bit: the
  chains are only paused). :func:`advance_calls` picks their number.
* **Per-draw values of every run** (the pointwise log-likelihood, draws x runs):
  :func:`row_chunks` splits the runs so that at most :data:`CHUNK_VALUES` values are
  alive at once.

Example:
    >>> advance_calls(2000, rows=1024, parallel=True, progress=False)
    1
    >>> advance_calls(2000, rows=131072, parallel=True, progress=False)
    80
    >>> [(c.start, c.stop) for c in row_chunks(10, draws=4, values=12)]
    [(0, 3), (3, 6), (6, 9), (9, 10)]
"""

from __future__ import annotations

import math

__all__ = ["ADVANCE_ROW_ITERATIONS", "CHUNK_VALUES", "advance_calls", "row_chunks"]

#: rows x NUTS iterations per call of ``advance`` on host devices: 25 iterations of a
#: 131,072-row (padded) table, the whole run for tables up to ~1,600 rows (their programs
#: run as before, in one call)
ADVANCE_ROW_ITERATIONS = 25 * 131_072
#: values (draws x runs) alive at once in a chunked per-run computation (32 MB of float64)
CHUNK_VALUES = 4_000_000
#: calls of ``advance`` when a progress bar is shown, at least
PROGRESS_CALLS = 20


def advance_calls(iterations: int, *, rows: int, parallel: bool, progress: bool) -> int:
    """How many calls of ``advance`` run ``iterations`` NUTS iterations of ``rows`` rows.

    On host devices (``parallel``), at most :data:`ADVANCE_ROW_ITERATIONS` rows x
    iterations per call, so the memory XLA holds until a call returns stays bounded; at
    least :data:`PROGRESS_CALLS` with a progress bar; otherwise one call.
    """
    calls = PROGRESS_CALLS if progress else 1
    if parallel:
        calls = max(calls, math.ceil(iterations * max(rows, 1) / ADVANCE_ROW_ITERATIONS))
    return max(1, min(calls, iterations))


def row_chunks(rows: int, *, draws: int, values: int | None = None) -> list[slice]:
    """Slices of ``rows`` runs, each with at most ``values`` (default
    :data:`CHUNK_VALUES`) draws x runs, and at least one run."""
    values = CHUNK_VALUES if values is None else values
    size = max(1, values // max(draws, 1))
    return [slice(i, min(i + size, rows)) for i in range(0, rows, size)]
