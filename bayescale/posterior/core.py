"""The :class:`Fit`: posterior draws, summaries, diagnostics, predictions, persistence.

A fit keeps the sampled (internal, centred) parameters and reports natural-scale ones
(``E`` in nats, ``A`` not ``log A``). Predictions for "the next run" include the
run-to-run noise of the likelihood; ``noise=False`` gives parameter-only intervals.

The bodies of its larger methods sit beside it: summaries and diagnostics in
``_summaries``, predictions and the beyond-the-data measures in ``_predict``, the DataTree
in ``_datatree``; what it returns (:class:`Diagnostics`, :class:`Prediction`) in
:mod:`bayescale.posterior.results`.

Example:
    >>> result = bs.fit(runs, "chinchilla")                       # doctest: +SKIP
    >>> result.predict(params=70e9, tokens=1.4e12).to_dict()      # doctest: +SKIP
    {'median': 1.94, 'mean': 1.94, 'lower': 1.90, 'upper': 1.99, 'prob': 0.95}
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .._util import FitWarning, check_prob
from ..model.scaling import DOWNSTREAM_NAMES, ScalingModel
from . import _datatree, _predict, _summaries
from .results import Diagnostics, Prediction

__all__ = ["Diagnostics", "Fit", "FitWarning", "Prediction", "check_prob", "load_fit"]


def _version() -> str:
    from .. import __version__

    return __version__


class Fit:
    """A fitted scaling law: posterior draws plus everything needed to use them.

    Args:
        model: the :class:`~bayescale.model.ScalingModel` that was sampled.
        samples: sampled sites, ``(chains, draws, ...)``.
        stats: sample stats (``diverging``, ``energy``, ``n_steps``).
        runs: the validated runs.
        info: sampler settings and provenance.
    """

    def __init__(
        self,
        model: ScalingModel,
        samples: Mapping[str, np.ndarray],
        stats: Mapping[str, np.ndarray],
        runs,
        info: Mapping | None = None,
    ):
        self.model = model
        self.samples = {k: np.asarray(v) for k, v in samples.items()}
        self.stats = {k: np.asarray(v) for k, v in stats.items()}
        self.runs = runs
        self.info = dict(info or {})
        self.info.setdefault("bayescale_version", _version())
        self._diagnostics: Diagnostics | None = None
        self._summary_cache: dict[float, pd.DataFrame] = {}
        #: where each chain ended and the metric it used (``fit(..., warm_start=this)``);
        #: None for fits read from a file or made by ``fit_many``
        self.sampler_end: dict[str, np.ndarray] | None = None
        if self.info.get("warn", True) and not self.diagnostics.ok:
            warnings.warn(
                f"fit diagnostics not ok: {self.diagnostics.verdict()}", FitWarning, stacklevel=2
            )

    # ------------------------------------------------------------------ shapes
    @property
    def law(self):
        return self.model.law

    @property
    def spec(self):
        return self.model.spec

    @property
    def n_chains(self) -> int:
        return int(next(iter(self.samples.values())).shape[0])

    @property
    def n_draws(self) -> int:
        return int(next(iter(self.samples.values())).shape[1])

    @property
    def group_names(self) -> tuple[str, ...]:
        return self.model.group_names

    def flat(self, name: str) -> np.ndarray:
        """Draws of a sampled site with chains merged: ``(chains*draws, ...)``."""
        value = self.samples[name]
        return value.reshape((-1, *value.shape[2:]))

    # ------------------------------------------------------------------ reported
    def reported(self) -> dict[str, np.ndarray]:
        """Natural-scale parameters, ``(chains, draws)`` or ``(chains, draws, groups)``."""
        names = self.law.parameter_names
        theta = {n: self.samples[n] for n in names}
        if any(v.ndim == 3 for v in theta.values()):
            n_groups = self.model.n_groups
            theta = {
                n: v if v.ndim == 3 else np.repeat(v[..., None], n_groups, axis=-1)
                for n, v in theta.items()
            }
        ref = self.model.log_ref
        out = {k: np.asarray(v, np.float64) for k, v in self.law.to_reported(theta, ref).items()}
        for name, value in out.items():
            if value.ndim == 3 and np.all(value == value[..., :1]):
                out[name] = value[..., 0]  # shared across groups: report once
        if self.spec.downstream:
            for name in DOWNSTREAM_NAMES:
                out[name] = self.samples[name]
        for name in self.model.noise_sites:
            out[name] = self.samples[name]
        for name in list(self.samples):
            if name.endswith(("_mu", "_tau")) and name[: name.rfind("_")] in names:
                out[name] = self.samples[name]
        return out

    def reported_flat(self) -> dict[str, np.ndarray]:
        """Reported draws flattened to one column per name (``alpha[rpj]`` for groups)."""
        out = {}
        for name, value in self.reported().items():
            if value.ndim == 3:
                for g, gname in enumerate(self.group_names):
                    out[f"{name}[{gname}]"] = value[..., g]
            else:
                out[name] = value
        return out

    # ------------------------------------------------------------------ summaries
    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summary of the reported parameters.

        Columns: mean, sd, median, lower, upper (equal-tailed at ``prob``), r_hat,
        ess_bulk, ess_tail.
        """
        return _summaries.summary(self, prob)

    @property
    def diagnostics(self) -> Diagnostics:
        if self._diagnostics is None:
            self._diagnostics = self._compute_diagnostics()
        return self._diagnostics

    def _compute_diagnostics(self) -> Diagnostics:
        return _summaries.diagnostics(self)

    def to_dict(self, prob: float = 0.95) -> dict:
        """The ``bayescale summary --json`` object (DESIGN.md contract)."""
        return _summaries.summary_dict(self, prob)

    def __repr__(self) -> str:
        d = self.diagnostics
        return (
            f"<Fit {self.spec.name} ({self.law.formula}) on {self.runs.n_runs} runs, "
            f"{self.n_chains}x{self.n_draws} draws, diagnostics: {d.verdict()}>"
        )

    def _repr_html_(self) -> str:
        """Notebook view: headline, coloured diagnostics verdict and parameter table."""
        from .tables import fit_html

        return fit_html(self)

    def to_table(self, format: str = "markdown", prob: float = 0.95, **kwargs) -> str:
        """Parameter table (``markdown``, ``latex`` or ``html``); see :func:`bayescale.posterior.tables.to_table`.

        Example:
            >>> print(fit.to_table("latex"))  # doctest: +SKIP
        """
        from .tables import to_table

        return to_table(self, format, prob, **kwargs)

    # ------------------------------------------------------------------ predictions
    def input_names(self) -> tuple[str, ...]:
        """The inputs a target of this fit can be given: params, tokens, compute and the
        named inputs of its runs (``U``)."""
        return ("params", "tokens", "compute", *self.runs.inputs)

    def _group_codes(self, group, size: int) -> np.ndarray:
        return _predict.group_codes(self, group, size)

    def log_loss_draws(self, values: Mapping[str, np.ndarray], codes: np.ndarray) -> np.ndarray:
        """Noise-free log loss per draw and target: ``(chains*draws, targets)``.

        Evaluated with numpy (the built-in laws follow their inputs' array type, see
        :func:`bayescale.laws.base._xp`); a custom law's own ``jax.numpy`` code takes numpy
        arrays as well.
        """
        return _predict.log_loss_draws(self, values, codes)

    def predict(
        self,
        params=None,
        tokens=None,
        compute=None,
        group=None,
        *,
        metric: str = "loss",
        noise: bool = True,
        prob: float = 0.95,
        seed: int = 0,
        sweep: str | None = None,
        at: Mapping[str, object] | None = None,
    ) -> Prediction:
        """Posterior predictive draws for new runs.

        Args:
            params, tokens, compute: target sizes (scalars or arrays); missing ones follow
                from ``C = 6ND`` (or the fit's FLOPs-per-token rule).
            at: the target's inputs by name, for named inputs such as ``{"U": 5e9}``
                (``params``/``tokens``/``compute`` may be given here too). A name the
                fit does not know is an error naming the ones it does.
            group: group name(s) for grouped fits.
            metric: ``loss`` or ``downstream`` (needs a downstream fit).
            noise: include run-to-run noise (the next run) or parameters only.
            prob: interval probability.
            seed: seed for the noise draws.
            sweep: for fits with a sweep column, the sweep the new run belongs to; None
                (default) means a new sweep (a new budget or ladder), whose shared deviation
                is drawn afresh from ``Normal(0, tau_sweep)`` when ``noise`` is on.

        Fits made with ``discrepancy=True`` add ``kappa * max(0, log C - log C_max)`` times a
        standard normal to the log loss beyond the data, with or without ``noise``.
        A fit whose sampler diagnostics are not ok warns (:class:`FitWarning`).

        Example:
            >>> fit.predict(params=70e9, tokens=1.4e12).to_dict()   # doctest: +SKIP
        """
        return _predict.predict(
            self,
            params,
            tokens,
            compute,
            group,
            metric=metric,
            noise=noise,
            prob=prob,
            seed=seed,
            sweep=sweep,
            at=at,
        )

    def drift_offset(self, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray:
        """The learned drift on log loss per draw and target, ``(draws, targets)``.

        ``drift * max(0, log C - log C_max) + drift_ratio * max(0, log M - log M_max)``
        (:mod:`bayescale.model.drift`); zeros inside the data and for fits without drift.
        """
        return _predict.drift_offset(self, values, codes)

    def beyond_ratio(self, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray:
        """Log-distance of targets beyond the largest fitted tokens per parameter, ``max(0,
        log M - log M_max)`` with M = D/N (zeros when the fit has no ratio edge).

        Example:
            >>> fit.beyond_ratio({"params": np.array([1e9]), "tokens": np.array([6.4e11])})  # doctest: +SKIP
            array([3.47])
        """
        return _predict.beyond_ratio(self, values, codes)

    def beyond_data(self, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray:
        """Log-distance of targets beyond the largest observed compute, ``max(0, log C/C_max)``.

        Laws without compute use the sum of the log-distances of their inputs. With group
        ``codes`` (grouped fits), each target is measured from its own group's edge.

        Example:
            >>> fit.beyond_data({"params": np.array([7e10]), "tokens": np.array([1.4e12])})  # doctest: +SKIP
            array([4.6])
        """
        return _predict.beyond_data(self, values, codes)

    def check(self, warn: bool = True):
        """Can the law describe the data? PSIS-LOO Pareto k and a check of the largest runs.

        Separate from :attr:`diagnostics` (which judge the sampler): see
        :func:`bayescale.posterior.model_check.check_fit`. Warns :class:`ModelCheckWarning` when not ok.

        Example:
            >>> fit.check().ok   # doctest: +SKIP
            True
        """
        from .model_check import check_fit

        return check_fit(self, warn=warn)

    def interval(self, prob: float = 0.95, **target) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` of the predictive interval; see :meth:`predict`."""
        p = self.predict(prob=prob, **target)
        return p.lower, p.upper

    # ------------------------------------------------------------------ likelihood
    def loss_runs(self) -> np.ndarray:
        """Boolean mask of the runs whose loss informs the law (all, unless ``loss_mask``)."""
        mask = self.info.get("loss_mask")
        return np.ones(self.runs.n_runs, bool) if mask is None else np.asarray(mask, bool)

    def log_likelihood(self) -> np.ndarray:
        """Pointwise log-likelihood of the observed log losses: ``(chains, draws, runs)``.

        Only runs whose loss entered the likelihood count (see ``loss_mask`` in
        :func:`~bayescale.inference.fitting.fit`), so PSIS-LOO compares like with like.
        """
        values = {k: self.runs.input(k) for k in self.law.inputs}
        codes = self.runs.group if self.model.grouped else np.zeros(self.runs.n_runs, np.int32)
        log_mu = self.log_loss_draws(values, codes)
        if self.model.n_sweeps:  # observed runs sit in known sweeps
            log_mu = log_mu + self.flat("sweep_effect")[:, self.model.sweep_codes(self.runs)]
        flat = {n: self.flat(n) for n in self.model.noise_sites}
        t = self.model.theta_for_rows(flat, codes, list(flat))
        y = np.log(self.runs.loss)[None, :]
        sigma = t["sigma"] * _predict.scatter_factor(self, values, codes)
        ll = _log_density(y, log_mu, sigma, t.get("nu"))
        ll = np.broadcast_to(ll, log_mu.shape)[:, self.loss_runs()]
        return ll.reshape(self.n_chains, self.n_draws, -1)

    # ------------------------------------------------------------------ arviz / files
    def to_datatree(self, log_likelihood: bool | None = None):
        """ArviZ DataTree with posterior, sample_stats, log_likelihood and observed data.

        Built with ``arviz_base`` (the data layer of ArviZ 1.x): ``import arviz`` also
        imports arviz-stats and arviz-plots, ~1.8 s that ``bayescale fit --out`` spent
        before writing a file.

        Args:
            log_likelihood: include the pointwise log-likelihood (draws x runs) for
                ArviZ's LOO. ``None`` (default) includes it up to
                :data:`LOGLIK_MAX_VALUES` values (a fit of 250 runs with 4000 draws);
                beyond that it would dominate memory and the file (320 MB at 10,000
                runs), and :meth:`log_likelihood` computes it on demand.

        Example:
            >>> tree = fit.to_datatree()          # doctest: +SKIP
            >>> sorted(tree.children)[:3]         # doctest: +SKIP
            ['bayescale_samples', 'constant_data', 'log_likelihood']
        """
        return _datatree.to_datatree(self, log_likelihood)

    def _record(self) -> dict:
        """The JSON record of how the fit was made (a fit file's ``bayescale`` attribute)."""
        return _datatree.fit_record(self)

    def to_netcdf(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the fit to netCDF atomically, with a checksum; refuse to overwrite unless
        asked. See :func:`bayescale.posterior.fitfile.write_fit`."""
        from .fitfile import write_fit

        return write_fit(self, path, overwrite=overwrite)


def _log_density(y, loc, scale, df=None) -> np.ndarray:
    """Normal (``df`` None) or Student-t log density of ``y``, elementwise (broadcast).

    The same values as ``scipy.stats.norm/t.logpdf``, without importing scipy.stats
    (~0.9 s), which every ``bayescale fit --out`` paid for its pointwise log-likelihood.
    """
    z = (np.asarray(y) - loc) / scale
    if df is None:
        return -0.5 * z**2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
    from scipy.special import gammaln  # light (~0.1 s with numpy already in)

    df = np.asarray(df, float)
    return (
        gammaln(0.5 * (df + 1.0))
        - gammaln(0.5 * df)
        - 0.5 * np.log(df * np.pi)
        - np.log(scale)
        - 0.5 * (df + 1.0) * np.log1p(z**2 / df)
    )


def load_fit(path: str | Path) -> Fit:
    """Load a fit written by :meth:`Fit.to_netcdf`; see :func:`bayescale.posterior.fitfile.load_fit`."""
    from .fitfile import load_fit as _load

    return _load(path)
