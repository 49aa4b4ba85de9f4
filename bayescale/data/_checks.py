"""Reading and checking a runs table's columns, for :func:`~bayescale.data.runs.read_runs`.

The CSV or DataFrame source, the columns named for each role, each column's conversion to
float64 (or to group codes), and the rules every value must keep: each check raises a
one-line :class:`~bayescale.data.runs.RunsError` naming the column, the row label and the
rule, or warns with a :class:`~bayescale.data.runs.RunsWarning` about what it dropped.
Warnings name the caller of :func:`~bayescale.data.runs.read_runs` (``stacklevel=3``).

Example:
    >>> _rows_text([4, 9, 12])
    'rows 4, 9, 12'
"""

from __future__ import annotations

import decimal
import numbers
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._util import did_you_mean, short_repr
from .runs import _MAX_LOSS, _MIN_LOSS, INPUTS, RunsError, RunsWarning

_INF_TEXT = {"inf", "infinity"}


def _rows_text(labels: list[Any] | np.ndarray, limit: int = 10) -> str:
    """Format row labels as ``rows 4, 9, 12`` (first ``limit`` then ``...``)."""
    labels = list(labels)
    shown = ", ".join(str(x) for x in labels[:limit]) + (", ..." if len(labels) > limit else "")
    return f"{'row' if len(labels) == 1 else 'rows'} {shown}"


def _to_float(s: pd.Series, col: object) -> np.ndarray:
    """Convert a column to float64 (NaN for missing) before any arithmetic; reject non-numbers."""
    if pd.api.types.is_bool_dtype(s.dtype) and s.notna().any():
        first = s[s.notna()]
        raise RunsError(
            f"column {col!r} row {first.index[0]}: value {bool(first.iloc[0])} is not a number "
            "(booleans are not numbers)"
        )
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_complex_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.empty(len(s), dtype=np.float64)
    for i, (row, v) in enumerate(zip(s.index, s.to_numpy(dtype=object), strict=True)):
        if isinstance(v, bool | np.bool_):
            raise RunsError(
                f"column {col!r} row {row}: value {v} is not a number (booleans are not numbers)"
            )
        if isinstance(v, str):
            text = v.strip()
            try:
                out[i] = float(text) if text else np.nan
            except ValueError:
                raise RunsError(
                    f"column {col!r} row {row}: value {short_repr(v)} is not a number"
                ) from None
            if np.isinf(out[i]) and text.lstrip("+-").lower() not in _INF_TEXT:
                raise RunsError(
                    f"column {col!r} row {row}: value {short_repr(v)} is not a float64 number "
                    "(magnitudes above 1.8e308 overflow)"
                )
        elif v is None or v is pd.NA or v is pd.NaT:
            out[i] = np.nan
        elif isinstance(v, numbers.Real | decimal.Decimal):
            try:
                out[i] = float(v)
            except (OverflowError, ValueError):
                raise RunsError(
                    f"column {col!r} row {row}: value {short_repr(v)} is not a float64 number "
                    "(magnitudes above 1.8e308 overflow)"
                ) from None
        else:
            raise RunsError(f"column {col!r} row {row}: value {short_repr(v)} is not a number")
    return out


def _to_codes(s: pd.Series, col: object) -> tuple[np.ndarray, tuple[str, ...]]:
    """Encode a label column as int64 codes over sorted unique names (numbers sorted numerically)."""
    vals = s.to_numpy(dtype=object)
    missing = pd.isna(vals) | np.array(
        [isinstance(v, str) and not v.strip() for v in vals], dtype=bool
    )
    if missing.any():
        raise RunsError(
            f"column {col!r} row {s.index[int(np.argmax(missing))]}: label is missing (every run needs one)"
        )
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) for v in vals):
        nums = np.array([float(v) for v in vals])
        uniq, codes = np.unique(nums, return_inverse=True)
        names = tuple(
            str(int(u)) if u.is_integer() and abs(u) < 1e15 else repr(float(u)) for u in uniq
        )
    else:
        uniq, codes = np.unique(np.array([str(v) for v in vals], dtype=object), return_inverse=True)
        names = tuple(str(u) for u in uniq)
    return codes.astype(np.int64).reshape(-1), names


