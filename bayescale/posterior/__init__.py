"""The fitted posterior: :class:`Fit`, its diagnostics, predictions, model checks, tables, files.

Layer 4: imports data, laws and model; never the sampler.
"""

from .core import (
    Fit,
    FitWarning,
    check_prob,
    load_fit,
)
from .fitfile import (
    CHECKSUM_ATTR,
    FILE_FORMAT,
    file_checksum,
    write_fit,
)
from .model_check import (
    ModelCheck,
    ModelCheckWarning,
    check_fit,
)
from .results import Diagnostics, Prediction
from .tables import (
    FORMATS,
    compare_table,
    fit_html,
    format_estimate,
    latex_escape,
    latex_name,
    prediction_rows,
    predictions_table,
    to_table,
)

__all__ = [
    "CHECKSUM_ATTR",
    "FILE_FORMAT",
    "FORMATS",
    "Diagnostics",
    "Fit",
    "FitWarning",
    "ModelCheck",
    "ModelCheckWarning",
    "Prediction",
    "check_fit",
    "check_prob",
    "compare_table",
    "file_checksum",
    "fit_html",
    "format_estimate",
    "latex_escape",
    "latex_name",
    "load_fit",
    "prediction_rows",
    "predictions_table",
    "to_table",
    "write_fit",
]
