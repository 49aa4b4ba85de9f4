"""Small shared helpers."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["did_you_mean"]


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
