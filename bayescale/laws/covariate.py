r"""Laws over named inputs beyond N and D: unique tokens U and the number of experts E.

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

``clark2022`` (Clark et al. 2022, "Unified Scaling Laws for Routed Language Models", ICML
2022, arXiv:2202.01169) is bilinear in log N (dense parameters: those a token
meets) and the log of a saturating transform of the number of experts E:

.. math::

    \log L = a \log N + b \log \hat E + c \log N \log \hat E + d, \quad
    \frac{1}{\hat E} = \frac{1}{E - 1 + (1/E_{start} - 1/E_{max})^{-1}} + \frac{1}{E_{max}}

so that ``Ê(1) = E_start`` (a dense model; finite), ``Ê -> E_max`` as E grows (the gain of
more experts saturates), and ``Ê = E`` for ``E_start = 1, E_max = inf``. (This is the
paper's transform as we read it; SLDBench's reference program drops the inner inverse, and
a variant with ``1/(E_start - 1)`` would make ``Ê(1) = E_start - 1``.) The law reads the
named input ``E`` (``--input E=num_experts``), uncentred because the transform reads E - 1.

It samples, at the data's reference size ``N_ref``, with ``x = log(N / N_ref)`` and
``u = log(Ê / E_start)`` (0 for a dense model):
``log L = level - alpha_N x - (gain - gain_N x) u / u_ref``, ``u_ref`` the ``u`` of
``e_ref = 8`` experts (an option), so that ``gain`` is the drop of log loss from 1 to 8
experts, which the data pin down whatever the transform's shape (sampled as ``b`` and
``c``, the slopes and E_start trade off and NUTS needed ~900 steps a draw on the Clark
file; ~N with the gains). ``level`` and ``alpha_N`` are the *dense* law, the same for every
router, since a router with one expert is the dense model; so ``pooling="shared"`` over
``--group router_type`` shares them (and the Dense rows inform every router's curve at
E = 1), while each router keeps its own ``gain``, ``gain_N``, ``E_start`` and ``E_max``, as
in the paper's per-router fits. The Dense group's own four are then their priors (no run of
it has E > 1). Reported are the paper's ``a, b, c, d, E_start, E_max`` (natural log, raw N).

Example:
    >>> from bayescale.laws import get_law
    >>> law = get_law("clark2022")
    >>> routed = {"a": -0.08, "b": -0.05, "c": 0.001, "d": 2.5, "E_start": 2.0, "E_max": 300.0}
    >>> law.loss(routed, params=1.3e8, E=[1.0, 64.0, 512.0, 1e9]).round(3).tolist()
    [2.674, 2.413, 2.319, 2.286]
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

__all__ = ["BUILDERS", "clark2022", "muennighoff2023"]

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


# --------------------------------------------------------------------------- clark2022

#: E counts experts per routed layer; one expert is the dense model.
_EXPERT_FLOOR = ("E", 1.0, "E counts experts; E = 1 is a dense model")


def _log_e_hat_ratio(xp, log_e, e_start, log_span):
    """``u = log(Ê / E_start)`` of Clark et al.'s transform, from ``log E`` (uncentred).

    With ``r = E_start / E_max`` and ``g = (E - 1)(1 - r) / E_start``,
    ``E_start / Ê = r + (1 - r) / (1 + g)``: 1 at E = 1 (u = 0), ``r`` as E grows.
    """
    r = xp.exp(-log_span)
    g = xp.expm1(log_e) * (1.0 - r) / e_start
    return -xp.log(r + (1.0 - r) / (1.0 + g))


def _level_prior(s: DataSummary) -> Prior:
    """log loss of the dense model at the reference size: near the typical loss."""
    return Prior("Normal", {"mu": round(math.log(s.median_loss), 4), "sigma": 0.5})


def _check_experts(runs) -> None:
    """A one-line error naming the column and row of an expert count below 1."""
    from ..data.runs import RunsError

    experts = runs.input("E")
    if experts is None:
        return
    low = np.flatnonzero(np.asarray(experts) < 1.0)
    if low.size:
        i = int(low[0])
        raise RunsError(
            f"column {runs.columns.get('E', 'E')!r} row {np.asarray(runs.rows)[i]}: value "
            f"{float(experts[i])!r} is below 1 (input E of law 'clark2022' counts experts: "
            "E >= 1, and E = 1 is a dense model)"
        )


def clark2022(e_ref: float = 8.0) -> Law:
    """The routed-model law of Clark et al. 2022 (see the module docstring).

    Args:
        e_ref: the expert count at which the gain of routing is sampled (``gain``: the
            drop of log loss from E = 1 to ``e_ref`` at N_ref); any count inside the data.
    """
    try:
        e_ref = float(e_ref)
    except (TypeError, ValueError):
        e_ref = math.nan
    if not (math.isfinite(e_ref) and e_ref > 1):
        raise ValueError(f"clark2022 option e_ref must be a number > 1 but got {e_ref!r}")
    log_e_ref = math.log(e_ref)

    def slopes(t):  # beta_E and c of the module docstring, from the gains at e_ref
        u_ref = _log_e_hat_ratio(_xp(*t.values()), log_e_ref, t["E_start"], t["log_E_span"])
        return t["gain"] / u_ref, t["gain_N"] / u_ref

    def log_loss(t, x):
        xp = _xp(*t.values(), *x.values())
        u = _log_e_hat_ratio(xp, x["E"], t["E_start"], t["log_E_span"])
        u_ref = _log_e_hat_ratio(xp, log_e_ref, t["E_start"], t["log_E_span"])
        n = x["params"]
        return t["level"] - t["alpha_N"] * n - (t["gain"] - t["gain_N"] * n) * (u / u_ref)

    def to_reported(t, ref):
        beta_e, c = slopes(t)
        r, s = ref["params"], np.log(t["E_start"])
        a = -t["alpha_N"] - c * s
        b = -beta_e - c * r
        d = t["level"] - a * r - b * s - c * r * s
        e_max = t["E_start"] * np.exp(t["log_E_span"])
        return {"a": a, "b": b, "c": c, "d": d, "E_start": t["E_start"], "E_max": e_max}

    def from_reported(p, ref):
        r, s, c = ref["params"], np.log(p["E_start"]), p["c"]
        span = np.log(p["E_max"] / p["E_start"])
        u_ref = _log_e_hat_ratio(np, log_e_ref, p["E_start"], span)
        return {
            "level": p["d"] + p["a"] * r + p["b"] * s + c * r * s,
            "alpha_N": -(p["a"] + c * s),
            "gain": -(p["b"] + c * r) * u_ref,
            "gain_N": c * u_ref,
            "E_start": p["E_start"],
            "log_E_span": span,
        }

    return Law(
        "clark2022",
        ("params", "E"),
        (
            # the dense law, shared by every router under pooling="shared" (role exponent)
            Parameter(
                "level",
                "exponent",
                _level_prior,
                "log loss of the dense model at N_ref; shared by routers",
            ),
            # a log-log slope of loss in N without a floor term, as kaplan_n's alpha_N
            Parameter(
                "alpha_N",
                "exponent",
                _exponent_prior(0.1, 0.3),
                "-d log L/d log N of the dense model; shared by routers",
            ),
            # routing changes the loss by less than a factor ~2 (either sign) at 2 sd
            Parameter(
                "gain",
                "coefficient",
                Prior("Normal", {"mu": 0.0, "sigma": 0.3}),
                "log L(E=1) - log L(E=e_ref) at N_ref (> 0: experts help)",
            ),
            # its change per e-fold of N: +-0.05 at 1 sd moves it by +-0.1 over a ladder's
            # +-2 e-folds, a sizeable part of the gain itself
            Parameter(
                "gain_N",
                "coefficient",
                Prior("Normal", {"mu": 0.0, "sigma": 0.05}),
                "d gain / d log N (Clark's c, times log(Ê(e_ref)/E_start))",
            ),
            # Ê(1) = E_start: the gain of the first experts is small below E_start; mode 2
            Parameter(
                "E_start",
                "shape",
                Prior("Gamma", {"concentration": 2.0, "rate": 1.0, "loc": 1.0}),
                "Ê of a dense model (E = 1)",
            ),
            # log(E_max/E_start): saturation a few e-folds beyond the start, or never
            # (median e^4 = 55x, 95% within 2.5x to 4e7x)
            Parameter(
                "log_E_span",
                "shape",
                Prior("LogNormal", {"mu": round(math.log(4.0), 4), "sigma": 0.75}),
                "log(E_max/E_start)",
            ),
        ),
        log_loss,
        to_reported,
        from_reported,
        ("a", "b", "c", "d", "E_start", "E_max"),
        "log L = a log N + b log Ê + c log N log Ê + d, "
        "1/Ê = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max",
        "Clark et al. 2022, arXiv:2202.01169",
        (("e_ref", e_ref),),
        shared_ref=(("E", ""),),
        check=_check_experts,
        floors=(_EXPERT_FLOOR,),
    )


BUILDERS = {"clark2022": clark2022, "muennighoff2023": muennighoff2023}
