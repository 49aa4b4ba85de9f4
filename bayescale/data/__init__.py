"""The runs table: reading and validating a ladder of runs, the shared datasets, isoFLOP sweeps.

Layer 1: imports nothing from the other layers.
"""

from .datasets import (
    data_dir,
    flag_diverged,
    gadre2024_table,
    load_chinchilla,
    load_gadre2024,
    load_porian2024,
    load_porian2024_exponents,
    load_xlstm,
)
from .runs import (
    Runs,
    RunsError,
    RunsWarning,
    check_input_name,
    read_runs,
)
from .sweeps import (
    near_optimum,
    sweep_budgets,
    without_sweep,
)

__all__ = [
    "Runs",
    "RunsError",
    "RunsWarning",
    "check_input_name",
    "data_dir",
    "flag_diverged",
    "gadre2024_table",
    "load_chinchilla",
    "load_gadre2024",
    "load_porian2024",
    "load_porian2024_exponents",
    "load_xlstm",
    "near_optimum",
    "read_runs",
    "sweep_budgets",
    "without_sweep",
]
