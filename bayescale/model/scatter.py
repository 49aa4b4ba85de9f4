"""Scatter that grows toward the small end of the ladder: the depth of a run below the top.

With ``fit(..., scatter_growth=True)`` the run-to-run scatter of log loss is
``sigma * exp(scatter_growth * depth)``, ``depth`` the e-folds of *scale* below the fit
set's top (its group's top, in grouped fits): log compute for laws of compute, otherwise
the sum of the law's log params and log tokens (log N*D, the same up to a constant). Runs at
the top, and every prediction at or beyond it, scatter by ``sigma``; the smallest runs of a
ladder, which a law's form often follows least, weigh less in the fit when the data show
that they scatter more.

Example:
    >>> import numpy as np
    >>> import bayescale as bs
    >>> law = bs.get_law("chinchilla")
    >>> scale_inputs(law)
    ('params', 'tokens')
    >>> log_scale_of(law, {"params": np.array([1e8]), "tokens": np.array([np.e / 1e8])}).round(6)
    array([1.])
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "check_scale",
    "depth",
    "log_scale_of",
    "scale_frontier",
    "scale_inputs",
    "scale_only",
]


def scale_inputs(law) -> tuple[str, ...]:
    """The inputs whose log sum is a law's scale: compute, else its params and tokens."""
    if "compute" in law.inputs:
        return ("compute",)
    return tuple(n for n in ("params", "tokens") if n in law.inputs)


def scale_only(law) -> bool:
    """Whether ``law`` reads params, tokens and compute alone, with a scale among them:
    the laws whose fits grow their scatter by default (no further input such as U or E)."""
    return set(law.inputs) <= {"params", "tokens", "compute"} and bool(scale_inputs(law))


def check_scale(law) -> None:
    """Refuse scatter growth for a law with none of params, tokens and compute."""
    if not scale_inputs(law):
        raise ValueError(
            f"scatter_growth needs a law of params, tokens or compute; law {law.name!r} "
            f"has inputs {', '.join(law.inputs)}"
        )


def log_scale_of(law, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """The law's log scale (:func:`scale_inputs`) of each target."""
    names = scale_inputs(law)
    size = len(np.atleast_1d(np.asarray(values[names[0]])))
    return np.sum(
        [np.broadcast_to(np.log(np.asarray(values[n], np.float64)), (size,)) for n in names],
        axis=0,
    )


def scale_frontier(law, values: Mapping[str, np.ndarray], runs, grouped: bool) -> dict:
    """``{"scale": top}`` of the fit set, and ``"scale[group]"`` per group when grouped."""
    scale = log_scale_of(law, values)
    out = {"scale": float(scale.max())}
    if grouped:
        for code, name in enumerate(runs.group_names):
            rows = np.asarray(runs.group) == code
            if rows.any():
                out[f"scale[{name}]"] = float(scale[rows].max())
    return out


def depth(model, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray:
    """E-folds of scale below the fit set's top (its group's, for grouped fits), >= 0.

    ``model`` is a :class:`~bayescale.model.scaling.ScalingModel` fitted with
    ``scatter_growth``; 0 for every target at or beyond the top.
    """
    scale = log_scale_of(model.law, values)
    size = len(scale)
    top = np.full(size, model.frontier["scale"])
    if model.grouped and codes is not None:
        codes = np.broadcast_to(np.asarray(codes), (size,))
        for code, name in enumerate(model.group_names):
            key = f"scale[{name}]"
            if key in model.frontier:
                top[codes == code] = model.frontier[key]
    return np.maximum(0.0, top - scale)
