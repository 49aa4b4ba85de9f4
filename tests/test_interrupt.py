"""Interrupting ``bayescale fit --out`` at any moment leaves the old fit file or the new one.

Each case is a real ``bayescale fit`` process, stopped by Ctrl-C (SIGINT) or ``kill -9``
at a delay spread over its life (imports, sampling, the drift folds, the write). The target
already holds a fit; afterwards it must load, verified by its checksum, as either that old
fit or a complete new one, and nothing else may be left under the final name.
"""

import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import bayescale as bs

pytestmark = pytest.mark.slow

TINY = ["--chains", "2", "--draws", "50", "--warmup", "50", "--no-progress"]


def _argv(csv, out, seed):
    return [
        sys.executable,
        "-m",
        "bayescale",
        "fit",
        str(csv),
        "--params",
        "params",
        "--tokens",
        "tokens",
        "--loss",
        "loss",
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--force",
        *TINY,
    ]


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interrupt")
    csv = folder / "runs.csv"
    bs.simulate_ladder(params=(5e7, 1e8, 2e8, 4e8), tokens_per_param=(10, 40), seed=0).to_csv(
        csv, index=False
    )
    old = folder / "old.nc"
    subprocess.run(_argv(csv, old, seed=0), check=True, capture_output=True, timeout=300)
    # how long a whole fit takes here sets the delays at which the cases below stop it
    started = time.perf_counter()
    subprocess.run(_argv(csv, folder / "timed.nc", seed=1), check=True, capture_output=True)
    return csv, old, time.perf_counter() - started


def _load_quietly(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)  # 100 draws: R-hat is not the point
        return bs.load_fit(path)


def test_ctrl_c_exits_130_with_one_line_and_keeps_the_old_file(ladder, tmp_path):
    csv, old, _ = ladder
    target = tmp_path / "fit.nc"
    target.write_bytes(old.read_bytes())
    proc = subprocess.Popen(
        _argv(csv, target, seed=5), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # the package imports in ~0.1 s; at 1 s the command is importing jax or sampling
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # this machine was fast enough to finish first
        pytest.skip("the fit finished before the interrupt")
    assert proc.returncode == 130, err
    assert err == "error: interrupted\n"
    assert "Traceback" not in out
    assert target.read_bytes() == old.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.nc"]


# Ctrl-C from 0.3 s on: before ~0.1 s Python itself is still starting (runpy, site) and
# answers SIGINT with its own traceback, before any bayescale code runs
@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_stopped_at_any_moment_leaves_old_or_new_never_partial(ladder, tmp_path, how):
    csv, old, seconds = ladder
    old_alpha = _load_quietly(old).samples["alpha"]
    outcomes = {"old": 0, "new": 0}
    delays = np.linspace(0.3, 1.1 * seconds, 8)
    for i, delay in enumerate(delays):
        target = tmp_path / f"fit{i}.nc"
        target.write_bytes(old.read_bytes())
        proc = subprocess.Popen(
            _argv(csv, target, seed=10 + i), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, getattr(signal, how))
        _, err = proc.communicate(timeout=60)
        if how == "SIGINT":
            assert proc.returncode in (0, 130), f"exit {proc.returncode} at {delay:.2f} s: {err!r}"
            assert b"Traceback" not in err, err
            if proc.returncode == 130:
                assert err.endswith(b"error: interrupted\n"), err
        loaded = _load_quietly(target)  # verified by its checksum: whole, or refused
        if np.array_equal(loaded.samples["alpha"], old_alpha):
            outcomes["old"] += 1
        else:  # complete (it passed its checksum), finished or stopped after the rename
            outcomes["new"] += 1
    for leftover in tmp_path.iterdir():
        # kill -9 can leave a temporary beside the target, never a partial target; Ctrl-C
        # removes its temporary
        if how == "SIGINT":
            assert leftover.name.startswith("fit") and leftover.suffix == ".nc", leftover
        else:
            assert leftover.name.startswith("fit") or leftover.name.endswith(".tmp"), leftover
    print(f"{how}: {len(delays)} stops, old file kept {outcomes['old']}, new {outcomes['new']}")
    assert sum(outcomes.values()) == len(delays)


# Once the command has finished, Ctrl-C while Python shuts down must leave its exit
# status alone. The handler used to answer "interrupted" (exit 130) for a finished command,
# and once finalisation had reset it to the default, SIGINT killed the process (exit -2,
# seen in CI after a fit had written its file). The finaliser below holds the process in
# its shutdown and says when.
_FINISHED_THEN_SLOW_TO_EXIT = """
import os, sys, time
class SlowToFinalise:
    def __del__(self, write=os.write, sleep=time.sleep):  # module globals are gone by then
        write(1, b"finalising\\n")
        sleep(3)
def exit_slowly(code, exit=sys.exit):
    # made after run()'s gc.freeze(): frozen objects are never finalised
    sys.modules["__main__"].keep = SlowToFinalise()
    exit(code)
sys.exit = exit_slowly
sys.argv = ["bayescale", "--version"]
from bayescale.cli.app import run
run()
"""


def test_ctrl_c_after_the_command_finished_keeps_its_exit_status():
    proc = subprocess.Popen(
        [sys.executable, "-c", _FINISHED_THEN_SLOW_TO_EXIT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    version = proc.stdout.readline()
    assert version.startswith(b"bayescale "), version
    assert proc.stdout.readline() == b"finalising\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err == b""
