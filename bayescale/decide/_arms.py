"""Arms of a decision: which posterior draws of which fit and group, and how they pair.

A decision compares *arms* (architectures, data mixes, recipes). They come either from
one grouped :class:`~bayescale.posterior.Fit` (arms = groups) or from several fits
(``{"llama": fit_a, "xlstm": fit_b}``). Every arm exposes its draws in a common order of
``S = chains * draws`` joint draws:

* **paired** (one fit with ``pooling="shared"`` or ``"partial"``): draw ``s`` of every arm is
  the same joint posterior draw, so shared exponents cancel in differences;
* **unpaired** (``pooling="none"``, where the joint posterior factorises, or separate fits):
  each arm after the first is re-paired at random. The random pairing keeps each chain's
  order (chains are shuffled and every chain is rotated by a random offset) rather than
  scattering single draws, so per-draw functions of several arms keep the autocorrelation
  that an ESS-based Monte Carlo error needs.

Example:
    >>> arm_set = resolve_arms(fit)                   # doctest: +SKIP
    >>> [a.name for a in arm_set.arms], arm_set.paired  # doctest: +SKIP
    (['llama', 'mlstm'], True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches

import numpy as np

__all__ = ["R_HAT_GATE", "Arm", "ArmSet", "resolve_arms"]

#: The decision gate: chains must agree this well and there must be no divergences.
R_HAT_GATE = 1.01


def _unknown(kind: str, name: str, known: Sequence[str]) -> ValueError:
    hint = get_close_matches(str(name), list(known), n=1)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    return ValueError(f"unknown {kind} {str(name)!r}{extra} Arms: {', '.join(known)}")


@dataclass
class Arm:
    """One arm: a fit, its group (None when ungrouped) and the order of its draws.

    Attributes:
        name: the arm's name in results.
        fit: the :class:`~bayescale.posterior.Fit` holding its posterior.
        group: the group in ``fit`` (None for an ungrouped fit).
        order: ``(S,)`` indices into the fit's flattened draws (the pairing).
    """

    name: str
    fit: object
    group: str | None
    order: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)
    #: named inputs held fixed at the target, natural scale (``{"U": 5e9}``)
    at: dict = field(default_factory=dict)

    @property
    def code(self) -> int:
        return 0 if self.group is None else self.fit.group_names.index(self.group)

    @property
    def law(self):
        return self.fit.law

    @property
    def flops_per_token(self) -> float:
        return float(self.fit.info.get("flops_per_token", 6.0))

    def sites(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-draw values of sampled sites for this arm, ``(S,)`` each, in pairing order."""
        missing = [n for n in names if n not in self._cache]
        if missing:
            flat = {n: self.fit.flat(n) for n in missing}
            codes = np.asarray([self.code], np.int32)
            theta = self.fit.model.theta_for_rows(flat, codes, missing)
            for n in missing:
                self._cache[n] = np.asarray(theta[n], np.float64)[:, 0][self.order]
        return {n: self._cache[n] for n in names}

    def has_site(self, name: str) -> bool:
        return name in self.fit.samples

    def law_log_loss(self, log_values: Mapping[str, np.ndarray], draws=None) -> np.ndarray:
        """Noise-free log loss of the law at natural-log inputs.

        Args:
            log_values: ``{input: log value}`` broadcastable to ``(S, M)`` (or ``(len(draws),
                M)`` when ``draws`` selects a subset).
            draws: optional indices of a subset of the ``S`` draws.
        """
        names = self.law.parameter_names
        theta = self.sites(names)
        if draws is not None:
            theta = {k: v[draws] for k, v in theta.items()}
        log_ref = self.fit.model.log_ref
        log_values = {**{k: np.log(v) for k, v in self.at.items()}, **log_values}
        missing = [k for k in self.law.inputs if k not in log_values]
        if missing:
            raise ValueError(
                f"law {self.law.name!r} needs {' and '.join(missing)} at the target (give "
                + ", ".join(f"--at {k}=VALUE" for k in missing)
                + ")"
            )
        x = {
            k: np.asarray(log_values[k], np.float64) - log_ref.get(k, 0.0) for k in self.law.inputs
        }
        # numpy in, numpy out (bayescale.laws.base._xp): no op-by-op JAX compiles
        theta = {k: np.asarray(v, np.float64)[:, None] for k, v in theta.items()}
        return np.asarray(self.law.log_loss(theta, x), np.float64)

    # ------------------------------------------------------------------ frontier
    def allocates(self) -> bool:
        """Whether the law has an N/D split to optimise (else it is a law of compute)."""
        return {"params", "tokens"} <= set(self.law.inputs)

    def frontier_log_params(self, compute: np.ndarray) -> np.ndarray:
        """``log N_opt`` per draw and budget, ``(S, M)``, via :mod:`bayescale.allocate`."""
        from ..allocate.optimum import optimal_log_params

        if self.at or set(self.law.inputs) - {"params", "tokens", "compute"}:
            from ..allocate.constrained import constrained_optimal  # named inputs held at self.at

            alloc = constrained_optimal(
                self.fit, np.asarray(compute, np.float64), self.at, self.group, unlimited=False
            )
            return np.log(alloc.params)[self.order]
        log_n, _ = optimal_log_params(self.fit, np.asarray(compute, np.float64), self.group)
        return log_n[self.order]

    def frontier_log_loss(
        self, log_compute: np.ndarray, log_params: np.ndarray | None = None, draws=None
    ) -> np.ndarray:
        """Log loss along the compute-optimal frontier at (per-draw) log budgets.

        ``log_params`` gives ``log N_opt`` at those budgets (e.g. interpolated from
        :meth:`frontier_log_params` on a grid); laws of compute alone ignore it.
        """
        if self.allocates():
            log_tokens = log_compute - math.log(self.flops_per_token) - log_params
            return self.law_log_loss({"params": log_params, "tokens": log_tokens}, draws)
        if tuple(self.law.inputs) == ("compute",):
            return self.law_log_loss({"compute": log_compute}, draws)
        raise ValueError(
            f"law {self.law.name!r} depends on {', '.join(self.law.inputs)} only: a compute "
            "target needs a law of params and tokens (or of compute); give params and tokens"
        )

    def observed_compute(self) -> np.ndarray:
        """Training compute of this arm's observed runs."""
        runs = self.fit.runs
        compute = getattr(runs, "compute", None)
        if compute is None:
            return np.zeros(0)
        compute = np.asarray(compute, np.float64)
        if self.group is not None and runs.group is not None:
            names = np.asarray(runs.group_names, dtype=object)[np.asarray(runs.group)]
            compute = compute[names == self.group]
        return compute[np.isfinite(compute)]


