"""How far to trust a fit: backtests on held-out larger runs, the real-data corpus, SBC, validation.

Layer 9: imports every layer up to plots.
"""

from .backtesting import (
    Backtest,
    backtest,
)
from .calibration import (
    calibrate,
)
from .calibration_design import (
    CALIBRATION_NOISE,
    REFERENCE_TRUTH,
    calibration_priors,
    simulate_design,
)
from .calibration_result import (
    LEVELS,
    Calibration,
    binomial_band,
    plot_rank_grid,
    plot_ranks,
)
from .corpus import (
    CI_STUDIES,
    Study,
    pooled,
    run_corpus,
    studies,
)
from .misspecified import (
    misspecification,
)
from .validate import (
    Validation,
    compare_structured,
    leave_largest_out,
    leave_one_group_out,
    with_sweep,
    without_sweep,
)

__all__ = [
    "CALIBRATION_NOISE",
    "CI_STUDIES",
    "LEVELS",
    "REFERENCE_TRUTH",
    "Backtest",
    "Calibration",
    "Study",
    "Validation",
    "backtest",
    "binomial_band",
    "calibrate",
    "calibration_priors",
    "compare_structured",
    "leave_largest_out",
    "leave_one_group_out",
    "misspecification",
    "plot_rank_grid",
    "plot_ranks",
    "pooled",
    "run_corpus",
    "simulate_design",
    "studies",
    "with_sweep",
    "without_sweep",
]
