"""bench/floor.py: its floor kernel compiles and runs on the real posterior, and its table."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))  # floor.py imports bench/common.py, as when run as a script
_SPEC = importlib.util.spec_from_file_location("bench_floor", BENCH / "floor.py")
floor = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(floor)


def _row(wall, imports, fit, kernel, **extra):
    return {"process_wall": wall, "imports": imports, "fit": fit, "kernel": kernel, **extra}


def test_report_gives_medians_and_the_ratios_the_floor_allows():
    phases = {"setup_trace_lower": 1.5, "lower": 1.2, "compile": 2.0, "run": 0.3}
    rows = {
        "bayescale": [_row(w, 1.4, 6.9, 6.8, min_ess_bulk=1064.0) for w in (8.0, 9.0, 10.0)],
        "floor": [_row(w, 1.5, 4.0, 4.0, **phases) for w in (6.0, 5.0, 7.0)],
    }
    peers = {
        "started": "then",
        "nutpie": {"time_to_ess": 22.0},
        "pymc_first": {"time_to_ess": 29.0},
        "pymc_second": {"time_to_ess": 27.5},
    }
    lines = floor._report(rows, peers, "p.json").splitlines()
    assert lines[0] == "medians of 3 fresh processes with an empty cache (seconds)"
    assert lines[2].split() == ["bayescale", "fit", "9.00", "1.40", "6.90", "6.80"]
    assert lines[3].split() == ["floor", "kernel", "6.00", "1.50", "4.00", "4.00"]
    assert "XLA compile 2.00" in lines[4] and lines[5] == "bayescale min bulk ESS 1064"
    # per run 6/8, 5/9, 7/10: the median of the paired ratios (0.70), not 6/9 = 0.67
    assert lines[6] == "floor / bayescale process time, paired by run: median 0.70"
    assert lines[-2].split()[-1] == "3.67x"  # nutpie 22.0 / 6.0
    assert lines[-1].split()[-1] == "4.58x"  # the faster PyMC run, 27.5 / 6.0
    assert len(floor._report(rows).splitlines()) == 7  # no peers: no ratio lines


@pytest.mark.slow
def test_floor_kernel_compiles_and_moves_on_the_chinchilla_posterior():
    # the floor is only a lower bound on compile work, but it must be an HMC-shaped loop
    # that runs: every chain moves through finite values of the 7 unconstrained parameters
    out = floor.worker_floor({})
    assert out["draws_shape"] == [4, 362, 7]
    assert out["finite_draws"] and out["min_draw_sd"] > 0
    assert out["compile"] > 0 and out["run"] > 0
