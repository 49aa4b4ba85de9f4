"""Fits for ``test_gpu.py``, in a process of its own where JAX may use a GPU.

``python tests/_gpu_worker.py full|repeat OUT_DIR`` prints one JSON object: ``{"gpu": null}``
without a GPU, else ``{"gpu": "<device kind>"}``, and then writes to ``OUT_DIR``, as fit
files (``Fit.to_netcdf``):

* ``single-gpu.nc``: one Chinchilla fit on the GPU (``full`` adds ``single-cpu.nc``);
* ``many-gpu-<i>.nc``: ``fit_many`` of 8 bootstrap resamples on the GPU (``full`` adds
  ``many-cpu-<i>.nc``).

The test suite runs on the CPU (``JAX_PLATFORMS=cpu``, see ``conftest.py``); ``test_gpu.py``
starts this script without that setting.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np

SPEC = "chinchilla_besiroglu2024"
SETTINGS = {"chains": 4, "draws": 500, "warmup": 500}
N_RESAMPLES = 8


def main(mode: str, out: Path) -> dict:
    import jax

    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if not gpus:
        return {"gpu": None}
    import bayescale as bs

    runs = bs.load_chinchilla()
    rng = np.random.default_rng(1)
    resamples = [runs.select(rng.integers(0, runs.n_runs, runs.n_runs)) for _ in range(N_RESAMPLES)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        for device in ("gpu", "cpu") if mode == "full" else ("gpu",):
            options = bs.SamplerOptions(device=device, progress=False, **SETTINGS)
            fit = bs.fit(runs, SPEC, seed=3, sampler=options)
            fit.to_netcdf(out / f"single-{device}.nc")
            fits = bs.fit_many(resamples, SPEC, seed=0, sampler=options.replace(progress=None))
            for i, each in enumerate(fits):
                each.to_netcdf(out / f"many-{device}-{i}.nc")
    return {"gpu": str(gpus[0].device_kind)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]))))
