"""bayescale: Bayesian inference of neural scaling laws.

Example:
    >>> import bayescale as bs
    >>> runs = bs.read_runs(bs.simulate_ladder(seed=0), params="params", tokens="tokens", loss="loss")
    >>> runs.n_runs
    30
"""

import sys as _sys
import types as _types
from typing import TYPE_CHECKING

from ._jax import prepare as _prepare

_prepare()  # before anything imports jax: host devices for parallel chains, float64, cache

__version__ = "0.1.0"

if TYPE_CHECKING:  # what static tools (type checkers, the API docs) see
    from .batch import fit_many
    from .datasets import load_chinchilla, load_gadre2024, load_porian2024, load_xlstm
    from .fit import fit
    from .laws import Law, Parameter, custom_law, get_law, list_laws, register_law
    from .posterior import Diagnostics, Fit, FitWarning, Prediction, load_fit
    from .priors import Prior, parse_prior
    from .runs import Runs, RunsError, RunsWarning, read_runs
    from .settings import fast_mode, sampler_settings
    from .simulate import simulate_ladder
    from .specs import ModelSpec, list_models, load_model

_EXPORTS = {
    "Diagnostics": "posterior",
    "Fit": "posterior",
    "FitWarning": "posterior",
    "Law": "laws",
    "ModelSpec": "specs",
    "Parameter": "laws",
    "Prediction": "posterior",
    "Prior": "priors",
    "Runs": "runs",
    "RunsError": "runs",
    "RunsWarning": "runs",
    "custom_law": "laws",
    "fast_mode": "settings",
    "fit": "fit",
    "fit_many": "batch",
    "get_law": "laws",
    "list_laws": "laws",
    "list_models": "specs",
    "load_chinchilla": "datasets",
    "load_fit": "posterior",
    "load_gadre2024": "datasets",
    "load_model": "specs",
    "load_porian2024": "datasets",
    "load_xlstm": "datasets",
    "parse_prior": "priors",
    "read_runs": "runs",
    "register_law": "laws",
    "sampler_settings": "settings",
    "simulate_ladder": "simulate",
}

__all__ = [
    "Diagnostics",
    "Fit",
    "FitWarning",
    "Law",
    "ModelSpec",
    "Parameter",
    "Prediction",
    "Prior",
    "Runs",
    "RunsError",
    "RunsWarning",
    "custom_law",
    "fast_mode",
    "fit",
    "fit_many",
    "get_law",
    "list_laws",
    "list_models",
    "load_chinchilla",
    "load_fit",
    "load_gadre2024",
    "load_model",
    "load_porian2024",
    "load_xlstm",
    "parse_prior",
    "read_runs",
    "register_law",
    "sampler_settings",
    "simulate_ladder",
]


def __getattr__(name: str):
    """Import a public name's module on first use (PEP 562).

    ``import bayescale`` stays cheap (no jax, numpyro or pandas until a name is used), so
    the ``bayescale`` command installs its Ctrl-C handling within milliseconds of starting
    and ``bayescale --help`` answers at once.
    """
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bayescale' has no attribute {name!r}")
    import importlib

    from ._jax import configure

    configure()  # float64 and the trace-context states, before the API's first trace
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(_types.ModuleType):
    """The package module: ``bayescale.fit`` stays the function when its module is imported.

    Importing the submodule ``bayescale.fit`` (``from bayescale.fit import ...``, or the
    package itself lazily) binds the module to the package's attribute ``fit``; the public
    name is the function of the same name.
    """

    def __setattr__(self, name: str, value) -> None:
        if name == "fit" and isinstance(value, _types.ModuleType):
            value = value.fit
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
