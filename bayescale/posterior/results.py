"""What a fit reports: :class:`Diagnostics` (the sampler's verdict) and :class:`Prediction`.

Example:
    >>> import numpy as np
    >>> Prediction(np.array([[1.0], [2.0], [3.0]]), prob=0.5).to_dict()
    {'median': 2.0, 'mean': 2.0, 'lower': 1.5, 'upper': 2.5, 'prob': 0.5}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Diagnostics", "Prediction"]


@dataclass
class Diagnostics:
    """Sampler diagnostics with a verdict.

    ``ok`` requires R-hat <= 1.01 for every parameter, no divergent transitions, bulk and
    tail ESS of at least ``min(400, draws/10)`` and E-BFMI >= 0.3 in every chain.
    """

    divergences: int
    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    min_ebfmi: float
    ess_required: float
    ok: bool
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "divergences": int(self.divergences),
            "max_r_hat": _round(self.max_r_hat),
            "min_ess_bulk": _round(self.min_ess_bulk),
            "ok": bool(self.ok),
            "min_ess_tail": _round(self.min_ess_tail),
            "min_ebfmi": _round(self.min_ebfmi),
            "messages": list(self.messages),
        }

    def verdict(self) -> str:
        """One line: ``ok`` or what is wrong and what to try."""
        return "ok" if self.ok else "; ".join(self.messages)


def _round(x: float, digits: int = 6) -> float | None:
    if x is None or not math.isfinite(float(x)):
        return None
    return float(round(float(x), digits))


@dataclass
class Prediction:
    """Posterior (predictive) draws for one or more targets.

    Attributes:
        draws: array ``(n_draws, n_targets)``.
        prob: interval probability (equal-tailed).
        metric: ``loss`` or ``downstream``.
        noise: whether run-to-run noise is included ("the next run").
        diagnostics: the fit's sampler diagnostics (``ok``, ``verdict``, ...); a prediction
            from a fit that is not ok says so in :meth:`to_dict` (``warning``).
    """

    draws: np.ndarray
    prob: float = 0.95
    metric: str = "loss"
    noise: bool = True
    diagnostics: dict | None = None

    @property
    def median(self) -> np.ndarray:
        return np.median(self.draws, axis=0)

    @property
    def mean(self) -> np.ndarray:
        return np.mean(self.draws, axis=0)

    @property
    def lower(self) -> np.ndarray:
        return np.quantile(self.draws, (1 - self.prob) / 2, axis=0)

    @property
    def upper(self) -> np.ndarray:
        return np.quantile(self.draws, 1 - (1 - self.prob) / 2, axis=0)

    def to_dict(self) -> dict:
        """``{"median","mean","lower","upper","prob"}``; scalars for a single target.

        Adds ``diagnostics`` (the fit's verdict) and, when the fit's diagnostics are not
        ok, ``warning`` with what is wrong and what to try.
        """
        out = {}
        for key in ("median", "mean", "lower", "upper"):
            value = getattr(self, key)
            out[key] = float(value[0]) if value.size == 1 else [float(v) for v in value]
        out["prob"] = self.prob
        if self.diagnostics is not None:
            out["diagnostics"] = dict(self.diagnostics)
            if not self.diagnostics.get("ok", True):
                out["warning"] = (
                    "fit diagnostics not ok, do not trust this prediction: "
                    f"{self.diagnostics.get('verdict', '')}"
                )
        return out

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {k: np.atleast_1d(getattr(self, k)) for k in ("median", "mean", "lower", "upper")}
        )
