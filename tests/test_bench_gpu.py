"""bench/gpu.py's own arithmetic: the lock-step efficiency and the printed table."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))  # gpu.py imports bench/common.py, as when run as a script
_SPEC = importlib.util.spec_from_file_location("bench_gpu", BENCH / "gpu.py")
gpu = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gpu)


def test_lock_step_efficiency_is_useful_steps_over_what_lanes_wait_for():
    # 2 datasets x 2 chains x 3 draws; per draw the batch waits for its longest lane
    a = np.array([[3, 7, 1], [3, 1, 1]])
    b = np.array([[3, 1, 1], [3, 1, 15]])
    out = gpu._lock_step([a, b])
    assert out["mean_steps"] == np.mean([a, b])  # 40 / 12
    assert out["mean_max_steps"] == (3 + 7 + 15) / 3
    assert out["lock_step_efficiency"] == (40 / 12) / (25 / 3)
    # lanes on their own: totals 11, 5, 5, 19 -> mean 10 of the slowest lane's 19
    assert out["independent_efficiency"] == 10 / 19
    assert out["max_lane_mean_steps"] == 19 / 3


def _case(platform, n, seconds, seq):
    call = {
        "seconds": seconds,
        "sampler_seconds": seconds - 1,
        "fits_seconds": 1.0,
        "ok": n,
        "lock_step_efficiency": 0.25,
    }
    return {
        "n": n,
        "device": platform,
        "platform": platform,
        "process_wall": 30.0,
        "first": {**call, "seconds": 20.0},
        "second": call,
        "sequential_seconds": seq,
        "device_peak_mb": 160.0 if platform == "gpu" else None,
        "rss_mb": 900.0,
    }


def test_table_gives_the_estimated_ratio_to_sequential_fits_and_names_failures():
    cases = [
        _case("gpu", 64, 8.0, [2.0, 3.0, 2.5]),
        _case("cpu", 64, 16.0, [0.5, 0.5]),
        {"n": 1024, "device": "gpu", "error": "Traceback ...\nValueError: out of memory"},
    ]
    rows = gpu._table(cases, {"chains": 4, "warmup": 500, "draws": 500}).splitlines()
    gpu_row, cpu_row, failed = rows[-3:]
    # 64 x median(2.0, 2.5, 3.0) / 8.0 = 20.0; the lock-step column only for the GPU
    assert gpu_row.split()[:5] == ["gpu", "64", "30.0", "20.0", "8.00"]
    assert gpu_row.split()[8:10] == ["2.50", "20.0"] and "0.25" in gpu_row
    assert cpu_row.split()[8:12] == ["0.50", "2.0", "64/64", "-"]
    assert failed.split() == ["gpu", "1024", "failed:", "ValueError:", "out", "of", "memory"]
