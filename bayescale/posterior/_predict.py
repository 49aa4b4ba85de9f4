"""Predictions of a :class:`~bayescale.posterior.core.Fit` and how far a target lies beyond its data.

The bodies of :meth:`Fit.predict`, :meth:`Fit.log_loss_draws`, :meth:`Fit.drift_offset`,
:meth:`Fit.beyond_data` and :meth:`Fit.beyond_ratio` (the methods keep their signatures and
docstrings and call these), with the target checks, group codes, run noise and structured
(sweep, discrepancy, drift) terms they share. Each function takes the fit first.

Example:
    >>> predict(fit, params=70e9, tokens=1.4e12).to_dict()   # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from .._util import FitWarning, check_prob
from ..data.runs import INPUTS
from ..model.scaling import DOWNSTREAM_NAMES
from .results import Prediction

if TYPE_CHECKING:  # pragma: no cover
    from .core import Fit


def targets(
    fit: Fit, params, tokens, compute, group, at: Mapping | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    fpt = float(fit.info.get("flops_per_token", 6.0))
    common = {"params": params, "tokens": tokens, "compute": compute}
    known = fit.input_names()
    for name, value in dict(at or {}).items():
        if name not in known:
            from .._util import did_you_mean

            extra = did_you_mean(str(name), known) or ";"
            raise ValueError(
                f"unknown input {name!r}{extra} this fit knows the inputs {', '.join(known)}"
            )
        if name in common and common[name] is not None and value is not None:
            raise ValueError(f"{name} is given twice (as {name}= and in at=)")
        common[name] = value
    given = {
        k: None if v is None else np.atleast_1d(np.asarray(v, np.float64))
        for k, v in common.items()
    }
    if given["tokens"] is None and given["params"] is not None and given["compute"] is not None:
        given["tokens"] = given["compute"] / (fpt * given["params"])
    if given["compute"] is None and given["params"] is not None and given["tokens"] is not None:
        given["compute"] = fpt * given["params"] * given["tokens"]
    needed = [k for k in fit.law.inputs if given.get(k) is None]
    if needed:
        flags = ", ".join(f"--{k}" if k in INPUTS else f"--at {k}=VALUE" for k in needed)
        raise ValueError(
            f"law {fit.law.name!r} needs {' and '.join(needed)} to predict (give {flags})"
        )
    values = {k: given[k] for k in fit.law.inputs}
    size = max(len(v) for v in values.values())
    for k, v in values.items():
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"{k} must be finite and > 0 to predict but got {v.tolist()}")
        if len(v) not in (1, size):
            raise ValueError(
                f"targets must have equal lengths but {k} has {len(v)} (others {size})"
            )
        values[k] = np.broadcast_to(v, (size,)).astype(np.float64)
    fit.law.check_inputs(values)  # E >= 1 for clark2022
    codes = group_codes(fit, group, size)
    return values, codes


def group_codes(fit: Fit, group, size: int) -> np.ndarray:
    if not fit.model.grouped:
        if group not in (None, "all"):
            raise ValueError(f"this fit has no groups but group {group!r} was given")
        return np.zeros(size, np.int32)
    if group is None:
        raise ValueError(f"this fit is grouped: name a group, one of {', '.join(fit.group_names)}")
    groups = [group] if isinstance(group, str | int | np.integer) else list(group)
    codes = []
    for g in groups:
        g = str(g)
        if g not in fit.group_names:
            from .._util import did_you_mean

            extra = did_you_mean(g, fit.group_names)
            raise ValueError(f"unknown group {g!r}{extra} Groups: {', '.join(fit.group_names)}")
        codes.append(fit.group_names.index(g))
    codes = np.asarray(codes, np.int32)
    if len(codes) == 1:
        return np.repeat(codes, size)
    if len(codes) != size:
        raise ValueError(f"got {len(codes)} groups for {size} targets")
    return codes


def log_loss_draws(fit: Fit, values: Mapping[str, np.ndarray], codes: np.ndarray) -> np.ndarray:
    from .._jax import configure

    configure()
    flat = {n: fit.flat(n) for n in fit.law.parameter_names}
    theta = fit.model.theta_for_rows(flat, codes, fit.law.parameter_names)
    x = {k: (np.log(values[k]) - fit.model.log_ref.get(k, 0.0))[None, :] for k in fit.law.inputs}
    theta = {k: np.asarray(v, np.float64) for k, v in theta.items()}
    return np.asarray(fit.law.log_loss(theta, x), np.float64)


def scatter_factor(fit: Fit, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray | float:
    """``exp(scatter_growth * depth)`` per draw and target (1.0 for a fit without it).

    Example:
        >>> scatter_factor(fit, {"params": np.array([1e8]), "tokens": np.array([2e9])})  # doctest: +SKIP
    """
    if not getattr(fit.model, "scatter_growth", False):
        return 1.0
    depth = fit.model.depth(values, codes)
    return np.exp(fit.flat("scatter_growth")[:, None] * depth[None, :])


def run_noise(fit: Fit, site_scale: str, site_df: str, codes, shape, rng, factor=1.0) -> np.ndarray:
    """Run-to-run noise draws ``(draws, targets)``; ``factor`` scales the scatter."""
    flat = {n: fit.flat(n) for n in (site_scale, site_df) if n in fit.samples}
    theta = fit.model.theta_for_rows(flat, codes, list(flat))
    scale = np.broadcast_to(theta[site_scale] * factor, shape)
    if site_df in theta:
        df = np.broadcast_to(theta[site_df], shape)
        return scale * rng.standard_t(df)
    return scale * rng.standard_normal(shape)


def predict(
    fit: Fit,
    params=None,
    tokens=None,
    compute=None,
    group=None,
    *,
    metric: str = "loss",
    noise: bool = True,
    prob: float = 0.95,
    seed: int = 0,
    sweep: str | None = None,
    at: Mapping[str, object] | None = None,
) -> Prediction:
    prob = check_prob(prob)
    if metric not in ("loss", "downstream"):
        raise ValueError(f"metric must be 'loss' or 'downstream' but got {metric!r}")
    if metric == "downstream" and not fit.spec.downstream:
        raise ValueError(
            "metric 'downstream' needs a fit with a downstream column (--downstream COL)"
        )
    values, codes = targets(fit, params, tokens, compute, group, at)
    rng = np.random.default_rng(seed)
    log_mu = log_loss_draws(fit, values, codes)
    log_mu = log_mu + structured(fit, values, sweep, noise, rng, log_mu.shape, codes)
    if noise:
        factor = scatter_factor(fit, values, codes)
        log_loss = log_mu + run_noise(fit, "sigma", "nu", codes, log_mu.shape, rng, factor)
    else:
        log_loss = log_mu
    # Student-t run noise with a small nu has tails beyond exp's range: cap them at
    # 1e304 nats (far outside any interval) rather than let inf turn quantiles into NaN
    loss = np.exp(np.minimum(log_loss, 700.0))
    verdict = {**fit.diagnostics.to_dict(), "verdict": fit.diagnostics.verdict()}
    if fit.info.get("warn", True) and not fit.diagnostics.ok:
        warnings.warn(
            f"predicting from a fit whose diagnostics are not ok: {verdict['verdict']}",
            FitWarning,
            stacklevel=3,  # the caller of Fit.predict
        )
    if metric == "loss":
        return Prediction(loss, prob, metric, noise, verdict)
    flat = {n: fit.flat(n) for n in DOWNSTREAM_NAMES}
    t = fit.model.theta_for_rows(flat, codes, DOWNSTREAM_NAMES)
    err = t["eps"] - t["k"] * np.exp(-t["gamma"] * loss)
    if noise:
        err = err + run_noise(fit, "sigma_downstream", "nu_downstream", codes, err.shape, rng)
    return Prediction(err, prob, metric, noise, verdict)


def structured(fit: Fit, values, sweep, noise: bool, rng, shape, codes=None) -> np.ndarray:
    """Sweep deviation and beyond-the-data discrepancy on log loss, ``(draws, targets)``."""
    out = np.zeros(shape)
    if fit.model.n_sweeps:
        if sweep is not None:
            if str(sweep) not in fit.model.sweep_names:
                raise ValueError(
                    f"unknown sweep {sweep!r}; sweeps: {', '.join(fit.model.sweep_names)} "
                    "(or sweep=None for a new one)"
                )
            index = fit.model.sweep_names.index(str(sweep))
            out += fit.flat("sweep_effect")[:, index, None]
        elif noise:  # a new sweep: its own shared deviation
            out += (fit.flat("tau_sweep") * rng.standard_normal(shape[0]))[:, None]
    elif sweep is not None:
        raise ValueError(f"this fit has no sweep column but sweep {sweep!r} was given")
    beyond = beyond_data(fit, values, codes) if fit.model.discrepancy else None
    if beyond is not None and np.any(beyond > 0):  # inside the data: nothing to add
        # one standard normal per draw: the law bends smoothly, not target by target
        out += (fit.flat("kappa") * rng.standard_normal(shape[0]))[:, None] * beyond[None, :]
    return out + drift_offset(fit, values, codes)


def drift_offset(fit: Fit, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray:
    size = len(np.atleast_1d(next(iter(values.values()))))
    n = fit.n_chains * fit.n_draws
    out = np.zeros((n, size))
    if "drift" in fit.model.drift:
        out += fit.flat("drift")[:, None] * beyond_data(fit, values, codes)[None, :]
    if "drift_ratio" in fit.model.drift:
        out += fit.flat("drift_ratio")[:, None] * beyond_ratio(fit, values, codes)[None, :]
    return out


def beyond_ratio(fit: Fit, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray:
    frontier = fit.model.frontier
    values = dict(values)
    fpt = float(fit.info.get("flops_per_token", 6.0))
    if (
        values.get("tokens") is None
        and values.get("params") is not None
        and values.get("compute") is not None
    ):
        values["tokens"] = np.asarray(values["compute"]) / (fpt * np.asarray(values["params"]))
    size = len(np.atleast_1d(next(iter(values.values()))))
    if "ratio" not in frontier or values.get("params") is None or values.get("tokens") is None:
        return np.zeros(size)
    edge = edges(fit, "ratio", codes, size)
    ratio = np.log(np.broadcast_to(np.asarray(values["tokens"], np.float64), (size,)))
    ratio = ratio - np.log(np.broadcast_to(np.asarray(values["params"], np.float64), (size,)))
    return np.maximum(0.0, ratio - edge)


def edges(fit: Fit, name: str, codes, size: int) -> np.ndarray:
    """The data's edge along ``name`` per target: its group's own for grouped fits."""
    frontier = fit.model.frontier
    if codes is None or not fit.model.grouped:
        return np.full(size, frontier[name])
    groups = [fit.group_names[c] for c in np.broadcast_to(codes, (size,))]
    return np.array([frontier.get(f"{name}[{g}]", frontier[name]) for g in groups])


def beyond_data(fit: Fit, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray:
    frontier = fit.model.frontier
    fpt = float(fit.info.get("flops_per_token", 6.0))
    values = dict(values)
    values = {k: v for k, v in values.items() if v is not None}
    if values.get("compute") is None and "params" in values and "tokens" in values:
        values["compute"] = fpt * np.asarray(values["params"]) * np.asarray(values["tokens"])
    size = len(np.atleast_1d(next(iter(values.values()))))

    def edge(name: str) -> np.ndarray:
        return edges(fit, name, codes, size)

    def log(name: str) -> np.ndarray:
        return np.log(np.broadcast_to(np.asarray(values[name], np.float64), (size,)))

    if values.get("compute") is not None and "compute" in frontier:
        return np.maximum(0.0, log("compute") - edge("compute"))
    out = np.zeros(size)
    for name in values:
        if name in frontier and values[name] is not None:
            out += np.maximum(0.0, log(name) - edge(name))
    return out
