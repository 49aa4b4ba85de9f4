"""Readers for the public scaling-law datasets (thin wrappers over :func:`read_runs`).

The CSV files are not shipped with the package. They are looked up in the folder given by
``path``, else the ``BAYESCALE_DATA`` environment variable, else ``<repo>/../shared/data``.
Every ``path`` argument may also name the CSV file itself.

Example:
    >>> from bayescale.data.datasets import load_chinchilla
    >>> load_chinchilla().n_runs  # doctest: +SKIP
    245
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayescale._util import did_you_mean as _did_you_mean
from bayescale.data._checks import _rows_text
from bayescale.data.runs import Runs, RunsError, RunsWarning, read_runs

__all__ = [
    "data_dir",
    "flag_diverged",
    "gadre2024_table",
    "load_chinchilla",
    "load_gadre2024",
    "load_porian2024",
    "load_porian2024_exponents",
    "load_xlstm",
]

CHINCHILLA = "chinchilla_epoch2024.csv"
GADRE = "gadre2024_runs.csv"
XLSTM = "xlstm_llama_dclm_ctx16k.csv"
PORIAN = "porian2024_isoflop_points.csv"
PORIAN_EXPONENTS = "porian2024_exponent_a.csv"
PORIAN_SETUP = ("dataset", "hparams", "warmup", "decay", "param_count", "loss_split")


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Folder holding the public CSVs: ``path`` > ``$BAYESCALE_DATA`` > ``<repo>/../shared/data``.

    Raises:
        RunsError: if the folder does not exist.

    Example:
        >>> data_dir("/data/scaling")  # doctest: +SKIP
        PosixPath('/data/scaling')
    """
    if path is not None:
        where, how = Path(path), "given path"
    elif os.environ.get("BAYESCALE_DATA"):
        where, how = Path(os.environ["BAYESCALE_DATA"]), "BAYESCALE_DATA"
    else:
        where, how = (
            Path(__file__).resolve().parents[2].parent / "shared" / "data",
            "default location",
        )
    if not where.is_dir():
        raise RunsError(
            f"data directory {str(where)!r} ({how}) not found; pass path=... or set BAYESCALE_DATA "
            "to the folder holding the public scaling-law CSVs"
        )
    return where


def _data_file(name: str, path: str | os.PathLike[str] | None) -> Path:
    """Resolve ``name`` inside the data folder, or accept ``path`` when it is the file itself."""
    if path is not None and Path(path).is_file():
        return Path(path)
    file = data_dir(path) / name
    if not file.is_file():
        raise RunsError(
            f"data file {name!r} not found in {str(file.parent)!r}; pass path=... or set BAYESCALE_DATA"
        )
    return file


