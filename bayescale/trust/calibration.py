r"""Simulation-based calibration (SBC): are the credible intervals honest?

For each replicate, parameters are drawn from the prior, a training ladder like a real
lab's is simulated from them, the law is fitted with *the same* prior, and the truth is
ranked among thinned posterior draws. If the whole pipeline (model, priors, sampler) is
right, each rank is uniform and every central ``p`` interval covers the truth in a fraction
``p`` of replicates (Talts et al. 2018, arXiv:1804.06788).

Design choices:

* **Fixed priors.** The law's default priors depend on the data (``E ~ Uniform(0, min
  loss)``, coefficient terms scaled to the median loss). They are resolved once against a
  reference ladder (the law's reference truth on a reference design) and then passed to
  every fit explicitly, so the prior that draws the truth is the prior of the fit.
  Coefficients live on the centred scale (the term's size at the ladder's geometric-mean
  size), so the prior is the same for every design.
* **Realistic noise.** The default noise prior ``sigma ~ LogNormal(log 0.01, 0.5)`` (0.4%
  to 2.7% on loss, like real sweeps) replaces the vague ``HalfNormal(0.1)``; fits use the
  same prior and the ``normal`` likelihood, which is what the simulation draws from.
* **Scatter growth.** Where :func:`bayescale.fit` would grow the scatter toward the small
  runs (laws of params, tokens and compute with ``runs_per_fit >= 2k - 1``), each replicate
  draws ``scatter_growth`` from its prior and simulates noise ``sigma * exp(growth * depth)``,
  and the fits grow theirs; ``scatter_growth`` is ranked like the other parameters.
* **Ladders.** ``runs_per_fit`` runs on a grid of 3-4 token multipliers (out of 5..320)
  times model sizes spanning 1.5-3 decades from 10M-100M parameters, different in every
  replicate. Compute-only laws get ``runs_per_fit`` log-spaced budgets over 2-4 decades.
* **Degenerate ladders.** Prior draws whose simulated losses leave ``[1e-5, 20]`` (the runs
  table's rule) are drawn again and counted (``rejected``). Rejection looks only at the
  simulated data, so the posterior of the accepted replicates is unchanged and SBC stays
  exact.
* **Extrapolation.** Besides every parameter, the noise-free loss (``loss@10x``,
  ``loss@100x``) and a new run's loss (``new_run@10x``, ``new_run@100x``) at 10x and 100x
  the ladder's largest compute, at its largest tokens-per-parameter (N = sqrt(C / 6M)).
* **Batched fits.** Replicates are fitted with :func:`bayescale.inference.batch.fit_many` in chunks of
  :data:`BATCH` (the last one padded), so any number of replicates reuses one compiled
  program; 2 chains x 300 draws each, ranks among 99 thinned draws.

Measured (100 replicates, seed 0, ``bayescale calibrate --law chinchilla --replicates 100``,
scatter growth included):
every parameter and extrapolation of ``chinchilla`` and ``gadre2024`` inside the 99% binomial
band at 50/80/95%. :func:`misspecification` shows what SBC cannot: when the law is wrong,
95% intervals at 100x cover the truth in 0-40% of ladders.

Example:
    >>> result = calibrate("chinchilla", replicates=50, seed=0)      # doctest: +SKIP
    >>> result.coverage().loc["loss@100x"]                            # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..data.runs import _MAX_LOSS, _MIN_LOSS
from ..laws.base import Law
from ..laws.core import get_law
from ..laws.priors import Prior
from ..model.noise import STRUCTURED_PRIORS
from ..settings import SamplerOptions
from .calibration_design import (
    CALIBRATION_NOISE,
    _log_ref,
    _runs,
    _targets,
    calibration_priors,
    simulate_design,
)
from .calibration_result import LEVELS, Calibration, _score

__all__ = ["calibrate"]


# --------------------------------------------------------------------------- core


def _draw(prior: Prior, rng: np.random.Generator) -> float:
    import jax

    key = jax.random.PRNGKey(int(rng.integers(2**31 - 1)))
    return float(prior.distribution().sample(key))


#: Datasets per batched call: a fixed size keeps one compiled program for any replicates.
BATCH = 10


def _fit_all(runs_list, law, seed: int, progress: bool, **kwargs) -> list:
    """Fit every ladder with :func:`bayescale.inference.batch.fit_many`, in chunks of ``BATCH`` (the
    last one padded, so every chunk has the same shape and reuses the compiled programs)."""
    from .._util import FitWarning
    from ..inference.batch import fit_many

    fits = []
    for start in range(0, len(runs_list), BATCH):
        chunk = list(runs_list[start : start + BATCH])
        padded = chunk + [chunk[-1]] * (BATCH - len(chunk))  # same shape: no recompile
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            out = fit_many(padded, law, seed=seed + start, **kwargs)
        for result in out[: len(chunk)]:
            result.info["warn"] = False
            fits.append(result)
        if progress:
            print(f"fitted {len(fits)}/{len(runs_list)}")
    return fits


def _fit_row(result, check: bool = False) -> dict:
    d = result.diagnostics
    row = {
        "ok": bool(d.ok),
        "max_r_hat": float(d.max_r_hat),
        "divergences": int(d.divergences),
        "min_ess_bulk": float(d.min_ess_bulk),
    }
    if check:
        row["check_ok"] = bool(result.check(warn=False).ok)
    return row


def _simulate(law, theta, log_ref, design, sigma, nu, rng, growth=0.0):
    """Losses of the design's runs: the law with noise ``sigma * exp(growth * depth)``."""
    import jax.numpy as jnp

    from ..model.scatter import log_scale_of

    x = {k: jnp.asarray(np.log(design[k]) - log_ref[k]) for k in law.inputs}
    log_mu = np.asarray(law.log_loss({k: jnp.asarray(v) for k, v in theta.items()}, x))
    eps = rng.standard_t(nu, log_mu.shape) if nu is not None else rng.standard_normal(log_mu.shape)
    scale = sigma
    if growth:
        depth = log_scale_of(law, design)
        scale = sigma * np.exp(growth * (depth.max() - depth))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(log_mu + scale * eps), log_mu


