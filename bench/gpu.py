"""Batched fits on a GPU: ``bs.fit_many`` for 1, 64 and 1024 datasets, with the CPU beside it.

Each case runs in a fresh interpreter with an EMPTY compilation cache and fits ``n``
bootstrap resamples of the 245 Chinchilla points (Besiroglu et al. 2024) with the bench's
model (``chinchilla_besiroglu2024``: Student-t on log loss, default priors), 4 chains x
(500 warm-up + 500 draws) per dataset, as ``bench/run.py``'s batch section does. It times

* the first ``fit_many`` call (tracing and compiling included) and a second call on the
  same datasets with new seeds (the programs are compiled: what every later batch of this
  shape costs), split into the sampler (``run_many``) and building the ``n`` Fit objects
  with their diagnostics on the host;
* ``k`` sequential ``bs.fit`` calls on the first ``k`` datasets (after one that compiles),
  the way a loop over datasets would run; "64 sequential" is ``64 x`` their median time,
  which is an estimate from ``k`` measured fits, labelled as such;
* the lock-step cost of vmapping: per draw, every lane waits for the longest trajectory
  in the batch, so ``mean(n_steps) / mean(max over lanes of n_steps)`` is the fraction of
  leapfrog steps that were useful work;
* peak device memory (``memory_stats()``, GPU only) and peak host RSS.

On a GPU the datasets' chains are vmapped (``vectorized``); the CPU cases use bayescale's
CPU layout, jobs sharded over ``--host-devices`` host devices (default: every core).

Usage:
    python bench/gpu.py                           # GPU 1, 64, 1024; CPU 1, 64
    python bench/gpu.py --sizes 1,64 --cpu-sizes 1 --sequential 4
    python bench/gpu.py --cpu-sizes "" --out /tmp/gpu.json   # GPU only
    python bench/gpu.py --warm                    # warm-started resamples (bootstrap)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import emit, log, rss_mb, spawn

HERE = Path(__file__).resolve().parent
SPEC = "chinchilla_besiroglu2024"


def worker(p: dict) -> dict:
    """One case: ``n`` datasets on ``device``; fit_many twice, then ``k`` sequential fits."""
    started = time.perf_counter()
    import warnings

    import numpy as np

    import bayescale as bs
    import bayescale.inference.sampler as sampler

    imported = time.perf_counter() - started
    sampling: list[float] = []
    run_many = sampler.run_many

    def timed_run_many(*args, **kwargs):
        t = time.perf_counter()
        out = run_many(*args, **kwargs)
        sampling.append(time.perf_counter() - t)
        return out

    sampler.run_many = timed_run_many  # fit_many imports it from the module at call time
    rng = np.random.default_rng(2)
    runs = bs.load_chinchilla()
    n, settings, device = p["n"], p["settings"], p["device"]
    datasets = [runs.select(rng.integers(0, runs.n_runs, runs.n_runs)) for _ in range(n)]
    calls, start, start_seconds = [], None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        if p.get("warm"):
            # the bootstrap workflow: fit the data, then start every resample where its
            # chains ended (200 warm-up iterations adapt the step size); counted in 1st
            t = time.perf_counter()
            start = bs.fit(
                runs,
                SPEC,
                seed=10_000,
                sampler=bs.SamplerOptions(progress=False, device=device, **settings),
            )
            start_seconds = time.perf_counter() - t
            settings = {k: v for k, v in settings.items() if k != "warmup"}
        for call, seed in enumerate((0, n)[: p.get("calls", 2)]):
            t = time.perf_counter()
            fits = bs.fit_many(
                datasets,
                SPEC,
                seed=seed,
                warm_start=start,
                sampler=bs.SamplerOptions(device=device, **settings),
            )
            seconds = time.perf_counter() - t + (start_seconds if call == 0 and start else 0)
            calls.append(
                {
                    "seconds": seconds,
                    "sampler_seconds": sampling[call],
                    "fits_seconds": seconds - sampling[call],
                    "ok": int(sum(f.diagnostics.ok for f in fits)),
                    "min_ess_bulk": float(min(f.diagnostics.min_ess_bulk for f in fits)),
                    "max_r_hat": float(max(f.diagnostics.max_r_hat for f in fits)),
                    "divergences": int(sum(f.diagnostics.divergences for f in fits)),
                    **_lock_step([f.stats["n_steps"] for f in fits]),
                    "digest": _digest(fits),
                }
            )
        alpha = [float(np.median(f.samples["alpha"])) for f in fits]
        sequential = []
        for i in range(min(p["sequential"], n) + (1 if p["sequential"] else 0)):
            t = time.perf_counter()
            bs.fit(
                datasets[i % n],
                SPEC,
                seed=i,
                warm_start=start,
                sampler=bs.SamplerOptions(device=device, progress=False, **settings),
            )
            sequential.append(time.perf_counter() - t)
    import jax

    memory = None
    target = bs._jax.select_device(device)
    stats = target.memory_stats() if target.platform != "cpu" else None
    if stats:
        memory = round(stats.get("peak_bytes_in_use", 0) / 2**20, 1)
    return {
        "n": n,
        "device": device,
        "platform": target.platform,
        "device_kind": target.device_kind,
        "jax": jax.__version__,
        "imports_seconds": imported,
        "warm_start_fit_seconds": start_seconds,
        "first": calls[0],
        "second": calls[-1],  # the first again where only one call was made
        "calls": len(calls),
        # the first sequential fit compiles fit()'s own program (one dataset): left out
        "sequential_seconds": sequential[1:],
        "sequential_first_seconds": sequential[0] if sequential else None,
        "alpha_median_of_medians": float(np.median(alpha)),
        "device_peak_mb": memory,
        "rss_mb": rss_mb(),
        "in_process": time.perf_counter() - started,
    }


def _lock_step(n_steps: list) -> dict:
    """Leapfrog steps per draw: lanes' mean vs the batch's max (what vmapped lanes wait for).

    Two more figures say where the waiting comes from. ``independent_efficiency`` is what
    lanes that each ran their own iterations would reach (the batch then waits only for
    the lane with the most steps in all): near ``lock_step_efficiency``, a few lanes are
    slow at every draw; far above it, the longest trajectory moves from lane to lane.
    ``max_lane_mean_steps`` is the slowest lane's own mean.
    """
    import numpy as np

    steps = np.stack(n_steps).astype(np.float64)  # (n, chains, draws)
    lanes = steps.reshape(-1, steps.shape[-1])
    totals = lanes.sum(axis=1)
    return {
        "mean_steps": float(lanes.mean()),
        "mean_max_steps": float(lanes.max(axis=0).mean()),
        "lock_step_efficiency": float(lanes.mean() / lanes.max(axis=0).mean()),
        "independent_efficiency": float(totals.mean() / totals.max()),
        "max_lane_mean_steps": float(totals.max() / lanes.shape[1]),
    }


def _digest(fits) -> str:
    """A hash of every draw of every fit: equal across processes iff the batch reproduced."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for f in fits:
        for name in sorted(f.samples):
            h.update(np.ascontiguousarray(f.samples[name], dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def _spawn(payload: dict, env: dict, timeout: float) -> dict:
    """One case in a fresh interpreter; a failed or timed-out case reports its error."""
    try:
        return spawn(__file__, [], payload, env, timeout)
    except subprocess.TimeoutExpired:
        return {"n": payload["n"], "device": payload["device"], "error": f"timeout {timeout}s"}
    except RuntimeError as exc:
        return {"n": payload["n"], "device": payload["device"], "error": str(exc)}


def _gpu_visible() -> bool:
    import jax

    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def _sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def _table(cases: list[dict], settings: dict, warm: bool = False) -> str:
    warmup = (
        f"200 warm-up, warm-started from a fit of the full data (in 1st) + {settings['draws']}"
        if warm
        else f"{settings['warmup']} + {settings['draws']}"
    )
    lines = [
        f"fit_many on n Chinchilla bootstrap resamples, {settings['chains']} chains x "
        f"({warmup}) each; fresh process, empty cache.",
        "1st = first call incl. compile; 2nd = same shape again (sampler + host-side Fits;",
        "the 1st call's figures where only one call was made: n > --repeat-max);",
        "seq = median sequential fit(); 'x seq' = n x seq / 2nd (n x seq is an estimate).",
        "",
        f"{'device':6s} {'n':>5s} {'process':>8s} {'1st s':>7s} {'2nd s':>7s} "
        f"{'sampler':>8s} {'Fits':>6s} {'ms/fit':>7s} {'seq s':>6s} {'x seq':>6s} "
        f"{'ok':>9s} {'lock':>5s} {'GPU MB':>7s} {'RSS MB':>7s}",
    ]
    for c in cases:
        if "error" in c:
            errors = [ln for ln in c["error"].splitlines() if "Error" in ln or "timeout" in ln]
            shown = (errors or c["error"].splitlines() or ["?"])[-1]
            lines.append(f"{c['device']:6s} {c['n']:5d}  failed: {shown}")
            continue
        second, seq = c["second"], c["sequential_seconds"]
        median = sorted(seq)[len(seq) // 2] if seq else None
        ratio = c["n"] * median / second["seconds"] if median else None
        # vmapped lanes wait for each other on an accelerator; CPU jobs run independently
        lock = "-" if c["platform"] == "cpu" else f"{second['lock_step_efficiency']:.2f}"
        lines.append(
            f"{c['platform']:6s} {c['n']:5d} {c['process_wall']:8.1f} {c['first']['seconds']:7.1f} "
            f"{second['seconds']:7.2f} {second['sampler_seconds']:8.2f} "
            f"{second['fits_seconds']:6.2f} {1000 * second['seconds'] / c['n']:7.1f} "
            f"{median if median is not None else float('nan'):6.2f} "
            f"{ratio if ratio is not None else float('nan'):6.1f} "
            f"{second['ok']:4d}/{c['n']:<4d} {lock:>5s} "
            f"{c['device_peak_mb'] if c['device_peak_mb'] is not None else '-':>7} "
            f"{c['rss_mb']:7.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,64,1024", help="GPU batch sizes (1,64,1024)")
    parser.add_argument("--cpu-sizes", default="1,64", help="CPU batch sizes (1,64)")
    parser.add_argument("--sequential", type=int, default=4, help="sequential fits timed (4)")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--host-devices", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--repeat-max",
        type=int,
        default=256,
        help="larger batches: one fit_many call (compile included) and no sequential fits",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="warm-start every resample from one fit of the full data (200 warm-up)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per case")
    parser.add_argument("--out", default=str(HERE / "results" / "gpu.json"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        emit(worker(json.loads(sys.stdin.read())))
        return 0
    settings = {"chains": args.chains, "draws": args.draws, "warmup": args.warmup}
    gpu_sizes = _sizes(args.sizes)
    if gpu_sizes and not _gpu_visible():
        print("JAX sees no GPU here: the GPU cases are skipped (README, GPU)", file=sys.stderr)
        gpu_sizes = []
    plan = [("gpu", n) for n in gpu_sizes] + [("cpu", n) for n in _sizes(args.cpu_sizes)]
    cases = []
    with tempfile.TemporaryDirectory(prefix="bayescale-gpu-bench-") as tmp:
        for device, n in plan:
            log(f"{device} n={n} ...")
            env = {
                "BAYESCALE_CACHE_DIR": str(Path(tmp) / f"cache-{device}-{n}"),
                "BAYESCALE_HOST_DEVICES": str(args.host_devices),
            }
            payload = {"n": n, "device": device, "settings": settings, "warm": args.warm}
            payload["sequential"] = args.sequential if n <= args.repeat_max else 0
            payload["calls"] = 2 if n <= args.repeat_max else 1
            cases.append(_spawn(payload, env, args.timeout))
            print(json.dumps(cases[-1]), file=sys.stderr, flush=True)
    report = {"settings": settings, "warm": args.warm, "host_devices": args.host_devices}
    report["cases"] = cases
    report["cpus"] = os.cpu_count()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(_table(cases, settings, args.warm))
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
