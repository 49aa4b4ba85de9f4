r"""Laws of the optimal hyper-parameters: learning rate and batch size as power laws.

DeepSeek LLM (DeepSeek-AI 2024, arXiv:2401.02954, sec. 3.1) fits the learning rate and the
batch size (in tokens) that come within a small margin of the best loss as power laws of the
compute budget, ``eta_opt = 0.3118 C^-0.1250`` and ``B_opt = 0.2920 C^0.3271``; Porian et
al. 2024 (arXiv:2406.19146, sec. 4) fit the tuned learning rate and batch size as power laws
of the model size N. Two laws, one response each:

.. math::

    \mathrm{lr}_{opt} = \mathrm{lr}_c \, X^{a_{lr}}, \qquad B_{opt} = B_c \, X^{a_B}

with ``X`` the compute (default), or ``params`` / ``tokens`` (option ``x``).

**The response is the column given as the loss.** A fit's response is always the
``loss=`` / ``--loss`` column and its likelihood is on the log of it, so pass the optimal
learning rate (or batch size) itself, not its log: ``bayescale fit sweeps.csv --law lr_opt
--compute C --loss lr_opt``; residuals are then relative errors of the rate, as in the
log-log least squares of both papers. Predictions (``bayescale predict --compute C``) give
the rate, although the JSON keys and plots still say "loss".

Priors are weakly informative and signed: the exponent ``a ~ Normal(0, 0.5)`` (a rate that
falls or grows with scale, by less than a factor ``X`` per factor ``X``: 95% in (-1, 1));
the log rate at the data's reference scale ``~ Normal(log median, 1)`` (the typical
response, within a factor e); the noise ``sigma ~ LogNormal(log 0.1, 1)``, replacing the
1% of loss laws: an optimum read off a sweep over a grid of factor 1.4-2 steps is known to
~10-30%. The folder of public data (``../shared/data``) holds no learning-rate or
batch-size sweeps, so these laws are checked on simulated tables only
(``tests/test_hyper_laws.py``).

Example:
    >>> from bayescale.laws import get_law
    >>> law = get_law("lr_opt")
    >>> law.reported_names
    ('lr_c', 'a_lr')
    >>> round(float(law.loss({"lr_c": 0.3118, "a_lr": -0.125}, compute=1e20)), 5)
    0.00099
    >>> round(float(get_law("batch_opt").loss({"B_c": 0.292, "a_B": 0.3271}, compute=1e20)))
    1017145
"""

from __future__ import annotations

import math

import numpy as np

from .base import INPUTS, DataSummary, Law, Parameter
from .priors import Prior

__all__ = ["BUILDERS", "batch_opt", "lr_opt"]

#: noise of an optimum read off a hyper-parameter sweep: median 10%, 95% in (1.4%, 71%)
_SWEEP_NOISE = Prior("LogNormal", {"mu": round(math.log(0.1), 4), "sigma": 1.0})


def _level_prior(s: DataSummary) -> Prior:
    """log of the response at the reference scale: the typical response, within e."""
    return Prior("Normal", {"mu": round(math.log(s.median_loss), 4), "sigma": 1.0})


def _power_law(name: str, coefficient: str, exponent: str, what: str, x: str) -> Law:
    if x not in INPUTS:
        raise ValueError(f"{name} input x must be one of {INPUTS} but got {x!r}")

    def log_loss(t, inputs):
        return t["log_term"] + t[exponent] * inputs[x]

    def to_reported(t, ref):
        return {coefficient: np.exp(t["log_term"] - t[exponent] * ref[x]), exponent: t[exponent]}

    def from_reported(r, ref):
        return {"log_term": np.log(r[coefficient]) + r[exponent] * ref[x], exponent: r[exponent]}

    sym = {"params": "N", "tokens": "D", "compute": "C"}[x]
    return Law(
        name,
        (x,),
        (
            Parameter(
                exponent,
                "exponent",  # shared across groups under pooling="shared"
                Prior("Normal", {"mu": 0.0, "sigma": 0.5}),
                f"power of {sym} (signed)",
            ),
            Parameter("log_term", "coefficient", _level_prior, f"log {what} at {sym}_ref"),
        ),
        log_loss,
        to_reported,
        from_reported,
        (coefficient, exponent),
        f"{what} = {coefficient} {sym}^{exponent}  (the --loss column is {what})",
        "DeepSeek-AI 2024, arXiv:2401.02954; Porian et al. 2024, arXiv:2406.19146",
        (("x", x),),
        noise=(("sigma", _SWEEP_NOISE),),
        response=(1e-12, 1e15, f"the --loss column is {what}, a positive rate or size"),
    )


def lr_opt(x: str = "compute") -> Law:
    """The optimal learning rate as a power law of ``x`` (see the module docstring)."""
    return _power_law("lr_opt", "lr_c", "a_lr", "lr_opt", x)


def batch_opt(x: str = "compute") -> Law:
    """The optimal batch size as a power law of ``x`` (see the module docstring)."""
    return _power_law("batch_opt", "B_c", "a_B", "B_opt", x)


BUILDERS = {"batch_opt": batch_opt, "lr_opt": lr_opt}
