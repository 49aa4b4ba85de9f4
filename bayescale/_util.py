"""Small shared helpers."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["FitWarning", "check_prob", "did_you_mean", "short_repr", "target_kwargs"]


def did_you_mean(name: object, choices: Iterable[Any]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` to ``name``, else ``""``.

    Case-insensitive equality first, then a unique prefix, then difflib's closest match.

    Example:
        >>> did_you_mean("chinchila", ["chinchilla", "kaplan_n"])
        "; did you mean 'chinchilla'?"
        >>> did_you_mean("b", ["A", "B", "C"])
        "; did you mean 'B'?"
        >>> did_you_mean("zzz", ["A"])
        ''
    """
    strs = {str(c): c for c in choices}
    lower = {s.lower(): c for s, c in strs.items()}
    hit = lower.get(str(name).lower())
    prefixed = [c for s, c in strs.items() if s.lower().startswith(str(name).lower())]
    if hit is None and len(prefixed) == 1:
        hit = prefixed[0]
    if hit is None:
        close = difflib.get_close_matches(str(name), list(strs), n=1, cutoff=0.6)
        hit = strs[close[0]] if close else None
    return f"; did you mean {hit!r}?" if hit is not None and hit != name else ""


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters so that an error message stays one
    readable line however long the offending value is.

    Example:
        >>> short_repr("x" * 100, limit=10)
        "'xxxxxxxxxx...' (100 characters)"
        >>> short_repr("abc"), short_repr(10**100, limit=5)
        ("'abc'", '10000... (101 characters)')
    """
    try:
        text = value if isinstance(value, str) else repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits()
        return f"<{type(value).__name__} too long to print>"
    if len(text) <= limit:
        return repr(value) if isinstance(value, str) else text
    head = text[:limit] + "..."
    shown = repr(head) if isinstance(value, str) else head
    return f"{shown} ({len(text)} characters)"


def target_kwargs(values: dict) -> dict:
    """Keyword arguments of ``Fit.predict`` for the inputs ``values`` by name: params,
    tokens and compute as themselves, named inputs (``U``) under ``at``.

    Example:
        >>> target_kwargs({"params": 1e9, "U": 5e9})
        {'params': 1000000000.0, 'at': {'U': 5000000000.0}}
    """
    common = ("params", "tokens", "compute")
    out = {k: v for k, v in values.items() if k in common}
    named = {k: v for k, v in values.items() if k not in common}
    if named:
        out["at"] = named
    return out


class FitWarning(UserWarning):
    """The sampler's diagnostics say the posterior may be unreliable."""


def check_prob(prob: float) -> float:
    """Validate an interval probability.

    Example:
        >>> check_prob(1.5)
        Traceback (most recent call last):
        ...
        ValueError: The value of prob should be in the interval (0, 1) but got 1.5
    """
    if isinstance(prob, bool) or not isinstance(prob, int | float) or not 0 < prob < 1:
        raise ValueError(f"The value of prob should be in the interval (0, 1) but got {prob}")
    return float(prob)


FitWarning.__module__ = "bayescale"  # the public name: bayescale.FitWarning
