"""The result of SBC: ranks and coverage per replicate, their binomial bands, rank plots.

A :class:`Calibration` holds the rank of each truth among thinned posterior draws and
whether each central interval covered it; coverage outside the 99% binomial band
(:func:`binomial_band`) or non-uniform ranks (:func:`plot_ranks`) flag a miscalibrated
pipeline.

Example:
    >>> binomial_band(40, 0.8)
    (25, 38)
    >>> fig = plot_rank_grid(result)   # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["LEVELS", "Calibration", "binomial_band", "plot_rank_grid", "plot_ranks"]

#: Nominal interval probabilities checked.
LEVELS = (0.5, 0.8, 0.95)


# --------------------------------------------------------------------------- result


def binomial_band(replicates: int, prob: float, level: float = 0.99) -> tuple[int, int]:
    """Counts ``(low, high)`` of covering replicates expected with probability ``level``.

    Example:
        >>> binomial_band(100, 0.95)
        (89, 100)
    """
    from scipy import stats

    low, high = stats.binom.interval(level, replicates, prob)
    return int(low), int(high)


@dataclass
class Calibration:
    """Result of :func:`calibrate` (or :func:`misspecification`).

    Attributes:
        law: the fitted law's name.
        ranks: ``(replicates, quantities)`` rank of the truth among ``n_ranked`` draws.
        covered: level -> ``(replicates, quantities)`` booleans, truth inside the interval.
        truths: the true values per replicate.
        n_ranked: number of thinned draws ranks are taken among (ranks lie in 0..n_ranked).
        rejected: prior draws discarded because their ladder left ``[1e-5, 20]``.
        not_ok: replicates whose sampler diagnostics were not ok.
        check_fired: replicates where :meth:`Fit.check` fired (when checks were run).
        fits: per replicate: diagnostics ``ok``, ``max_r_hat``, ``divergences``,
            ``min_ess_bulk`` (and ``check_ok`` when checks were run).
        priors: the priors used to draw truths and to fit (as text).
        settings: sampler and design settings.
        seconds: wall time.
    """

    law: str
    ranks: pd.DataFrame
    covered: dict[float, pd.DataFrame]
    truths: pd.DataFrame
    n_ranked: int
    rejected: int = 0
    not_ok: int = 0
    check_fired: int | None = None
    fits: pd.DataFrame = field(default_factory=pd.DataFrame)
    priors: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def replicates(self) -> int:
        return len(self.ranks)

    def coverage(self) -> pd.DataFrame:
        """Fraction of replicates whose interval covers the truth: quantity x level.

        Example:
            >>> result.coverage().loc["alpha", "0.95"]   # doctest: +SKIP
            0.96
        """
        return pd.DataFrame({f"{lvl:g}": self.covered[lvl].mean() for lvl in self.covered})

    def band(self, level: float = 0.99) -> pd.DataFrame:
        """The ``level`` binomial band of coverage fractions for each nominal level.

        Example:
            >>> result.band().loc["low", "0.95"]   # doctest: +SKIP
            0.89
        """
        rows = {}
        for nominal in self.covered:
            low, high = binomial_band(self.replicates, nominal, level)
            rows[f"{nominal:g}"] = {
                "low": low / self.replicates,
                "high": high / self.replicates,
            }
        return pd.DataFrame(rows)

    def outside_band(self, level: float = 0.99) -> list[tuple[str, str, float]]:
        """``(quantity, nominal, coverage)`` outside the ``level`` binomial band.

        Example:
            >>> result.outside_band()   # doctest: +SKIP
            []
        """
        band = self.band(level)
        out = []
        for quantity, row in self.coverage().iterrows():
            for nominal, value in row.items():
                if not band.loc["low", nominal] <= value <= band.loc["high", nominal]:
                    out.append((str(quantity), str(nominal), float(value)))
        return out

    def uniformity(self, bins: int = 10) -> pd.Series:
        """Chi-square p-value of rank uniformity per quantity (``bins`` equal bins).

        Example:
            >>> result.uniformity().min() > 0.001   # doctest: +SKIP
            True
        """
        from scipy import stats

        edges = np.linspace(0, self.n_ranked + 1, bins + 1)
        out = {}
        for name, ranks in self.ranks.items():
            counts, _ = np.histogram(ranks.to_numpy(), edges)
            out[name] = float(stats.chisquare(counts).pvalue)
        return pd.Series(out, name="p_uniform")

    def table(self) -> pd.DataFrame:
        """Coverage per quantity and level with the rank-uniformity p-value."""
        frame = self.coverage()
        frame["p_uniform"] = self.uniformity()
        return frame

    def to_dict(self) -> dict:
        """The ``bayescale calibrate --json`` object."""
        band = self.band()
        return {
            "law": self.law,
            "replicates": self.replicates,
            "coverage": {
                q: {k: float(v) for k, v in row.items()} for q, row in self.coverage().iterrows()
            },
            "band99": {k: [float(band.loc["low", k]), float(band.loc["high", k])] for k in band},
            "outside_band99": [list(t) for t in self.outside_band()],
            "p_uniform": {k: float(v) for k, v in self.uniformity().items()},
            "n_ranked": int(self.n_ranked),
            "rejected": int(self.rejected),
            "not_ok": int(self.not_ok),
            "check_fired": None if self.check_fired is None else int(self.check_fired),
            "priors": dict(self.priors),
            "settings": dict(self.settings),
            "seconds": round(float(self.seconds), 2),
        }

    def write(self, out_dir, overwrite: bool = False) -> list:
        """Write ``calibration.json``, ``ranks.csv``, ``coverage.csv`` and ``ranks.png``.

        Refuses to overwrite existing files unless ``overwrite``.
        """
        import json
        from pathlib import Path

        import matplotlib.pyplot as plt

        out = Path(out_dir)
        names = ("calibration.json", "ranks.csv", "coverage.csv", "ranks.png")
        existing = [n for n in names if (out / n).exists()]
        if existing and not overwrite:
            raise ValueError(
                f"{str(out / existing[0])!r} exists; pass overwrite=True (--force) to replace it"
            )
        out.mkdir(parents=True, exist_ok=True)
        (out / "calibration.json").write_text(json.dumps(self.to_dict(), indent=2))
        self.ranks.to_csv(out / "ranks.csv", index_label="replicate")
        self.table().to_csv(out / "coverage.csv", index_label="quantity")
        fig = plot_rank_grid(self)
        fig.savefig(out / "ranks.png", dpi=110)
        plt.close(fig)
        return [out / n for n in names]


# --------------------------------------------------------------------------- plots


def plot_ranks(calibration: Calibration, quantity: str, bins: int = 10, ax=None):
    """Rank histogram of one quantity with the 99% band of a uniform histogram.

    Example:
        >>> ax = plot_ranks(result, "alpha")   # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from scipy import stats

    if quantity not in calibration.ranks:
        raise ValueError(
            f"unknown quantity {quantity!r}; quantities: {', '.join(calibration.ranks.columns)}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    ranks = calibration.ranks[quantity].to_numpy()
    edges = np.linspace(0, calibration.n_ranked + 1, bins + 1)
    low, high = stats.binom.interval(0.99, len(ranks), 1.0 / bins)
    ax.axhspan(low, high, color="0.85", zorder=0, label="99% band (uniform)")
    ax.axhline(len(ranks) / bins, color="0.5", lw=1)
    ax.hist(ranks, bins=edges, color="C0", edgecolor="white")
    ax.set_xlabel(f"rank of truth among {calibration.n_ranked} draws")
    ax.set_ylabel("replicates")
    ax.set_title(quantity)
    return ax


def plot_rank_grid(calibration: Calibration, bins: int = 10):
    """Rank histograms of every quantity in one figure (returns the Figure).

    Example:
        >>> fig = plot_rank_grid(result)   # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    names = list(calibration.ranks.columns)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        plot_ranks(calibration, name, bins=bins, ax=ax)
        ax.set_xlabel("")
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(f"SBC ranks, {calibration.law}, {calibration.replicates} replicates")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- scores


def _thin(flat: np.ndarray, n: int) -> np.ndarray:
    # evenly spaced over the chains' concatenated draws: cuts the autocorrelation that
    # would otherwise make ranks of correct posteriors look non-uniform
    index = np.linspace(0, flat.size - 1, n).round().astype(int)
    return flat[index]


def _score(draws: np.ndarray, truth: float, n_ranked: int, levels) -> tuple[int, dict]:
    flat = np.asarray(draws, np.float64).reshape(-1)
    rank = int(np.sum(_thin(flat, n_ranked) < truth))
    covered = {}
    for level in levels:
        low, high = np.quantile(flat, [(1 - level) / 2, 1 - (1 - level) / 2])
        covered[level] = bool(low <= truth <= high)
    return rank, covered
