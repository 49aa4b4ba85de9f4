"""Shared pytest fixtures."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]

# Tests never draw progress bars; figures render off-screen.
os.environ.setdefault("BAYESCALE_NO_PROGRESS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The suite runs on the CPU, on any machine: its seeded statistical gates were set on CPU
# draws, and a GPU's arithmetic gives other draws (on an H100, a seeded warm-started fit of
# test_cli missed its R-hat gate). test_gpu.py fits on a GPU, when there is one, in a
# process of its own. JAX_PLATFORMS=cuda,cpu runs the whole suite on the GPU instead.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test module, drop the compiled programs this process holds.

    Every XLA:CPU executable maps its code into memory, and a process may hold at most
    vm.max_map_count (65530) mappings. Kept for the whole suite they reached 15-20k after
    three fit-heavy modules, and late in the suite an mmap failed inside XLA: SIGSEGV or
    abort in compile, deserialize_executable or serialize, wherever the next program
    was built. Released per module, the count falls back to ~1.6k; a later module loads
    its programs from JAX's persistent cache instead of compiling them again.
    """
    yield
    import gc
    import sys

    if "jax" not in sys.modules:
        return
    import jax

    programs = sys.modules.get("bayescale.inference._programs")
    if programs is not None:
        programs._PROGRAMS.clear()
        programs._STATE_TREES.clear()
    jax.clear_caches()
    gc.collect()


#: Sampler settings for tests: 4000 draws keep R-hat (gate 1.01) out of its sampling noise on
#: the harder 30-run ladders (4 x 500 draws gave R-hat 1.010-1.016 by chance on ~1 seed in 8).
FAST = {"chains": 4, "draws": 1000, "warmup": 500}

#: the options of bayescale.SamplerOptions, gathered by :func:`sampled`
SAMPLER_OPTIONS = frozenset(
    ("chains", "draws", "warmup", "device", "progress", "target_accept", "dense_mass", "extend")
)