def _load(source: Any) -> pd.DataFrame:
    """Read a CSV path or copy a DataFrame; CSV headers are taken raw so duplicates stay visible."""
    if isinstance(source, pd.DataFrame):
        return source
    if not isinstance(source, str | Path):
        raise RunsError(
            f"source must be a CSV path or a pandas DataFrame, got {type(source).__name__}"
        )
    try:
        df = pd.read_csv(source)
        header = pd.read_csv(source, header=None, nrows=1, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RunsError(f"cannot read runs file {str(source)!r}: {reason}") from None
    if not isinstance(df.index, pd.RangeIndex):  # pandas made the surplus leading fields an index
        raise RunsError(
            f"runs file {str(source)!r} row 0: {len(df.columns) + df.index.nlevels} fields but "
            f"the header names {len(df.columns)} columns; give every column a header "
            "(a comma at the end of each line adds an unnamed column)"
        )
    raw = header.iloc[0].tolist() if len(header) else []
    if len(raw) == df.shape[1]:  # undo pandas' renaming of repeated headers ('x', 'x.1')
        df.columns = [r if r else c for r, c in zip(raw, df.columns, strict=True)]
    return df


def _check_columns(df: pd.DataFrame, cols: dict[str, Any], named: dict[str, Any]) -> None:
    """The table has rows, and each role's column once (``named``: the named inputs)."""
    if df.shape[0] == 0:
        raise RunsError("runs table is empty: no rows")
    available = list(dict.fromkeys(df.columns))
    for role, name in cols.items():
        if name not in available:
            shown = ", ".join(repr(c) for c in available[:30]) + (
                ", ..." if len(available) > 30 else ""
            )
            what = f" (input {role})" if role in named else ""
            raise RunsError(
                f"column {short_repr(name)}{what} not found; available columns: {shown or '(none)'}{did_you_mean(name, available)}"
            )
        if (count := int((df.columns == name).sum())) > 1:
            raise RunsError(
                f"column header {name!r} appears {count} times; rename the columns so each header is unique"
            )


def _drop_missing(
    vals: dict[str, np.ndarray], cols: dict[str, Any], rows: np.ndarray
) -> np.ndarray:
    """Which rows to keep: those with a loss (and a downstream error), with a warning per drop."""
    keep = np.ones(len(rows), dtype=bool)
    for role, why in (
        ("loss", "runs without a final evaluation"),
        ("downstream", "runs without a downstream evaluation"),
    ):
        if role in vals and (gone := np.isnan(vals[role]) & keep).any():
            n = int(gone.sum())
            warnings.warn(
                f"dropped {n} {'row' if n == 1 else 'rows'} with missing {cols[role]!r} "
                f"({_rows_text(rows[gone])}): {why}",
                RunsWarning,
                stacklevel=3,
            )
            keep &= ~gone
    return keep


def _check_values(
    vals: dict[str, np.ndarray],
    cols: dict[str, Any],
    rows: np.ndarray,
    named: dict[str, Any],
    loss_range: tuple[float, float, str] | None = None,
) -> None:
    """Inputs given, finite and > 0; loss finite in ``loss_range`` (default
    ``[_MIN_LOSS, _MAX_LOSS]`` nats); downstream in [0, 1]."""

    def fail(role: str, mask: np.ndarray, rule: str) -> None:
        if mask.any():
            i = int(np.argmax(mask))
            raise RunsError(
                f"column {cols[role]!r} row {rows[i]}: value {float(vals[role][i])!r} {rule}"
            )

    for role in [r for r in INPUTS if r in vals] + list(named):
        what = "sizes, tokens and compute" if role in INPUTS else f"input {role}"
        v = vals[role]
        if np.isnan(v).any():
            i = int(np.argmax(np.isnan(v)))
            raise RunsError(
                f"column {cols[role]!r} row {rows[i]}: value is missing "
                f"({what} must be given for every run)"
            )
        fail(role, np.isinf(v), f"is not finite ({what} must be finite)")
        fail(role, v <= 0, f"is not positive ({what} must be > 0)")
    fail(
        "loss",
        np.isinf(vals["loss"]),
        "is not finite (loss must be finite; leave it empty for a run without a final evaluation)",
    )
    low, high, what = loss_range or (_MIN_LOSS, _MAX_LOSS, "loss is a per-token loss in nats")
    fail(
        "loss",
        (vals["loss"] <= 0) | (vals["loss"] > high),
        f"is outside (0, {high:g}] ({what})",
    )
    fail(
        "loss",
        vals["loss"] < low,
        f"is below {low:g} ({what}; rescale a loss in other units)",
    )
    if "downstream" in vals:
        fail(
            "downstream",
            (vals["downstream"] < 0) | (vals["downstream"] > 1),
            "is outside [0, 1] (downstream must be an error rate)",
        )


def _derive(
    vals: dict[str, np.ndarray], cols: dict[str, Any], rows: np.ndarray, fpt: float
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, tuple[str, ...]]:
    """N, D, C and which were derived (D = C / (fpt N) or C = fpt N D); warns when a given
    C is off ``fpt N D`` by a factor 2, refuses derived or D/N values outside float64."""
    N, D, C = vals.get("params"), vals.get("tokens"), vals.get("compute")
    derived: tuple[str, ...] = ()
    with np.errstate(over="ignore", under="ignore"):
        if D is None and N is not None and C is not None:
            D, derived = C / (fpt * N), ("tokens",)
        elif C is None and N is not None and D is not None:
            C, derived = fpt * N * D, ("compute",)
        elif N is not None and D is not None and C is not None:
            expected = fpt * N * D
            if (off := (C > 2 * expected) | (C < 0.5 * expected)).any():
                i = int(np.argmax(off))
                warnings.warn(
                    f"column {cols['compute']!r} {_rows_text(rows[off])}: compute differs from "
                    f"{fpt:g}*N*D by more than a factor 2 (row {rows[i]}: {C[i]:.4g} vs {expected[i]:.4g}); "
                    "kept; check the columns or flops_per_token",
                    RunsWarning,
                    stacklevel=3,
                )
    for role, v in (("tokens", D), ("compute", C)):
        if role in derived and not (np.isfinite(v) & (v > 0)).all():
            i = int(np.argmax(~(np.isfinite(v) & (v > 0))))
            raise RunsError(
                f"row {rows[i]}: derived {role} {float(v[i])!r} is not a positive finite float64"
            )
    if N is not None and D is not None:  # tokens per parameter M = D/N, the laws' other axis
        with np.errstate(over="ignore", under="ignore"):
            ratio = D / N
        if (bad := ~(np.isfinite(ratio) & (ratio > 0))).any():
            i = int(np.argmax(bad))
            raise RunsError(
                f"row {rows[i]}: tokens per parameter D/N = {D[i]:.4g} / {N[i]:.4g} is outside "
                "the float64 range (rescale the columns)"
            )
    return N, D, C, derived
