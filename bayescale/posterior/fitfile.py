"""Fit files: netCDF written atomically, with a checksum that loading verifies.

A fit file is an ArviZ DataTree (posterior, sample_stats, observed and constant data, and
bayescale's own groups) with a JSON record of how the fit was made in its root attribute
``bayescale``. The root attribute ``bayescale_sha256`` holds the sha256 of that record
and of every array in every group, so a file that was edited, truncated or had a group
deleted is refused with one line instead of predicting from what is left.

Writing goes to a temporary file in the target folder, renamed over the target when it is
complete: an interrupted write (Ctrl-C, ``kill -9``, a full disk) leaves the old file or
the new one under the final name, never a part of one, and two processes writing the same
path leave one whole file (the last to finish). A process killed with ``kill -9`` while
writing can leave its temporary ``.NAME.PID.XXXXXXXX.tmp`` beside the target.

Example:
    >>> path = write_fit(result, "fit.nc")        # doctest: +SKIP
    >>> load_fit(path).runs.n_runs                # doctest: +SKIP
    245
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .core import Fit

__all__ = ["CHECKSUM_ATTR", "FILE_FORMAT", "file_checksum", "load_fit", "write_fit"]

#: format written by :func:`write_fit` (1: files from before checksums, still read)
FILE_FORMAT = 2
#: root attribute with the sha256 of the record and of every stored array
CHECKSUM_ATTR = "bayescale_sha256"
#: temporary files of the writes under way in this process
PENDING: set[Path] = set()


def file_checksum(path: str | Path) -> str:
    """sha256 of a fit file's ``bayescale`` record and of every dataset in it, as stored.

    Read with h5py, which closes a damaged file cleanly, before xarray touches the file.

    Example:
        >>> import h5py                                                   # doctest: +SKIP
        >>> with h5py.File("fit.nc") as f:                                # doctest: +SKIP
        ...     f.attrs["bayescale_sha256"] == file_checksum("fit.nc")
        True
    """
    import h5py

    with h5py.File(path, "r") as handle:
        return _digest(handle)


def _digest(handle) -> str:
    """:func:`file_checksum` of an open h5py file."""
    h = hashlib.sha256()
    h.update(str(handle.attrs["bayescale"]).encode())
    names: list[str] = []
    handle.visititems(lambda name, obj: names.append(name) if hasattr(obj, "dtype") else None)
    for name in sorted(names):
        values = np.asarray(handle[name][()])
        h.update(f"\x00{name}:{values.dtype.str}:{values.shape}:".encode())
        if values.dtype.kind == "O":
            h.update(
                b"\x1f".join(v if isinstance(v, bytes) else str(v).encode() for v in values.ravel())
            )
        else:
            h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def write_fit(fit: Fit, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``fit`` to ``path`` atomically (temporary file + rename); see the module.

    Raises ``ValueError`` when ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ValueError(f"{str(path)!r} exists; pass overwrite=True (--force) to replace it")
    tree = fit.to_datatree()
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name, not a file made by tempfile.mkstemp: mkstemp creates it 0600 and
    # os.replace keeps that, so fits came out readable by their owner alone whatever
    # the umask; h5netcdf creates this one as any new file (0666 minus the umask)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    PENDING.add(tmp)
    try:
        tree.to_netcdf(tmp, engine="h5netcdf")
        _sign(tmp)
        with open(tmp, "rb+") as handle:  # on disk before it takes the final name
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        PENDING.discard(tmp)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def remove_pending() -> None:
    """Delete the temporary files of writes still under way (the command line's Ctrl-C)."""
    for tmp in list(PENDING):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _sign(path: Path) -> None:
    import h5py

    digest = file_checksum(path)
    with h5py.File(path, "r+") as handle:
        handle.attrs[CHECKSUM_ATTR] = digest


def load_fit(path: str | Path) -> Fit:
    """Load a fit written by :meth:`Fit.to_netcdf`. Loading never executes code.

    The checksum is verified before anything in the file is used: an edited, truncated
    or partly deleted file raises ``ValueError`` with one line. Warns when the file was
    written by another bayescale version.
    """
    import xarray as xr

    from .core import FitWarning, _version

    path = Path(path)
    if not path.exists():
        raise ValueError(f"fit file {str(path)!r} not found")
    _verify(path)
    try:
        tree = xr.open_datatree(path, engine="h5netcdf")
        record = json.loads(tree.attrs["bayescale"])
    except Exception as exc:  # h5py/h5netcdf on a damaged file raise almost anything
        raise ValueError(
            f"{str(path)!r} is not a bayescale fit file ({type(exc).__name__})"
        ) from None
    try:
        fmt = record.get("format") if isinstance(record, dict) else None
        if fmt not in (1, FILE_FORMAT):
            raise ValueError(
                f"{str(path)!r} is not a bayescale fit file of format 1 or {FILE_FORMAT} "
                f"(found format {fmt!r})"
            )
        if record.get("bayescale_version") != _version():
            warnings.warn(
                f"{path} was written by bayescale {record.get('bayescale_version')}, "
                f"this is {_version()}; results may differ",
                FitWarning,
                stacklevel=3,
            )
        try:
            return _fit_from_file(tree, record, path)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # a hand-edited file that kept a valid checksum (or one of format 1): one
            # clean line, never a traceback or code execution
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
            raise ValueError(f"{str(path)!r} is not a valid bayescale fit file: {detail}") from None
    finally:
        tree.close()


def _verify(path: Path) -> None:
    """Refuse a file of format 2 or later whose checksum does not match its contents.

    A file without the attribute is left to the format check (format 1 has none).
    """
    import h5py

    try:
        handle = h5py.File(path, "r")
    except Exception as exc:  # h5py on a damaged or foreign file: one line
        raise ValueError(
            f"{str(path)!r} is not a bayescale fit file ({type(exc).__name__})"
        ) from None
    with handle:
        try:
            stored = handle.attrs.get(CHECKSUM_ATTR)
            record = json.loads(handle.attrs["bayescale"])
        except Exception as exc:
            raise ValueError(
                f"{str(path)!r} is not a bayescale fit file ({type(exc).__name__})"
            ) from None
        record = record if isinstance(record, dict) else {}
        if isinstance(stored, bytes):
            stored = stored.decode(errors="replace")
        if stored is None:
            fmt = record.get("format", 0)
            if isinstance(fmt, int) and fmt >= FILE_FORMAT:
                raise ValueError(f"{str(path)!r} is damaged or was edited: it has no checksum")
            return
        groups = record.get("groups", [])
        missing = [g for g in groups if str(g) not in handle] if isinstance(groups, list) else []
        if missing:
            raise ValueError(
                f"{str(path)!r} is damaged or was edited: group {missing[0]!r} is missing"
            )
        try:
            actual = _digest(handle)
        except Exception as exc:  # any read error of a damaged file, as one line
            raise ValueError(
                f"{str(path)!r} is damaged: its data cannot be read ({type(exc).__name__})"
            ) from None
    if actual != stored:
        raise ValueError(
            f"{str(path)!r} is damaged or was edited: its contents do not match the "
            "checksum written with them"
        )


def _fit_from_file(tree, record: dict, path: Path) -> Fit:
    from ..data.runs import Runs
    from ..laws.core import get_law
    from ..laws.priors import parse_prior
    from ..laws.specs import ModelSpec
    from ..model.scaling import ScalingModel
    from .core import Fit

    law = (
        get_law(record["law"], **{k: v for k, v in record["law_options"].items() if k != "custom"})
        if not record["law_options"].get("custom")
        else get_law(record["law"])
    )
    spec = ModelSpec(
        name=record["spec_name"],
        law=law,
        priors={k: parse_prior(v) for k, v in record["spec_priors"].items()},
        likelihood=record["likelihood"],
        pooling=record["pooling"],
        downstream=record["downstream"],
        citation=record.get("citation", ""),
        path=record.get("spec_path"),
    )
    model = ScalingModel(
        spec,
        {k: parse_prior(v) for k, v in record["priors"].items()},
        tuple(record["group_names"]),
        {k: float(v) for k, v in record["log_ref"].items()},
        tuple(str(v) for v in record.get("model_sweep_names", ())),
        bool(record.get("discrepancy", False)),
        {k: float(v) for k, v in record.get("frontier", {}).items()},
        tuple(str(v) for v in record.get("drift", ())),
        bool(record.get("scatter_growth", False)),
    )
    internal = tree["bayescale_samples"].to_dataset()
    samples = {k: np.asarray(internal[k].values) for k in internal.data_vars}
    end = None
    if "bayescale_sampler_end" in tree.children:
        found = tree["bayescale_sampler_end"].to_dataset()
        end = {k: np.asarray(found[k].values) for k in found.data_vars}
    stats_ds = tree["sample_stats"].to_dataset()
    stats = {
        k: np.asarray(stats_ds[k].values)
        for k in stats_ds.data_vars
        if k in ("diverging", "energy", "n_steps")
    }
    const = tree["constant_data"].to_dataset()
    get = lambda k: np.asarray(const[k].values, np.float64) if k in const else None  # noqa: E731
    group = np.asarray(const["group_code"].values, np.int64) if "group_code" in const else None
    sweep = np.asarray(const["sweep_code"].values, np.int64) if "sweep_code" in const else None
    group_names = tuple(record["group_names"]) if group is not None else ()
    runs = Runs(
        params=get("params"),
        tokens=get("tokens"),
        compute=get("compute"),
        loss=get("loss"),
        downstream=get("downstream"),
        group=group,
        group_names=group_names,
        sweep=sweep,
        sweep_names=tuple(record.get("sweep_names", ())),
        rows=np.asarray(record["rows"]),
        columns=dict(record["columns"]),
        # format 2 files from before named inputs have no "inputs": none
        inputs={
            str(k): np.asarray(const[f"input_{k}"].values, np.float64)
            for k in record.get("inputs", [])
        },
    )
    info = dict(record["info"])
    info["warn"] = False  # the verdict is in the file; do not re-warn on every load
    result = Fit(model, samples, stats, runs, info)
    result.sampler_end = end
    result.info["warn"] = True
    result.info["loaded_from"] = str(path)
    return result


def end_dataset(end: dict[str, np.ndarray]):
    """The sampler end state as an xarray Dataset (one row per chain)."""
    import xarray as xr

    dims = {
        "z": ("chain", "unconstrained"),
        "inverse_mass_matrix": ("chain", "unconstrained", "unconstrained_2"),
        "step_size": ("chain",),
        "schedule": ("chain",),
    }
    return xr.Dataset({k: (dims[k][: np.ndim(v)], np.asarray(v)) for k, v in end.items()})