def sampled(**kwargs):
    """``fit()``/``fit_many()`` keywords with the sampler options in one ``sampler=``.

    Tests keep their settings as plain dicts (``FAST``, also turned into CLI flags);
    ``bs.fit(runs, **sampled(seed=0, **FAST))`` passes ``sampler=SamplerOptions(...)``.
    """
    import bayescale as bs

    options = {k: kwargs.pop(k) for k in list(kwargs) if k in SAMPLER_OPTIONS}
    if options:
        base = kwargs.get("sampler")
        kwargs["sampler"] = base.replace(**options) if base else bs.SamplerOptions(**options)
    return kwargs


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the public datasets: $BAYESCALE_DATA or <repo>/../shared/data; skip if absent."""
    path = Path(os.environ.get("BAYESCALE_DATA") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"public scaling-law data not found at {path} (set BAYESCALE_DATA)")
    return path


#: Two arms of Gadre et al.'s law that differ in E by 0.1 nats (15 runs each), fitted pooled
#: and with shared exponents; 4 x (500 + 500) gives max R-hat <= 1.009 for both fits with
#: seeds 1-3 (seed 2: 1.002 / 1.004); at 4 x (300 + 300) seeds 2 and 3 reached 1.011-1.016.
#: Plots and reports are tested on the same pair of fits.
TWO_ARMS = {
    "arm_a": {"E": 1.9, "A": 300.0, "B": 900.0, "eta": 0.3},
    "arm_b": {"E": 2.0, "A": 300.0, "B": 900.0, "eta": 0.3},
}
TWO_ARM_SAMPLER = {"chains": 4, "draws": 500, "warmup": 500, "seed": 2, "progress": False}


def two_arm_runs() -> pd.DataFrame:
    import bayescale as bs

    frames = [
        bs.simulate_ladder(
            "gadre2024",
            truth,
            params=(5e7, 1.5e8, 5e8, 1.5e9, 5e9),
            tokens_per_param=(5.0, 20.0, 80.0),
            seed=seed,
            group=name,
        )
        for seed, (name, truth) in enumerate(TWO_ARMS.items())
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="session")
def two_arm_fits():
    """``{"pooled": Fit, "grouped": Fit}`` on :func:`two_arm_runs` (one pair per session)."""
    import bayescale as bs

    frame = two_arm_runs()
    cols = {"params": "params", "tokens": "tokens", "loss": "loss"}
    return {
        "pooled": bs.fit(frame, "gadre2024", **sampled(**cols, **TWO_ARM_SAMPLER)),
        "grouped": bs.fit(
            frame,
            "gadre2024",
            **sampled(**cols, group="group", pooling="shared", **TWO_ARM_SAMPLER),
        ),
    }


def saturating_power_case():
    """``(law, truth, frame)``: a user-defined law ``E + A (N / 1e8)^-a`` and a 12-run ladder."""
    import bayescale as bs

    law = bs.custom_law(
        "test_saturating_power",
        lambda t, params: t["E"] + t["A"] * (params / 1e8) ** -t["a"],
        {
            "E": "Uniform(low=0, high=3)",
            "A": "LogNormal(mu=0, sigma=1)",
            "a": "Uniform(low=0, high=1.5)",
        },
        inputs=("params",),
    )
    truth = {"E": 1.8, "A": 1.5, "a": 0.35}
    frame = bs.simulate_ladder(
        law, truth, params=np.geomspace(1e6, 1e10, 12), tokens_per_param=(20.0,), seed=4
    )
    return law, truth, frame


def assert_same_posterior(
    a, b, names=("E", "A", "B", "alpha", "beta", "sigma"), z_max=4.0, sd_ratio=(0.8, 1.25), label=()
):
    """Two fits' draws are two independent chain sets of one posterior: their medians differ
    by Monte Carlo error only (sd of a median's error ~1.25 sd / sqrt(ESS) for each, |z| <
    ``z_max``) and their spreads agree (``b``'s sd over ``a``'s within ``sd_ratio``)."""
    a, b = a.summary(), b.summary()
    for name in names:
        mcse = 1.25 * np.hypot(
            a.loc[name, "sd"] / np.sqrt(a.loc[name, "ess_bulk"]),
            b.loc[name, "sd"] / np.sqrt(b.loc[name, "ess_bulk"]),
        )
        z = (b.loc[name, "median"] - a.loc[name, "median"]) / mcse
        assert abs(z) < z_max, (*label, name, z)
        ratio = b.loc[name, "sd"] / a.loc[name, "sd"]
        assert sd_ratio[0] < ratio < sd_ratio[1], (*label, name, ratio)


def assert_chains_agree(fit, label=(), p=1e-4):
    """No divergences, and each parameter's R-hat within the Monte Carlo noise of its draws.

    For the gate's purpose (chains that sample one posterior), split R-hat over k = 2 x
    chains half-chains, each with ESS e = ESS / k, scatters as R-hat - 1 ~ chi2_{k-1} /
    (k - 1) / (2 e): its 1 - ``p`` quantile bounds it. ESS here is the sum of each chain's
    own ESS (the smaller of bulk and tail), which chains that disagree do not lower, as
    they lower the pooled ESS. At ~1000 the bound is ~1.017: a warm start whose lower ESS
    (it keeps another posterior's metric) puts R-hat at 1.011 passes, a chain shifted by
    half a posterior sd does not (tests/test_mcmc_stats.py).
    """
    from scipy.stats import chi2

    from bayescale.posterior._mcmc_stats import ess_bulk, ess_tail, rhat

    assert fit.diagnostics.divergences == 0, (*label, fit.diagnostics.verdict())
    for name, x in fit.samples.items():
        x = np.asarray(x)
        if x.ndim != 2:
            continue
        k = 2 * x.shape[0]
        ess = min(
            sum(ess_bulk(chain[None]) for chain in x), sum(ess_tail(chain[None]) for chain in x)
        )
        bound = 1 + chi2.ppf(1 - p, k - 1) / (k - 1) * k / (2 * ess)
        assert rhat(x) <= bound, (*label, name, rhat(x), bound, ess)
