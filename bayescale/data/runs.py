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

import hashlib
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Runs", "RunsError", "RunsWarning", "check_input_name", "read_runs"]

INPUTS = ("params", "tokens", "compute")
#: names a named input cannot take: the table's roles and the fit file's own columns
RESERVED = (*INPUTS, "loss", "downstream", "group", "sweep", "group_code", "sweep_code")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_LOSS = 20.0
#: no language model's per-token loss in nats is smaller; below it the default prior of E
#: (rounded to 6 decimals) degenerates and reported coefficients underflow
_MIN_LOSS = 1e-5


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
    # the column checks raise this module's RunsError: imported here, not at the top
    from ._checks import (
        _check_columns,
        _check_values,
        _derive,
        _drop_missing,
        _load,
        _rows_text,
        _to_codes,
        _to_float,
    )

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
    _check_columns(df, cols, named)
    rows = np.asarray(df.index)
    vals = {
        role: _to_float(df[cols[role]], cols[role])
        for role in (*INPUTS, "loss", "downstream", *named)
        if role in cols
    }

    keep = _drop_missing(vals, cols, rows)
    rows = rows[keep]
    vals = {k: v[keep] for k, v in vals.items()}
    labels = {  # encoded after the drop so every group name has runs
        role: _to_codes(df[cols[role]][keep], cols[role])
        for role in ("group", "sweep")
        if role in cols
    }

    _check_values(vals, cols, rows, named, loss_range)
    if len(rows) < 2:
        raise RunsError(
            f"need at least 2 runs, found {len(rows)}"
            + (" after dropping rows with missing values" if not keep.all() else "")
        )

    N, D, C, derived = _derive(vals, cols, rows, fpt)

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
