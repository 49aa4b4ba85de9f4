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

Measured (100 replicates, seed 0, ``bayescale calibrate --law chinchilla --replicates 100``):
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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data.runs import _MAX_LOSS, _MIN_LOSS
from ..laws.base import DataSummary, Law, law_uses_reference
from ..laws.core import get_law
from ..laws.priors import Prior, parse_prior
from ..laws.simulate import HOFFMANN_2022

__all__ = [
    "CALIBRATION_NOISE",
    "LEVELS",
    "REFERENCE_TRUTH",
    "Calibration",
    "binomial_band",
    "calibrate",
    "calibration_priors",
    "misspecification",
    "plot_rank_grid",
    "plot_ranks",
    "simulate_design",
]

#: Nominal interval probabilities checked.
LEVELS = (0.5, 0.8, 0.95)
#: Run-to-run noise on log loss for calibration: 0.4% to 2.7% (95%), like real sweeps.
CALIBRATION_NOISE = Prior("LogNormal", {"mu": round(math.log(0.01), 6), "sigma": 0.5})
#: Reference truths that fix the data-dependent default priors (natural-scale parameters).
REFERENCE_TRUTH: dict[str, dict[str, float]] = {
    "chinchilla": dict(HOFFMANN_2022),
    # Gadre et al. 2024-like: one exponent for N and D = M N
    "gadre2024": {"E": 1.85, "A": 300.0, "B": 1200.0, "eta": 0.3},
    "kaplan_c": {"C_c": 2.3e8, "alpha_C": 0.2, "E": 1.7},
    "kaplan_n": {"N_c": 8.8e13, "alpha_N": 0.076},
    "kaplan_d": {"D_c": 5.4e13, "alpha_D": 0.095},
}
_MULTIPLIERS = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)
_REFERENCE_DESIGN = {
    "params": np.repeat(np.geomspace(3e7, 1e9, 5), 4),
    "tokens_per_param": np.tile([10.0, 20.0, 40.0, 80.0], 5),
}
_TARGETS = (10.0, 100.0)


# --------------------------------------------------------------------------- design


