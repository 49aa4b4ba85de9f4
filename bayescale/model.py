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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .laws import DataSummary, Law, law_uses_reference
from .priors import Prior
from .specs import ModelSpec

__all__ = ["NOISE_PRIORS", "ScalingModel", "build_model", "pad_size"]

NOISE_PRIORS = {
    "sigma": Prior("HalfNormal", {"sigma": 0.1}),
    "nu": Prior("Gamma", {"concentration": 2.0, "rate": 0.1}),
    "sigma_downstream": Prior("HalfNormal", {"sigma": 0.05}),
    "nu_downstream": Prior("Gamma", {"concentration": 2.0, "rate": 0.1}),
}
_TAU_PRIOR = Prior("HalfNormal", {"sigma": 0.5})
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
        spec: the :class:`~bayescale.specs.ModelSpec`.
        priors: every sample site's prior, defaults resolved against the data.
        group_names: names of the groups (a single ``("all",)`` when ungrouped).
        log_ref: log reference scale of each input (0 for custom laws).
    """

    spec: ModelSpec
    priors: Mapping[str, Prior]
    group_names: tuple[str, ...]
    log_ref: Mapping[str, float]

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

    def is_grouped(self, name: str) -> bool:
        """Whether site ``name`` has one value per group."""
        if not self.grouped:
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
        return tuple(sites)

    @property
    def parameter_sites(self) -> tuple[str, ...]:
        names = list(self.law.parameter_names)
        if self.spec.downstream:
            names += list(DOWNSTREAM_NAMES)
        return tuple(names)

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
    ) -> dict[str, np.ndarray]:
        """Centred log-inputs, group codes and the row mask, padded to ``pad_to`` rows."""
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
        return {"x": x, "group": codes, "mask": mask}

    @staticmethod
    def pad(values: np.ndarray | None, size: int, fill: float = 1.0) -> np.ndarray | None:
        if values is None:
            return None
        out = np.full(size, fill, np.float64)
        out[: len(values)] = values
        return out

    # ------------------------------------------------------------------ model
    def _sample_parameter(self, name: str, hyper: Mapping, group):
        import numpyro
        import numpyro.distributions as dist

        prior = self.priors[name]
        d = prior.distribution(hyper[name])
        if self.is_hierarchical(name):
            transform = dist.biject_to(d.support)
            mu = numpyro.sample(f"{name}_mu", d)
            tau = numpyro.sample(
                f"{name}_tau", self.priors[f"{name}_tau"].distribution(hyper[f"{name}_tau"])
            )
            with numpyro.plate("group", self.n_groups):
                z = numpyro.sample(f"{name}_z", dist.Normal(0.0, 1.0))
            value = numpyro.deterministic(name, transform(transform.inv(mu) + tau * z))
            return value[group]
        if self.is_grouped(name):
            with numpyro.plate("group", self.n_groups):
                value = numpyro.sample(name, d)
            return value[group]
        return numpyro.sample(name, d)

    def _likelihood(self, site: str, mean, scale, df, obs, mask):
        import numpyro
        import numpyro.distributions as dist

        d = dist.StudentT(df, mean, scale) if df is not None else dist.Normal(mean, scale)
        with numpyro.plate(f"{site}_runs", mean.shape[-1]), numpyro.handlers.mask(mask=mask):
            numpyro.sample(site, d, obs=obs)

    def model(self, inputs, hyper, loss=None, downstream=None):
        """The numpyro model. ``loss``/``downstream`` are observations (None: predictive)."""
        import jax.numpy as jnp

        group = inputs["group"]
        theta = {
            name: self._sample_parameter(name, hyper, group) for name in self.law.parameter_names
        }
        log_mu = self.law.log_loss(theta, inputs["x"])
        sigma = self._sample_parameter("sigma", hyper, group)
        nu = (
            self._sample_parameter("nu", hyper, group)
            if self.spec.likelihood == "student_t"
            else None
        )
        log_obs = None if loss is None else jnp.log(loss)
        self._likelihood("log_loss", log_mu, sigma, nu, log_obs, inputs["mask"])
        if self.spec.downstream:
            dtheta = {n: self._sample_parameter(n, hyper, group) for n in DOWNSTREAM_NAMES}
            # the regressor is the observed loss (as in Gadre et al.); for new runs the
            # posterior predictive loss is plugged in, which propagates its uncertainty.
            regressor = jnp.exp(log_mu) if loss is None else loss
            mean = dtheta["eps"] - dtheta["k"] * jnp.exp(-dtheta["gamma"] * regressor)
            s = self._sample_parameter("sigma_downstream", hyper, group)
            df = (
                self._sample_parameter("nu_downstream", hyper, group)
                if self.spec.likelihood == "student_t"
                else None
            )
            self._likelihood("downstream", mean, s, df, downstream, inputs["downstream_mask"])

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


def build_model(spec: ModelSpec, runs) -> ScalingModel:
    """Resolve priors against the data and fix the reference scale.

    Args:
        spec: the model spec.
        runs: a validated :class:`~bayescale.runs.Runs`.

    Raises:
        ValueError: when the runs cannot identify the law (see ``Runs.require``).
    """
    law = spec.law
    runs.require(tuple(law.inputs), len(law.parameter_names), law.name)
    if spec.downstream and runs.downstream is None:
        raise ValueError(
            f"model {spec.name!r} fits downstream error but no downstream column was given "
            "(use downstream=COLUMN / --downstream COLUMN)"
        )
    values = {name: getattr(runs, name) for name in law.inputs}
    summary = DataSummary.from_arrays(runs.loss, values)
    log_ref = dict(summary.log_ref) if law_uses_reference(law) else dict.fromkeys(law.inputs, 0.0)
    summary = DataSummary(summary.min_loss, summary.median_loss, summary.max_loss, log_ref)
    priors: dict[str, Prior] = law.default_priors(summary)
    priors.update(NOISE_PRIORS)
    if spec.downstream:
        from .laws import get_law

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
    for name, prior in spec.priors.items():
        optional = (name.endswith("_tau") and name not in priors) or (
            name in (*DOWNSTREAM_NAMES, "sigma_downstream", "nu_downstream") and not spec.downstream
        )
        if optional:
            continue  # a spec may carry priors for pooling/downstream variants it is not run with
        if name not in priors:
            from difflib import get_close_matches

            hint = get_close_matches(name, sorted(priors), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(
                f"no parameter {name!r} to put a prior on{extra} Valid names: {', '.join(sorted(priors))}"
            )
        priors[name] = prior
    return ScalingModel(spec, priors, group_names, log_ref)
