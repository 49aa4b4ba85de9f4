"""Sizes and FLOPs as papers write them (``1.5B``, ``3e21``): tables, reports and figures.

Example:
    >>> format_count(1.5e9), format_flops(3e21)
    ('1.5B', '3e21')
"""

from __future__ import annotations

import math

__all__ = ["format_count", "format_flops"]


def format_count(value: float, _pos=None) -> str:
    """Parameters or tokens as papers write them: ``1K``, ``100M``, ``1.5B``, ``2T``.

    Example:
        >>> [format_count(v) for v in (1e3, 1e8, 1.5e9, 2e12, 50)]
        ['1K', '100M', '1.5B', '2T', '50']
    """
    if value <= 0 or not math.isfinite(value):
        return ""
    for scale, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= scale * 0.9999:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def format_flops(value: float, _pos=None) -> str:
    """FLOPs in compact scientific notation: ``1e21``, ``3e21``, ``2.5e19``.

    Example:
        >>> format_flops(1e21), format_flops(2.5e19), format_flops(1.0)
        ('1e21', '2.5e19', '1')
    """
    if value <= 0 or not math.isfinite(value):
        return ""
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = value / 10.0**exponent
    if exponent == 0:
        return f"{mantissa:.3g}"
    text = f"{mantissa:.2g}"
    return f"{text}e{exponent}" if text != "1" else f"1e{exponent}"
