"""Compute-optimal allocation: N, D and tokens per parameter at a budget, isoFLOP analysis.

Layer 6: imports every layer up to inference.
"""

from .constrained import (
    ConstrainedAllocation,
    constrained_optimal,
)
from .flops import (
    FlopRule,
    flop_rule,
)
from .isoflop import (
    ParabolaBaseline,
    exponent_table,
    isoflop_table,
    parabola_baseline,
    sweep_residuals,
)
from .optimal import (
    Allocation,
    ScalingExponents,
    compute_optimal,
    frontier,
    scaling_exponents,
)
from .optimum import (
    optimal_log_params,
)
from .overtrained import (
    Overtraining,
    overtraining,
)

__all__ = [
    "Allocation",
    "ConstrainedAllocation",
    "FlopRule",
    "Overtraining",
    "ParabolaBaseline",
    "ScalingExponents",
    "compute_optimal",
    "constrained_optimal",
    "exponent_table",
    "flop_rule",
    "frontier",
    "isoflop_table",
    "optimal_log_params",
    "overtraining",
    "parabola_baseline",
    "scaling_exponents",
    "sweep_residuals",
]
