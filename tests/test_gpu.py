"""The same fits on a GPU: they agree with the CPU's and reproduce with a seed.

The rest of the suite runs on the CPU (``conftest.py``). These tests start
``_gpu_worker.py`` in fresh processes that may use a GPU, and skip where JAX sees none
(CI has none; ``bench/gpu.py`` times the GPU, these tests check its answers).
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("_gpu_worker.py")
#: Posterior means of a GPU and a CPU fit of the same data differ by Monte Carlo error only:
#: z = difference / sqrt(mcse_gpu^2 + mcse_cpu^2). 9 fits x 7 parameters are compared, and
#: P(|z| > 4.5) is 7e-6 per comparison for a standard normal z.
Z_MAX = 4.5
#: A fit whose chains disagree this much (R-hat) has not converged; its mean is not compared.
#: The fits' own gate (1.01) is seeded for the CPU's draws; 4 x 500 draws sit close to it.
R_HAT_CONVERGED = 1.05


def _worker(mode: str, cache: Path, data: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    env |= {
        "BAYESCALE_CACHE_DIR": str(cache),
        "BAYESCALE_DATA": str(data),
        "BAYESCALE_NO_PROGRESS": "1",
    }
    done = subprocess.run(
        [sys.executable, str(WORKER), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gpu-cache")


@pytest.fixture(scope="module")
def first(cache, shared_data) -> dict:
    result = _worker("full", cache, shared_data)
    if result["gpu"] is None:
        pytest.skip("JAX sees no GPU on this machine")
    return result


def _z_scores(a: dict, b: dict) -> dict[str, float]:
    return {
        name: abs(p["mean"] - b["params"][name]["mean"])
        / math.hypot(p["mcse"], b["params"][name]["mcse"])
        for name, p in a["params"].items()
    }


def test_a_gpu_fit_agrees_with_the_cpu_fit(first):
    gpu, cpu = first["single"]["gpu"], first["single"]["cpu"]
    assert gpu["device"] == f"gpu ({first['gpu']})" and cpu["device"] == "cpu"
    assert gpu["digest"] != cpu["digest"]  # a GPU's draws are its own
    assert gpu["max_r_hat"] <= R_HAT_CONVERGED and cpu["max_r_hat"] <= R_HAT_CONVERGED
    assert set(gpu["params"]) >= {"E", "alpha", "beta", "nu", "sigma"}
    z = _z_scores(gpu, cpu)
    assert max(z.values()) < Z_MAX, z


def test_fit_many_on_the_gpu_agrees_with_the_cpu_dataset_by_dataset(first):
    gpu, cpu = first["many"]["gpu"], first["many"]["cpu"]
    assert len(gpu) == len(cpu) == 8
    assert {f["device"] for f in gpu} == {f"gpu ({first['gpu']})"}
    converged = [
        i
        for i, (g, c) in enumerate(zip(gpu, cpu, strict=True))
        if max(g["max_r_hat"], c["max_r_hat"]) <= R_HAT_CONVERGED
    ]
    r_hats = [(g["max_r_hat"], c["max_r_hat"]) for g, c in zip(gpu, cpu, strict=True)]
    assert len(converged) >= 7, r_hats
    for i in converged:
        z = _z_scores(gpu[i], cpu[i])
        assert max(z.values()) < Z_MAX, (i, z)
    # the resamples differ: each lane of the vmapped batch fitted its own dataset
    assert len({round(f["params"]["E"]["mean"], 4) for f in gpu}) == 8


def test_gpu_draws_reproduce_in_a_new_process(first, cache, shared_data):
    # the 2nd process loads the programs the 1st stored; the draws must not change
    again = _worker("repeat", cache, shared_data)
    assert again["single"]["gpu"]["digest"] == first["single"]["gpu"]["digest"]
    assert [f["digest"] for f in again["many"]["gpu"]] == [
        f["digest"] for f in first["many"]["gpu"]
    ]
