r"""Scaling laws as pure ``jax.numpy`` functions of centred log-inputs.

Every law maps sampled parameters ``theta`` and centred log-inputs
``x[input] = log(input) - log(input_ref)`` to the log of the predicted loss, using a
max-shifted ``logsumexp`` so that sums of power-law terms never under- or overflow. Centring at the
data's reference scale (the geometric mean of each input) turns a coefficient such as
Chinchilla's ``A`` into the log-size of its term at the reference model,
``log_N_term = log A - alpha * log N_ref``, which decorrelates it from the exponent and
makes NUTS's job easy. Reported parameters (``E``, ``A``, ``alpha``, ...) are on the
natural scale of the papers.

Laws are broadcasting-friendly: ``theta`` values may be scalars, per-run vectors, or
``(draws, runs)`` matrices.

This module holds the :class:`Law`, :class:`Parameter` and :class:`DataSummary` classes and
the helpers every law builder shares (default priors, the max-shifted ``logsumexp``,
Chinchilla's reported scale); the laws themselves are in :mod:`bayescale.laws.builtin` and
:mod:`bayescale.laws.covariate`, their registry in :mod:`bayescale.laws.core`.

Example:
    >>> from bayescale.laws import get_law
    >>> law = get_law("chinchilla")
    >>> law.reported_names
    ('E', 'A', 'B', 'alpha', 'beta')
    >>> truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    >>> round(float(law.loss(truth, params=70e9, tokens=1.4e12)), 4)
    1.9367
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .._util import short_repr
from .priors import Prior

__all__ = [
    "INPUTS",
    "DataSummary",
    "Law",
    "Parameter",
    "law_uses_reference",
    "reference_scale",
]

INPUTS = ("params", "tokens", "compute")


@dataclass(frozen=True)
class DataSummary:
    """What default priors may know about the data.

    Attributes:
        min_loss, median_loss, max_loss: over all runs.
        log_ref: log reference scale per input (geometric mean of the runs).
    """

    min_loss: float
    median_loss: float
    max_loss: float
    log_ref: Mapping[str, float]

    @classmethod
    def from_arrays(cls, loss: np.ndarray, inputs: Mapping[str, np.ndarray]) -> DataSummary:
        loss = np.asarray(loss, dtype=np.float64)
        log_ref = {k: float(np.mean(np.log(np.asarray(v, np.float64)))) for k, v in inputs.items()}
        return cls(float(loss.min()), float(np.median(loss)), float(loss.max()), log_ref)


PriorRule = Prior | Callable[[DataSummary], Prior]


@dataclass(frozen=True)
class Parameter:
    """A sampled parameter of a law.

    Attributes:
        name: sample-site name (what priors are keyed by).
        role: ``exponent`` (shared or hierarchical under pooling), ``floor``
            (irreducible loss), ``coefficient`` or ``shape``.
        prior: a :class:`Prior` or a function of :class:`DataSummary` giving one.
        doc: one line on meaning and default prior.
    """

    name: str
    role: str
    prior: PriorRule
    doc: str = ""

    def default_prior(self, summary: DataSummary) -> Prior:
        return self.prior if isinstance(self.prior, Prior) else self.prior(summary)


@dataclass(frozen=True)
class Law:
    """A scaling law: inputs, parameters, log-space function, natural-scale report.

    Attributes:
        name: registry name (``chinchilla``, ``kaplan_n``, ...).
        inputs: the inputs it reads: ``params``/``tokens``/``compute`` and named inputs
            (``U``), which the runs carry in :attr:`~bayescale.data.runs.Runs.inputs`.
        parameters: sampled parameters with roles and default priors.
        log_loss_fn: ``(theta, x) -> log loss`` with ``x`` centred log-inputs.
        to_reported: ``(theta, log_ref) -> {reported name: value}`` (natural scale).
        from_reported: inverse of ``to_reported``.
        reported_names: names in summaries and JSON (DESIGN.md contract).
        formula, citation: for printed models and reports.
        options: law options (``k`` for bnsl, ``irreducible`` for Kaplan laws).
        shared_ref: ``((input, other), ...)``: centre ``input`` at ``other``'s reference
            (``U`` at tokens', so that the law may compare U with D in centred log space);
            ``other = ""`` leaves ``input`` uncentred (``clark2022`` reads E - 1).
        check: ``check(runs)``, called before a fit: warns about runs the law reads
            oddly (``muennighoff2023``: D/U < 1) or raises for runs it cannot read.
        floors: ``((input, lowest, why), ...)``: the least value of an input the law is
            defined at (``clark2022``: E >= 1), checked for targets (:meth:`check_inputs`).
        noise: ``((site, prior), ...)``: default noise priors that replace the loss laws'
            (``lr_opt``: an optimal learning rate read off a sweep scatters by ~10%).
        response: ``(low, high, what)``: the range of the response (the loss column) for a
            law of something else than a loss (``batch_opt``: batch sizes up to 1e12).
    """

    name: str
    inputs: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    log_loss_fn: Callable
    to_reported: Callable
    from_reported: Callable
    reported_names: tuple[str, ...]
    formula: str = ""
    citation: str = ""
    options: tuple[tuple[str, object], ...] = field(default_factory=tuple)
    shared_ref: tuple[tuple[str, str], ...] = ()
    check: Callable | None = None
    floors: tuple[tuple[str, float, str], ...] = ()
    noise: tuple[tuple[str, Prior], ...] = ()
    response: tuple[float, float, str] = ()

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def log_loss(self, theta: Mapping, x: Mapping):
        """Log loss from sampled parameters and centred log-inputs."""
        return self.log_loss_fn(theta, x)

    def default_priors(self, summary: DataSummary) -> dict[str, Prior]:
        return {p.name: p.default_prior(summary) for p in self.parameters}

    def loss(self, reported: Mapping[str, float], **inputs) -> np.ndarray:
        """Loss on the natural scale from reported parameters (no centring).

        Example:
            >>> from bayescale.laws import get_law
            >>> get_law("kaplan_n").loss({"N_c": 8.8e13, "alpha_N": 0.076}, params=1e9)
            array(2.37...)
        """
        import jax.numpy as jnp

        missing = [k for k in self.inputs if inputs.get(k) is None]
        if missing:
            raise ValueError(f"law {self.name!r} needs inputs {', '.join(missing)}")
        theta = self.from_reported(dict(reported), dict.fromkeys(self.inputs, 0.0))
        # XLA's exp/log on purpose (jax arrays in): simulate_ladder draws its data through
        # here, and a seeded ladder must stay the same ladder, to the last bit
        x = {k: jnp.log(jnp.asarray(inputs[k], dtype=float)) for k in self.inputs}
        return np.asarray(jnp.exp(self.log_loss_fn(theta, x)))

    def describe(self) -> str:
        return f"{self.name}: {self.formula}"

    def check_inputs(self, values: Mapping[str, object], what: str = "to predict") -> None:
        """One-line ``ValueError`` for an input below the law's floor (``E < 1``)."""
        for name, lowest, why in self.floors:
            if values.get(name) is None:
                continue
            v = np.atleast_1d(np.asarray(values[name], np.float64))
            if np.any(v < lowest):
                raise ValueError(
                    f"law {self.name!r}: {name} must be >= {lowest:g} {what} ({why}) but got "
                    f"{short_repr(v.tolist() if v.size > 1 else float(v[0]))}"
                )


def law_uses_reference(law: Law) -> bool:
    """Custom laws see uncentred log-inputs (their reference scale is 0)."""
    return dict(law.options).get("custom") is not True


def reference_scale(law: Law, log_ref: Mapping[str, float]) -> dict[str, float]:
    """The reference (centring) scale of each input: the data's, then ``law.shared_ref``."""
    out = dict(log_ref) if law_uses_reference(law) else dict.fromkeys(law.inputs, 0.0)
    for name, other in law.shared_ref:
        out[name] = out[other] if other else 0.0
    return out


# --------------------------------------------------------------------------- priors


def _floor_prior(s: DataSummary) -> Prior:
    """E, the loss of an infinite model on infinite data: below every observed loss, and a
    sizeable part of it. ``TruncatedNormal(0.55 m, 0.3 m)`` on ``(0, m)``, m the smallest
    loss: fits of every ladder in the data folder put E at 0.51-0.91 of the smallest loss
    they fit (Chinchilla's 245 points: 0.87), lower the farther a small ladder is from its
    floor; the prior is wide (at E -> 0 its density is a fifth of its peak). A ladder that
    cannot pin E down (one isoFLOP budget, 5 runs for 4 parameters) otherwise runs down a
    ridge to E -> 0 with an exponent near 0, which NUTS crossed with divergences (under the
    former ``Uniform(0, m)``) and which extrapolates like a law without a floor.
    """
    m = round(s.min_loss, 6)
    return Prior(
        "TruncatedNormal",
        {"mu": round(0.55 * m, 6), "sigma": round(0.3 * m, 6), "low": 0.0, "high": m},
    )


def _exponent_prior(mu: float = 0.3, sigma: float = 0.3) -> Prior:
    return Prior("TruncatedNormal", {"mu": mu, "sigma": sigma, "low": 0.0, "high": 1.5})


def _term_prior(fraction: float = 0.25, sigma: float = 1.5) -> Callable[[DataSummary], Prior]:
    # log of a term at the reference size: a fraction of the typical loss, +- sigma nats.
    def rule(s: DataSummary) -> Prior:
        return Prior("Normal", {"mu": round(math.log(fraction * s.median_loss), 4), "sigma": sigma})

    return rule


def _xp(*values):
    """``jax.numpy`` when any value is a JAX array (or tracer), else ``numpy``.

    The model traces the laws with JAX; posterior draws are evaluated with numpy, where
    op-by-op ``jax.numpy`` compiled each operation on first use (~0.6 s of 14 compiles in
    every process that predicted or wrote a fit).
    """
    import jax

    if any(isinstance(v, jax.Array) for v in values):
        import jax.numpy as jnp

        return jnp
    return np


def _lae(*terms):
    """``log(sum(exp(terms)))`` of broadcastable terms, shifted by their maximum.

    One ``log`` and one ``exp`` per term: chained ``jnp.logaddexp`` spent a ``log1p``
    per pair plus its NaN guards and custom derivative, which made the potential's
    gradient on 245 Chinchilla runs 2.1x slower (16.9 vs 7.9 us per evaluation).
    """
    xp = _xp(*terms)
    terms = xp.broadcast_arrays(*terms)
    top = terms[0]
    for term in terms[1:]:
        top = xp.maximum(top, term)
    # all terms -inf (or one +inf) must not make the shift inf - inf = nan
    top = xp.where(xp.isfinite(top), top, 0.0)
    if xp is not np:  # the shift is a constant for the derivative (as in jax.nn.logsumexp)
        import jax

        top = jax.lax.stop_gradient(top)
    with np.errstate(divide="ignore", over="ignore"):
        return top + xp.log(sum(xp.exp(term - top) for term in terms))


def _log(v):
    with np.errstate(divide="ignore"):
        return _xp(v).log(v)


# --------------------------------------------------------------------------- Chinchilla's scale


def _chinchilla_to_reported(t, ref):
    """E, A, B, alpha, beta on the paper's scale from the sampled log-terms at ``ref``."""
    return {
        "E": t["E"],
        "A": np.exp(t["log_N_term"] + t["alpha"] * ref["params"]),
        "B": np.exp(t["log_D_term"] + t["beta"] * ref["tokens"]),
        "alpha": t["alpha"],
        "beta": t["beta"],
    }


def _chinchilla_from_reported(r, ref):
    """The inverse of :func:`_chinchilla_to_reported`."""
    return {
        "E": r["E"],
        "alpha": r["alpha"],
        "beta": r["beta"],
        "log_N_term": np.log(r["A"]) - r["alpha"] * ref["params"],
        "log_D_term": np.log(r["B"]) - r["beta"] * ref["tokens"],
    }
