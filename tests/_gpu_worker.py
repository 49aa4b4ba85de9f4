"""Fits for ``test_gpu.py``, in a process of its own where JAX may use a GPU.

``python tests/_gpu_worker.py full|repeat`` prints one JSON object. Without a GPU it is
``{"gpu": null}``. Otherwise it holds, per fit, the device, diagnostics, every parameter's
posterior mean with its Monte Carlo standard error, and a digest of all draws:

* ``single``: one Chinchilla fit on the GPU (``full`` adds the same fit on the CPU);
* ``many``: ``fit_many`` of 8 bootstrap resamples on the GPU (``full`` adds them on the CPU).

The test suite runs on the CPU (``JAX_PLATFORMS=cpu``, see ``conftest.py``); ``test_gpu.py``
starts this script without that setting.
"""

import hashlib
import json
import sys
import warnings

import numpy as np

SPEC = "chinchilla_besiroglu2024"
SETTINGS = {"chains": 4, "draws": 500, "warmup": 500}
N_RESAMPLES = 8


def describe(fit) -> dict:
    from bayescale._mcmc_stats import mcse_mean

    digest = hashlib.sha256()
    params = {}
    for name in sorted(fit.samples):
        x = np.asarray(fit.samples[name], np.float64)
        digest.update(np.ascontiguousarray(x).tobytes())
        if x.ndim == 2:  # (chains, draws): a scalar parameter
            params[name] = {"mean": float(x.mean()), "mcse": float(mcse_mean(x))}
    d = fit.diagnostics
    return {
        "device": fit.info["device"],
        "ok": bool(d.ok),
        "max_r_hat": float(d.max_r_hat),
        "divergences": int(d.divergences),
        "params": params,
        "digest": digest.hexdigest()[:16],
    }


def main(mode: str) -> dict:
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
    devices = ("gpu", "cpu") if mode == "full" else ("gpu",)
    out: dict = {"gpu": str(gpus[0].device_kind), "single": {}, "many": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        for device in devices:
            fit = bs.fit(runs, SPEC, seed=3, progress=False, device=device, **SETTINGS)
            out["single"][device] = describe(fit)
            fits = bs.fit_many(resamples, SPEC, seed=0, device=device, **SETTINGS)
            out["many"][device] = [describe(f) for f in fits]
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
