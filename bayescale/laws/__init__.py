"""Scaling laws and their priors: the law table, TOML model specs, simulated ladders.

Layer 2: imports only :mod:`bayescale.data`.
"""

from .base import (
    INPUTS,
    DataSummary,
    Law,
    Parameter,
)
from .core import (
    custom_law,
    get_law,
    list_laws,
    register_law,
)
from .covariate import (
    muennighoff2023,
)
from .priors import (
    FAMILIES,
    Prior,
    parse_prior,
)
from .simulate import (
    HOFFMANN_2022,
    simulate_ladder,
)
from .specs import (
    LIKELIHOODS,
    POOLINGS,
    ModelSpec,
    list_models,
    load_model,
    models_dir,
)

__all__ = [
    "FAMILIES",
    "HOFFMANN_2022",
    "INPUTS",
    "LIKELIHOODS",
    "POOLINGS",
    "DataSummary",
    "Law",
    "ModelSpec",
    "Parameter",
    "Prior",
    "custom_law",
    "get_law",
    "list_laws",
    "list_models",
    "load_model",
    "models_dir",
    "muennighoff2023",
    "parse_prior",
    "register_law",
    "simulate_ladder",
]
