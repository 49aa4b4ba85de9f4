"""Sampling a posterior: :func:`fit`, :func:`fit_many` and the NUTS engine under them.

Layer 5: imports data, laws, model and posterior.
"""

from .batch import (
    fit_many,
)
from .fitting import (
    fit,
    resolve_spec,
)
from .sampler import (
    run_chains,
    run_many,
)
from .sampling import (
    sample,
)

__all__ = [
    "fit",
    "fit_many",
    "resolve_spec",
    "run_chains",
    "run_many",
    "sample",
]