def _grows(law, runs_per_fit: int) -> bool:
    """Whether fit() would grow the scatter of a ladder of ``runs_per_fit`` runs of ``law``
    (:func:`~bayescale.inference.fitting.auto_scatter_growth`)."""
    from ..model.scatter import scale_only

    return scale_only(law) and runs_per_fit >= 2 * len(law.parameter_names) - 1


def _law_value(law, theta, log_ref, target) -> float:
    import jax.numpy as jnp

    x = {k: jnp.asarray(np.log(target[k]) - log_ref[k]) for k in law.inputs}
    return float(np.exp(np.asarray(law.log_loss(theta, x))).reshape(-1)[0])


def calibrate(
    law: str | Law,
    replicates: int,
    runs_per_fit: int | None = None,
    seed: int = 0,
    *,
    chains: int = 2,
    draws: int = 300,
    warmup: int = 300,
    target_accept: float = 0.95,
    n_ranked: int = 99,
    likelihood: str = "normal",
    noise: Prior | str = CALIBRATION_NOISE,
    truth: Mapping[str, float] | None = None,
    levels: Sequence[float] = LEVELS,
    max_tries: int = 200,
    progress: bool = False,
) -> Calibration:
    """Simulation-based calibration of a law's posterior and extrapolations.

    Args:
        law: law name or :class:`~bayescale.laws.Law`.
        replicates: number of prior draws, ladders and fits.
        runs_per_fit: runs per simulated ladder (default 20).
        seed: seed of everything (designs, truths, noise, samplers).
        chains, draws, warmup, target_accept: NUTS settings of every fit.
        n_ranked: thinned draws the truth is ranked among (ranks lie in ``0..n_ranked``).
        likelihood: ``normal`` (default) or ``student_t`` (then ``nu`` is drawn from its
            prior too and the simulated noise is Student-t).
        noise: prior of the run-to-run noise ``sigma`` on log loss.
        truth: reference truth that fixes the data-dependent default priors
            (:data:`REFERENCE_TRUTH` by default).
        levels: nominal interval probabilities.
        max_tries: prior draws allowed per replicate before giving up.
        progress: print one line per replicate.

    Returns:
        A :class:`Calibration`.

    Example:
        >>> result = calibrate("gadre2024", replicates=40, seed=1)       # doctest: +SKIP
        >>> result.outside_band()                                          # doctest: +SKIP
        []
    """
    law = get_law(law)
    for name, value, low in (("replicates", replicates, 1), ("n_ranked", n_ranked, 9)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low} but got {value!r}")
    runs_per_fit = 20 if runs_per_fit is None else runs_per_fit
    n_params = len(law.parameter_names)
    if (
        isinstance(runs_per_fit, bool)
        or not isinstance(runs_per_fit, int | np.integer)
        or runs_per_fit < n_params + 2
    ):
        raise ValueError(
            f"runs_per_fit must be an integer >= {n_params + 2} for law {law.name!r} "
            f"({n_params} parameters) but got {runs_per_fit!r}"
        )
    if likelihood not in ("normal", "student_t"):
        raise ValueError(f"likelihood must be 'normal' or 'student_t' but got {likelihood!r}")
    levels = tuple(float(lvl) for lvl in levels)
    priors = calibration_priors(law, truth, noise, likelihood)
    # the fits grow their scatter toward the small runs as fit() would for such a ladder,
    # so every replicate draws a growth from its prior too (0: the runs' scatter is equal)
    grows = _grows(law, runs_per_fit)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    # 1. simulate every replicate first (one random stream, independent of how fits run)
    replicas, rejected = [], 0
    for _ in range(replicates):
        for _ in range(max_tries):
            design = simulate_design(law, int(runs_per_fit), rng)
            log_ref = _log_ref(law, design)
            theta = {name: _draw(priors[name], rng) for name in law.parameter_names}
            sigma = _draw(priors["sigma"], rng)
            nu = _draw(priors["nu"], rng) if likelihood == "student_t" else None
            growth = _draw(STRUCTURED_PRIORS["scatter_growth"], rng) if grows else 0.0
            loss, _ = _simulate(law, theta, log_ref, design, sigma, nu, rng, growth)
            if np.all(np.isfinite(loss)) and np.all((loss >= _MIN_LOSS) & (loss <= _MAX_LOSS)):
                break
            rejected += 1
        else:
            raise ValueError(
                f"{max_tries} prior draws in a row gave losses outside [{_MIN_LOSS:g}, {_MAX_LOSS:g}] for "
                f"law {law.name!r}: the priors are too wide for calibration; pass truth= to "
                "rescale them"
            )
        truth_row = {k: float(np.asarray(v)) for k, v in law.to_reported(theta, log_ref).items()}
        truth_row["sigma"] = sigma
        if grows:
            truth_row["scatter_growth"] = growth
        if nu is not None:
            truth_row["nu"] = nu
        targets = _targets(law, design)
        for label, target in targets.items():
            law_value = _law_value(law, theta, log_ref, target)
            noise_draw = rng.standard_t(nu) if nu is not None else rng.standard_normal()
            truth_row[f"loss@{label}"] = law_value
            truth_row[f"new_run@{label}"] = law_value * math.exp(sigma * float(noise_draw))
        replicas.append((_runs(law, design, loss), targets, truth_row))
    # 2. fit them all (batched when bayescale.inference.batch is there), with the same priors
    results = _fit_all(
        [r[0] for r in replicas],
        law,
        int(rng.integers(2**31 - 1 - replicates)),
        progress,
        priors=priors,
        likelihood=likelihood,
        scatter_growth=grows,
        sampler=SamplerOptions(
            chains=chains, draws=draws, warmup=warmup, target_accept=target_accept
        ),
    )
    # 3. rank the truths among the posterior draws
    ranks, covered, truths, fits = [], {lvl: [] for lvl in levels}, [], []
    for replicate, ((_, targets, truth_row), result) in enumerate(
        zip(replicas, results, strict=True)
    ):
        fits.append(_fit_row(result))
        reported = result.reported()
        quantities = {name: reported[name] for name in truth_row if name in reported}
        for label, target in targets.items():
            kwargs = {k: target[k] for k in law.inputs}
            quantities[f"loss@{label}"] = result.predict(**kwargs, noise=False).draws
            quantities[f"new_run@{label}"] = result.predict(**kwargs, seed=replicate).draws
        row_rank, row_cov = {}, {lvl: {} for lvl in levels}
        for name, draws_ in quantities.items():
            rank, cov = _score(draws_, truth_row[name], n_ranked, levels)
            row_rank[name] = rank
            for lvl in levels:
                row_cov[lvl][name] = cov[lvl]
        ranks.append(row_rank)
        truths.append(truth_row)
        for lvl in levels:
            covered[lvl].append(row_cov[lvl])
    not_ok = int(sum(not row["ok"] for row in fits))
    return Calibration(
        law=law.name,
        ranks=pd.DataFrame(ranks),
        covered={lvl: pd.DataFrame(rows) for lvl, rows in covered.items()},
        truths=pd.DataFrame(truths),
        n_ranked=n_ranked,
        rejected=rejected,
        not_ok=not_ok,
        fits=pd.DataFrame(fits),
        priors={k: str(v) for k, v in priors.items()},
        settings={
            "runs_per_fit": int(runs_per_fit),
            "chains": chains,
            "draws": draws,
            "warmup": warmup,
            "target_accept": target_accept,
            "likelihood": likelihood,
            "seed": seed,
        },
        seconds=time.perf_counter() - started,
    )
