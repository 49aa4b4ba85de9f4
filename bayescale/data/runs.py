"""The validated runs table: the only way data enters a fit.

A *run* is one trained model: its size N (``params``), training tokens D (``tokens``),
training compute C (``compute``), final ``loss`` and optionally a ``downstream`` error rate,
a ``group`` (architecture, data mix, arm) and a ``sweep`` (isoFLOP budget, ladder).
:func:`read_runs` maps the user's column names onto these roles, checks every value and
returns a frozen :class:`Runs` of float64 numpy arrays. Bad input raises :class:`RunsError`
(a ``ValueError``) with one line naming the column, the row label and the rule broken.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"N": [1e8, 4e8], "D": [2e9, 8e9], "loss": [3.1, 2.8]})
    >>> runs = read_runs(df, params="N", tokens="D", loss="loss")
    >>> runs.n_runs, runs.compute.tolist()
    (2, [1.2e+18, 1.92e+19])
"""

from __future__ import annotations

import decimal
import hashlib
import numbers
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._util import did_you_mean as _did_you_mean
from .._util import short_repr

__all__ = ["Runs", "RunsError", "RunsWarning", "check_input_name", "read_runs"]

INPUTS = ("params", "tokens", "compute")
#: names a named input cannot take: the table's roles and the fit file's own columns
RESERVED = (*INPUTS, "loss", "downstream", "group", "sweep", "group_code", "sweep_code")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_LOSS = 20.0
#: no language model's per-token loss in nats is smaller; below it the default prior of E
#: (rounded to 6 decimals) degenerates and reported coefficients underflow
_MIN_LOSS = 1e-5
_INF_TEXT = {"inf", "infinity"}


class RunsError(ValueError):
    """Bad runs data; the message is always a single line.

    Example:
        >>> str(RunsError("column 'N' not found\\nsecond line"))
        "column 'N' not found second line"
    """

    def __init__(self, message: object) -> None:
        super().__init__(re.sub(r"\s*[\r\n]+\s*", " ", str(message)).strip())


