"""Decisions between arms: comparison at a target, crossover, regret and the next run to train.

Layer 7: imports every layer up to allocate.
"""

from .decision import (
    CLASSES,
    Comparison,
    Crossover,
    DecisionWarning,
    NextRuns,
    Target,
    compare,
    crossover,
    frontier_draws,
    next_experiment,
    p_best_curve,
    read_candidates,
)

__all__ = [
    "CLASSES",
    "Comparison",
    "Crossover",
    "DecisionWarning",
    "NextRuns",
    "Target",
    "compare",
    "crossover",
    "frontier_draws",
    "next_experiment",
    "p_best_curve",
    "read_candidates",
]