def simulate_design(
    law: str | Law, runs_per_fit: int = 20, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """A random training ladder: ``{"params", "tokens", "compute"}`` arrays of one length.

    Laws of params/tokens get ``runs_per_fit`` runs on a grid of model sizes spanning
    1.5-3 decades (smallest 10M-100M) times 3-4 token multipliers out of 5..320; laws of
    compute alone get log-spaced budgets over 2-4 decades from 1e16-1e18 FLOPs.

    Example:
        >>> design = simulate_design("chinchilla", 20, np.random.default_rng(0))
        >>> len(design["params"]), bool(np.all(design["compute"] == 6 * design["params"] * design["tokens"]))
        (20, True)
    """
    law = get_law(law)
    rng = np.random.default_rng(0) if rng is None else rng
    if law.inputs == ("compute",):
        low = 10 ** rng.uniform(16.0, 18.0)
        compute = np.geomspace(low, low * 10 ** rng.uniform(2.0, 4.0), runs_per_fit)
        nan = np.full(runs_per_fit, np.nan)
        return {"params": nan, "tokens": nan, "compute": compute}
    n_mult = 4 if runs_per_fit >= 12 else 3
    n_sizes = math.ceil(runs_per_fit / n_mult)
    low = 10 ** rng.uniform(7.0, 8.0)
    sizes = np.geomspace(low, low * 10 ** rng.uniform(1.5, 3.0), n_sizes)
    mults = np.sort(rng.choice(_MULTIPLIERS, n_mult, replace=False))
    params, mult = (a.ravel() for a in np.meshgrid(sizes, mults, indexing="ij"))
    keep = np.sort(rng.choice(params.size, runs_per_fit, replace=False))
    params, tokens = params[keep], params[keep] * mult[keep]
    return {"params": params, "tokens": tokens, "compute": 6.0 * params * tokens}


def _log_ref(law: Law, design: Mapping[str, np.ndarray]) -> dict[str, float]:
    if not law_uses_reference(law):
        return dict.fromkeys(law.inputs, 0.0)
    return {k: float(np.mean(np.log(design[k]))) for k in law.inputs}


def _targets(law: Law, design: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Targets at 10x and 100x the largest compute, at the ladder's largest tokens/param."""
    c_max = float(np.max(design["compute"]))
    out = {}
    for factor in _TARGETS:
        compute = np.array([factor * c_max])
        if law.inputs == ("compute",):
            out[f"{factor:g}x"] = {"compute": compute}
            continue
        m = float(np.max(design["tokens"] / design["params"]))
        params = np.sqrt(compute / (6.0 * m))
        out[f"{factor:g}x"] = {"params": params, "tokens": m * params, "compute": compute}
    return out


# --------------------------------------------------------------------------- priors


def calibration_priors(
    law: str | Law,
    truth: Mapping[str, float] | None = None,
    noise: Prior | str = CALIBRATION_NOISE,
    likelihood: str = "normal",
) -> dict[str, Prior]:
    """The law's default priors resolved once against a reference ladder, plus noise priors.

    The result is passed to every calibration fit (``fit(..., priors=...)``) and used to
    draw the truths, so both are the same distribution.

    Example:
        >>> calibration_priors("chinchilla")["E"]
        Uniform(low=0, high=2.06...)
    """
    from ..model.noise import NOISE_PRIORS

    law = get_law(law)
    truth = REFERENCE_TRUTH.get(law.name) if truth is None else truth
    if truth is None:
        raise ValueError(
            f"no reference truth for law {law.name!r}; pass truth={{...}} with its "
            f"parameters ({', '.join(law.reported_names)})"
        )
    n = _REFERENCE_DESIGN["params"]
    design = {"params": n, "tokens": n * _REFERENCE_DESIGN["tokens_per_param"]}
    design["compute"] = 6.0 * design["params"] * design["tokens"]
    loss = np.asarray(law.loss(truth, **{k: design[k] for k in law.inputs}), np.float64)
    summary = DataSummary(
        float(loss.min()), float(np.median(loss)), float(loss.max()), _log_ref(law, design)
    )
    priors = law.default_priors(summary)
    priors["sigma"] = parse_prior(noise)
    if likelihood == "student_t":
        priors["nu"] = NOISE_PRIORS["nu"]
    return priors


def _draw(prior: Prior, rng: np.random.Generator) -> float:
    import jax

    key = jax.random.PRNGKey(int(rng.integers(2**31 - 1)))
    return float(prior.distribution().sample(key))


# --------------------------------------------------------------------------- result


def binomial_band(replicates: int, prob: float, level: float = 0.99) -> tuple[int, int]:
    """Counts ``(low, high)`` of covering replicates expected with probability ``level``.

    Example:
        >>> binomial_band(100, 0.95)
        (89, 100)
    """
    from scipy import stats

    low, high = stats.binom.interval(level, replicates, prob)
    return int(low), int(high)


@dataclass
class Calibration:
    """Result of :func:`calibrate` (or :func:`misspecification`).

    Attributes:
        law: the fitted law's name.
        ranks: ``(replicates, quantities)`` rank of the truth among ``n_ranked`` draws.
        covered: level -> ``(replicates, quantities)`` booleans, truth inside the interval.
        truths: the true values per replicate.
        n_ranked: number of thinned draws ranks are taken among (ranks lie in 0..n_ranked).
        rejected: prior draws discarded because their ladder left ``[1e-5, 20]``.
        not_ok: replicates whose sampler diagnostics were not ok.
        check_fired: replicates where :meth:`Fit.check` fired (when checks were run).
        fits: per replicate: diagnostics ``ok``, ``max_r_hat``, ``divergences``,
            ``min_ess_bulk`` (and ``check_ok`` when checks were run).
        priors: the priors used to draw truths and to fit (as text).
        settings: sampler and design settings.
        seconds: wall time.
    """

    law: str
    ranks: pd.DataFrame
    covered: dict[float, pd.DataFrame]
    truths: pd.DataFrame
    n_ranked: int
    rejected: int = 0
    not_ok: int = 0
    check_fired: int | None = None
    fits: pd.DataFrame = field(default_factory=pd.DataFrame)
    priors: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def replicates(self) -> int:
        return len(self.ranks)

    def coverage(self) -> pd.DataFrame:
        """Fraction of replicates whose interval covers the truth: quantity x level.

        Example:
            >>> result.coverage().loc["alpha", "0.95"]   # doctest: +SKIP
            0.96
        """
        return pd.DataFrame({f"{lvl:g}": self.covered[lvl].mean() for lvl in self.covered})

    def band(self, level: float = 0.99) -> pd.DataFrame:
        """The ``level`` binomial band of coverage fractions for each nominal level.

        Example:
            >>> result.band().loc["low", "0.95"]   # doctest: +SKIP
            0.89
        """
        rows = {}
        for nominal in self.covered:
            low, high = binomial_band(self.replicates, nominal, level)
            rows[f"{nominal:g}"] = {
                "low": low / self.replicates,
                "high": high / self.replicates,
            }
        return pd.DataFrame(rows)

    def outside_band(self, level: float = 0.99) -> list[tuple[str, str, float]]:
        """``(quantity, nominal, coverage)`` outside the ``level`` binomial band.

        Example:
            >>> result.outside_band()   # doctest: +SKIP
            []
        """
        band = self.band(level)
        out = []
        for quantity, row in self.coverage().iterrows():
            for nominal, value in row.items():
                if not band.loc["low", nominal] <= value <= band.loc["high", nominal]:
                    out.append((str(quantity), str(nominal), float(value)))
        return out

    def uniformity(self, bins: int = 10) -> pd.Series:
        """Chi-square p-value of rank uniformity per quantity (``bins`` equal bins).

        Example:
            >>> result.uniformity().min() > 0.001   # doctest: +SKIP
            True
        """
        from scipy import stats

        edges = np.linspace(0, self.n_ranked + 1, bins + 1)
        out = {}
        for name, ranks in self.ranks.items():
            counts, _ = np.histogram(ranks.to_numpy(), edges)
            out[name] = float(stats.chisquare(counts).pvalue)
        return pd.Series(out, name="p_uniform")

    def table(self) -> pd.DataFrame:
        """Coverage per quantity and level with the rank-uniformity p-value."""
        frame = self.coverage()
        frame["p_uniform"] = self.uniformity()
        return frame

    def to_dict(self) -> dict:
        """The ``bayescale calibrate --json`` object."""
        band = self.band()
        return {
            "law": self.law,
            "replicates": self.replicates,
            "coverage": {
                q: {k: float(v) for k, v in row.items()} for q, row in self.coverage().iterrows()
            },
            "band99": {k: [float(band.loc["low", k]), float(band.loc["high", k])] for k in band},
            "outside_band99": [list(t) for t in self.outside_band()],
            "p_uniform": {k: float(v) for k, v in self.uniformity().items()},
            "n_ranked": int(self.n_ranked),
            "rejected": int(self.rejected),
            "not_ok": int(self.not_ok),
            "check_fired": None if self.check_fired is None else int(self.check_fired),
            "priors": dict(self.priors),
            "settings": dict(self.settings),
            "seconds": round(float(self.seconds), 2),
        }

    def write(self, out_dir, overwrite: bool = False) -> list:
        """Write ``calibration.json``, ``ranks.csv``, ``coverage.csv`` and ``ranks.png``.

        Refuses to overwrite existing files unless ``overwrite``.
        """
        import json
        from pathlib import Path

        import matplotlib.pyplot as plt

        out = Path(out_dir)
        names = ("calibration.json", "ranks.csv", "coverage.csv", "ranks.png")
        existing = [n for n in names if (out / n).exists()]
        if existing and not overwrite:
            raise ValueError(
                f"{str(out / existing[0])!r} exists; pass overwrite=True (--force) to replace it"
            )
        out.mkdir(parents=True, exist_ok=True)
        (out / "calibration.json").write_text(json.dumps(self.to_dict(), indent=2))
        self.ranks.to_csv(out / "ranks.csv", index_label="replicate")
        self.table().to_csv(out / "coverage.csv", index_label="quantity")
        fig = plot_rank_grid(self)
        fig.savefig(out / "ranks.png", dpi=110)
        plt.close(fig)
        return [out / n for n in names]


# --------------------------------------------------------------------------- plots


def plot_ranks(calibration: Calibration, quantity: str, bins: int = 10, ax=None):
    """Rank histogram of one quantity with the 99% band of a uniform histogram.

    Example:
        >>> ax = plot_ranks(result, "alpha")   # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from scipy import stats

    if quantity not in calibration.ranks:
        raise ValueError(
            f"unknown quantity {quantity!r}; quantities: {', '.join(calibration.ranks.columns)}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    ranks = calibration.ranks[quantity].to_numpy()
    edges = np.linspace(0, calibration.n_ranked + 1, bins + 1)
    low, high = stats.binom.interval(0.99, len(ranks), 1.0 / bins)
    ax.axhspan(low, high, color="0.85", zorder=0, label="99% band (uniform)")
    ax.axhline(len(ranks) / bins, color="0.5", lw=1)
    ax.hist(ranks, bins=edges, color="C0", edgecolor="white")
    ax.set_xlabel(f"rank of truth among {calibration.n_ranked} draws")
    ax.set_ylabel("replicates")
    ax.set_title(quantity)
    return ax


def plot_rank_grid(calibration: Calibration, bins: int = 10):
    """Rank histograms of every quantity in one figure (returns the Figure).

    Example:
        >>> fig = plot_rank_grid(result)   # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    names = list(calibration.ranks.columns)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        plot_ranks(calibration, name, bins=bins, ax=ax)
        ax.set_xlabel("")
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(f"SBC ranks, {calibration.law}, {calibration.replicates} replicates")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- core


def _fit_quietly(runs, law, **kwargs):
    """Fit without the diagnostics warning; return (fit, ok).

    The fit's ``info["warn"]`` is turned off so that its predictions do not warn either:
    calibration counts not-ok fits (``Calibration.not_ok``) instead.
    """
    from .._util import FitWarning
    from ..inference.fitting import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        result = fit(runs, law, progress=False, **kwargs)
    result.info["warn"] = False
    return result, bool(result.diagnostics.ok)


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


def _thin(flat: np.ndarray, n: int) -> np.ndarray:
    # evenly spaced over the chains' concatenated draws: cuts the autocorrelation that
    # would otherwise make ranks of correct posteriors look non-uniform
    index = np.linspace(0, flat.size - 1, n).round().astype(int)
    return flat[index]


def _score(draws: np.ndarray, truth: float, n_ranked: int, levels) -> tuple[int, dict]:
    flat = np.asarray(draws, np.float64).reshape(-1)
    rank = int(np.sum(_thin(flat, n_ranked) < truth))
    covered = {}
    for level in levels:
        low, high = np.quantile(flat, [(1 - level) / 2, 1 - (1 - level) / 2])
        covered[level] = bool(low <= truth <= high)
    return rank, covered


def _runs(law: Law, design: Mapping[str, np.ndarray], loss: np.ndarray):
    from ..data.runs import read_runs

    frame = pd.DataFrame({k: design[k] for k in law.inputs})
    frame["loss"] = loss
    return read_runs(frame, **{k: k for k in law.inputs}, loss="loss")


def _simulate(law, theta, log_ref, design, sigma, nu, rng):
    import jax.numpy as jnp

    x = {k: jnp.asarray(np.log(design[k]) - log_ref[k]) for k in law.inputs}
    log_mu = np.asarray(law.log_loss({k: jnp.asarray(v) for k, v in theta.items()}, x))
    eps = rng.standard_t(nu, log_mu.shape) if nu is not None else rng.standard_normal(log_mu.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(log_mu + sigma * eps), log_mu


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
            loss, _ = _simulate(law, theta, log_ref, design, sigma, nu, rng)
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
        chains=chains,
        draws=draws,
        warmup=warmup,
        target_accept=target_accept,
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


# --------------------------------------------------------------------------- misspecification


def _bnsl_truth(
    rng: np.random.Generator, log_c: np.ndarray, break_at: str, kind: str = "flatten"
) -> dict:
    """A broken power law in compute with a clear change of slope."""
    c_lo, c_hi = float(log_c.min()), float(log_c.max())
    if break_at == "inside":
        log_d = c_lo + rng.uniform(0.45, 0.65) * (c_hi - c_lo)
    else:  # just beyond: between the data and the 10x target
        log_d = c_hi + rng.uniform(0.3, 1.5)
    c0 = rng.uniform(0.15, 0.3)
    return {
        "a": rng.uniform(1.5, 2.0),
        "b": float(np.exp(rng.uniform(0.0, 0.7) + c0 * np.mean(log_c))),
        "c0": c0,
        # flatten: the slope halves after the break (extrapolations turn optimistic);
        # steepen: it doubles (pessimistic)
        "c_1": -0.5 * c0 if kind == "flatten" else c0,
        "d_1": float(np.exp(log_d)),
        "f_1": rng.uniform(0.1, 0.4),
    }


def misspecification(
    replicates: int,
    seed: int = 0,
    *,
    break_at: str = "inside",
    kind: str = "flatten",
    runs_per_fit: int = 16,
    noise: float = 0.01,
    chains: int = 2,
    draws: int = 300,
    warmup: int = 300,
    discrepancy: bool = False,
    levels: Sequence[float] = LEVELS,
    check: bool = True,
) -> dict[str, Calibration]:
    """Extrapolation coverage when the law is wrong: bnsl truth, kaplan_c (+E) fit.

    The pairing is nested: ``kaplan_c`` with an irreducible loss, ``L = E + (C_c/C)^alpha``,
    is a broken power law with no break, on the same input (compute). So the *only*
    misspecification is the break; fitting a law of N and D to a truth of compute alone would
    mix misspecification with an unidentified N/D split. Each replicate draws a bnsl truth
    (slope halving at a break ``inside`` the ladder's compute range or just ``beyond`` it),
    fits ``kaplan_c`` to the same ladder as a control whose truth has no break (``c_1 = 0``)
    and to the broken one, and scores ``loss@10x``/``loss@100x``. ``kind="flatten"`` halves
    the slope after the break (an irreducible loss can mimic it), ``"steepen"`` doubles it
    (no ``E`` can).

    Returns:
        ``{"well_specified": Calibration, "misspecified": Calibration}`` with ``check_fired``
        counting replicates whose :meth:`Fit.check` fired.

    Example:
        >>> out = misspecification(20, break_at="beyond")          # doctest: +SKIP
        >>> out["misspecified"].coverage()                          # doctest: +SKIP
    """
    if break_at not in ("inside", "beyond"):
        raise ValueError(f"break_at must be 'inside' or 'beyond' but got {break_at!r}")
    if kind not in ("flatten", "steepen"):
        raise ValueError(f"kind must be 'flatten' or 'steepen' but got {kind!r}")
    bnsl = get_law("bnsl", k=1, x="compute")
    fit_law = get_law("kaplan_c", irreducible=True)
    rng = np.random.default_rng(seed)
    levels = tuple(float(lvl) for lvl in levels)
    started = time.perf_counter()
    rows = {
        name: {"cov": [], "rank": [], "truth": [], "fired": 0, "not_ok": 0}
        for name in ("well_specified", "misspecified")
    }
    for _ in range(replicates):
        design = simulate_design(bnsl, runs_per_fit, rng)
        log_c = np.log(design["compute"])
        truth = _bnsl_truth(rng, log_c, break_at, kind)
        eps = rng.standard_normal(runs_per_fit)
        fit_seed = int(rng.integers(2**31 - 1))
        for name, c1 in (("well_specified", 0.0), ("misspecified", truth["c_1"])):
            t = {**truth, "c_1": c1}
            mean = np.asarray(bnsl.loss(t, compute=design["compute"]), np.float64)
            runs = _runs(bnsl, design, mean * np.exp(noise * eps))
            result, ok = _fit_quietly(
                runs,
                fit_law,
                chains=chains,
                draws=draws,
                warmup=warmup,
                seed=fit_seed,
                discrepancy=discrepancy,
            )
            rows[name]["not_ok"] += not ok
            if check:
                rows[name]["fired"] += not result.check(warn=False).ok
            cov_row, rank_row, truth_row = {lvl: {} for lvl in levels}, {}, {}
            for label, target in _targets(bnsl, design).items():
                value = float(np.asarray(bnsl.loss(t, compute=target["compute"])).reshape(-1)[0])
                draws_ = result.predict(compute=target["compute"], noise=False).draws
                rank, cov = _score(draws_, value, 99, levels)
                rank_row[f"loss@{label}"] = rank
                truth_row[f"loss@{label}"] = value
                for lvl in levels:
                    cov_row[lvl][f"loss@{label}"] = cov[lvl]
            rows[name]["cov"].append(cov_row)
            rows[name]["rank"].append(rank_row)
            rows[name]["truth"].append(truth_row)
    seconds = time.perf_counter() - started
    out = {}
    for name, r in rows.items():
        out[name] = Calibration(
            law=fit_law.name,
            ranks=pd.DataFrame(r["rank"]),
            covered={lvl: pd.DataFrame([c[lvl] for c in r["cov"]]) for lvl in levels},
            truths=pd.DataFrame(r["truth"]),
            n_ranked=99,
            not_ok=r["not_ok"],
            check_fired=r["fired"] if check else None,
            settings={
                "truth": "bnsl k=1 (compute)" + ("" if name == "misspecified" else ", c_1 = 0"),
                "break_at": break_at,
                "kind": kind,
                "runs_per_fit": runs_per_fit,
                "noise": noise,
                "discrepancy": discrepancy,
                "chains": chains,
                "draws": draws,
                "warmup": warmup,
                "seed": seed,
            },
            seconds=seconds,
        )
    return out