@dataclass
class ArmSet:
    """The arms of one decision and how their draws pair.

    Attributes:
        arms: the arms, in the order results report them.
        paired: True when draw ``s`` of every arm is one joint posterior draw.
        chains, draws: the ``(chains, draws)`` layout of the ``S`` joint draws (for ESS).
        fits: the distinct fits involved, by a display name.
        source: the original source (a Fit or a mapping), to build more arms from it.
    """

    arms: list[Arm]
    paired: bool
    chains: int
    draws: int
    fits: dict[str, object]
    source: object = None
    seed: int = 0

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.arms]

    @property
    def n_draws(self) -> int:
        return self.chains * self.draws

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == str(name):
                return a
        return self.extra_arm(name)

    def extra_arm(self, name: str) -> Arm:
        """An arm of the source outside the decision (e.g. a candidate run's group)."""
        entries = {e[0]: e for e in _entries(self.source)}
        if str(name) not in entries:
            raise _unknown("arm", name, list(entries))
        _, fit, group = entries[str(name)]
        base = _base_order(fit, self.chains, self.draws)
        if not self.paired:  # a fresh random pairing, unrelated to the decision arms
            rng = np.random.default_rng([self.seed, 7919, len(self.arms)])
            base = base[_block_order(self.chains, self.draws, rng)]
        return Arm(str(name), fit, group, base)

    def diagnostics(self) -> dict:
        """The fit's ``diagnostics.to_dict()``; one entry per fit when there are several."""
        if len(self.fits) == 1:
            return next(iter(self.fits.values())).diagnostics.to_dict()
        return {name: fit.diagnostics.to_dict() for name, fit in self.fits.items()}

    def gate(self) -> str | None:
        """None when every fit passes the decision gate, else what is wrong (one line)."""
        problems = []
        for name, fit in self.fits.items():
            d = fit.diagnostics
            bad = []
            if not (d.max_r_hat <= R_HAT_GATE):
                bad.append(f"max R-hat {d.max_r_hat:.3f} > {R_HAT_GATE}")
            if d.divergences:
                bad.append(f"{int(d.divergences)} divergent transitions")
            if bad:
                prefix = "" if len(self.fits) == 1 else f"fit {name!r}: "
                problems.append(prefix + ", ".join(bad))
        if not problems:
            return None
        return (
            "the fit fails the decision gate (R-hat <= 1.01, no divergences): "
            + "; ".join(problems)
            + "; do not act on this recommendation before refitting (more warmup and "
            "draws, tighter priors, higher target_accept)"
        )


