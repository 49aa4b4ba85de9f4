"""Which runs a backtest fits and which it predicts: cutoff rules and rolling origins.

A *holdout rule* is ``COLUMN OP VALUE``: ``compute>=6.4e18``, ``params>=1e9``,
``isoflop_group==max``. ``COLUMN`` is a role of the runs table (``params``, ``tokens``,
``compute``, ``loss``, ``group``, ``sweep``) or any column of the user's table; ``OP`` one
of ``>=``, ``>``, ``<=``, ``<``, ``==``, ``!=``; ``VALUE`` a number, a label, or ``max`` /
``min``: the largest (smallest) value of the column, taken in every group on its own when
the runs are grouped. For a label column (an isoFLOP group named ``sclaw_llama_iso12``),
``max`` is the label whose runs have the largest median compute.

Rolling origin: the *levels* of a column (its distinct values, in order of median compute
for labels) are cut one after another: fit every level up to the origin, predict the next
``horizon`` levels.

Example:
    >>> rule = parse_holdout("compute>=6.4e18")
    >>> rule.column, rule.op, rule.value
    ('compute', '>=', 6.4e+18)
    >>> parse_holdout("isoflop_group==max").value
    'max'
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["HoldoutRule", "level_order", "parse_holdout", "rolling_folds", "rule_mask"]

ROLES = ("params", "tokens", "compute", "loss", "group", "sweep")
_OPS = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_PATTERN = re.compile(r"^\s*(?P<column>.+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>.+?)\s*$")


@dataclass(frozen=True)
class HoldoutRule:
    """``column op value``: the runs it selects are held out (predicted, not fitted)."""

    column: str
    op: str
    value: float | str

    def __str__(self) -> str:
        value = f"{self.value:g}" if isinstance(self.value, float) else self.value
        return f"{self.column}{self.op}{value}"


def parse_holdout(text: str) -> HoldoutRule:
    """Parse ``COLUMN OP VALUE`` (see the module docstring).

    Raises:
        ValueError: one line naming the rule that was broken.

    Example:
        >>> str(parse_holdout(" params >= 1e9 "))
        'params>=1e+09'
    """
    match = _PATTERN.match(str(text))
    if match is None:
        raise ValueError(
            f"holdout {text!r} is not COLUMN OP VALUE with OP one of "
            f"{', '.join(_OPS)} (e.g. 'compute>=6.4e18' or 'isoflop_group==max')"
        )
    column, op, raw = match["column"].strip("'\" "), match["op"], match["value"].strip("'\" ")
    if raw in ("max", "min"):
        return HoldoutRule(column, op, raw)
    try:
        value: float | str = float(raw)
    except ValueError:
        value = raw
    if isinstance(value, float) and not np.isfinite(value):
        raise ValueError(f"holdout {text!r}: the value must be finite but got {raw!r}")
    return HoldoutRule(column, op, value)


def level_order(values: np.ndarray, compute: np.ndarray | None) -> list:
    """Distinct values in order: numbers ascending; labels by the median compute of their runs.

    Example:
        >>> level_order(np.array(["b", "a", "b"]), np.array([4.0, 1.0, 5.0]))
        ['a', 'b']
    """
    values = np.asarray(values)
    if values.dtype.kind in "fiu":
        return sorted(np.unique(values).tolist())
    labels = list(dict.fromkeys(values.tolist()))
    if compute is None:
        return sorted(labels, key=str)
    compute = np.asarray(compute, np.float64)
    return sorted(labels, key=lambda v: (float(np.median(compute[values == v])), str(v)))


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        from .._util import did_you_mean

        shown = ", ".join(repr(c) for c in frame.columns[:30])
        raise ValueError(
            f"holdout column {name!r} not found; columns: {shown}{did_you_mean(name, frame.columns)}"
        )
    return frame[name].to_numpy()


def rule_mask(
    rule: HoldoutRule,
    frame: pd.DataFrame,
    compute: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of the rows of ``frame`` that ``rule`` holds out.

    Args:
        rule: the parsed rule.
        frame: one row per run; its columns are the roles and the user's columns.
        compute: per-row compute (orders label levels for ``max``/``min``).
        groups: per-row group labels: ``max``/``min`` are then taken per group.

    Example:
        >>> f = pd.DataFrame({"compute": [1.0, 2.0, 4.0]})
        >>> rule_mask(parse_holdout("compute>=2"), f).tolist()
        [False, True, True]
    """
    values = _column(frame, rule.column)
    numeric = values.dtype.kind in "fiub"
    if isinstance(rule.value, float) and not numeric:
        converted = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy()
        if np.isnan(converted).any():
            raise ValueError(
                f"holdout {rule}: column {rule.column!r} holds labels, not numbers; "
                f"compare it with ==/!= and a label, or with max/min"
            )
        values, numeric = converted, True
    if not numeric and rule.op not in ("==", "!="):
        if rule.value not in ("max", "min"):
            raise ValueError(
                f"holdout {rule}: column {rule.column!r} holds labels; order comparisons "
                "need numbers (use ==, != or max/min)"
            )
    if rule.value in ("max", "min"):
        out = np.zeros(len(frame), bool)
        group_codes = np.zeros(len(frame), int) if groups is None else pd.factorize(groups)[0]
        for g in np.unique(group_codes):
            rows = group_codes == g
            levels = level_order(values[rows], None if compute is None else compute[rows])
            pick = levels[-1] if rule.value == "max" else levels[0]
            if numeric:
                out[rows] = _OPS[rule.op](values[rows].astype(np.float64), float(pick))
            else:  # labels: positions in the level order
                rank = {v: i for i, v in enumerate(levels)}
                pos = np.array([rank[v] for v in values[rows]])
                out[rows] = _OPS[rule.op](pos, rank[pick])
        return out
    if numeric:
        if not isinstance(rule.value, float):
            raise ValueError(
                f"holdout {rule}: column {rule.column!r} holds numbers but the value "
                f"{rule.value!r} is not one"
            )
        with np.errstate(invalid="ignore"):
            return np.asarray(_OPS[rule.op](values.astype(np.float64), rule.value), bool)
    target = rule.value if not isinstance(rule.value, float) else f"{rule.value:g}"
    labels = np.array([str(v) for v in values], dtype=object)
    if str(target) not in set(labels):
        from .._util import did_you_mean

        shown = ", ".join(repr(str(v)) for v in list(dict.fromkeys(labels.tolist()))[:20])
        raise ValueError(
            f"holdout {rule}: no run has {rule.column} == {target!r}; values: {shown}"
            f"{did_you_mean(target, set(labels))}"
        )
    return np.array([_OPS[rule.op](v, str(target)) for v in labels], bool)


def rolling_folds(
    levels: np.ndarray,
    order: list,
    horizon: int,
    first: int = 3,
) -> list[tuple[object, np.ndarray, np.ndarray]]:
    """Rolling-origin folds: ``(origin, fit mask, held-out mask)`` for every origin.

    The fit set of origin ``order[j]`` is every run whose level is at or below it; the held-out
    runs are those of the next ``horizon`` levels. Origins start at the ``first``-th level,
    so every fit set spans at least ``first`` levels.

    Example:
        >>> folds = rolling_folds(np.array([1, 1, 2, 3, 4]), [1, 2, 3, 4], horizon=1, first=2)
        >>> [(o, f.sum(), h.sum()) for o, f, h in folds]
        [(2, 3, 1), (3, 4, 1)]
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"rolling horizon must be an integer >= 1 but got {horizon!r}")
    position = {v: i for i, v in enumerate(order)}
    pos = np.array([position[v] for v in np.asarray(levels).tolist()])
    folds = []
    for j in range(first - 1, len(order) - 1):
        fit_mask = pos <= j
        held = (pos > j) & (pos <= j + horizon)
        folds.append((order[j], fit_mask, held))
    return folds
