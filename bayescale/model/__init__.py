"""A law, priors and runs as a numpyro model: likelihoods, pooling, structured noise, drift.

Layer 3: imports data and laws.
"""

from .drift import (
    DRIFT_PRIOR,
    calibrate_drift,
    drift_draws,
    log_ratio,
    log_scale,
)
from .noise import (
    NOISE_PRIORS,
    STRUCTURED_PRIORS,
)
from .scaling import (
    ScalingModel,
    build_model,
    pad_size,
)

__all__ = [
    "DRIFT_PRIOR",
    "NOISE_PRIORS",
    "STRUCTURED_PRIORS",
    "ScalingModel",
    "build_model",
    "calibrate_drift",
    "drift_draws",
    "log_ratio",
    "log_scale",
    "pad_size",
]
