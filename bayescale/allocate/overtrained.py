"""The cost of over-training a fixed model (Gadre et al.'s question), per posterior draw.

Train N on M tokens per parameter: how much loss does it give up against the
compute-optimal run of the same compute, and how many times the compute does it spend
for the loss it reaches?

Example:
    >>> ot = overtraining(fit, 1.4e9, [20, 160, 640])             # doctest: +SKIP
    >>> ot.to_frame()[["tokens_per_param", "compute_factor_median"]]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._util import check_prob
from .flops import FlopRule, flop_rule
from .optimal import _stats
from .optimum import (
    _budgets,
    _exponents_of,
    _has_closed_form,
    _law_loss_at,
    _needs_nd,
    _optimal_log_params,
    _reported_for_rows,
)

__all__ = ["Overtraining", "overtraining"]


@dataclass
class Overtraining:
    """The price of training a fixed N on M tokens per parameter (Gadre et al.'s question).

    All draws have shape ``(S, K)`` for K multipliers. At ``D = M N`` and ``C = rule(N, D)``:

    - ``loss``: the law's loss of the over-(or under-)trained run;
    - ``optimal_loss``: :math:`L^*(C)`, the compute-optimal loss at the same compute;
    - ``loss_penalty``: ``loss - optimal_loss`` (>= 0), the loss given up at equal compute;
    - ``equal_loss_compute``: :math:`C'` with :math:`L^*(C') = ` ``loss``, the compute a
      compute-optimal run needs to reach the same loss;
    - ``compute_factor``: ``compute / equal_loss_compute`` (>= 1), how many times the
      compute-optimal model's compute the over-trained run spends for that loss; the extra
      compute is ``compute_factor - 1``;
    - ``optimal_tokens_per_param``: D/N of the compute-optimal run at ``compute``.

    Attributes:
        params: the fixed model size N.
        multipliers, tokens, compute: shape ``(K,)``.
    """

    params: float
    multipliers: np.ndarray
    tokens: np.ndarray
    compute: np.ndarray
    loss: np.ndarray
    optimal_loss: np.ndarray
    loss_penalty: np.ndarray
    equal_loss_compute: np.ndarray
    compute_factor: np.ndarray
    optimal_tokens_per_param: np.ndarray
    group: str | None = None

    def to_frame(self, prob: float = 0.95) -> pd.DataFrame:
        """One row per multiplier: inputs and ``{name}_median/_lower/_upper``.

        Example:
            >>> overtraining(fit, 1e9, [20, 320]).to_frame()      # doctest: +SKIP
        """
        prob = check_prob(prob)
        columns = {
            "params": np.full(len(self.multipliers), self.params),
            "tokens_per_param": self.multipliers,
            "tokens": self.tokens,
            "compute": self.compute,
        }
        for name in (
            "loss",
            "optimal_loss",
            "loss_penalty",
            "compute_factor",
            "optimal_tokens_per_param",
        ):
            for key, value in _stats(getattr(self, name), prob).items():
                columns[f"{name}_{key}"] = value
        return pd.DataFrame(columns)


def overtraining(
    fit,
    params: float,
    multipliers,
    group=None,
    *,
    flops_per_token=None,
) -> Overtraining:
    """Loss and compute cost of training ``params`` on ``multipliers`` tokens per parameter.

    See :class:`Overtraining` for the definitions. For chinchilla and gadre2024 the
    frontier is closed form, :math:`L^*(C) = E + K (C/k)^{-\\gamma}` with
    :math:`\\gamma = \\alpha\\beta/(\\alpha+\\beta)`, so :math:`C'` is too; other laws
    solve :math:`L^*(C') = L` per draw by bisection in log C.

    Args:
        fit: a fit of a law in N and D.
        params: the fixed model size N (> 0).
        multipliers: tokens per parameter M (> 0), e.g. ``[20, 80, 320, 640]``.
        group: arm of a grouped fit.
        flops_per_token: constant ``k`` or callable ``k(N)`` (default: the fit's).

    Example:
        >>> ot = overtraining(fit, 1.4e9, [20, 160, 640])             # doctest: +SKIP
        >>> ot.to_frame()[["tokens_per_param", "compute_factor_median"]]  # doctest: +SKIP
    """
    _needs_nd(fit)
    n = _budgets(params, "params")
    if n.size != 1:
        raise ValueError(f"params must be a single model size but got {n.size}")
    n = float(n[0])
    m = _budgets(multipliers, "multipliers")
    rule = flop_rule(fit, flops_per_token)
    tokens = m * n
    compute = rule.compute(np.full_like(tokens, n), tokens)
    codes = fit._group_codes(group, len(m))
    loss = _law_loss_at(fit, np.full((1, len(m)), n), tokens[None, :], codes)
    log_c = np.log(compute)[None, :]
    method = "auto" if rule.constant else "numerical"
    log_n_opt, _ = _optimal_log_params(fit, codes, log_c, rule, method)
    n_opt = np.exp(log_n_opt)
    d_opt = rule.tokens(n_opt, compute[None, :])
    optimal_loss = _law_loss_at(fit, n_opt, d_opt, codes)
    # the over-trained run can never beat the optimum; clip the ~1e-15 rounding
    loss = np.maximum(loss, optimal_loss)
    log_c_equal = _equal_loss_log_compute(fit, codes, loss, log_c, rule)
    equal = np.exp(log_c_equal)
    return Overtraining(
        n,
        m,
        tokens,
        compute,
        loss,
        optimal_loss,
        loss - optimal_loss,
        equal,
        np.exp(log_c - log_c_equal),
        d_opt / n_opt,
        None if group is None else str(group),
    )


def _equal_loss_log_compute(fit, codes, loss, log_c, rule: FlopRule) -> np.ndarray:
    """``log C'`` with ``L*(C') = loss`` per draw; at most ``log_c`` since L* decreases."""
    if _has_closed_form(fit, rule):
        rep = _reported_for_rows(fit, codes)
        alpha, beta = _exponents_of(rep)
        log_g = (np.log(alpha * rep["A"]) - np.log(beta * rep["B"])) / (alpha + beta)
        gamma = alpha * beta / (alpha + beta)
        # L*(C) - E = A N^-alpha + B D^-beta = K (C/k)^-gamma along N = G (C/k)^a
        log_k_term = np.logaddexp(np.log(rep["A"]) - alpha * log_g, np.log(rep["B"]) + beta * log_g)
        excess = np.maximum(loss - rep["E"], np.finfo(float).tiny)
        log_c_equal = np.log(rule.k) + (log_k_term - np.log(excess)) / gamma
        return np.minimum(log_c_equal, log_c)
    low = np.broadcast_to(log_c - 40.0, loss.shape).copy()
    high = np.broadcast_to(log_c, loss.shape).copy()
    for _ in range(60):
        mid = 0.5 * (low + high)
        log_n, _ = _optimal_log_params(fit, codes, mid, rule, "numerical")
        n_mid = np.exp(log_n)
        reached = _law_loss_at(fit, n_mid, rule.tokens(n_mid, np.exp(mid)), codes) <= loss
        high = np.where(reached, mid, high)
        low = np.where(reached, low, mid)
    return 0.5 * (low + high)
