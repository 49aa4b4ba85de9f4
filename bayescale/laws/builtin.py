"""The built-in laws: Chinchilla, Gadre et al. 2024, Kaplan's four, BNSL and the downstream link.

Each builder returns a :class:`~bayescale.laws.base.Law` written in centred log space;
:data:`BUILDERS` maps the registry's names to them, with the options each takes
(:func:`~bayescale.laws.core.get_law` looks them up, together with the laws over named
inputs of :mod:`bayescale.laws.covariate`).

Example:
    >>> BUILDERS["bnsl"](k=2).reported_names[:5]
    ('a', 'b', 'c0', 'c_1', 'd_1')
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np

from .._util import short_repr
from .base import (
    INPUTS,
    DataSummary,
    Law,
    Parameter,
    _chinchilla_from_reported,
    _chinchilla_to_reported,
    _exponent_prior,
    _floor_prior,
    _lae,
    _log,
    _term_prior,
    _xp,
)
from .priors import Prior

__all__ = ["BUILDERS"]

#: most breaks a bnsl law takes (each break adds 3 parameters)
_MAX_BREAKS = 20
_SYMBOL = {"params": "N", "tokens": "D", "compute": "C"}


def _chinchilla() -> Law:
    def log_loss(t, x):
        return _lae(
            _log(t["E"]),
            t["log_N_term"] - t["alpha"] * x["params"],
            t["log_D_term"] - t["beta"] * x["tokens"],
        )

    return Law(
        "chinchilla",
        ("params", "tokens"),
        (
            Parameter(
                "E", "floor", _floor_prior, "irreducible loss (nats), below the smallest loss"
            ),
            Parameter("alpha", "exponent", _exponent_prior(), "exponent of N"),
            Parameter("beta", "exponent", _exponent_prior(), "exponent of D"),
            Parameter("log_N_term", "coefficient", _term_prior(), "log A/N_ref^alpha"),
            Parameter("log_D_term", "coefficient", _term_prior(), "log B/D_ref^beta"),
        ),
        log_loss,
        _chinchilla_to_reported,
        _chinchilla_from_reported,
        ("E", "A", "B", "alpha", "beta"),
        "L = E + A/N^alpha + B/D^beta",
        "Hoffmann et al. 2022, arXiv:2203.15556",
    )


def _gadre2024() -> Law:
    def log_loss(t, x):
        return _lae(
            _log(t["E"]),
            t["log_N_term"] - t["eta"] * x["params"],
            t["log_D_term"] - t["eta"] * x["tokens"],
        )

    def to_reported(t, ref):
        return {
            "E": t["E"],
            "A": np.exp(t["log_N_term"] + t["eta"] * ref["params"]),
            "B": np.exp(t["log_D_term"] + t["eta"] * ref["tokens"]),
            "eta": t["eta"],
        }

    def from_reported(r, ref):
        return {
            "E": r["E"],
            "eta": r["eta"],
            "log_N_term": np.log(r["A"]) - r["eta"] * ref["params"],
            "log_D_term": np.log(r["B"]) - r["eta"] * ref["tokens"],
        }

    return Law(
        "gadre2024",
        ("params", "tokens"),
        (
            Parameter("E", "floor", _floor_prior, "irreducible loss (nats)"),
            # one exponent for N and D: the data exponents of Chinchilla-type fits are
            # 0.28-0.37 (Hoffmann et al. 2022; the 245 points of the data folder give 0.34
            # and 0.36), so TruncatedNormal(0.3, 0.1); 5-run ladders (the paper's fit set)
            # otherwise have a tail to eta ~ 0.15, E ~ 0.3 that decides the extrapolation
            Parameter(
                "eta", "exponent", _exponent_prior(0.3, 0.1), "exponent shared by N and D = M*N"
            ),
            Parameter("log_N_term", "coefficient", _term_prior(), "log A/N_ref^eta"),
            Parameter("log_D_term", "coefficient", _term_prior(), "log B/D_ref^eta"),
        ),
        log_loss,
        to_reported,
        from_reported,
        ("E", "A", "B", "eta"),
        "L = E + A/N^eta + B/D^eta  (D = M*N)",
        "Gadre et al. 2024, arXiv:2403.08540",
    )


def _kaplan_single(name: str, inp: str, irreducible: bool) -> Law:
    if not isinstance(irreducible, bool | np.bool_):  # a spec's "false" is a true string
        raise ValueError(f"{name} option irreducible must be true or false but got {irreducible!r}")
    sym = _SYMBOL[inp]
    alpha, scale = f"alpha_{sym}", f"{sym}_c"

    def log_loss(t, x):
        term = t["log_term"] - t[alpha] * x[inp]
        return _lae(_log(t["E"]), term) if irreducible else term

    def to_reported(t, ref):
        out = {scale: np.exp(ref[inp] + t["log_term"] / t[alpha]), alpha: t[alpha]}
        if irreducible:
            out["E"] = t["E"]
        return out

    def from_reported(r, ref):
        out = {alpha: r[alpha], "log_term": r[alpha] * (np.log(r[scale]) - ref[inp])}
        if irreducible:
            out["E"] = r["E"]
        return out

    params = [
        Parameter(alpha, "exponent", _exponent_prior(0.1, 0.3), f"exponent of {sym}"),
        Parameter(
            "log_term",
            "coefficient",
            _term_prior(0.25 if irreducible else 1.0, 1.5 if irreducible else 1.0),
            f"log ({scale}/{sym}_ref)^{alpha}",
        ),
    ]
    if irreducible:
        params.insert(0, Parameter("E", "floor", _floor_prior, "irreducible loss (nats)"))
    names = (scale, alpha, "E") if irreducible else (scale, alpha)
    formula = f"L = ({scale}/{sym})^{alpha}" + (" + E" if irreducible else "")
    return Law(
        name,
        (inp,),
        tuple(params),
        log_loss,
        to_reported,
        from_reported,
        names,
        formula,
        "Kaplan et al. 2020, arXiv:2001.08361",
        (("irreducible", irreducible),),
    )


def _kaplan_nd() -> Law:
    # L = [(N_c/N)^(aN/aD) + D_c/D]^aD ; log L = aD * logaddexp(uN - (aN/aD) xN, vD - xD)
    def log_loss(t, x):
        ratio = t["alpha_N"] / t["alpha_D"]
        return t["alpha_D"] * _lae(
            t["log_N_term"] - ratio * x["params"], t["log_D_term"] - x["tokens"]
        )

    def to_reported(t, ref):
        return {
            "N_c": np.exp(ref["params"] + t["log_N_term"] * t["alpha_D"] / t["alpha_N"]),
            "D_c": np.exp(ref["tokens"] + t["log_D_term"]),
            "alpha_N": t["alpha_N"],
            "alpha_D": t["alpha_D"],
        }

    def from_reported(r, ref):
        return {
            "alpha_N": r["alpha_N"],
            "alpha_D": r["alpha_D"],
            "log_N_term": r["alpha_N"] / r["alpha_D"] * (np.log(r["N_c"]) - ref["params"]),
            "log_D_term": np.log(r["D_c"]) - ref["tokens"],
        }

    def term_rule(s: DataSummary) -> Prior:
        # both inner terms together give L^(1/alpha_D): with alpha_D ~ 0.1 they are large.
        return Prior(
            "Normal", {"mu": round(math.log(max(s.median_loss, 1.0001)) / 0.1, 3), "sigma": 5.0}
        )

    return Law(
        "kaplan_nd",
        ("params", "tokens"),
        (
            Parameter("alpha_N", "exponent", _exponent_prior(0.1, 0.3), "exponent of N"),
            Parameter("alpha_D", "exponent", _exponent_prior(0.1, 0.3), "exponent of D"),
            Parameter("log_N_term", "coefficient", term_rule, "(alpha_N/alpha_D) log(N_c/N_ref)"),
            Parameter("log_D_term", "coefficient", term_rule, "log(D_c/D_ref)"),
        ),
        log_loss,
        to_reported,
        from_reported,
        ("N_c", "D_c", "alpha_N", "alpha_D"),
        "L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
        "Kaplan et al. 2020, arXiv:2001.08361",
    )


def _bnsl(k: int, x_input: str) -> Law:
    # y = a + b x^-c0 prod_i (1 + (x/d_i)^(1/f_i))^(-c_i f_i), in log space:
    # log(y - a) = log_term - c0 xc - sum_i c_i f_i softplus((xc - log_d_i)/f_i)
    if isinstance(k, bool | np.bool_) or not isinstance(k, numbers.Integral):
        raise ValueError(f"bnsl needs a whole number of breaks k but got k={short_repr(k)}")
    k = int(k)
    if k < 1:
        raise ValueError(f"bnsl needs k >= 1 breaks but got k={k!r}")
    if k > _MAX_BREAKS:  # a spec with k = 10**8 would never finish building
        raise ValueError(f"bnsl takes at most {_MAX_BREAKS} breaks but got k={k!r}")
    if x_input not in INPUTS:
        raise ValueError(f"bnsl input x must be one of {INPUTS} but got {x_input!r}")

    def break_locations(t):
        loc = t["log_d_1"]
        out = [loc]
        for i in range(2, k + 1):
            loc = loc + t[f"gap_{i}"]
            out.append(loc)
        return out

    def log_loss(t, x):
        xc = x[x_input]
        inner = t["log_term"] - t["c0"] * xc
        for i, loc in enumerate(break_locations(t), start=1):
            f = t[f"f_{i}"]
            z = (xc - loc) / f
            inner = inner - t[f"c_{i}"] * f * _xp(z).logaddexp(0.0, z)
        return _lae(_log(t["a"]), inner)

    def to_reported(t, ref):
        out = {"a": t["a"], "b": np.exp(t["log_term"] + t["c0"] * ref[x_input]), "c0": t["c0"]}
        loc = t["log_d_1"]
        for i in range(1, k + 1):
            if i > 1:
                loc = loc + t[f"gap_{i}"]
            out[f"c_{i}"] = t[f"c_{i}"]
            out[f"d_{i}"] = np.exp(loc + ref[x_input])
            out[f"f_{i}"] = t[f"f_{i}"]
        return out

    def from_reported(r, ref):
        out = {"a": r["a"], "c0": r["c0"], "log_term": np.log(r["b"]) - r["c0"] * ref[x_input]}
        prev = None
        for i in range(1, k + 1):
            loc = np.log(r[f"d_{i}"]) - ref[x_input]
            if i == 1:
                out["log_d_1"] = loc
            else:
                out[f"gap_{i}"] = loc - prev
            prev = loc
            out[f"c_{i}"] = r[f"c_{i}"]
            out[f"f_{i}"] = r[f"f_{i}"]
        return out

    params = [
        Parameter("a", "floor", _floor_prior, "limit as x grows"),
        Parameter("c0", "exponent", _exponent_prior(), "slope before the first break"),
        Parameter("log_term", "coefficient", _term_prior(), "log b/x_ref^c0"),
    ]
    for i in range(1, k + 1):
        params.append(
            Parameter(
                f"c_{i}",
                "exponent",
                Prior("Normal", {"mu": 0.0, "sigma": 0.5}),
                f"change of slope at break {i}",
            )
        )
        if i == 1:
            params.append(
                Parameter(
                    "log_d_1",
                    "shape",
                    Prior("Normal", {"mu": 0.0, "sigma": 2.0}),
                    "log(d_1/x_ref), first break location",
                )
            )
        else:
            params.append(
                Parameter(
                    f"gap_{i}",
                    "shape",
                    Prior("LogNormal", {"mu": 0.5, "sigma": 1.0}),
                    f"log(d_{i}/d_{i - 1}) > 0, keeps breaks ordered",
                )
            )
        params.append(
            Parameter(
                f"f_{i}",
                "shape",
                Prior("LogNormal", {"mu": 0.0, "sigma": 0.75}),
                f"sharpness of break {i} (log-x units)",
            )
        )
    names = ("a", "b", "c0", *tuple(f"{p}_{i}" for i in range(1, k + 1) for p in ("c", "d", "f")))
    sym = _SYMBOL[x_input]
    return Law(
        "bnsl",
        (x_input,),
        tuple(params),
        log_loss,
        to_reported,
        from_reported,
        names,
        f"y = a + b {sym}^-c0 prod_i (1 + ({sym}/d_i)^(1/f_i))^(-c_i f_i), {k} break(s)",
        "Caballero et al. 2022, arXiv:2210.14891",
        (("k", k), ("x", x_input)),
    )


def _downstream() -> Law:
    # Err = eps - k exp(-gamma L): a function of the loss, chained onto a loss law.
    def error_fn(t, loss):
        z = -t["gamma"] * loss
        return t["eps"] - t["k"] * _xp(z).exp(z)

    def identity(t, ref):
        return {n: t[n] for n in ("eps", "k", "gamma")}

    return Law(
        "downstream",
        ("loss",),
        (
            Parameter(
                "eps",
                "floor",
                Prior("Uniform", {"low": 0.0, "high": 1.0}),
                "error of a model that learned nothing (chance level)",
            ),
            Parameter("k", "coefficient", Prior("LogNormal", {"mu": 1.0, "sigma": 2.0}), "scale"),
            Parameter(
                "gamma",
                "exponent",
                Prior("LogNormal", {"mu": 0.0, "sigma": 1.0}),
                "rate at which error falls with loss",
            ),
        ),
        error_fn,
        identity,
        identity,
        ("eps", "k", "gamma"),
        "Err = eps - k exp(-gamma L)",
        "Gadre et al. 2024, arXiv:2403.08540",
    )


BUILDERS: dict[str, Callable[..., Law]] = {
    "chinchilla": _chinchilla,
    "gadre2024": _gadre2024,
    "kaplan_n": lambda irreducible=False: _kaplan_single("kaplan_n", "params", irreducible),
    "kaplan_d": lambda irreducible=False: _kaplan_single("kaplan_d", "tokens", irreducible),
    "kaplan_c": lambda irreducible=False: _kaplan_single("kaplan_c", "compute", irreducible),
    "kaplan_nd": _kaplan_nd,
    "bnsl": lambda k=1, x="compute": _bnsl(k, x),
    "downstream": _downstream,
}
