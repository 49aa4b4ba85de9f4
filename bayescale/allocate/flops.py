"""The FLOP rule of an allocation: how training compute follows from N and D.

``C = k N D`` with a constant ``k`` (6 unless the fit or the caller says otherwise), with
``k(N)`` a callable of the model size (attention FLOPs), or any ``flops(N, D)`` increasing
in D; for each, :meth:`FlopRule.tokens` gives the D that spends a budget at a given N.

Example:
    >>> rule = flop_rule(flops_per_token=lambda n: 6 + 12 * 24 * 2048 * 1024 / n)
    >>> rule.describe(), flop_rule().describe()
    ('k(N)*N*D', '6ND')
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["FlopRule", "flop_rule"]


@dataclass(frozen=True)
class FlopRule:
    """How training compute follows from N and D, and D from N and C.

    Three kinds: ``constant`` (``C = k N D``), ``per_param`` (``C = k(N) N D`` with a
    callable ``k``, e.g. ``6 + 12 n_layer n_ctx d_model / N`` to count attention) and
    ``general`` (``C = flops(N, D)``, any callable increasing in D; D is found by a
    safeguarded Newton search in log D). Build one with :func:`flop_rule`.

    Example:
        >>> rule = flop_rule(flops_per_token=6.0)
        >>> float(rule.tokens(np.array([1e9]), np.array([6e18]))[0])
        1000000000.0
    """

    kind: str
    k: float = 6.0
    fn: Callable | None = None

    @property
    def constant(self) -> bool:
        return self.kind == "constant"

    def describe(self) -> str:
        """``6ND``, ``k(N)*N*D`` or ``flops(N, D)``.

        Example:
            >>> flop_rule(flops_per_token=8).describe()
            '8ND'
        """
        if self.kind == "constant":
            return f"{self.k:g}ND"
        return "k(N)*N*D" if self.kind == "per_param" else "flops(N, D)"

    def compute(self, params, tokens) -> np.ndarray:
        """Training FLOPs of runs ``(params, tokens)``.

        Example:
            >>> float(flop_rule(flops=lambda n, d: (6 * n + 1e9) * d).compute(1e9, 1e10))
            7e+19
        """
        params = np.asarray(params, np.float64)
        tokens = np.asarray(tokens, np.float64)
        if self.kind == "constant":
            return self.k * params * tokens
        if self.kind == "per_param":
            return self._k_of(params) * params * tokens
        return self._flops(params, tokens)

    def tokens(self, params, compute) -> np.ndarray:
        """Tokens D with ``rule(N, D) = C``; NaN where the budget cannot be met."""
        params = np.asarray(params, np.float64)
        compute = np.asarray(compute, np.float64)
        if self.kind == "constant":
            return compute / (self.k * params)
        if self.kind == "per_param":
            return compute / (self._k_of(params) * params)
        return self._solve_tokens(params, compute)

    def _k_of(self, params: np.ndarray) -> np.ndarray:
        k = np.broadcast_to(np.asarray(self.fn(params), np.float64), np.shape(params))
        bad = ~(np.isfinite(k) & (k > 0))
        if np.any(bad):
            at = np.asarray(params)[bad].ravel()[0]
            raise ValueError(
                f"flops_per_token(N) must return finite values > 0 but got "
                f"{k[bad].ravel()[0]!r} at N={at:g}"
            )
        return k

    def _flops(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        shape = np.broadcast_shapes(np.shape(params), np.shape(tokens))
        c = np.broadcast_to(np.asarray(self.fn(params, tokens), np.float64), shape)
        bad = ~(np.isfinite(c) & (c > 0))
        if np.any(bad):
            where = np.argwhere(bad)[0]
            n = np.broadcast_to(params, shape)[tuple(where)]
            d = np.broadcast_to(tokens, shape)[tuple(where)]
            raise ValueError(
                f"flops(N, D) must return finite values > 0 but got {c[tuple(where)]!r} "
                f"at N={n:g}, D={d:g}"
            )
        return c

    def _solve_tokens(self, params: np.ndarray, compute: np.ndarray) -> np.ndarray:
        # Newton in log-log space inside a bracket of e^{+-30} around 6ND's answer, falling
        # back to bisection when a step leaves the bracket: robust for any rule increasing
        # in D, and one or two steps for the usual rules, which are nearly linear in D
        params, compute = np.broadcast_arrays(params, compute)
        target = np.log(compute)
        guess = np.log(compute / (6.0 * params))
        low, high = guess - 30.0, guess + 30.0

        def gap(log_d):
            return np.log(self._flops(params, np.exp(log_d))) - target

        reachable = (gap(low) <= 0) & (gap(high) >= 0)
        x = np.clip(guess, low, high)
        for _ in range(100):
            g = gap(x)
            done = np.abs(g) <= 1e-15 * np.maximum(1.0, np.abs(target))
            if np.all(done | ~reachable):
                break
            low, high = np.where(g < 0, x, low), np.where(g > 0, x, high)
            slope = (gap(x + 1e-7) - g) / 1e-7
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = x - g / slope
            inside = np.isfinite(newton) & (newton > low) & (newton < high)
            x = np.where(done, x, np.where(inside, newton, 0.5 * (low + high)))
        return np.where(reachable, np.exp(x), np.nan)


def flop_rule(fit=None, flops_per_token=None, flops: Callable | None = None) -> FlopRule:
    """The FLOP rule for an allocation: the fit's constant unless the caller gives one.

    Args:
        fit: a fit; its ``flops_per_token`` (6 by default) is the fallback constant.
        flops_per_token: a number ``k`` (``C = kND``) or a callable ``k(N)`` (``C = k(N)ND``).
        flops: a callable ``flops(N, D) -> C``, increasing in D (vectorised over arrays).

    Example:
        >>> flop_rule(flops_per_token=lambda n: 6 + 12 * 24 * 2048 * 1024 / n).describe()
        'k(N)*N*D'
    """
    if flops is not None and flops_per_token is not None:
        raise ValueError("give flops_per_token or flops, not both")
    if flops is not None:
        if not callable(flops):
            raise ValueError(f"flops must be a callable flops(N, D) -> C but got {flops!r}")
        return FlopRule("general", fn=flops)
    if callable(flops_per_token):
        return FlopRule("per_param", fn=flops_per_token)
    if flops_per_token is None:
        k = 6.0 if fit is None else float(fit.info.get("flops_per_token", 6.0))
    else:
        if isinstance(flops_per_token, bool) or not isinstance(flops_per_token, numbers.Real):
            raise ValueError(
                "flops_per_token must be a number > 0 or a callable of N but got "
                f"{flops_per_token!r}"
            )
        k = float(flops_per_token)
    if not np.isfinite(k) or k <= 0:
        raise ValueError(f"flops_per_token must be finite and > 0 but got {flops_per_token!r}")
    return FlopRule("constant", k=k)
