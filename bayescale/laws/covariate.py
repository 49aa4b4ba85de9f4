r"""Laws over named inputs beyond N and D: data-constrained training (unique tokens U).

``muennighoff2023`` (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models")
replaces N and D in Chinchilla's law by their *effective* values when data repeats:

.. math::

    U_D = \min(U, D), \quad R_D = D/U_D - 1, \quad
    D' = U_D + U_D R^*_D (1 - e^{-R_D / R^*_D})

    U_N = \min(N_{opt}(U_D), N), \quad R_N = N/U_N - 1, \quad
    N' = U_N + U_N R^*_N (1 - e^{-R_N / R^*_N})

    L = E + A / N'^\alpha + B / D'^\beta

``N_opt(U_D)`` is the compute-optimal size for ``U_D`` tokens under the law's own
``A, B, alpha, beta`` (``alpha A N^-alpha = beta B D^-beta``), as in the paper's eq. 5.
A repeated token is worth less the more often it was seen: after ``R*_D`` repetitions the
data has gained ``1 - 1/e`` of its ``R*_D U`` limit. With one epoch (``D = U``) and a
compute-optimal or smaller N the law is Chinchilla's.

The law reads the named input ``U`` (``fit(..., inputs={"U": "unique_tokens"})``,
``--input U=COLUMN``). ``U`` is centred at the reference of ``tokens`` (one scale), so
that ``min(U, D)`` compares like with like in centred log space.

Example:
    >>> from bayescale.laws import get_law
    >>> law = get_law("muennighoff2023")
    >>> truth = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.35, "beta": 0.353,
    ...          "R_D_star": 15.4, "R_N_star": 5.3}
    >>> one_epoch = float(law.loss(truth, params=1e8, tokens=2e9, U=2e9))
    >>> four_epochs = float(law.loss(truth, params=1e8, tokens=2e9, U=5e8))
    >>> one_epoch < four_epochs
    True
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .base import (
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

__all__ = ["BUILDERS", "muennighoff2023"]

#: R*_D and R*_N: a repeated token (or excess parameter) keeps value for a few to a few
#: tens of repetitions. LogNormal(log 10, 1) puts 95% on (1.4, 71) and does not favour the
#: paper's fitted 15.4 and 5.3 over each other.
_R_STAR_PRIOR = Prior("LogNormal", {"mu": round(math.log(10.0), 4), "sigma": 1.0})


def _effective(xp, base, log_value, r_star):
    """``log(U + U R* (1 - exp(-R/R*)))`` for ``R = value/U - 1 >= 0`` in log space."""
    repeats = xp.exp(log_value - base) - 1.0
    return base + xp.log1p(-r_star * xp.expm1(-repeats / r_star))


def _log_effective(t, x):
    """Centred ``log N'`` and ``log D'`` of the data-constrained law."""
    xp = _xp(*t.values(), *x.values())
    tokens = x["tokens"]
    unique = xp.minimum(x["U"], tokens)  # a run of D < U tokens sees D of them once
    d_eff = _effective(xp, unique, tokens, t["R_D_star"])
    alpha, beta = t["alpha"], t["beta"]
    # compute-optimal N for U_D tokens: alpha A N^-alpha = beta B U_D^-beta, centred
    n_opt = (
        xp.log(alpha) - xp.log(beta) + t["log_N_term"] - t["log_D_term"] + beta * unique
    ) / alpha
    params = x["params"]
    base = xp.minimum(n_opt, params)
    n_eff = _effective(xp, base, params, t["R_N_star"])
    return n_eff, d_eff


def _check_epochs(runs) -> None:
    """Warn, naming the rows, where a run saw fewer tokens than its unique tokens U."""
    from ..data.runs import RunsWarning

    tokens, unique = runs.input("tokens"), runs.input("U")
    if tokens is None or unique is None:
        return
    short = np.flatnonzero(np.asarray(tokens) < np.asarray(unique))
    if short.size:
        rows = [str(r) for r in np.asarray(runs.rows)[short]]
        shown = ", ".join(rows[:10]) + (f", ... ({len(rows)} rows)" if len(rows) > 10 else "")
        warnings.warn(
            f"law 'muennighoff2023': D/U < 1 in rows {shown} (tokens below unique tokens U; "
            "the law assumes at least one epoch and uses U_D = min(U, D) there: check that "
            "--tokens and --input U are not swapped)",
            RunsWarning,
            stacklevel=3,
        )


def muennighoff2023() -> Law:
    """The data-constrained law of Muennighoff et al. 2023 (see the module docstring)."""

    def log_loss(t, x):
        n_eff, d_eff = _log_effective(t, x)
        return _lae(
            _log(t["E"]),
            t["log_N_term"] - t["alpha"] * n_eff,
            t["log_D_term"] - t["beta"] * d_eff,
        )

    def to_reported(t, ref):  # Chinchilla's five on the paper's scale, R*_D and R*_N as sampled
        stars = {"R_D_star": t["R_D_star"], "R_N_star": t["R_N_star"]}
        return {**_chinchilla_to_reported(t, ref), **stars}

    def from_reported(r, ref):
        stars = {"R_D_star": r["R_D_star"], "R_N_star": r["R_N_star"]}
        return {**_chinchilla_from_reported(r, ref), **stars}

    return Law(
        "muennighoff2023",
        ("params", "tokens", "U"),
        (
            Parameter("E", "floor", _floor_prior, "irreducible loss (nats)"),
            Parameter("alpha", "exponent", _exponent_prior(), "exponent of N'"),
            Parameter("beta", "exponent", _exponent_prior(), "exponent of D'"),
            Parameter("log_N_term", "coefficient", _term_prior(), "log A/N_ref^alpha"),
            Parameter("log_D_term", "coefficient", _term_prior(), "log B/D_ref^beta"),
            Parameter(
                "R_D_star", "shape", _R_STAR_PRIOR, "repetitions at which repeated data decays"
            ),
            Parameter("R_N_star", "shape", _R_STAR_PRIOR, "the same for parameters beyond U_N"),
        ),
        log_loss,
        to_reported,
        from_reported,
        ("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star"),
        "L = E + A/N'^alpha + B/D'^beta, D' = U_D + U_D R*_D (1 - exp(-R_D/R*_D)), "
        "N' likewise with R*_N",
        "Muennighoff et al. 2023, arXiv:2305.16264",
        shared_ref=(("U", "tokens"),),
        check=_check_epochs,
    )


BUILDERS = {"muennighoff2023": muennighoff2023}