def _read_csv(file: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(file)
    except (OSError, ValueError) as exc:
        raise RunsError(f"cannot read runs file {str(file)!r}: {exc}") from None


def _check_choice(value: Any, valid: Iterable[Any], what: str) -> None:
    valid = sorted({str(v) for v in valid})
    if str(value) not in valid:
        raise RunsError(
            f"unknown {what} {value!r}; valid values: {', '.join(map(repr, valid))}{_did_you_mean(value, valid)}"
        )


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def load_chinchilla(path: str | os.PathLike[str] | None = None) -> Runs:
    """Hoffmann et al. 2022 runs as reconstructed by Besiroglu et al. 2024 (all 245 points).

    Columns: params = ``Model Size``, compute = ``Training FLOP``, loss = ``loss``; tokens are
    derived as D = C / (6 N).

    Example:
        >>> runs = load_chinchilla()  # doctest: +SKIP
        >>> runs.n_runs, runs.derived  # doctest: +SKIP
        (245, ('tokens',))
    """
    return read_runs(
        _data_file(CHINCHILLA, path), params="Model Size", compute="Training FLOP", loss="loss"
    )


def gadre2024_table(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The raw Gadre et al. 2024 runs table (101 rows), e.g. to pick held-out rows by label.

    Example:
        >>> t = gadre2024_table()  # doctest: +SKIP
        >>> t.query("default_fit_role == 'heldout_target'").index.tolist()  # doctest: +SKIP
        [32, 66, 100]
    """
    return _read_csv(_data_file(GADRE, path))


def load_gadre2024(
    eval: str = "loss_c4_val",  # the paper calls it the eval set
    downstream: str | None = "err_avg_17task_subset",
    distributions: str | Sequence[str] | None = None,
    roles: str | Sequence[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Runs:
    """Gadre et al. 2024 over-training runs; group = ``data_distribution``.

    Args:
        eval: loss column (``loss_c4_val``, ``loss_openlm``, ``loss_paloma_*``).
        downstream: error-rate column (``err_avg_17task_subset``, ``err_avg_46task``) or None.
        distributions: keep only these data distributions (``c4_original``, ``rpj``,
            ``rw_original``); None keeps all.
        roles: keep only these ``default_fit_role`` values (``fit_loss+fit_error``,
            ``fit_error_only``, ``heldout_target``, ``not_in_default_fit``); None keeps all.
        path: data folder or the CSV itself.

    Returns:
        Runs with params = ``n_params``, tokens = ``n_tokens``, C = 6ND; row labels are the
        table's row numbers, as in :func:`gadre2024_table`.

    Example:
        >>> fit_set = load_gadre2024(distributions=["rpj"], roles=["fit_loss+fit_error"])  # doctest: +SKIP
        >>> fit_set.n_runs  # doctest: +SKIP
        5
    """
    table = gadre2024_table(path)
    _check_choice(
        eval, [c for c in table.columns if c.startswith("loss_")], "gadre2024 eval column"
    )
    if downstream is not None:
        _check_choice(
            downstream,
            [c for c in table.columns if c.startswith("err_")],
            "gadre2024 downstream column",
        )
    keep = np.ones(len(table), dtype=bool)
    for chosen, column in ((distributions, "data_distribution"), (roles, "default_fit_role")):
        if chosen is not None:
            chosen = _as_list(chosen)
            for value in chosen:
                _check_choice(value, table[column].unique(), f"gadre2024 {column}")
            keep &= table[column].isin(chosen).to_numpy()
    return read_runs(
        table[keep],
        params="n_params",
        tokens="n_tokens",
        loss=eval,
        downstream=downstream,
        group="data_distribution",
    )


def flag_diverged(
    frame: pd.DataFrame,
    loss_col: str,
    by: str | Sequence[str],
    factor: float = 5.0,
    floor: float = 0.5,
) -> pd.Series:
    """Flag runs whose loss is far above the rest of their sweep (diverged or broken runs).

    A run is flagged when ``loss > median + max(floor, factor * MAD)`` of the finite losses
    in its ``by`` group (MAD = median absolute deviation). The floor of 0.5 nats keeps the
    ordinary U of an isoFLOP curve (a few tenths of a nat) from being flagged. Missing losses
    are never flagged.

    Returns:
        Boolean Series aligned with ``frame.index``.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"g": ["a"] * 4, "loss": [3.0, 3.1, 3.05, 7.9]})
        >>> flag_diverged(f, "loss", "g").tolist()
        [False, False, False, True]
    """
    loss = pd.to_numeric(frame[loss_col], errors="coerce")
    grouped = loss.groupby([frame[b] for b in _as_list(by)], dropna=False)
    median = grouped.transform("median")
    mad = (
        (loss - median)
        .abs()
        .groupby([frame[b] for b in _as_list(by)], dropna=False)
        .transform("median")
    )
    return (loss > median + np.maximum(floor, factor * mad)).fillna(False).astype(bool)


def load_xlstm(
    loss: str = "val_dclm_loss_final",
    path: str | os.PathLike[str] | None = None,
    diverged_factor: float = 5.0,
    drop_diverged: bool = False,
) -> Runs:
    """Beck et al. 2025 isoFLOP sweeps: Llama vs mLSTM on DCLM, context 16k.

    group = ``arch`` (``llama``, ``mlstm``), sweep = ``isoflop_group``, params =
    ``num_params_logged``, tokens = ``tokens_planned``, C = 6ND.

    Runs without a final evaluation (in this file exactly the 5 runs with ``completed=False``;
    they also lack a logged parameter count) are dropped by :func:`read_runs` with a
    :class:`RunsWarning`. A run marked ``completed=False`` that does carry a loss is dropped
    too, with its own warning, because its loss is not at ``tokens_planned``. Runs flagged by
    :func:`flag_diverged` within (arch, isoflop_group) are reported with a warning naming
    ``run_name`` and loss, and kept unless ``drop_diverged`` (the default student_t likelihood
    absorbs them).

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():  # doctest: +SKIP
        ...     warnings.simplefilter("ignore", RunsWarning)
        ...     runs = load_xlstm()
        >>> runs.group_names  # doctest: +SKIP
        ('llama', 'mlstm')
    """
    table = _read_csv(_data_file(XLSTM, path))
    _check_choice(loss, [c for c in table.columns if "loss" in c], "xlstm loss column")
    has_loss = pd.to_numeric(table[loss], errors="coerce").notna()
    stopped = (table["completed"].astype(str).str.lower() != "true") & has_loss
    if stopped.any():
        warnings.warn(
            f"dropped {int(stopped.sum())} incomplete runs (completed=False) that have a {loss!r} "
            f"({_rows_text(table.index[stopped])}): their loss is not at tokens_planned",
            RunsWarning,
            stacklevel=2,
        )
        table = table[~stopped]
    diverged = flag_diverged(table, loss, ["arch", "isoflop_group"], factor=diverged_factor)
    if diverged.any():
        named = ", ".join(
            f"{r} ({v:.3f})"
            for r, v in zip(table.run_name[diverged], table[loss][diverged], strict=True)
        )
        warnings.warn(
            f"{int(diverged.sum())} runs look diverged (loss far above their isoFLOP group): {named}; "
            + ("dropped" if drop_diverged else "kept (pass drop_diverged=True to drop them)"),
            RunsWarning,
            stacklevel=2,
        )
        if drop_diverged:
            table = table[~diverged]
    return read_runs(
        table,
        params="num_params_logged",
        tokens="tokens_planned",
        loss=loss,
        group="arch",
        sweep="isoflop_group",
    )


def load_porian2024(
    dataset: str = "rw",
    hparams: str = "tuned",
    warmup: str = "short",
    decay: str = "const",
    param_count: str = "standard",
    loss_split: str = "val",
    path: str | os.PathLike[str] | None = None,
) -> Runs:
    """Porian et al. 2024 isoFLOP points for one of their 15 setups; sweep = ``flop_budget``.

    The defaults give "RefinedWeb, tuned hyper-parameters, constant LR" (a = 0.497 in their
    table). The Kaplan-reproduction setup (a = 0.835) is ``hparams="base", warmup="long",
    decay="kaplan", param_count="kaplan", loss_split="train"``. params = ``N_params``, tokens =
    ``D_tokens`` and C = 6ND (equal to ``flop_budget`` in this file).

    Raises:
        RunsError: for an unknown value (with valid values and a did-you-mean) or a
            combination that is not one of the 15 setups (listing them).

    Example:
        >>> kaplan = load_porian2024(hparams="base", warmup="long", decay="kaplan",
        ...                          param_count="kaplan", loss_split="train")  # doctest: +SKIP
        >>> kaplan.n_runs  # doctest: +SKIP
        107
    """
    table = _read_csv(_data_file(PORIAN, path))
    chosen = dict(
        zip(PORIAN_SETUP, (dataset, hparams, warmup, decay, param_count, loss_split), strict=True)
    )
    for column, value in chosen.items():
        _check_choice(value, table[column].unique(), f"porian2024 {column}")
    keep = np.logical_and.reduce(
        [(table[c].astype(str) == str(v)).to_numpy() for c, v in chosen.items()]
    )
    if not keep.any():
        setups = sorted(
            {"/".join(map(str, s)) for s in table[list(PORIAN_SETUP)].itertuples(index=False)}
        )
        raise RunsError(
            f"no porian2024 setup {'/'.join(map(str, chosen.values()))} ({'/'.join(PORIAN_SETUP)}); "
            f"the {len(setups)} setups are: {', '.join(setups)}"
        )
    return read_runs(
        table[keep], params="N_params", tokens="D_tokens", loss="loss", sweep="flop_budget"
    )


def load_porian2024_exponents(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Porian et al.'s estimates of a in N_opt ∝ C^a per setup, with 95% bootstrap intervals.

    Example:
        >>> load_porian2024_exponents().shape  # doctest: +SKIP
        (15, 11)
    """
    return _read_csv(_data_file(PORIAN_EXPONENTS, path))
