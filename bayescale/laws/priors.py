"""Printable prior specifications.

A :class:`Prior` is data: a family name and its hyper-parameters. It prints the way
it is written (``TruncatedNormal(mu=0.35, sigma=0.25, low=0, high=1.5)``), parses
back from that text or from a TOML table without ``eval``, and becomes a numpyro
distribution only inside the model, with its hyper-parameters passed as arrays so that
a compiled sampler is reused when only the numbers change.

Default priors (see :mod:`bayescale.laws`) are weakly informative and scaled to the
data: the irreducible loss ``E`` lies below the smallest observed loss, exponents lie in
(0, 1.5) with most mass between 0.05 and 0.8, and log-coefficients are centred on the
loss scale of the data at its reference size with a standard deviation of two nats.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from .._util import did_you_mean, short_repr

__all__ = ["FAMILIES", "Prior", "parse_prior"]

# family -> (numpyro class name, parameter names in order, defaults for optional ones,
#            mapping from our names to numpyro's keyword names)
FAMILIES: dict[str, tuple[tuple[str, ...], dict[str, float]]] = {
    "Normal": (("mu", "sigma"), {}),
    "HalfNormal": (("sigma",), {}),
    "LogNormal": (("mu", "sigma"), {}),
    "TruncatedNormal": (("mu", "sigma", "low", "high"), {"low": -math.inf, "high": math.inf}),
    "Uniform": (("low", "high"), {}),
    "Exponential": (("rate",), {}),
    "Gamma": (("concentration", "rate", "loc"), {"loc": 0.0}),
    "HalfCauchy": (("scale",), {}),
    "StudentT": (("df", "mu", "sigma"), {}),
    "Beta": (("alpha", "beta"), {}),
}

_POSITIVE = {"sigma", "rate", "concentration", "scale", "df", "alpha", "beta"}


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.6g}"


@dataclass(frozen=True)
class Prior:
    """A prior distribution given by family name and hyper-parameters.

    Args:
        family: one of :data:`FAMILIES` (``Normal``, ``HalfNormal``, ``LogNormal``,
            ``TruncatedNormal``, ``Uniform``, ``Exponential``, ``Gamma``, ``HalfCauchy``,
            ``StudentT``, ``Beta``).
        params: hyper-parameters by name, as floats.

    Example:
        >>> p = Prior("TruncatedNormal", {"mu": 0.35, "sigma": 0.25, "low": 0.0, "high": 1.5})
        >>> p
        TruncatedNormal(mu=0.35, sigma=0.25, low=0, high=1.5)
        >>> parse_prior(str(p)) == p
        True
    """

    family: str
    params: Mapping[str, float]

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            extra = did_you_mean(self.family, FAMILIES)
            raise ValueError(
                f"unknown prior family {short_repr(self.family)}; valid families: "
                f"{', '.join(FAMILIES)}{extra}"
            )
        names, defaults = FAMILIES[self.family]
        given = dict(self.params)
        unknown = [k for k in given if k not in names]
        if unknown:
            raise ValueError(
                f"prior {self.family} has no parameter {short_repr(unknown[0])}; "
                f"its parameters are {', '.join(names)}"
            )
        full: dict[str, float] = {}
        for name in names:
            if name in given:
                try:
                    value = float(given[name])
                except OverflowError:  # an int beyond float64: 10**400
                    value = math.inf if given[name] > 0 else -math.inf
            elif name in defaults:
                value = defaults[name]
            else:
                raise ValueError(f"prior {self.family} needs parameter {name!r}")
            if math.isnan(value):
                raise ValueError(f"prior {self.family} parameter {name!r} is NaN")
            if math.isinf(value) and not math.isinf(defaults.get(name, 0.0)):
                raise ValueError(
                    f"prior {self.family} parameter {name!r} must be finite but got {value}"
                )
            if name in _POSITIVE and not value > 0:
                raise ValueError(
                    f"prior {self.family} parameter {name!r} must be > 0 but got {value}"
                )
            full[name] = value
        if "low" in full and "high" in full and not full["low"] < full["high"]:
            raise ValueError(
                f"prior {self.family} needs low < high but got low={full['low']}, "
                f"high={full['high']}"
            )
        object.__setattr__(self, "params", full)

    def __repr__(self) -> str:
        names, defaults = FAMILIES[self.family]
        shown = [
            f"{k}={_fmt(self.params[k])}"
            for k in names
            if not (k in defaults and self.params[k] == defaults[k])
        ]
        return f"{self.family}({', '.join(shown)})"

    __str__ = __repr__

    def __hash__(self) -> int:
        return hash((self.family, tuple(sorted(self.params.items()))))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Prior)
            and self.family == other.family
            and dict(self.params) == dict(other.params)
        )

    def to_dict(self) -> dict[str, float | str]:
        """The prior as a TOML/JSON-ready table: ``{"dist": family, **params}``."""
        out: dict[str, float | str] = {"dist": self.family}
        out.update({k: v for k, v in self.params.items() if not math.isinf(v)})
        return out

    def hyper(self) -> dict[str, float]:
        """Hyper-parameters as plain floats (passed to the compiled model as arrays)."""
        return dict(self.params)

    def distribution(self, hyper: Mapping[str, object] | None = None):
        """The numpyro distribution, optionally with hyper-parameters given as arrays."""
        import numpyro.distributions as dist

        h = dict(self.params) if hyper is None else hyper
        f = self.family
        if f == "Normal":
            return dist.Normal(h["mu"], h["sigma"])
        if f == "HalfNormal":
            return dist.HalfNormal(h["sigma"])
        if f == "LogNormal":
            return dist.LogNormal(h["mu"], h["sigma"])
        if f == "TruncatedNormal":
            low = None if math.isinf(self.params["low"]) else h["low"]
            high = None if math.isinf(self.params["high"]) else h["high"]
            return dist.TruncatedNormal(h["mu"], h["sigma"], low=low, high=high)
        if f == "Uniform":
            return dist.Uniform(h["low"], h["high"])
        if f == "Exponential":
            return dist.Exponential(h["rate"])
        if f == "Gamma":
            if self.params["loc"] == 0.0:
                return dist.Gamma(h["concentration"], h["rate"])
            return _shifted_gamma(h["concentration"], h["rate"], h["loc"])
        if f == "HalfCauchy":
            return dist.HalfCauchy(h["scale"])
        if f == "StudentT":
            return dist.StudentT(h["df"], h["mu"], h["sigma"])
        if f == "Beta":
            return dist.Beta(h["alpha"], h["beta"])
        raise AssertionError(f)  # pragma: no cover - guarded in __post_init__

    def unnormalized(self, hyper: Mapping[str, object] | None = None):
        """The distribution the sampler sees: :meth:`distribution`'s support and samples,
        with a log density that keeps only the terms that depend on the value.

        NUTS needs the log posterior up to a constant, and the hyper-parameters are fixed
        during a fit. numpyro's log densities evaluate their normalisers on every
        gradient (the truncated normal's ``log(Phi(b) - Phi(a))``, the Gamma's
        ``lgamma(concentration)``, the Uniform's ``log(high - low)``) -- kernels XLA must
        compile into every program: without them a cold fit of the Chinchilla model
        compiled ~3 s faster. Densities for anything else come from :meth:`distribution`.

        Example:
            >>> d = parse_prior("Uniform(low=0, high=2)").unnormalized()  # doctest: +SKIP
            >>> float(d.log_prob(1.0))                                    # doctest: +SKIP
            0.0
        """
        import jax.numpy as jnp

        base = self.distribution(hyper)
        h = dict(self.params) if hyper is None else hyper
        f = self.family
        if f in ("Normal", "TruncatedNormal"):  # truncation: the support bounds the value

            def kernel(x):
                return -0.5 * jnp.square((x - h["mu"]) / h["sigma"])
        elif f == "HalfNormal":

            def kernel(x):
                return -0.5 * jnp.square(x / h["sigma"])
        elif f == "LogNormal":

            def kernel(x):
                log_x = jnp.log(x)
                return -log_x - 0.5 * jnp.square((log_x - h["mu"]) / h["sigma"])
        elif f == "Uniform":

            def kernel(x):
                return jnp.zeros_like(x)
        elif f == "Exponential":

            def kernel(x):
                return -h["rate"] * x
        elif f == "Gamma":

            def kernel(x):
                shifted = x - h["loc"]
                return (h["concentration"] - 1.0) * jnp.log(shifted) - h["rate"] * shifted
        elif f == "HalfCauchy":

            def kernel(x):
                return -jnp.log1p(jnp.square(x / h["scale"]))
        elif f == "StudentT":

            def kernel(x):
                y = jnp.square((x - h["mu"]) / h["sigma"]) / h["df"]
                return -0.5 * (h["df"] + 1.0) * jnp.log1p(y)
        elif f == "Beta":

            def kernel(x):
                return (h["alpha"] - 1.0) * jnp.log(x) + (h["beta"] - 1.0) * jnp.log1p(-x)
        else:  # pragma: no cover - guarded in __post_init__
            raise AssertionError(f)
        return _unnormalized_class()(base, kernel)

    def static_key(self) -> tuple:
        """What the compiled model depends on besides the numbers."""
        return (
            self.family,
            math.isinf(self.params.get("low", 0.0)),
            math.isinf(self.params.get("high", 0.0)),
            self.params.get("loc", 0.0) == 0.0,
        )


@functools.cache
def _shifted_gamma_class():
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    class ShiftedGamma(dist.Distribution):
        """``loc + Gamma(concentration, rate)`` with support ``(loc, inf)``."""

        arg_constraints: ClassVar[dict] = {
            "concentration": constraints.positive,
            "rate": constraints.positive,
            "loc": constraints.real,
        }
        reparametrized_params: ClassVar[list] = ["concentration", "rate", "loc"]

        def __init__(self, concentration, rate, loc, *, validate_args=None):
            self.concentration, self.rate, self.loc = concentration, rate, loc
            batch = jnp.broadcast_shapes(jnp.shape(concentration), jnp.shape(rate), jnp.shape(loc))
            super().__init__(batch_shape=batch, validate_args=validate_args)

        @constraints.dependent_property(is_discrete=False, event_dim=0)
        def support(self):
            return constraints.greater_than(self.loc)

        def _base(self):
            return dist.Gamma(self.concentration, self.rate)

        def sample(self, key, sample_shape=()):
            base = self._base().expand(self.batch_shape)
            return self.loc + base.sample(key, sample_shape)

        def log_prob(self, value):
            return self._base().log_prob(value - self.loc)

        @property
        def mean(self):
            return self.loc + self.concentration / self.rate

        @property
        def variance(self):
            return self._base().variance

    return ShiftedGamma


@functools.cache
def _unnormalized_class():
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    class Unnormalized(dist.Distribution):
        """A distribution whose log density is ``kernel`` (its own up to a constant)."""

        arg_constraints: ClassVar[dict] = {}

        def __init__(self, base, kernel):
            self.base, self.kernel = base, kernel
            super().__init__(batch_shape=base.batch_shape, event_shape=base.event_shape)

        @constraints.dependent_property(is_discrete=False, event_dim=0)
        def support(self):
            return self.base.support

        def sample(self, key, sample_shape=()):
            return self.base.sample(key, sample_shape)

        def log_prob(self, value):
            return self.kernel(value)

    return Unnormalized


def _shifted_gamma(concentration, rate, loc):
    """``loc + Gamma(concentration, rate)`` with support ``(loc, inf)``.

    numpyro's ``TransformedDistribution`` with an ``AffineTransform`` reports a real
    support for a Gamma base, so NUTS would move it unconstrained (and step out of the
    support); this one declares ``greater_than(loc)`` and is sampled on ``log(x - loc)``.
    """
    return _shifted_gamma_class()(concentration, rate, loc)


_CALL = re.compile(r"^\s*([A-Za-z]+)\s*\((.*)\)\s*$")
_KW = re.compile(
    r"^\s*([A-Za-z_]+)\s*=\s*([-+]?(?:inf|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))\s*$"
)


def parse_prior(spec: Prior | str | Mapping[str, object]) -> Prior:
    """Parse a prior from text like ``"Normal(mu=0, sigma=1)"`` or a table.

    Only numbers are accepted as arguments; nothing is evaluated.

    Args:
        spec: a :class:`Prior`, a string ``Family(name=value, ...)``, or a mapping
            ``{"dist": "Family", name: value, ...}`` (the TOML form).

    Example:
        >>> parse_prior("Uniform(low=0, high=1.5)")
        Uniform(low=0, high=1.5)
        >>> parse_prior({"dist": "HalfNormal", "sigma": 0.1})
        HalfNormal(sigma=0.1)
    """
    if isinstance(spec, Prior):
        return spec
    if isinstance(spec, Mapping):
        table = dict(spec)
        family = table.pop("dist", None)
        if not isinstance(family, str):
            raise ValueError(
                f"prior table needs a 'dist' entry naming the family, got {short_repr(spec)}"
            )
        shown = family if family in FAMILIES else short_repr(family)
        for key, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(
                    f"prior {shown} parameter {short_repr(key)} must be a number, "
                    f"got {short_repr(value)}"
                )
        return Prior(family, table)
    if not isinstance(spec, str):
        raise ValueError(f"cannot read a prior from {short_repr(spec)}")
    match = _CALL.match(spec)
    if not match:
        raise ValueError(
            f"cannot read prior {short_repr(spec)}; write it like 'Normal(mu=0, sigma=1)'"
        )
    family, body = match.groups()
    params: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in body.split(","))):
        kw = _KW.match(part)
        if not kw:
            raise ValueError(
                f"cannot read prior argument {short_repr(part)} in {short_repr(spec)}; "
                "arguments are name=number"
            )
        if kw.group(1) in params:
            raise ValueError(f"prior argument {kw.group(1)!r} is given twice in {short_repr(spec)}")
        params[kw.group(1)] = float(kw.group(2))
    return Prior(family, params)
