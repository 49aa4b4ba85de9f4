"""bench/compile.py: XLA compile cost per program, its timing rule and its table."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
_SPEC = importlib.util.spec_from_file_location("bench_compile", BENCH / "compile.py")
compile_bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(compile_bench)


class _Compiled:
    def __init__(self, kernels):
        self.kernels = kernels

    def as_text(self):
        return "ENTRY\n" + "  %f = f64[] fusion(%x)\n" * self.kernels


def test_timed_reports_least_and_median_of_every_compile_and_the_kernels():
    seen = []

    def compile_once(r):
        seen.append(r)
        return _Compiled(3)

    out = compile_bench._timed(compile_once, 4)
    assert seen == [0, 1, 2, 3]  # one real compile per repeat, each with its own options
    assert out["kernels"] == 3
    assert 0 <= out["wall_min"] <= out["wall_median"] and 0 <= out["cpu_min"] <= out["cpu_median"]
    # each repeat gets options no other repeat has (JAX keeps compiled programs per options)
    assert compile_bench._options({"a": 1}, 0) != compile_bench._options({"a": 1}, 1)
    assert compile_bench._options({"a": 1}, 0)["a"] == 1


def test_table_has_a_row_per_program():
    row = {"wall_min": 1.0, "wall_median": 1.25, "cpu_min": 1.5, "cpu_median": 2.0, "kernels": 7}
    lines = compile_bench.table({"init": row, "advance": row}).splitlines()
    assert len(lines) == 4
    assert lines[2] == "| init | 1.00 / 1.25 | 1.50 / 2.00 | 7 |"


@pytest.mark.slow
def test_compile_bench_runs_from_the_command_line(shared_data):
    out = subprocess.run(
        [sys.executable, str(BENCH / "compile.py"), "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env={**os.environ, "BAYESCALE_DATA": str(shared_data)},
    )
    rows = [line.split("|")[1].strip() for line in out.stdout.splitlines()[2:]]
    assert rows == ["init", "advance", "finish", "value_and_grad"]
    kernels = [int(line.split("|")[4]) for line in out.stdout.splitlines()[2:]]
    assert all(k > 0 for k in kernels)
