"""The same fits on a GPU: they agree with the CPU's and reproduce with a seed.

The rest of the suite runs on the CPU (``conftest.py``). These tests start
``_gpu_worker.py`` in fresh processes that may use a GPU, and skip where JAX sees none
(CI has none; ``bench/gpu.py`` times the GPU, these tests check its answers).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_same_posterior

import bayescale as bs

WORKER = Path(__file__).with_name("_gpu_worker.py")
N_RESAMPLES = 8
#: A GPU and a CPU fit of the same data differ by Monte Carlo error only: medians within
#: 4.5 Monte Carlo SEs of their difference (9 fits x 7 parameters are compared; P(|z| >
#: 4.5) is 7e-6 per comparison for a standard normal z), sds within 0.8-1.25 of each other.
Z_MAX = 4.5
#: A fit whose chains disagree this much (R-hat) has not converged; it is not compared.
#: The fits' own gate (1.01) is seeded for the CPU's draws; 4 x 500 draws sit close to it.
R_HAT_CONVERGED = 1.05
#: Every parameter of the law and the likelihood (A and B carry the log-term parameters)
NAMES = ("E", "A", "B", "alpha", "beta", "sigma", "nu")


def _worker(mode: str, out: Path, cache: Path, data: Path) -> str | None:
    """Run the worker; the GPU's device kind (its fits are in ``out``), or None: no GPU."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    env |= {"BAYESCALE_CACHE_DIR": str(cache), "BAYESCALE_DATA": str(data)}
    out.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, str(WORKER), mode, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["gpu"]


def _fits(out: Path, device: str) -> dict:
    return {
        "single": bs.load_fit(out / f"single-{device}.nc"),
        "many": [bs.load_fit(out / f"many-{device}-{i}.nc") for i in range(N_RESAMPLES)],
    }


@pytest.fixture(scope="module")
def first(tmp_path_factory, shared_data) -> dict:
    """The GPU's kind, the fits on it and on the CPU; the cache the run left."""
    root = tmp_path_factory.mktemp("gpu")
    kind = _worker("full", root / "first", root / "cache", shared_data)
    if kind is None:
        pytest.skip("JAX sees no GPU on this machine")
    fits = {device: _fits(root / "first", device) for device in ("gpu", "cpu")}
    return {"kind": kind, "root": root, **fits}


def _converged(fit) -> bool:
    return fit.diagnostics.max_r_hat <= R_HAT_CONVERGED


def test_a_gpu_fit_agrees_with_the_cpu_fit(first):
    gpu, cpu = first["gpu"]["single"], first["cpu"]["single"]
    assert gpu.info["device"] == f"gpu ({first['kind']})" and cpu.info["device"] == "cpu"
    assert not np.array_equal(gpu.samples["alpha"], cpu.samples["alpha"])  # its own draws
    assert _converged(gpu) and _converged(cpu)
    assert_same_posterior(cpu, gpu, NAMES, z_max=Z_MAX)


def test_fit_many_on_the_gpu_agrees_with_the_cpu_dataset_by_dataset(first):
    gpu, cpu = first["gpu"]["many"], first["cpu"]["many"]
    assert {f.info["device"] for f in gpu} == {f"gpu ({first['kind']})"}
    converged = [i for i in range(N_RESAMPLES) if _converged(gpu[i]) and _converged(cpu[i])]
    r_hats = [
        (g.diagnostics.max_r_hat, c.diagnostics.max_r_hat) for g, c in zip(gpu, cpu, strict=True)
    ]
    assert len(converged) >= N_RESAMPLES - 1, r_hats
    for i in converged:
        assert_same_posterior(cpu[i], gpu[i], NAMES, z_max=Z_MAX, label=(i,))
    # the resamples differ: each lane of the vmapped batch fitted its own dataset
    assert len({round(float(np.median(f.samples["E"])), 4) for f in gpu}) == N_RESAMPLES


def test_gpu_draws_reproduce_in_a_new_process(first, shared_data):
    # the 2nd process loads the programs the 1st stored; the draws must not change
    root = first["root"]
    assert _worker("repeat", root / "again", root / "cache", shared_data) == first["kind"]
    again = _fits(root / "again", "gpu")
    for new, old in zip(
        [again["single"], *again["many"]],
        [first["gpu"]["single"], *first["gpu"]["many"]],
        strict=True,
    ):
        assert new.samples.keys() == old.samples.keys()
        for name, draws in old.samples.items():
            np.testing.assert_array_equal(new.samples[name], draws, err_msg=name)
