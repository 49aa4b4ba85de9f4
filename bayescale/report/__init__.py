"""Reports for papers: Markdown and LaTeX documents with tables and figures.

Layer 10: imports every layer below it.
"""

from .document import (
    FIGURE_FORMATS,
    figure_specs,
    report_header,
    write_report,
)

__all__ = [
    "FIGURE_FORMATS",
    "figure_specs",
    "report_header",
    "write_report",
]