def _block_order(chains: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """A random pairing that keeps each chain's order: shuffle chains, rotate each."""
    out = []
    for chain in rng.permutation(chains):
        shift = int(rng.integers(draws))
        out.append(chain * draws + (np.arange(draws) + shift) % draws)
    return np.concatenate(out)


def _is_fit(value) -> bool:
    return hasattr(value, "log_loss_draws") and hasattr(value, "diagnostics")


def _base_order(fit, chains: int, draws: int) -> np.ndarray:
    """The first ``chains`` chains and the last ``draws`` draws of a fit: a common layout."""
    return np.concatenate(
        [c * fit.n_draws + np.arange(fit.n_draws - draws, fit.n_draws) for c in range(chains)]
    )


def _entries(source) -> list[tuple[str, object, str | None]]:
    """``(arm name, fit, group)`` for every arm the source offers, validated."""
    entries: list[tuple[str, object, str | None]] = []
    if isinstance(source, Mapping):
        for name, value in source.items():
            fit, group = value if isinstance(value, tuple) else (value, None)
            if not _is_fit(fit):
                raise ValueError(
                    f"arm {name!r} must be a Fit or a (Fit, group) pair but got "
                    f"{type(fit).__name__}"
                )
            if group is None and fit.model.grouped:
                raise ValueError(
                    f"arm {name!r} is a grouped fit: give it as ({name!r}: (fit, GROUP)), "
                    f"GROUP one of {', '.join(fit.group_names)}"
                )
            if group is not None:
                fit._group_codes(str(group), 1)  # validates the name (did-you-mean)
                group = str(group)
            entries.append((str(name), fit, group))
    elif _is_fit(source):
        if not source.model.grouped:
            raise ValueError(
                "a decision needs arms: a grouped fit (fit with group=COLUMN / --group COL, "
                "one group per arm) or several fits {name: fit}; this fit has no groups"
            )
        entries = [(g, source, g) for g in source.group_names]
    else:
        raise ValueError(
            f"source must be a grouped Fit or a mapping of arm names to fits but got "
            f"{type(source).__name__}"
        )
    return entries


def resolve_arms(
    source,
    arms: Sequence[str] | None = None,
    seed: int = 0,
    min_arms: int = 2,
    paired: bool | None = None,
    at: Mapping[str, float] | None = None,
):
    """The :class:`ArmSet` of a decision.

    Args:
        source: a grouped Fit (arms = its groups), or a mapping ``name -> Fit`` (ungrouped
            fits) or ``name -> (Fit, group)``.
        arms: a subset of arm names (default: all).
        seed: seed of the random pairing of unpaired arms.
        min_arms: the fewest arms the decision needs.
        paired: None (default) pairs whenever the arms share one joint posterior; False
            re-pairs at random even then (to see what pairing buys); True demands pairing.
        at: named inputs of the target, ``{"U": 5e9}``; every arm's law gets them (each
            named input its law reads must be given).

    Raises:
        ValueError: an ungrouped fit, an unknown arm (with "did you mean"), too few arms.

    Example:
        >>> resolve_arms({"a": fit_a, "b": fit_b}).paired   # doctest: +SKIP
        False
    """
    entries = _entries(source)
    names = [e[0] for e in entries]
    if arms is not None:
        arms = [str(a) for a in arms]
        for a in arms:
            if a not in names:
                raise _unknown("arm", a, names)
        if len(set(arms)) != len(arms):
            raise ValueError(f"arms must be distinct but got {', '.join(arms)}")
        entries = [next(e for e in entries if e[0] == a) for a in arms]
    if len(entries) < min_arms:
        raise ValueError(
            f"a decision needs at least {min_arms} arms but got {len(entries)}"
            + (f" ({', '.join(e[0] for e in entries)})" if entries else "")
        )
    fits = {}
    for name, fit, _ in entries:
        if all(fit is not f for f in fits.values()):
            fits[name if len({id(e[1]) for e in entries}) > 1 else "fit"] = fit
    single = len(fits) == 1
    fit0 = entries[0][1]
    joint = single and fit0.model.grouped and fit0.spec.pooling in ("shared", "partial")
    if paired and not joint:
        raise ValueError(
            "paired=True needs arms from one grouped fit with pooling 'shared' or 'partial' "
            "(one joint posterior); these arms' posteriors are independent"
        )
    paired = joint if paired is None else bool(paired)
    chains = min(f.n_chains for f in fits.values())
    draws = min(f.n_draws for f in fits.values())
    rng = np.random.default_rng([int(seed), 104729])
    if at or any(set(f.law.inputs) - {"params", "tokens", "compute"} for f in fits.values()):
        from ..allocate.constrained import _check_at

        at = {name: _check_at(fit, at, "at the target") for name, fit in fits.items()}
        at = next(iter(at.values()))
    built = []
    for i, (name, fit, group) in enumerate(entries):
        base = _base_order(fit, chains, draws)
        if not paired and i > 0:
            base = base[_block_order(chains, draws, rng)]
        built.append(Arm(name, fit, group, base, at=dict(at or {})))
    return ArmSet(built, bool(paired), chains, draws, fits, source, int(seed))
