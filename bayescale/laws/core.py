"""The law registry: every law by name, built-in, over named inputs, or user-defined.

:func:`get_law` builds a built-in law (:mod:`bayescale.laws.builtin`) or a law over named
inputs (:mod:`bayescale.laws.covariate`) with its options, or returns one registered with
:func:`register_law`; :func:`custom_law` makes a law from a natural-scale function.

Example:
    >>> get_law("kaplan_n", irreducible=True).reported_names
    ('N_c', 'alpha_N', 'E')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .._util import did_you_mean
from .base import INPUTS, Law, Parameter
from .builtin import BUILDERS as _BUILTIN_BUILDERS
from .covariate import BUILDERS as _COVARIATE_BUILDERS
from .hyper import BUILDERS as _HYPER_BUILDERS
from .priors import Prior, parse_prior

__all__ = [
    "custom_law",
    "get_law",
    "list_laws",
    "register_law",
]

#: the built-in laws, then the laws over named inputs
_BUILDERS: dict[str, Callable[..., Law]] = {
    **_BUILTIN_BUILDERS,
    **_COVARIATE_BUILDERS,
    **_HYPER_BUILDERS,
}
_CUSTOM: dict[str, Law] = {}


def list_laws() -> list[str]:
    """Names of the built-in and registered laws.

    Example:
        >>> "chinchilla" in list_laws()
        True
    """
    return sorted({*_BUILDERS, *_CUSTOM})


def get_law(name: str | Law, **options) -> Law:
    """Look up a law by name, with options (``k`` for bnsl, ``irreducible`` for Kaplan).

    Example:
        >>> get_law("bnsl", k=2).reported_names[:5]
        ('a', 'b', 'c0', 'c_1', 'd_1')
        >>> get_law("chinchila")
        Traceback (most recent call last):
        ...
        ValueError: unknown law 'chinchila'; did you mean 'chinchilla'? Known laws: ...
    """
    if isinstance(name, Law):
        return name
    if name in _CUSTOM:
        return _CUSTOM[name]
    if name not in _BUILDERS:
        extra = did_you_mean(name, list_laws())
        raise ValueError(f"unknown law {name!r}{extra} Known laws: {', '.join(list_laws())}")
    try:
        return _BUILDERS[name](**options)
    except TypeError as exc:
        raise ValueError(f"law {name!r} does not take options {sorted(options)}: {exc}") from None


def register_law(law: Law) -> Law:
    """Make a user-defined law available by name (also to :func:`load_fit`)."""
    _CUSTOM[law.name] = law
    return law


def custom_law(
    name: str,
    fn: Callable,
    priors: Mapping[str, Prior | str | Mapping],
    inputs: tuple[str, ...] = ("params", "tokens"),
    roles: Mapping[str, str] | None = None,
    formula: str = "",
    register: bool = True,
) -> Law:
    """Build a law from a natural-scale function, without editing the package.

    ``fn(theta, **inputs)`` receives the sampled parameters and the inputs on their
    natural scale (``params=N``, ``tokens=D``, ``compute=C`` and any named input such
    as ``U=unique tokens``, as jax arrays) and returns the loss. A named input is read
    from the runs' column mapped to it (``fit(..., inputs={"U": "unique_tokens"})``). Parameters are reported as sampled. For speed, write a log-space
    :class:`Law` directly; this form is for convenience.

    Example:
        >>> import jax.numpy as jnp
        >>> law = custom_law("power_floor", lambda t, params: t["E"] + t["A"] * params ** -t["a"],
        ...                  {"E": "Uniform(low=0, high=2)", "A": "LogNormal(mu=3, sigma=2)",
        ...                   "a": "Uniform(low=0, high=1)"}, inputs=("params",))
        >>> law.reported_names
        ('E', 'A', 'a')
    """
    import jax.numpy as jnp

    from ..data.runs import check_input_name

    for input_name in inputs:
        if input_name not in INPUTS:
            check_input_name(input_name)
    parsed = {k: parse_prior(v) for k, v in priors.items()}
    roles = dict(roles or {})

    def log_loss(t, x):
        natural = {k: jnp.exp(x[k]) for k in inputs}  # ref is 0 for custom laws: x is log input
        return jnp.log(fn(t, **natural))

    def identity(t, ref):
        return {k: t[k] for k in parsed}

    params = tuple(
        Parameter(
            k,
            roles.get(k, "exponent" if k.startswith(("alpha", "beta", "eta")) else "coefficient"),
            p,
        )
        for k, p in parsed.items()
    )
    law = Law(
        name,
        tuple(inputs),
        params,
        log_loss,
        identity,
        identity,
        tuple(parsed),
        formula or name,
        "user-defined",
        (("custom", True),),
    )
    if register:
        register_law(law)
    return law
