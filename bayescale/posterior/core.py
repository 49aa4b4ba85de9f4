"""The :class:`Fit`: posterior draws, summaries, diagnostics, predictions, persistence.

A fit keeps the sampled (internal, centred) parameters and reports natural-scale ones
(``E`` in nats, ``A`` not ``log A``). Predictions for "the next run" include the
run-to-run noise of the likelihood; ``noise=False`` gives parameter-only intervals.

Example:
    >>> result = bs.fit(runs, "chinchilla")                       # doctest: +SKIP
    >>> result.predict(params=70e9, tokens=1.4e12).to_dict()      # doctest: +SKIP
    {'median': 1.94, 'mean': 1.94, 'lower': 1.90, 'upper': 1.99, 'prob': 0.95}
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._util import FitWarning, check_prob
from ..data.runs import INPUTS
from ..model.scaling import DOWNSTREAM_NAMES, ScalingModel

__all__ = ["Diagnostics", "Fit", "FitWarning", "Prediction", "check_prob", "load_fit"]

R_HAT_MAX = 1.01
#: the pointwise log-likelihood goes into a DataTree / fit file up to this many values
LOGLIK_MAX_VALUES = 1_000_000
EBFMI_MIN = 0.3


def _version() -> str:
    from .. import __version__

    return __version__


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


class Fit:
    """A fitted scaling law: posterior draws plus everything needed to use them.

    Args:
        model: the :class:`~bayescale.model.ScalingModel` that was sampled.
        samples: sampled sites, ``(chains, draws, ...)``.
        stats: sample stats (``diverging``, ``energy``, ``n_steps``).
        runs: the validated runs.
        info: sampler settings and provenance.
    """

    def __init__(
        self,
        model: ScalingModel,
        samples: Mapping[str, np.ndarray],
        stats: Mapping[str, np.ndarray],
        runs,
        info: Mapping | None = None,
    ):
        self.model = model
        self.samples = {k: np.asarray(v) for k, v in samples.items()}
        self.stats = {k: np.asarray(v) for k, v in stats.items()}
        self.runs = runs
        self.info = dict(info or {})
        self.info.setdefault("bayescale_version", _version())
        self._diagnostics: Diagnostics | None = None
        self._summary_cache: dict[float, pd.DataFrame] = {}
        #: where each chain ended and the metric it used (``fit(..., warm_start=this)``);
        #: None for fits read from a file or made by ``fit_many``
        self.sampler_end: dict[str, np.ndarray] | None = None
        if self.info.get("warn", True) and not self.diagnostics.ok:
            warnings.warn(
                f"fit diagnostics not ok: {self.diagnostics.verdict()}", FitWarning, stacklevel=2
            )

    # ------------------------------------------------------------------ shapes
    @property
    def law(self):
        return self.model.law

    @property
    def spec(self):
        return self.model.spec

    @property
    def n_chains(self) -> int:
        return int(next(iter(self.samples.values())).shape[0])

    @property
    def n_draws(self) -> int:
        return int(next(iter(self.samples.values())).shape[1])

    @property
    def group_names(self) -> tuple[str, ...]:
        return self.model.group_names

    def flat(self, name: str) -> np.ndarray:
        """Draws of a sampled site with chains merged: ``(chains*draws, ...)``."""
        value = self.samples[name]
        return value.reshape((-1, *value.shape[2:]))

    # ------------------------------------------------------------------ reported
    def reported(self) -> dict[str, np.ndarray]:
        """Natural-scale parameters, ``(chains, draws)`` or ``(chains, draws, groups)``."""
        names = self.law.parameter_names
        theta = {n: self.samples[n] for n in names}
        if any(v.ndim == 3 for v in theta.values()):
            n_groups = self.model.n_groups
            theta = {
                n: v if v.ndim == 3 else np.repeat(v[..., None], n_groups, axis=-1)
                for n, v in theta.items()
            }
        ref = self.model.log_ref
        out = {k: np.asarray(v, np.float64) for k, v in self.law.to_reported(theta, ref).items()}
        for name, value in out.items():
            if value.ndim == 3 and np.all(value == value[..., :1]):
                out[name] = value[..., 0]  # shared across groups: report once
        if self.spec.downstream:
            for name in DOWNSTREAM_NAMES:
                out[name] = self.samples[name]
        for name in self.model.noise_sites:
            out[name] = self.samples[name]
        for name in list(self.samples):
            if name.endswith(("_mu", "_tau")) and name[: name.rfind("_")] in names:
                out[name] = self.samples[name]
        return out

    def reported_flat(self) -> dict[str, np.ndarray]:
        """Reported draws flattened to one column per name (``alpha[rpj]`` for groups)."""
        out = {}
        for name, value in self.reported().items():
            if value.ndim == 3:
                for g, gname in enumerate(self.group_names):
                    out[f"{name}[{gname}]"] = value[..., g]
            else:
                out[name] = value
        return out

    # ------------------------------------------------------------------ summaries
    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summary of the reported parameters.

        Columns: mean, sd, median, lower, upper (equal-tailed at ``prob``), r_hat,
        ess_bulk, ess_tail.
        """
        prob = check_prob(prob)
        if prob in self._summary_cache:
            return self._summary_cache[prob].copy()
        from ._mcmc_stats import ess_bulk, ess_tail, rhat

        q = ((1 - prob) / 2, 1 - (1 - prob) / 2)
        reported = self.reported_flat()
        # every parameter at once: (parameters, chains, draws)
        draws = np.stack([np.asarray(v, np.float64) for v in reported.values()])
        flat = draws.reshape(len(draws), -1)
        lower, upper = np.quantile(flat, q, axis=1)
        # moments of each parameter in units of its largest draw: a coefficient near 1e158
        # squares past float64 (R-hat and ESS do not depend on the unit)
        with np.errstate(invalid="ignore"):
            scale = np.max(np.abs(flat), axis=1, initial=0.0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        unit = flat / scale[:, None]
        columns = {
            "mean": unit.mean(axis=1) * scale,
            "sd": unit.std(axis=1, ddof=1) * scale,
            "median": np.median(flat, axis=1),
            "lower": lower,
            "upper": upper,
            "r_hat": rhat(draws / scale[:, None, None]),
            "ess_bulk": ess_bulk(draws / scale[:, None, None]),
            "ess_tail": ess_tail(draws / scale[:, None, None]),
        }
        frame = pd.DataFrame(columns, index=list(reported))
        frame.index.name = "parameter"
        self._summary_cache[prob] = frame
        return frame.copy()

    @property
    def diagnostics(self) -> Diagnostics:
        if self._diagnostics is None:
            self._diagnostics = self._compute_diagnostics()
        return self._diagnostics

    def _compute_diagnostics(self) -> Diagnostics:
        from ._mcmc_stats import rhat

        summary = self.summary()
        r_hats = list(summary["r_hat"].dropna())
        # internal sites too: a hidden non-mixing latent must not pass silently
        columns = [
            np.moveaxis(np.reshape(v, (v.shape[0], v.shape[1], -1)), -1, 0)
            for v in self.samples.values()
        ]
        if columns:
            r_hats += list(rhat(np.concatenate(columns).astype(np.float64)))
        r_hats = [r for r in r_hats if math.isfinite(r)]
        max_r_hat = max(r_hats) if r_hats else float("nan")
        divergences = int(self.stats.get("diverging", np.zeros(1)).sum())
        ess_bulk = float(summary["ess_bulk"].min())
        ess_tail = float(summary["ess_tail"].min())
        ebfmi = _ebfmi(self.stats.get("energy"))
        required = min(400.0, 0.1 * self.n_chains * self.n_draws)
        messages = []
        if self.n_chains < 2:
            messages.append("R-hat needs at least 2 chains: run more chains")
        if not max_r_hat <= R_HAT_MAX:
            messages.append(
                f"max R-hat {max_r_hat:.3f} > {R_HAT_MAX}: chains disagree; run more "
                "warmup/draws or check for several modes (tighter priors help)"
            )
        if divergences:
            messages.append(
                f"{divergences} divergent transitions: raise target_accept above "
                f"{self.info.get('target_accept', 0.95)} (e.g. 0.99) or tighten priors on "
                "weakly identified parameters"
            )
        if not ess_bulk >= required or not ess_tail >= required:
            messages.append(
                f"min ESS bulk {ess_bulk:.0f} / tail {ess_tail:.0f} < {required:.0f}: "
                "run more draws"
            )
        if math.isfinite(ebfmi) and ebfmi < EBFMI_MIN:
            messages.append(
                f"E-BFMI {ebfmi:.2f} < {EBFMI_MIN}: poor exploration of the energy; "
                "reparameterise or tighten priors"
            )
        return Diagnostics(
            divergences, max_r_hat, ess_bulk, ess_tail, ebfmi, required, not messages, messages
        )

    def to_dict(self, prob: float = 0.95) -> dict:
        """The ``bayescale summary --json`` object (DESIGN.md contract)."""
        summary = self.summary(prob)
        params = {
            name: {
                k: _round(row[k])
                for k in ("mean", "sd", "median", "lower", "upper", "r_hat", "ess_bulk")
            }
            for name, row in summary.iterrows()
        }
        return {
            "parameters": params,
            "diagnostics": self.diagnostics.to_dict(),
            "prob": prob,
            "law": self.law.name,
            "model": self.spec.name,
            "likelihood": self.spec.likelihood,
            "pooling": self.spec.pooling,
            "groups": list(self.group_names) if self.model.grouped else [],
            "n_runs": int(self.runs.n_runs),
        }

    def __repr__(self) -> str:
        d = self.diagnostics
        return (
            f"<Fit {self.spec.name} ({self.law.formula}) on {self.runs.n_runs} runs, "
            f"{self.n_chains}x{self.n_draws} draws, diagnostics: {d.verdict()}>"
        )

    def _repr_html_(self) -> str:
        """Notebook view: headline, coloured diagnostics verdict and parameter table."""
        from .tables import fit_html

        return fit_html(self)

    def to_table(self, format: str = "markdown", prob: float = 0.95, **kwargs) -> str:
        """Parameter table (``markdown``, ``latex`` or ``html``); see :func:`bayescale.posterior.tables.to_table`.

        Example:
            >>> print(fit.to_table("latex"))  # doctest: +SKIP
        """
        from .tables import to_table

        return to_table(self, format, prob, **kwargs)

    # ------------------------------------------------------------------ predictions
    def input_names(self) -> tuple[str, ...]:
        """The inputs a target of this fit can be given: params, tokens, compute and the
        named inputs of its runs (``U``)."""
        return ("params", "tokens", "compute", *self.runs.inputs)

    def _targets(
        self, params, tokens, compute, group, at: Mapping | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        fpt = float(self.info.get("flops_per_token", 6.0))
        common = {"params": params, "tokens": tokens, "compute": compute}
        known = self.input_names()
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
        needed = [k for k in self.law.inputs if given.get(k) is None]
        if needed:
            flags = ", ".join(f"--{k}" if k in INPUTS else f"--at {k}=VALUE" for k in needed)
            raise ValueError(
                f"law {self.law.name!r} needs {' and '.join(needed)} to predict (give {flags})"
            )
        values = {k: given[k] for k in self.law.inputs}
        size = max(len(v) for v in values.values())
        for k, v in values.items():
            if not np.all(np.isfinite(v)) or np.any(v <= 0):
                raise ValueError(f"{k} must be finite and > 0 to predict but got {v.tolist()}")
            if len(v) not in (1, size):
                raise ValueError(
                    f"targets must have equal lengths but {k} has {len(v)} (others {size})"
                )
            values[k] = np.broadcast_to(v, (size,)).astype(np.float64)
        self.law.check_inputs(values)  # E >= 1 for clark2022
        codes = self._group_codes(group, size)
        return values, codes

    def _group_codes(self, group, size: int) -> np.ndarray:
        if not self.model.grouped:
            if group not in (None, "all"):
                raise ValueError(f"this fit has no groups but group {group!r} was given")
            return np.zeros(size, np.int32)
        if group is None:
            raise ValueError(
                f"this fit is grouped: name a group, one of {', '.join(self.group_names)}"
            )
        groups = [group] if isinstance(group, str | int | np.integer) else list(group)
        codes = []
        for g in groups:
            g = str(g)
            if g not in self.group_names:
                from .._util import did_you_mean

                extra = did_you_mean(g, self.group_names)
                raise ValueError(
                    f"unknown group {g!r}{extra} Groups: {', '.join(self.group_names)}"
                )
            codes.append(self.group_names.index(g))
        codes = np.asarray(codes, np.int32)
        if len(codes) == 1:
            return np.repeat(codes, size)
        if len(codes) != size:
            raise ValueError(f"got {len(codes)} groups for {size} targets")
        return codes

    def log_loss_draws(self, values: Mapping[str, np.ndarray], codes: np.ndarray) -> np.ndarray:
        """Noise-free log loss per draw and target: ``(chains*draws, targets)``.

        Evaluated with numpy (the built-in laws follow their inputs' array type, see
        :func:`bayescale.laws.base._xp`); a custom law's own ``jax.numpy`` code takes numpy
        arrays as well.
        """
        from .._jax import configure

        configure()
        flat = {n: self.flat(n) for n in self.law.parameter_names}
        theta = self.model.theta_for_rows(flat, codes, self.law.parameter_names)
        x = {
            k: (np.log(values[k]) - self.model.log_ref.get(k, 0.0))[None, :]
            for k in self.law.inputs
        }
        theta = {k: np.asarray(v, np.float64) for k, v in theta.items()}
        return np.asarray(self.law.log_loss(theta, x), np.float64)

    def _noise(self, site_scale: str, site_df: str, codes, shape, rng) -> np.ndarray:
        flat = {n: self.flat(n) for n in (site_scale, site_df) if n in self.samples}
        theta = self.model.theta_for_rows(flat, codes, list(flat))
        scale = np.broadcast_to(theta[site_scale], shape)
        if site_df in theta:
            df = np.broadcast_to(theta[site_df], shape)
            return scale * rng.standard_t(df)
        return scale * rng.standard_normal(shape)

    def predict(
        self,
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
        """Posterior predictive draws for new runs.

        Args:
            params, tokens, compute: target sizes (scalars or arrays); missing ones follow
                from ``C = 6ND`` (or the fit's FLOPs-per-token rule).
            at: the target's inputs by name, for named inputs such as ``{"U": 5e9}``
                (``params``/``tokens``/``compute`` may be given here too). A name the
                fit does not know is an error naming the ones it does.
            group: group name(s) for grouped fits.
            metric: ``loss`` or ``downstream`` (needs a downstream fit).
            noise: include run-to-run noise (the next run) or parameters only.
            prob: interval probability.
            seed: seed for the noise draws.
            sweep: for fits with a sweep column, the sweep the new run belongs to; None
                (default) means a new sweep (a new budget or ladder), whose shared deviation
                is drawn afresh from ``Normal(0, tau_sweep)`` when ``noise`` is on.

        Fits made with ``discrepancy=True`` add ``kappa * max(0, log C - log C_max)`` times a
        standard normal to the log loss beyond the data, with or without ``noise``.
        A fit whose sampler diagnostics are not ok warns (:class:`FitWarning`).

        Example:
            >>> fit.predict(params=70e9, tokens=1.4e12).to_dict()   # doctest: +SKIP
        """
        prob = check_prob(prob)
        if metric not in ("loss", "downstream"):
            raise ValueError(f"metric must be 'loss' or 'downstream' but got {metric!r}")
        if metric == "downstream" and not self.spec.downstream:
            raise ValueError(
                "metric 'downstream' needs a fit with a downstream column (--downstream COL)"
            )
        values, codes = self._targets(params, tokens, compute, group, at)
        rng = np.random.default_rng(seed)
        log_mu = self.log_loss_draws(values, codes)
        log_mu = log_mu + self._structured(values, sweep, noise, rng, log_mu.shape, codes)
        log_loss = log_mu + (self._noise("sigma", "nu", codes, log_mu.shape, rng) if noise else 0.0)
        # Student-t run noise with a small nu has tails beyond exp's range: cap them at
        # 1e304 nats (far outside any interval) rather than let inf turn quantiles into NaN
        loss = np.exp(np.minimum(log_loss, 700.0))
        verdict = {**self.diagnostics.to_dict(), "verdict": self.diagnostics.verdict()}
        if self.info.get("warn", True) and not self.diagnostics.ok:
            warnings.warn(
                f"predicting from a fit whose diagnostics are not ok: {verdict['verdict']}",
                FitWarning,
                stacklevel=2,
            )
        if metric == "loss":
            return Prediction(loss, prob, metric, noise, verdict)
        flat = {n: self.flat(n) for n in DOWNSTREAM_NAMES}
        t = self.model.theta_for_rows(flat, codes, DOWNSTREAM_NAMES)
        err = t["eps"] - t["k"] * np.exp(-t["gamma"] * loss)
        if noise:
            err = err + self._noise("sigma_downstream", "nu_downstream", codes, err.shape, rng)
        return Prediction(err, prob, metric, noise, verdict)

    def _structured(self, values, sweep, noise: bool, rng, shape, codes=None) -> np.ndarray:
        """Sweep deviation and beyond-the-data discrepancy on log loss, ``(draws, targets)``."""
        out = np.zeros(shape)
        if self.model.n_sweeps:
            if sweep is not None:
                if str(sweep) not in self.model.sweep_names:
                    raise ValueError(
                        f"unknown sweep {sweep!r}; sweeps: {', '.join(self.model.sweep_names)} "
                        "(or sweep=None for a new one)"
                    )
                index = self.model.sweep_names.index(str(sweep))
                out += self.flat("sweep_effect")[:, index, None]
            elif noise:  # a new sweep: its own shared deviation
                out += (self.flat("tau_sweep") * rng.standard_normal(shape[0]))[:, None]
        elif sweep is not None:
            raise ValueError(f"this fit has no sweep column but sweep {sweep!r} was given")
        beyond = self.beyond_data(values, codes) if self.model.discrepancy else None
        if beyond is not None and np.any(beyond > 0):  # inside the data: nothing to add
            # one standard normal per draw: the law bends smoothly, not target by target
            out += (self.flat("kappa") * rng.standard_normal(shape[0]))[:, None] * beyond[None, :]
        return out + self.drift_offset(values, codes)

    def drift_offset(self, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray:
        """The learned drift on log loss per draw and target, ``(draws, targets)``.

        ``drift * max(0, log C - log C_max) + drift_ratio * max(0, log M - log M_max)``
        (:mod:`bayescale.model.drift`); zeros inside the data and for fits without drift.
        """
        size = len(np.atleast_1d(next(iter(values.values()))))
        n = self.n_chains * self.n_draws
        out = np.zeros((n, size))
        if "drift" in self.model.drift:
            out += self.flat("drift")[:, None] * self.beyond_data(values, codes)[None, :]
        if "drift_ratio" in self.model.drift:
            out += self.flat("drift_ratio")[:, None] * self.beyond_ratio(values, codes)[None, :]
        return out

    def beyond_ratio(self, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray:
        """Log-distance of targets beyond the largest fitted tokens per parameter, ``max(0,
        log M - log M_max)`` with M = D/N (zeros when the fit has no ratio edge).

        Example:
            >>> fit.beyond_ratio({"params": np.array([1e9]), "tokens": np.array([6.4e11])})  # doctest: +SKIP
            array([3.47])
        """
        frontier = self.model.frontier
        values = dict(values)
        fpt = float(self.info.get("flops_per_token", 6.0))
        if (
            values.get("tokens") is None
            and values.get("params") is not None
            and values.get("compute") is not None
        ):
            values["tokens"] = np.asarray(values["compute"]) / (fpt * np.asarray(values["params"]))
        size = len(np.atleast_1d(next(iter(values.values()))))
        if "ratio" not in frontier or values.get("params") is None or values.get("tokens") is None:
            return np.zeros(size)
        edge = self._edges("ratio", codes, size)
        ratio = np.log(np.broadcast_to(np.asarray(values["tokens"], np.float64), (size,)))
        ratio = ratio - np.log(np.broadcast_to(np.asarray(values["params"], np.float64), (size,)))
        return np.maximum(0.0, ratio - edge)

    def _edges(self, name: str, codes, size: int) -> np.ndarray:
        """The data's edge along ``name`` per target: its group's own for grouped fits."""
        frontier = self.model.frontier
        if codes is None or not self.model.grouped:
            return np.full(size, frontier[name])
        groups = [self.group_names[c] for c in np.broadcast_to(codes, (size,))]
        return np.array([frontier.get(f"{name}[{g}]", frontier[name]) for g in groups])

    def beyond_data(self, values: Mapping[str, np.ndarray], codes=None) -> np.ndarray:
        """Log-distance of targets beyond the largest observed compute, ``max(0, log C/C_max)``.

        Laws without compute use the sum of the log-distances of their inputs. With group
        ``codes`` (grouped fits), each target is measured from its own group's edge.

        Example:
            >>> fit.beyond_data({"params": np.array([7e10]), "tokens": np.array([1.4e12])})  # doctest: +SKIP
            array([4.6])
        """
        frontier = self.model.frontier
        fpt = float(self.info.get("flops_per_token", 6.0))
        values = dict(values)
        values = {k: v for k, v in values.items() if v is not None}
        if values.get("compute") is None and "params" in values and "tokens" in values:
            values["compute"] = fpt * np.asarray(values["params"]) * np.asarray(values["tokens"])
        size = len(np.atleast_1d(next(iter(values.values()))))

        def edge(name: str) -> np.ndarray:
            return self._edges(name, codes, size)

        def log(name: str) -> np.ndarray:
            return np.log(np.broadcast_to(np.asarray(values[name], np.float64), (size,)))

        if values.get("compute") is not None and "compute" in frontier:
            return np.maximum(0.0, log("compute") - edge("compute"))
        out = np.zeros(size)
        for name in values:
            if name in frontier and values[name] is not None:
                out += np.maximum(0.0, log(name) - edge(name))
        return out

    def check(self, warn: bool = True):
        """Can the law describe the data? PSIS-LOO Pareto k and a check of the largest runs.

        Separate from :attr:`diagnostics` (which judge the sampler): see
        :func:`bayescale.posterior.model_check.check_fit`. Warns :class:`ModelCheckWarning` when not ok.

        Example:
            >>> fit.check().ok   # doctest: +SKIP
            True
        """
        from .model_check import check_fit

        return check_fit(self, warn=warn)

    def interval(self, prob: float = 0.95, **target) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` of the predictive interval; see :meth:`predict`."""
        p = self.predict(prob=prob, **target)
        return p.lower, p.upper

    # ------------------------------------------------------------------ likelihood
    def loss_runs(self) -> np.ndarray:
        """Boolean mask of the runs whose loss informs the law (all, unless ``loss_mask``)."""
        mask = self.info.get("loss_mask")
        return np.ones(self.runs.n_runs, bool) if mask is None else np.asarray(mask, bool)

    def log_likelihood(self) -> np.ndarray:
        """Pointwise log-likelihood of the observed log losses: ``(chains, draws, runs)``.

        Only runs whose loss entered the likelihood count (see ``loss_mask`` in
        :func:`~bayescale.inference.fitting.fit`), so PSIS-LOO compares like with like.
        """
        values = {k: self.runs.input(k) for k in self.law.inputs}
        codes = self.runs.group if self.model.grouped else np.zeros(self.runs.n_runs, np.int32)
        log_mu = self.log_loss_draws(values, codes)
        if self.model.n_sweeps:  # observed runs sit in known sweeps
            log_mu = log_mu + self.flat("sweep_effect")[:, self.model.sweep_codes(self.runs)]
        flat = {n: self.flat(n) for n in self.model.noise_sites}
        t = self.model.theta_for_rows(flat, codes, list(flat))
        y = np.log(self.runs.loss)[None, :]
        ll = _log_density(y, log_mu, t["sigma"], t.get("nu"))
        ll = np.broadcast_to(ll, log_mu.shape)[:, self.loss_runs()]
        return ll.reshape(self.n_chains, self.n_draws, -1)

    # ------------------------------------------------------------------ arviz / files
    def to_datatree(self, log_likelihood: bool | None = None):
        """ArviZ DataTree with posterior, sample_stats, log_likelihood and observed data.

        Built with ``arviz_base`` (the data layer of ArviZ 1.x): ``import arviz`` also
        imports arviz-stats and arviz-plots, ~1.8 s that ``bayescale fit --out`` spent
        before writing a file.

        Args:
            log_likelihood: include the pointwise log-likelihood (draws x runs) for
                ArviZ's LOO. ``None`` (default) includes it up to
                :data:`LOGLIK_MAX_VALUES` values (a fit of 250 runs with 4000 draws);
                beyond that it would dominate memory and the file (320 MB at 10,000
                runs), and :meth:`log_likelihood` computes it on demand.

        Example:
            >>> tree = fit.to_datatree()          # doctest: +SKIP
            >>> sorted(tree.children)[:3]         # doctest: +SKIP
            ['bayescale_samples', 'constant_data', 'log_likelihood']
        """
        from arviz_base import from_dict

        from .fitfile import end_dataset

        n_values = self.n_chains * self.n_draws * int(np.sum(self.loss_runs()))
        with_loglik = n_values <= LOGLIK_MAX_VALUES if log_likelihood is None else log_likelihood

        posterior, dims = {}, {}
        for name, value in self.reported().items():
            posterior[name] = value
            if value.ndim == 3:
                dims[name] = ["group"]
        runs_dim = ["run"]
        informing = self.loss_runs()
        data = {
            "posterior": posterior,
            "sample_stats": {
                "diverging": self.stats["diverging"],
                "energy": self.stats["energy"],
                "n_steps": self.stats.get("n_steps", np.zeros_like(self.stats["energy"])),
            },
            "observed_data": {"log_loss": np.log(self.runs.loss[informing])},
            "constant_data": self._constant_data(),
        }
        if with_loglik:
            data["log_likelihood"] = {"log_loss": self.log_likelihood()}
        # runs left out of the loss likelihood (loss_mask) have no pointwise log-likelihood
        dims.update({"log_loss": ["loss_run"]})
        for name in data["constant_data"]:
            dims[name] = runs_dim
        rows = np.asarray(self.runs.rows).astype(str)
        coords = {"run": rows, "loss_run": rows[informing], "group": list(self.group_names)}
        tree = from_dict(data, dims=dims, coords=coords)
        internal = {}
        for name, value in self.samples.items():
            internal[name] = value
        from xarray import DataTree

        tree["bayescale_samples"] = DataTree(
            from_dict({"posterior": internal})["posterior"].to_dataset()
        )
        if self.sampler_end is not None:  # where each chain ended: a later warm start
            tree["bayescale_sampler_end"] = DataTree(end_dataset(self.sampler_end))
        record = self._record()
        record["groups"] = sorted(str(g) for g in tree.children)
        if not with_loglik:
            record["log_likelihood"] = "not stored: Fit.log_likelihood() computes it"
        tree.attrs["bayescale"] = json.dumps(record)
        return tree

    def _constant_data(self) -> dict[str, np.ndarray]:
        out = {"loss": self.runs.loss}
        for name in ("params", "tokens", "compute", "downstream"):
            value = getattr(self.runs, name)
            if value is not None:
                out[name] = value
        for name, value in self.runs.inputs.items():
            out[f"input_{name}"] = value
        if self.runs.group is not None:
            out["group_code"] = self.runs.group
        if getattr(self.runs, "sweep", None) is not None:
            out["sweep_code"] = self.runs.sweep
        return out

    def _record(self) -> dict:
        spec = self.spec
        import platform
        from importlib.metadata import version

        import jax
        import xarray

        from .._jax import numpyro_version
        from .fitfile import FILE_FORMAT

        return {
            "format": FILE_FORMAT,
            "bayescale_version": _version(),
            "versions": {
                "jax": jax.__version__,
                # from the installed metadata: neither is otherwise imported to write a fit
                "numpyro": numpyro_version(),
                "numpy": np.__version__,
                "arviz": version("arviz"),
                "xarray": xarray.__version__,
                "python": platform.python_version(),
            },
            "law": spec.law.name,
            "law_options": dict(spec.law.options),
            "spec_name": spec.name,
            "spec_path": spec.path,
            "citation": spec.citation,
            "priors": {k: str(v) for k, v in self.model.priors.items()},
            "spec_priors": {k: str(v) for k, v in spec.priors.items()},
            "likelihood": spec.likelihood,
            "pooling": spec.pooling,
            "downstream": spec.downstream,
            "group_names": list(self.model.group_names),
            "sweep_names": list(getattr(self.runs, "sweep_names", ()) or ()),
            "model_sweep_names": list(self.model.sweep_names),
            "discrepancy": bool(self.model.discrepancy),
            "drift": list(self.model.drift),
            "frontier": dict(self.model.frontier),
            "log_ref": dict(self.model.log_ref),
            "columns": dict(self.runs.columns),
            "inputs": list(self.runs.inputs),
            "rows": [str(r) for r in self.runs.rows],
            "data_hash": self.runs.data_hash(),
            "info": self.info,
        }

    def to_netcdf(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the fit to netCDF atomically, with a checksum; refuse to overwrite unless
        asked. See :func:`bayescale.posterior.fitfile.write_fit`."""
        from .fitfile import write_fit

        return write_fit(self, path, overwrite=overwrite)


def _log_density(y, loc, scale, df=None) -> np.ndarray:
    """Normal (``df`` None) or Student-t log density of ``y``, elementwise (broadcast).

    The same values as ``scipy.stats.norm/t.logpdf``, without importing scipy.stats
    (~0.9 s), which every ``bayescale fit --out`` paid for its pointwise log-likelihood.
    """
    z = (np.asarray(y) - loc) / scale
    if df is None:
        return -0.5 * z**2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
    from scipy.special import gammaln  # light (~0.1 s with numpy already in)

    df = np.asarray(df, float)
    return (
        gammaln(0.5 * (df + 1.0))
        - gammaln(0.5 * df)
        - 0.5 * np.log(df * np.pi)
        - np.log(scale)
        - 0.5 * (df + 1.0) * np.log1p(z**2 / df)
    )


def _ebfmi(energy: np.ndarray | None) -> float:
    if energy is None or energy.shape[-1] < 3:
        return float("nan")
    num = np.mean(np.diff(energy, axis=-1) ** 2, axis=-1)
    den = np.var(energy, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.min(num / den))


def load_fit(path: str | Path) -> Fit:
    """Load a fit written by :meth:`Fit.to_netcdf`; see :func:`bayescale.posterior.fitfile.load_fit`."""
    from .fitfile import load_fit as _load

    return _load(path)
