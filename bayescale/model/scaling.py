"""Spec + runs -> a numpyro model function.

The model follows numpyro's ``obs=None`` convention: ``model(inputs, hyper)`` draws from
the prior predictive, ``model(inputs, hyper, loss=..., downstream=...)`` conditions on
data. Everything that changes from dataset to dataset (centred log-inputs, group codes,
prior hyper-parameters) is an *argument*, so a compiled sampler is reused for new data of
the same padded shape; only the structure (law, prior families, likelihood, pooling,
number of groups) is baked in and forms :attr:`ScalingModel.static_key`.

Residuals are on log loss. ``student_t`` (default) is the Bayesian analogue of the Huber
loss of Hoffmann et al. and Besiroglu et al.; ``normal`` is least squares.

Pooling across groups (architectures, data mixes, arms):

* ``none``: every parameter and the noise scale per group (independent fits).
* ``shared``: exponents common to all groups; coefficients and ``E`` per group.
* ``partial``: exponents per group drawn around a common mean, non-centred in the
  unconstrained space of the exponent's prior: ``alpha_g = T(T^-1(alpha_mu) + alpha_tau z_g)``.

Structured noise (see :mod:`bayescale.trust.validate` for what it buys on real sweeps):

* a **sweep random effect** when the runs have a sweep column (isoFLOP budget, ladder):
  ``log_loss += sweep_effect[s]``, ``sweep_effect = tau_sweep * P z``, ``z ~ Normal(0, 1)``
  (non-centred), ``tau_sweep ~ HalfNormal(0.05)``, ``P`` projecting out per-group levels and
  a smooth trend in compute so that the law keeps them (:meth:`ScalingModel.sweep_projection`).
  Runs of one budget share its deviation, so they no longer count as independent evidence,
  and a new budget draws a new deviation ``Normal(0, tau_sweep)``.
* an optional **discrepancy term** (``discrepancy=True``): predictions beyond the data get
  ``kappa * max(0, log C - log C_max) * Normal(0, 1)`` on log loss, ``kappa ~
  HalfNormal(0.01)``. No run inside the data can inform ``kappa`` (every observed distance is
  0), so it is sampled from its prior: an honest, explicit prior-only inflation whose scale
  (1% per e-fold at ~1 sd) matches how far published extrapolations miss; leave-largest-out
  (:func:`bayescale.trust.validate.leave_largest_out`) is the way to check it on a user's sweeps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..laws.base import DataSummary, Law, reference_scale
from ..laws.priors import Prior
from ..laws.specs import ModelSpec
from .noise import (
    NOISE_PRIORS,
    STRUCTURED_PRIORS,
    likelihood,
    sweep_projection,
    warn_if_improper,
)
from .scatter import check_scale, depth, scale_frontier

__all__ = ["ScalingModel", "build_model", "pad_size"]

_TAU_PRIOR = Prior("HalfNormal", {"sigma": 0.5})
_UNGROUPED = ("tau_sweep", "kappa", "drift", "drift_ratio", "scatter_growth")
DOWNSTREAM_NAMES = ("eps", "k", "gamma")


def pad_size(n: int) -> int:
    """Padded number of rows: the next power of two, at least 8.

    Padding lets one compiled sampler serve every dataset in a size bucket.

    Example:
        >>> pad_size(245), pad_size(5)
        (256, 8)
    """
    return max(8, 1 << max(0, math.ceil(math.log2(max(n, 1)))))


@dataclass(frozen=True)
class ScalingModel:
    """A compiled-once numpyro model for one spec, data layout and set of priors.

    Attributes:
        spec: the :class:`~bayescale.laws.specs.ModelSpec`.
        priors: every sample site's prior, defaults resolved against the data.
        group_names: names of the groups (a single ``("all",)`` when ungrouped).
        log_ref: log reference scale of each input (0 for custom laws).
        sweep_names: sweeps (isoFLOP budgets, ladders) with a shared deviation on log loss,
            ``sweep_effect[s] ~ Normal(0, tau_sweep)``; empty when no sweep column is given.
        discrepancy: whether predictions beyond the data carry the discrepancy term
            ``kappa * max(0, log C - log C_max)`` (``kappa`` has its prior only).
        frontier: log of the largest observed value of each input (the data's edge), and
            of tokens per parameter (``"ratio"``), also per group (``"compute[llama]"``) for
            grouped fits.
        drift: the drift sites the fit carries (``"drift"``: per e-fold of compute beyond
            the data; ``"drift_ratio"``: per e-fold of tokens per parameter beyond the
            largest fitted), learned from the ladder's own backtest
            (:mod:`bayescale.model.drift`), not sampled by NUTS.
        scatter_growth: whether the run-to-run scatter widens toward the small end of the
            fit set, ``sigma * exp(scatter_growth * depth)``, ``depth`` the e-folds of
            scale (log compute, or the law's log params and tokens) below the fit set's
            top (:meth:`depth`); runs at or beyond the top scatter by ``sigma``.
    """

    spec: ModelSpec
    priors: Mapping[str, Prior]
    group_names: tuple[str, ...]
    log_ref: Mapping[str, float]
    sweep_names: tuple[str, ...] = ()
    discrepancy: bool = False
    frontier: Mapping[str, float] = field(default_factory=dict)
    drift: tuple[str, ...] = ()
    scatter_growth: bool = False

    # ------------------------------------------------------------------ structure
    @property
    def law(self) -> Law:
        return self.spec.law

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def grouped(self) -> bool:
        return self.n_groups > 1

    @property
    def n_sweeps(self) -> int:
        return len(self.sweep_names)

    def sweep_codes(self, runs) -> np.ndarray:
        """Codes of ``runs.sweep`` in this model's ``sweep_names`` (by name, so subsets work)."""
        names = np.asarray(runs.sweep_names, dtype=object)[np.asarray(runs.sweep)]
        index = {name: i for i, name in enumerate(self.sweep_names)}
        unknown = sorted({str(n) for n in names} - set(index))
        if unknown:
            raise ValueError(
                f"sweep {unknown[0]!r} was not in the fitted data; sweeps: "
                f"{', '.join(self.sweep_names)}"
            )
        return np.asarray([index[str(name)] for name in names], np.int32)

    def is_grouped(self, name: str) -> bool:
        """Whether site ``name`` has one value per group."""
        if not self.grouped or name in _UNGROUPED:
            return False
        if name in ("sigma", "nu", "sigma_downstream", "nu_downstream"):
            return self.spec.pooling == "none"
        role = {p.name: p.role for p in self.law.parameters}.get(name, "coefficient")
        if role == "exponent":
            return self.spec.pooling in ("none", "partial")
        return True

    def is_hierarchical(self, name: str) -> bool:
        role = {p.name: p.role for p in self.law.parameters}.get(name)
        return self.grouped and self.spec.pooling == "partial" and role == "exponent"

    @property
    def noise_sites(self) -> tuple[str, ...]:
        sites = ["sigma"] + (["nu"] if self.spec.likelihood == "student_t" else [])
        if self.spec.downstream:
            sites += ["sigma_downstream"] + (
                ["nu_downstream"] if self.spec.likelihood == "student_t" else []
            )
        sites += ["tau_sweep"] if self.n_sweeps else []
        sites += ["kappa"] if self.discrepancy else []
        sites += ["scatter_growth"] if self.scatter_growth else []
        sites += list(self.drift)
        return tuple(sites)

    @property
    def parameter_sites(self) -> tuple[str, ...]:
        names = list(self.law.parameter_names)
        if self.spec.downstream:
            names += list(DOWNSTREAM_NAMES)
        return tuple(names)

    @property
    def portable(self) -> bool:
        """Whether the compiled sampler may be stored on disk (not for custom laws: user
        code that bayescale cannot fingerprint)."""
        return not dict(self.law.options).get("custom")

    def static_key(self) -> tuple:
        """What the compiled sampler depends on besides array values."""
        return (
            self.law.name,
            self.law.options,
            id(self.law.log_loss_fn) if dict(self.law.options).get("custom") else None,
            self.spec.likelihood,
            self.spec.pooling,
            self.spec.downstream,
            self.n_groups,
            tuple(sorted((k, p.static_key()) for k, p in self.priors.items())),
            self.n_sweeps,
            self.discrepancy,
            self.scatter_growth,
        )

    def hyper(self) -> dict[str, dict[str, np.ndarray]]:
        """Prior hyper-parameters as float64 arrays (model arguments)."""
        return {
            name: {k: np.asarray(v, np.float64) for k, v in prior.hyper().items()}
            for name, prior in self.priors.items()
        }

    # ------------------------------------------------------------------ data
    def inputs(
        self,
        values: Mapping[str, np.ndarray],
        group: np.ndarray | None = None,
        pad_to: int | None = None,
        sweep: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Centred log-inputs, group (and sweep) codes and the row mask, padded to ``pad_to``."""
        n = len(next(iter(values.values())))
        size = n if pad_to is None else pad_to
        mask = np.zeros(size, bool)
        mask[:n] = True
        x = {}
        for name in self.law.inputs:
            col = np.zeros(size)
            col[:n] = np.log(np.asarray(values[name], np.float64)) - self.log_ref.get(name, 0.0)
            x[name] = col
        codes = np.zeros(size, np.int32)
        if group is not None:
            codes[:n] = np.asarray(group, np.int32)
        out = {"x": x, "group": codes, "mask": mask}
        if self.scatter_growth:
            depth = np.zeros(size)
            depth[:n] = self.depth(values, codes[:n])
            out["depth"] = depth
        if self.n_sweeps:
            sweep_codes = np.zeros(size, np.int32)
            if sweep is not None:
                sweep_codes[:n] = np.asarray(sweep, np.int32)
            out["sweep"] = sweep_codes
            out["sweep_projection"] = self.sweep_projection(
                sum(x[k][:n] for k in self.law.inputs), sweep_codes[:n], codes[:n]
            )
        return out

    def depth(self, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray:
        """E-folds of scale below the fit set's top, >= 0 (:func:`~bayescale.model.scatter.depth`)."""
        return depth(self, values, codes)

    def sweep_projection(self, log_scale, sweep, group) -> np.ndarray:
        """Projection that keeps sweep deviations free of what the law owns.

        Sweep effects ``tau * P z`` are restricted to the complement of the columns of
        ``[per-group intercepts, t, t^2]`` over sweeps, ``t`` the sweep's standardised mean
        log scale (log compute up to a constant). Unrestricted, the effects of isoFLOP
        budgets line up into a smooth trend in compute and take it from the law (on Porian
        et al.'s sweeps they did, and held-out budgets were predicted 8% off); restricted,
        the law keeps the trend and the effects keep the idiosyncratic deviations
        (restricted random effects, Hodges & Reich 2010). Columns are added while the rank
        stays below the number of sweeps, so a few sweeps keep at least one free direction.

        Example:
            >>> model.sweep_projection(np.log([1., 2, 4, 8]), np.array([0, 1, 2, 3]),
            ...                        np.zeros(4, int)).shape        # doctest: +SKIP
            (4, 4)
        """
        return sweep_projection(self.n_sweeps, log_scale, sweep, group)

    @staticmethod
    def pad(values: np.ndarray | None, size: int, fill: float = 1.0) -> np.ndarray | None:
        if values is None:
            return None
        out = np.full(size, fill, np.float64)
        out[: len(values)] = values
        return out

    # ------------------------------------------------------------------ model
    def _sample_parameter(self, name: str, hyper: Mapping, group, derived=None):
        """The site's value per run; with ``derived``, also ``derived(value)`` per run,
        computed per group (or once) before the values are gathered per run."""
        import numpyro
        import numpyro.distributions as dist

        def per_run(value, gather):
            out = value[group] if gather else value
            if derived is None:
                return out
            extra = derived(value)  # per group (or once), then gathered as the value is
            return out, (extra[group] if gather else extra)

        prior = self.priors[name]
        # priors up to their constants (Prior.unnormalized): NUTS needs no normalisers
        d = prior.unnormalized(hyper[name])
        if self.is_hierarchical(name):
            transform = dist.biject_to(d.support)
            mu = numpyro.sample(f"{name}_mu", d)
            tau = numpyro.sample(
                f"{name}_tau", self.priors[f"{name}_tau"].unnormalized(hyper[f"{name}_tau"])
            )
            with numpyro.plate("group", self.n_groups):
                z = numpyro.sample(f"{name}_z", dist.Normal(0.0, 1.0))
            value = numpyro.deterministic(name, transform(transform.inv(mu) + tau * z))
            return per_run(value, True)
        if self.is_grouped(name):
            with numpyro.plate("group", self.n_groups):
                value = numpyro.sample(name, d)
            return per_run(value, True)
        return per_run(numpyro.sample(name, d), False)

    def model(self, inputs, hyper, loss=None, downstream=None):
        """The numpyro model. ``loss``/``downstream`` are observations (None: predictive)."""
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist

        from ._density import student_t_df_terms

        group = inputs["group"]
        theta = {
            name: self._sample_parameter(name, hyper, group) for name in self.law.parameter_names
        }
        log_mu = self.law.log_loss(theta, inputs["x"])
        if self.n_sweeps:
            # runs of one sweep (an isoFLOP budget, one ladder) share a deviation from the
            # law; non-centred so that NUTS copes with tau_sweep near 0.
            tau = numpyro.sample(
                "tau_sweep", self.priors["tau_sweep"].unnormalized(hyper["tau_sweep"])
            )
            with numpyro.plate("sweep", self.n_sweeps):
                z = numpyro.sample("sweep_z", dist.Normal(0.0, 1.0))
            effect = numpyro.deterministic("sweep_effect", tau * (inputs["sweep_projection"] @ z))
            log_mu = log_mu + effect[inputs["sweep"]]
        if self.discrepancy:
            # beyond the data only: no observed run informs kappa, its posterior is its prior
            numpyro.sample("kappa", self.priors["kappa"].unnormalized(hyper["kappa"]))
        sigma = self._sample_parameter("sigma", hyper, group)
        if self.scatter_growth:
            # scatter that widens toward the small end of the ladder: runs far below the
            # top weigh less, runs at the top (and every prediction beyond it) keep sigma
            growth = numpyro.sample(
                "scatter_growth",
                self.priors["scatter_growth"].unnormalized(hyper["scatter_growth"]),
            )
            sigma = sigma * jnp.exp(growth * inputs["depth"])
        # Student-t: (nu, its log-density terms computed per group) per run
        nu = (
            self._sample_parameter("nu", hyper, group, derived=student_t_df_terms)
            if self.spec.likelihood == "student_t"
            else None
        )
        log_obs = None if loss is None else jnp.log(loss)
        # "loss_mask" (optional) leaves out runs whose loss must not inform the law but
        # whose (loss, error) pair still informs the downstream link (Gadre's 1.4B M=20 run).
        loss_mask = inputs.get("loss_mask", inputs["mask"])
        likelihood("log_loss", log_mu, sigma, nu, log_obs, loss_mask)
        if self.spec.downstream:
            dtheta = {n: self._sample_parameter(n, hyper, group) for n in DOWNSTREAM_NAMES}
            # the regressor is the observed loss (as in Gadre et al.); for new runs the
            # posterior predictive loss is plugged in, which propagates its uncertainty.
            regressor = jnp.exp(log_mu) if loss is None else loss
            mean = dtheta["eps"] - dtheta["k"] * jnp.exp(-dtheta["gamma"] * regressor)
            s = self._sample_parameter("sigma_downstream", hyper, group)
            df = (
                self._sample_parameter("nu_downstream", hyper, group, derived=student_t_df_terms)
                if self.spec.likelihood == "student_t"
                else None
            )
            likelihood("downstream", mean, s, df, downstream, inputs["downstream_mask"])

    # ------------------------------------------------------------------ draws
    def theta_for_rows(self, samples: Mapping[str, np.ndarray], group: np.ndarray, names) -> dict:
        """Per-draw parameters broadcast to ``(draws, rows)`` for the given group codes."""
        out = {}
        for name in names:
            value = np.asarray(samples[name])
            if self.is_grouped(name) or self.is_hierarchical(name):
                out[name] = value[:, group]
            else:
                out[name] = value[:, None]
        return out


def build_model(
    spec: ModelSpec, runs, discrepancy: bool = False, scatter_growth: bool = False
) -> ScalingModel:
    """Resolve priors against the data and fix the reference scale.

    Args:
        spec: the model spec.
        runs: a validated :class:`~bayescale.data.runs.Runs`; a sweep column adds the sweep
            random effect (``tau_sweep``).
        discrepancy: add the beyond-the-data discrepancy term (``kappa``).
        scatter_growth: let the scatter widen toward the small end of the fit set
            (``scatter_growth``, see :class:`ScalingModel`).

    Raises:
        ValueError: when the runs cannot identify the law (see ``Runs.require``), or
            ``scatter_growth`` for a law with none of params, tokens and compute.
    """
    law = spec.law
    runs.require(tuple(law.inputs), len(law.parameter_names), law.name)
    if spec.downstream and runs.downstream is None:
        raise ValueError(
            f"model {spec.name!r} fits downstream error but no downstream column was given "
            "(use downstream=COLUMN / --downstream COLUMN)"
        )
    values = {name: runs.input(name) for name in law.inputs}
    summary = DataSummary.from_arrays(runs.loss, values)
    log_ref = reference_scale(law, summary.log_ref)
    summary = DataSummary(summary.min_loss, summary.median_loss, summary.max_loss, log_ref)
    priors: dict[str, Prior] = law.default_priors(summary)
    priors.update(NOISE_PRIORS)
    priors.update(dict(law.noise))  # a law of another response (lr_opt) has its own scale
    if spec.downstream:
        from ..laws.core import get_law

        priors.update(get_law("downstream").default_priors(summary))
    group_names = (
        tuple(runs.group_names)
        if runs.group is not None and len(runs.group_names) > 1
        else ("all",)
    )
    if len(group_names) > 1 and spec.pooling == "partial":
        for p in law.parameters:
            if p.role == "exponent":
                priors[f"{p.name}_tau"] = _TAU_PRIOR
    sweep_names: tuple[str, ...] = ()
    if getattr(runs, "sweep", None) is not None:
        present = np.unique(np.asarray(runs.sweep))
        sweep_names = tuple(str(runs.sweep_names[i]) for i in present)
        priors["tau_sweep"] = STRUCTURED_PRIORS["tau_sweep"]
    if discrepancy:
        priors["kappa"] = STRUCTURED_PRIORS["kappa"]
    if scatter_growth:
        check_scale(law)
        priors["scatter_growth"] = STRUCTURED_PRIORS["scatter_growth"]
    frontier = {
        name: float(np.log(np.max(getattr(runs, name))))
        for name in ("params", "tokens", "compute")
        if getattr(runs, name, None) is not None
    }
    ratio = (
        np.log(np.asarray(runs.tokens) / np.asarray(runs.params))
        if runs.params is not None and runs.tokens is not None
        else None
    )
    if ratio is not None:
        frontier["ratio"] = float(ratio.max())
    if scatter_growth:  # the top of the scale, from which the scatter grows
        frontier.update(scale_frontier(law, values, runs, len(group_names) > 1))
    if len(group_names) > 1:  # each arm's own edge: "compute[llama]"
        for code, gname in enumerate(runs.group_names):
            rows = np.asarray(runs.group) == code
            for name in ("params", "tokens", "compute"):
                if getattr(runs, name, None) is not None and rows.any():
                    frontier[f"{name}[{gname}]"] = float(np.log(np.max(getattr(runs, name)[rows])))
            if ratio is not None and rows.any():
                frontier[f"ratio[{gname}]"] = float(ratio[rows].max())
    for name, prior in spec.priors.items():
        optional = (
            (name.endswith("_tau") and name not in priors)
            or (name in _UNGROUPED and name not in priors)
            or (
                name in (*DOWNSTREAM_NAMES, "sigma_downstream", "nu_downstream")
                and not spec.downstream
            )
        )
        if optional:
            continue  # a spec may carry priors for pooling/downstream variants it is not run with
        if name not in priors:
            from .._util import did_you_mean

            extra = did_you_mean(name, sorted(priors))
            raise ValueError(
                f"no parameter {name!r} to put a prior on{extra} Valid names: {', '.join(sorted(priors))}"
            )
        priors[name] = prior
    model = ScalingModel(
        spec,
        priors,
        group_names,
        log_ref,
        sweep_names,
        bool(discrepancy),
        frontier,
        scatter_growth=bool(scatter_growth),
    )
    if spec.likelihood == "student_t":
        warn_if_improper(model, runs)
    return model
