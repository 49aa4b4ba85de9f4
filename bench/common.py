"""What bench/run.py and bench/gpu.py share: workers in fresh interpreters.

A benchmark script re-runs itself with ``--worker ...`` and a JSON payload on stdin; the
worker times itself and prints one JSON line tagged with :data:`TAG` (:func:`emit`), which
:func:`spawn` reads back with the process's wall time.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = "BENCH_RESULT "


def emit(result: dict) -> None:
    """A worker's result: one tagged JSON line on stdout.

    Every worker (bayescale, PyMC, nutpie, the frequentist baseline) then freezes the
    objects alive out of the garbage collector, as the ``bayescale`` command does before
    it exits: the interpreter's last collection at exit walked them all (~0.4 s for a
    process holding JAX, ~10^6 objects), time that is not the method's. A process's wall
    time still includes the rest of its teardown.
    """
    print(TAG + json.dumps(result), flush=True)
    gc.freeze()


def spawn(
    script: str, args: list[str], payload: dict, env: dict | None = None, timeout: float = 1800
) -> dict:
    """Run ``script --worker *args`` in a fresh interpreter; its JSON plus ``process_wall``.

    Raises RuntimeError (with the end of its stderr) when the worker fails, and
    ``subprocess.TimeoutExpired`` when it runs past ``timeout`` seconds.
    """
    full_env = {**os.environ, "BAYESCALE_NO_PROGRESS": "1", **(env or {})}
    command = [sys.executable, str(Path(script).resolve()), "--worker", *args]
    started = time.perf_counter()
    proc = subprocess.run(
        command,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=timeout,
    )
    wall = time.perf_counter() - started
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(TAG)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        name = " ".join([Path(script).name, *args])
        raise RuntimeError(f"bench worker {name} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(lines[-1][len(TAG) :])
    result["process_wall"] = wall
    return result


def rss_mb() -> float:
    """Peak RSS in MB of this process or its largest child."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)  # KiB on Linux


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