def check_input_name(name: object) -> str:
    """A named input's name: an identifier that is not one of the table's roles.

    Example:
        >>> check_input_name("U")
        'U'
        >>> check_input_name("loss")
        Traceback (most recent call last):
        ...
        bayescale.data.runs.RunsError: input name 'loss' is reserved (params, tokens, compute, loss, \
downstream, group, sweep, group_code, sweep_code); pick another name
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise RunsError(
            f"input name {name!r} must be an identifier (letters, digits, _; not starting "
            "with a digit)"
        )
    if name in RESERVED:
        raise RunsError(
            f"input name {name!r} is reserved ({', '.join(RESERVED)}); pick another name"
        )
    return name


class RunsWarning(UserWarning):
    """Data was usable but something was dropped or looks suspicious.

    Example:
        >>> import warnings
        >>> warnings.simplefilter("ignore", RunsWarning)
    """


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


def _frozen(a: np.ndarray | None, dtype: Any) -> np.ndarray | None:
    if a is None:
        return None
    a = np.array(a, dtype=dtype).reshape(-1)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Runs:
    """Validated runs: float64 arrays of equal length, one entry per run.

    Build it with :func:`read_runs`. Arrays are read-only; ``select`` makes subsets.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"N": [1e8, 1e8, 4e8], "D": [2e9, 4e9, 8e9], "L": [3.1, 3.0, 2.8]})
        >>> runs = read_runs(df, params="N", tokens="D", loss="L")
        >>> runs.frame().columns.tolist()
        ['params', 'tokens', 'compute', 'loss']
    """

    params: np.ndarray | None
    tokens: np.ndarray | None
    compute: np.ndarray | None
    loss: np.ndarray
    downstream: np.ndarray | None
    group: np.ndarray | None
    group_names: tuple[str, ...]
    sweep: np.ndarray | None
    sweep_names: tuple[str, ...]
    rows: np.ndarray
    columns: dict[str, str]
    flops_per_token: float = 6.0
    derived: tuple[str, ...] = field(default=())
    #: named inputs beyond params/tokens/compute (``{"U": unique tokens}``), validated
    #: like params: finite and > 0
    inputs: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (*INPUTS, "loss", "downstream"):
            object.__setattr__(self, name, _frozen(getattr(self, name), np.float64))
        named = {check_input_name(k): _frozen(v, np.float64) for k, v in self.inputs.items()}
        object.__setattr__(self, "inputs", named)
        for name in ("group", "sweep"):
            object.__setattr__(self, name, _frozen(getattr(self, name), np.int64))
        object.__setattr__(self, "rows", _frozen(self.rows, None))
        object.__setattr__(self, "group_names", tuple(self.group_names))
        object.__setattr__(self, "sweep_names", tuple(self.sweep_names))
        n = len(self.loss)
        for name in (*INPUTS, "downstream", "group", "sweep", "rows"):
            a = getattr(self, name)
            if a is not None and len(a) != n:
                raise RunsError(f"Runs.{name} has {len(a)} entries but loss has {n}")
        for name, a in self.inputs.items():
            if len(a) != n:
                raise RunsError(f"Runs input {name!r} has {len(a)} entries but loss has {n}")

    @property
    def n_runs(self) -> int:
        """Number of runs (rows kept)."""
        return len(self.loss)

    @property
    def input_names(self) -> tuple[str, ...]:
        """Inputs present: params/tokens/compute (those given or derived), then named ones."""
        return (*(k for k in INPUTS if getattr(self, k) is not None), *self.inputs)

    def input(self, name: str) -> np.ndarray | None:
        """The values of input ``name`` (``params``, ``tokens``, ``compute`` or a named
        input such as ``U``); None when the runs do not have it.

        Example:
            >>> runs.input("params") is runs.params  # doctest: +SKIP
            True
        """
        return getattr(self, name) if name in INPUTS else self.inputs.get(name)

    @property
    def n_groups(self) -> int:
        """Number of groups; 1 when there is no group column."""
        return len(self.group_names) if self.group is not None else 1

    def frame(self) -> pd.DataFrame:
        """Canonical DataFrame: ``params, tokens, compute[, named inputs], loss[, downstream][,
        group][, sweep]``.

        Missing inputs (e.g. params for compute-only data) are NaN columns; group and sweep
        hold the names. The index is the original row labels.

        Example:
            >>> runs.frame().index.tolist()  # doctest: +SKIP
            [0, 1, 2]
        """
        nan = np.full(self.n_runs, np.nan)
        data: dict[str, Any] = {
            k: nan if getattr(self, k) is None else getattr(self, k) for k in INPUTS
        }
        data.update(self.inputs)
        data["loss"] = self.loss
        if self.downstream is not None:
            data["downstream"] = self.downstream
        for k in ("group", "sweep"):
            codes = getattr(self, k)
            if codes is not None:
                data[k] = np.array(getattr(self, f"{k}_names"), dtype=object)[codes]
        return pd.DataFrame(data, index=pd.Index(self.rows))

    def select(self, mask_or_indices: Any) -> Runs:
        """Subset of runs by boolean mask or integer positions; ``group_names`` stay as they are.

        Example:
            >>> small = runs.select(runs.params < 3e8)  # doctest: +SKIP
        """
        idx = np.asarray(mask_or_indices)
        if idx.dtype == bool:
            if idx.shape != (self.n_runs,):
                raise RunsError(f"selection mask has shape {idx.shape}, expected ({self.n_runs},)")
            idx = np.flatnonzero(idx)
        elif idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise RunsError(
                f"select() takes a boolean mask or integer positions, got dtype {idx.dtype}"
            )
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size == 0:
            raise RunsError("selection keeps no runs")
        if idx.min() < -self.n_runs or idx.max() >= self.n_runs:
            raise RunsError(f"selection index out of range for {self.n_runs} runs")
        take = {
            k: None if getattr(self, k) is None else getattr(self, k)[idx]
            for k in (*INPUTS, "loss", "downstream", "group", "sweep", "rows")
        }
        return replace(self, **take, inputs={k: v[idx] for k, v in self.inputs.items()})

    def require(self, inputs: tuple[str, ...], n_parameters: int, law_name: str) -> None:
        """Check that a law with ``n_parameters`` parameters on ``inputs`` can be fitted.

        Distinct runs are unique (group, *inputs) tuples; at least ``n_parameters + 1`` are
        needed. A law using ``params`` needs two model sizes (in every group when grouped).

        Example:
            >>> runs.require(("params", "tokens"), 5, "chinchilla")  # doctest: +SKIP
        """
        for name in inputs:
            if name not in INPUTS and self.input(name) is None:
                raise RunsError(
                    f"law {law_name!r} needs input {name!r}, but the runs have no input {name!r} "
                    f"(map a column to it: --input {name}=COLUMN / inputs={{{name!r}: COLUMN}}; "
                    f"the runs have: {', '.join(self.input_names)})"
                )
            if self.input(name) is None:
                raise RunsError(
                    f"law {law_name!r} needs {name}, but the runs have no {name} column "
                    f"(available: {', '.join(self.input_names)})"
                )
        if "params" in inputs:
            codes = self.group if self.group is not None else np.zeros(self.n_runs, dtype=np.int64)
            for g in np.unique(codes):
                sizes = np.unique(self.params[codes == g])
                if len(sizes) < 2:
                    where = f" in group {self.group_names[g]!r}" if self.group is not None else ""
                    raise RunsError(
                        f"law {law_name!r} needs at least 2 distinct model sizes{where}, "
                        f"found 1 (params = {sizes[0]:g})"
                    )
        keys = [self.input(k) for k in inputs] + ([self.group] if self.group is not None else [])
        distinct = len(np.unique(np.column_stack(keys), axis=0)) if keys else min(self.n_runs, 1)
        if distinct < n_parameters + 1:
            raise RunsError(
                f"law {law_name!r} has {n_parameters} parameters and needs at least {n_parameters + 1} "
                f"distinct runs (unique {', '.join(inputs)} values), found {distinct}"
            )

    def data_hash(self) -> str:
        """SHA-256 hex digest of the canonical float64/int64 arrays and names (for provenance).

        Example:
            >>> len(runs.data_hash())  # doctest: +SKIP
            64
        """
        h = hashlib.sha256()
        for name in (*INPUTS, "loss", "downstream", "group", "sweep"):
            a = getattr(self, name)
            h.update(f"{name}:{'none' if a is None else len(a)};".encode())
            if a is not None:
                h.update(
                    np.ascontiguousarray(a, dtype="<i8" if a.dtype.kind == "i" else "<f8").tobytes()
                )
        h.update(repr((self.group_names, self.sweep_names)).encode())
        for name, a in self.inputs.items():  # none for tables of params/tokens/compute alone
            h.update(f"input:{name}:{len(a)};".encode())
            h.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
        return h.hexdigest()


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


def read_runs(
    source: Any,
    *,
    params: Any = None,
    tokens: Any = None,
    compute: Any = None,
    loss: Any,
    downstream: Any = None,
    group: Any = None,
    sweep: Any = None,
    flops_per_token: float = 6.0,
    inputs: Mapping[str, Any] | None = None,
    loss_range: tuple[float, float, str] | None = None,
) -> Runs:
    """Read and validate a runs table.

    Args:
        source: CSV path or pandas DataFrame.
        params, tokens, compute, loss, downstream, group, sweep: the user's column names for
            each role (``loss`` required; at least one of params/tokens/compute).
        flops_per_token: C = flops_per_token * N * D (6 for dense transformers). If tokens are
            missing D = C / (flops_per_token N); if compute is missing C = flops_per_token N D.
        inputs: named inputs beyond params/tokens/compute, ``{name: column}`` (e.g.
            ``{"U": "unique_tokens"}``), for laws that read them; validated like params
            (every value given, finite and > 0).
        loss_range: ``(low, high, what)`` the loss column must lie in, for a law of another
            response (``batch_opt``: batch sizes in tokens); default a per-token loss in nats.

    Returns:
        Runs with float64 arrays. Rows whose loss (or downstream) is missing are dropped with
        a :class:`RunsWarning`; every other problem raises :class:`RunsError`.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"N": [1e8, 4e8], "C": [1.2e18, 1.92e19], "loss": [3.1, 2.8]})
        >>> read_runs(df, params="N", compute="C", loss="loss").tokens.tolist()
        [2000000000.0, 8000000000.0]
        >>> df["U"] = [1e9, 2e9]
        >>> read_runs(df, params="N", compute="C", loss="loss", inputs={"U": "U"}).input("U")
        array([1.e+09, 2.e+09])
    """
    roles = {
        "params": params,
        "tokens": tokens,
        "compute": compute,
        "loss": loss,
        "downstream": downstream,
        "group": group,
        "sweep": sweep,
    }
    cols = {role: name for role, name in roles.items() if name is not None}
    if inputs is not None and not isinstance(inputs, Mapping):
        raise RunsError(f"inputs must map input names to columns, got {type(inputs).__name__}")
    named = {check_input_name(k): v for k, v in (inputs or {}).items()}
    cols.update(named)
    if loss is None:
        raise RunsError("the loss column is required (loss=...)")
    if params is None and tokens is None and compute is None:
        raise RunsError("give at least one of params, tokens or compute (column names)")
    try:
        fpt = float(flops_per_token)
    except (TypeError, ValueError):
        fpt = float("nan")
    if not (np.isfinite(fpt) and fpt > 0):
        raise RunsError(f"flops_per_token must be a positive number, got {flops_per_token!r}")
    seen: dict[Any, str] = {}
    for role, name in cols.items():
        label = f"input {role}" if role in named else role
        if name in seen:
            raise RunsError(f"column {name!r} is given for both {seen[name]} and {label}")
        seen[name] = label

    df = _load(source)
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
                f"column {short_repr(name)}{what} not found; available columns: {shown or '(none)'}{_did_you_mean(name, available)}"
            )
        if (count := int((df.columns == name).sum())) > 1:
            raise RunsError(
                f"column header {name!r} appears {count} times; rename the columns so each header is unique"
            )

    rows = np.asarray(df.index)
    vals = {
        role: _to_float(df[cols[role]], cols[role])
        for role in (*INPUTS, "loss", "downstream", *named)
        if role in cols
    }

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
                stacklevel=2,
            )
            keep &= ~gone
    rows = rows[keep]
    vals = {k: v[keep] for k, v in vals.items()}
    labels = {  # encoded after the drop so every group name has runs
        role: _to_codes(df[cols[role]][keep], cols[role])
        for role in ("group", "sweep")
        if role in cols
    }

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
    if len(rows) < 2:
        raise RunsError(
            f"need at least 2 runs, found {len(rows)}"
            + (" after dropping rows with missing values" if not keep.all() else "")
        )

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
                    stacklevel=2,
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

    runs = Runs(
        params=N,
        tokens=D,
        compute=C,
        loss=vals["loss"],
        downstream=vals.get("downstream"),
        group=labels["group"][0] if "group" in labels else None,
        group_names=labels["group"][1] if "group" in labels else (),
        sweep=labels["sweep"][0] if "sweep" in labels else None,
        sweep_names=labels["sweep"][1] if "sweep" in labels else (),
        rows=rows,
        columns=dict(cols),
        flops_per_token=fpt,
        derived=derived,
        inputs={role: vals[role] for role in named},
    )
    key = runs.frame().drop(columns=["downstream", "sweep"], errors="ignore")
    if (dup := key.duplicated(keep=False).to_numpy()).any():
        warnings.warn(
            f"duplicated runs (same inputs, group and loss) at {_rows_text(rows[dup])}: kept; "
            "fine if they are replicate seeds that share a loss, otherwise remove the copies",
            RunsWarning,
            stacklevel=2,
        )
    return runs
