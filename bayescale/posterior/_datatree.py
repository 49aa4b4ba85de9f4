"""A :class:`~bayescale.posterior.core.Fit` as an ArviZ DataTree, the form a fit file stores.

The body of :meth:`Fit.to_datatree` and the JSON record of how the fit was made
(:meth:`Fit._record`), which :mod:`bayescale.posterior.fitfile` writes to netCDF and reads
back. Each function takes the fit first.

Example:
    >>> sorted(to_datatree(fit).children)[:3]         # doctest: +SKIP
    ['bayescale_samples', 'constant_data', 'log_likelihood']
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .core import Fit

#: the pointwise log-likelihood goes into a DataTree / fit file up to this many values
LOGLIK_MAX_VALUES = 1_000_000


def to_datatree(fit: Fit, log_likelihood: bool | None = None):
    from arviz_base import from_dict

    from .fitfile import end_dataset

    n_values = fit.n_chains * fit.n_draws * int(np.sum(fit.loss_runs()))
    with_loglik = n_values <= LOGLIK_MAX_VALUES if log_likelihood is None else log_likelihood

    posterior, dims = {}, {}
    for name, value in fit.reported().items():
        posterior[name] = value
        if value.ndim == 3:
            dims[name] = ["group"]
    runs_dim = ["run"]
    informing = fit.loss_runs()
    data = {
        "posterior": posterior,
        "sample_stats": {
            "diverging": fit.stats["diverging"],
            "energy": fit.stats["energy"],
            "n_steps": fit.stats.get("n_steps", np.zeros_like(fit.stats["energy"])),
        },
        "observed_data": {"log_loss": np.log(fit.runs.loss[informing])},
        "constant_data": constant_data(fit),
    }
    if with_loglik:
        data["log_likelihood"] = {"log_loss": fit.log_likelihood()}
    # runs left out of the loss likelihood (loss_mask) have no pointwise log-likelihood
    dims.update({"log_loss": ["loss_run"]})
    for name in data["constant_data"]:
        dims[name] = runs_dim
    rows = np.asarray(fit.runs.rows).astype(str)
    coords = {"run": rows, "loss_run": rows[informing], "group": list(fit.group_names)}
    tree = from_dict(data, dims=dims, coords=coords)
    internal = {}
    for name, value in fit.samples.items():
        internal[name] = value
    from xarray import DataTree

    tree["bayescale_samples"] = DataTree(
        from_dict({"posterior": internal})["posterior"].to_dataset()
    )
    if fit.sampler_end is not None:  # where each chain ended: a later warm start
        tree["bayescale_sampler_end"] = DataTree(end_dataset(fit.sampler_end))
    record = fit_record(fit)
    record["groups"] = sorted(str(g) for g in tree.children)
    if not with_loglik:
        record["log_likelihood"] = "not stored: Fit.log_likelihood() computes it"
    tree.attrs["bayescale"] = json.dumps(record)
    return tree


def constant_data(fit: Fit) -> dict[str, np.ndarray]:
    out = {"loss": fit.runs.loss}
    for name in ("params", "tokens", "compute", "downstream"):
        value = getattr(fit.runs, name)
        if value is not None:
            out[name] = value
    for name, value in fit.runs.inputs.items():
        out[f"input_{name}"] = value
    if fit.runs.group is not None:
        out["group_code"] = fit.runs.group
    if getattr(fit.runs, "sweep", None) is not None:
        out["sweep_code"] = fit.runs.sweep
    return out


def fit_record(fit: Fit) -> dict:
    spec = fit.spec
    import platform
    from importlib.metadata import version

    import jax
    import xarray

    from .._jax import numpyro_version
    from .core import _version
    from .fitfile import FILE_FORMAT

    return {
        "format": FILE_FORMAT,
        "bayescale_version": _version(),
        "versions": {
            "jax": jax.__version__,
            # from the installed metadata: neither is otherwise imported to write a fit
            "numpyro": numpyro_version(),
            "numpy": np.__version__,
            "arviz": version("arviz"),
            "xarray": xarray.__version__,
            "python": platform.python_version(),
        },
        "law": spec.law.name,
        "law_options": dict(spec.law.options),
        "spec_name": spec.name,
        "spec_path": spec.path,
        "citation": spec.citation,
        "priors": {k: str(v) for k, v in fit.model.priors.items()},
        "spec_priors": {k: str(v) for k, v in spec.priors.items()},
        "likelihood": spec.likelihood,
        "pooling": spec.pooling,
        "downstream": spec.downstream,
        "group_names": list(fit.model.group_names),
        "sweep_names": list(getattr(fit.runs, "sweep_names", ()) or ()),
        "model_sweep_names": list(fit.model.sweep_names),
        "discrepancy": bool(fit.model.discrepancy),
        "scatter_growth": bool(fit.model.scatter_growth),
        "drift": list(fit.model.drift),
        "frontier": dict(fit.model.frontier),
        "log_ref": dict(fit.model.log_ref),
        "columns": dict(fit.runs.columns),
        "inputs": list(fit.runs.inputs),
        "rows": [str(r) for r in fit.runs.rows],
        "data_hash": fit.runs.data_hash(),
        "info": fit.info,
    }
