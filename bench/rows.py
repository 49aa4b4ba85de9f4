"""How ``bayescale fit`` grows with the number of runs: seconds, peak memory, file size.

Each size is a simulated Chinchilla table (Hoffmann et al.'s law, 1% log-normal scatter,
N log-uniform in [2e7, 1.5e9], D/N log-uniform in [5, 80]) fitted by the command a user
would type, with the defaults, in a fresh process:

    bayescale fit runs.csv --params N --tokens D --loss loss --out fit.nc

Peak memory is the fit process's maximum resident set, the file size that of the
fit file. The largest size is also fitted on a random tenth of its rows, the alternative
where speed matters more than the last digit: the script prints both posteriors (mean and
sd of E, alpha, beta) and the 95% interval of a run 10x beyond the largest compute.

Usage:
    .venv/bin/python bench/rows.py                  # 1e3, 1e4, 1e5 rows (~3 min, 2 cores)
    .venv/bin/python bench/rows.py --sizes 1000 10000 --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
#: the target 10x beyond the largest simulated compute (N = 4.7e9, D = 3.8e11)
TARGET = {"params": 4.7e9, "tokens": 3.8e11}


def simulate(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    params = np.exp(rng.uniform(np.log(2e7), np.log(1.5e9), n))
    tokens = params * np.exp(rng.uniform(np.log(5), np.log(80), n))
    t = TRUTH
    loss = t["E"] + t["A"] / params ** t["alpha"] + t["B"] / tokens ** t["beta"]
    return pd.DataFrame({"N": params, "D": tokens, "loss": loss * np.exp(rng.normal(0, 0.01, n))})


def fit_once(frame: pd.DataFrame, folder: Path, name: str) -> dict:
    """``bayescale fit`` on ``frame`` in a fresh process: seconds, peak RSS, file size."""
    csv, out = folder / f"{name}.csv", folder / f"{name}.nc"
    frame.to_csv(csv, index=False)
    argv = [sys.executable, "-m", "bayescale", "fit", str(csv), "--params", "N", "--tokens"]
    argv += ["D", "--loss", "loss", "--out", str(out), "--force", "--json"]
    env = {**os.environ, "BAYESCALE_NO_PROGRESS": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"fit of {name} failed: {stderr.decode()[-2000:]}")
    payload = json.loads(stdout)
    return {
        "rows": len(frame),
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(_peak_rss_gb(), 3),
        "file_mb": round(out.stat().st_size / 1e6, 2),
        "diagnostics": payload["diagnostics"],
        "fit": str(out),
    }


def _peak_rss_gb() -> float:
    # the largest resident set of any child reaped so far: each size runs in a worker
    # process of its own, whose one child is the fit
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # kB on Linux


def posterior_line(path: str) -> dict:
    import warnings

    import bayescale as bs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bs.load_fit(path)
    summary = result.summary()
    out = {
        k: [float(summary.loc[k, "mean"]), float(summary.loc[k, "sd"])]
        for k in ("E", "alpha", "beta")
    }
    p = result.predict(**TARGET)
    out["target_95"] = [float(p.median[0]), float(p.lower[0]), float(p.upper[0])]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=int, default=[1000, 10_000, 100_000])
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)  # SIZE SUBSAMPLE
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)
    if args.worker:
        n, tenth = int(args.worker[0]), args.worker[1] == "1"
        frame = simulate(n)
        if tenth:
            frame = frame.sample(n=n // 10, random_state=1)
        folder = Path(tempfile.mkdtemp(prefix="bayescale-rows-"))
        result = fit_once(frame, folder, f"{n}{'-tenth' if tenth else ''}")
        result["posterior"] = posterior_line(result.pop("fit"))
        print(json.dumps(result))
        return 0
    rows = []
    cases = [(n, False) for n in args.sizes] + [(max(args.sizes), True)]
    for n, tenth in cases:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", str(n), "1" if tenth else "0"],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        row = json.loads(proc.stdout.splitlines()[-1])
        row["subsample"] = f"1/10 of {n}" if tenth else "all"
        rows.append(row)
        print(
            f"{row['rows']:>7} rows ({row['subsample']}): {row['seconds']:7.1f} s, "
            f"peak {row['peak_rss_gb']:.2f} GB, file {row['file_mb']:.1f} MB, "
            f"divergences {row['diagnostics']['divergences']}, "
            f"max R-hat {row['diagnostics']['max_r_hat']:.3f}",
            flush=True,
        )
    full = [r for r in rows if r["subsample"] == "all"]
    for a, b in itertools.pairwise(full):
        print(
            f"{a['rows']} -> {b['rows']} rows: time x{b['seconds'] / a['seconds']:.1f}, "
            f"memory x{b['peak_rss_gb'] / a['peak_rss_gb']:.1f}, "
            f"file x{b['file_mb'] / a['file_mb']:.1f}"
        )
    print("\nposterior (mean, sd) and the 95% interval 10x beyond the largest compute:")
    for r in (full[-1], rows[-1]):
        p = r["posterior"]
        cells = "  ".join(f"{k} {p[k][0]:.4f} ({p[k][1]:.4f})" for k in ("E", "alpha", "beta"))
        m, lo, hi = p["target_95"]
        print(f"  {r['subsample']:>12}: {cells}  target {m:.4f} [{lo:.4f}, {hi:.4f}]")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
