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
    from .data import (
        Runs,
        RunsError,
        RunsWarning,
        load_chinchilla,
        load_gadre2024,
        load_porian2024,
        load_xlstm,
        read_runs,
    )
    from .inference import fit, fit_many
    from .laws import (
        Law,
        ModelSpec,
        Parameter,
        Prior,
        custom_law,
        get_law,
        list_laws,
        list_models,
        load_model,
        parse_prior,
        register_law,
        simulate_ladder,
    )
    from .posterior import Diagnostics, Fit, FitWarning, Prediction, load_fit
    from .settings import SamplerOptions, fast_mode, sampler_settings

_EXPORTS = {
    "Diagnostics": "posterior",
    "Fit": "posterior",
    "FitWarning": "posterior",
    "Law": "laws",
    "ModelSpec": "laws",
    "Parameter": "laws",
    "Prediction": "posterior",
    "Prior": "laws",
    "Runs": "data",
    "RunsError": "data",
    "RunsWarning": "data",
    "SamplerOptions": "settings",
    "custom_law": "laws",
    "fast_mode": "settings",
    "fit": "inference",
    "fit_many": "inference",
    "get_law": "laws",
    "list_laws": "laws",
    "list_models": "laws",
    "load_chinchilla": "data",
    "load_fit": "posterior",
    "load_gadre2024": "data",
    "load_model": "laws",
    "load_porian2024": "data",
    "load_xlstm": "data",
    "parse_prior": "laws",
    "read_runs": "data",
    "register_law": "laws",
    "sampler_settings": "settings",
    "simulate_ladder": "laws",
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
    "SamplerOptions",
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


#: modules of the flat layout before the layer subpackages, and where each now lives; the
#: old paths import for one release, with a DeprecationWarning naming the new one
MOVED = {
    "backtest": "trust.backtesting",
    "batch": "inference.batch",
    "calibrate": "trust",  # its public names now span four modules of the trust layer
    "constrained": "allocate.constrained",
    "corpus": "trust.corpus",
    "datasets": "data.datasets",
    "demo": "cli.demo",
    "drift": "model.drift",
    "fit": "inference.fitting",
    "fitfile": "posterior.fitfile",
    "isoflop": "allocate.isoflop",
    "model_check": "posterior.model_check",
    "priors": "laws.priors",
    "runs": "data.runs",
    "sampler": "inference.sampler",
    "simulate": "laws.simulate",
    "specs": "laws.specs",
    "tables": "posterior.tables",
    "validate": "trust.validate",
}


class _MovedModules:
    """Import ``bayescale.<old>`` as the module it moved to, with a DeprecationWarning.

    A meta-path finder: the old name maps to the same module object (no copy), so state
    and monkeypatching are shared.
    """

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        prefix, _, old = fullname.partition(".")
        if prefix != __name__ or old not in MOVED:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(fullname, _MovedModules)

    @staticmethod
    def create_module(spec):
        return None  # a placeholder module; exec_module swaps in the real one

    @staticmethod
    def exec_module(module) -> None:
        import importlib
        import os
        import warnings

        old = module.__name__.partition(".")[2]
        new = f"{__name__}.{MOVED[old]}"
        warnings.warn(
            f"bayescale.{old} moved to {new}; import it from there (the old path goes in "
            "the next release)",
            DeprecationWarning,
            skip_file_prefixes=(os.path.dirname(__file__), "<frozen importlib"),
        )
        _sys.modules[module.__name__] = importlib.import_module(new)


_sys.meta_path.append(_MovedModules)


class _Package(_types.ModuleType):
    """The package module: a public name stays itself when a same-named module is imported.

    Importing a submodule binds it to the package's attribute of its name; ``bayescale.fit``
    is the function ``fit``, also when the old module path ``bayescale.fit`` is imported.
    """

    def __setattr__(self, name: str, value) -> None:
        if name in _EXPORTS and isinstance(value, _types.ModuleType):
            return  # the public name is loaded on first use by __getattr__
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
