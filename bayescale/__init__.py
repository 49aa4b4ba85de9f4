"""bayescale: Bayesian inference of neural scaling laws.

Example:
    >>> import bayescale as bs
    >>> runs = bs.read_runs(bs.simulate_ladder(seed=0), params="params", tokens="tokens", loss="loss")
    >>> runs.n_runs
    30
"""

from ._jax import configure as _configure

_configure()  # before anything imports jax: host devices for parallel chains, float64, cache

__version__ = "0.1.0"

from .batch import fit_many  # noqa: E402
from .datasets import load_chinchilla, load_gadre2024, load_porian2024, load_xlstm  # noqa: E402
from .fit import fit  # noqa: E402
from .laws import Law, Parameter, custom_law, get_law, list_laws, register_law  # noqa: E402
from .posterior import Diagnostics, Fit, FitWarning, Prediction, load_fit  # noqa: E402
from .priors import Prior, parse_prior  # noqa: E402
from .runs import Runs, RunsError, RunsWarning, read_runs  # noqa: E402
from .settings import fast_mode, sampler_settings  # noqa: E402
from .simulate import simulate_ladder  # noqa: E402
from .specs import ModelSpec, list_models, load_model  # noqa: E402

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
