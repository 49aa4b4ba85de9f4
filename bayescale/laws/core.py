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

Example:
    >>> law = get_law("chinchilla")
    >>> law.reported_names
    ('E', 'A', 'B', 'alpha', 'beta')
    >>> truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    >>> round(float(law.loss(truth, params=70e9, tokens=1.4e12)), 4)
    1.9367
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .._util import did_you_mean, short_repr
from .priors import Prior, parse_prior

__all__ = [
    "INPUTS",
    "DataSummary",
    "Law",
    "Parameter",
    "custom_law",
    "get_law",
    "list_laws",
    "register_law",
]

INPUTS = ("params", "tokens", "compute")
#: most breaks a bnsl law takes (each break adds 3 parameters)
_MAX_BREAKS = 20
_SYMBOL = {"params": "N", "tokens": "D", "compute": "C"}


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


# --------------------------------------------------------------------------- laws


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


def _chinchilla() -> Law:
    def log_loss(t, x):
        return _lae(
            _log(t["E"]),
            t["log_N_term"] - t["alpha"] * x["params"],
            t["log_D_term"] - t["beta"] * x["tokens"],
        )

    return Law(
        "chinchilla",
        ("params", "tokens"),
        (
            Parameter(
                "E", "floor", _floor_prior, "irreducible loss (nats), below the smallest loss"
            ),
            Parameter("alpha", "exponent", _exponent_prior(), "exponent of N"),
            Parameter("beta", "exponent", _exponent_prior(), "exponent of D"),
            Parameter("log_N_term", "coefficient", _term_prior(), "log A/N_ref^alpha"),
            Parameter("log_D_term", "coefficient", _term_prior(), "log B/D_ref^beta"),
        ),
        log_loss,
        _chinchilla_to_reported,
        _chinchilla_from_reported,
        ("E", "A", "B", "alpha", "beta"),
        "L = E + A/N^alpha + B/D^beta",
        "Hoffmann et al. 2022, arXiv:2203.15556",
    )


def _gadre2024() -> Law:
    def log_loss(t, x):
        return _lae(
            _log(t["E"]),
            t["log_N_term"] - t["eta"] * x["params"],
            t["log_D_term"] - t["eta"] * x["tokens"],
        )

    def to_reported(t, ref):
        return {
            "E": t["E"],
            "A": np.exp(t["log_N_term"] + t["eta"] * ref["params"]),
            "B": np.exp(t["log_D_term"] + t["eta"] * ref["tokens"]),
            "eta": t["eta"],
        }

    def from_reported(r, ref):
        return {
            "E": r["E"],
            "eta": r["eta"],
            "log_N_term": np.log(r["A"]) - r["eta"] * ref["params"],
            "log_D_term": np.log(r["B"]) - r["eta"] * ref["tokens"],
        }

    return Law(
        "gadre2024",
        ("params", "tokens"),
        (
            Parameter("E", "floor", _floor_prior, "irreducible loss (nats)"),
            # one exponent for N and D: the data exponents of Chinchilla-type fits are
            # 0.28-0.37 (Hoffmann et al. 2022; the 245 points of the data folder give 0.34
            # and 0.36), so TruncatedNormal(0.3, 0.1); 5-run ladders (the paper's fit set)
            # otherwise have a tail to eta ~ 0.15, E ~ 0.3 that decides the extrapolation
            Parameter(
                "eta", "exponent", _exponent_prior(0.3, 0.1), "exponent shared by N and D = M*N"
            ),
            Parameter("log_N_term", "coefficient", _term_prior(), "log A/N_ref^eta"),
            Parameter("log_D_term", "coefficient", _term_prior(), "log B/D_ref^eta"),
        ),
        log_loss,
        to_reported,
        from_reported,
        ("E", "A", "B", "eta"),
        "L = E + A/N^eta + B/D^eta  (D = M*N)",
        "Gadre et al. 2024, arXiv:2403.08540",
    )


def _kaplan_single(name: str, inp: str, irreducible: bool) -> Law:
    if not isinstance(irreducible, bool | np.bool_):  # a spec's "false" is a true string
        raise ValueError(f"{name} option irreducible must be true or false but got {irreducible!r}")
    sym = _SYMBOL[inp]
    alpha, scale = f"alpha_{sym}", f"{sym}_c"

    def log_loss(t, x):
        term = t["log_term"] - t[alpha] * x[inp]
        return _lae(_log(t["E"]), term) if irreducible else term

    def to_reported(t, ref):
        out = {scale: np.exp(ref[inp] + t["log_term"] / t[alpha]), alpha: t[alpha]}
        if irreducible:
            out["E"] = t["E"]
        return out

    def from_reported(r, ref):
        out = {alpha: r[alpha], "log_term": r[alpha] * (np.log(r[scale]) - ref[inp])}
        if irreducible:
            out["E"] = r["E"]
        return out

    params = [
        Parameter(alpha, "exponent", _exponent_prior(0.1, 0.3), f"exponent of {sym}"),
        Parameter(
            "log_term",
            "coefficient",
            _term_prior(0.25 if irreducible else 1.0, 1.5 if irreducible else 1.0),
            f"log ({scale}/{sym}_ref)^{alpha}",
        ),
    ]
    if irreducible:
        params.insert(0, Parameter("E", "floor", _floor_prior, "irreducible loss (nats)"))
    names = (scale, alpha, "E") if irreducible else (scale, alpha)
    formula = f"L = ({scale}/{sym})^{alpha}" + (" + E" if irreducible else "")
    return Law(
        name,
        (inp,),
        tuple(params),
        log_loss,
        to_reported,
        from_reported,
        names,
        formula,
        "Kaplan et al. 2020, arXiv:2001.08361",
        (("irreducible", irreducible),),
    )


def _kaplan_nd() -> Law:
    # L = [(N_c/N)^(aN/aD) + D_c/D]^aD ; log L = aD * logaddexp(uN - (aN/aD) xN, vD - xD)
    def log_loss(t, x):
        ratio = t["alpha_N"] / t["alpha_D"]
        return t["alpha_D"] * _lae(
            t["log_N_term"] - ratio * x["params"], t["log_D_term"] - x["tokens"]
        )

    def to_reported(t, ref):
        return {
            "N_c": np.exp(ref["params"] + t["log_N_term"] * t["alpha_D"] / t["alpha_N"]),
            "D_c": np.exp(ref["tokens"] + t["log_D_term"]),
            "alpha_N": t["alpha_N"],
            "alpha_D": t["alpha_D"],
        }

    def from_reported(r, ref):
        return {
            "alpha_N": r["alpha_N"],
            "alpha_D": r["alpha_D"],
            "log_N_term": r["alpha_N"] / r["alpha_D"] * (np.log(r["N_c"]) - ref["params"]),
            "log_D_term": np.log(r["D_c"]) - ref["tokens"],
        }

    def term_rule(s: DataSummary) -> Prior:
        # both inner terms together give L^(1/alpha_D): with alpha_D ~ 0.1 they are large.
        return Prior(
            "Normal", {"mu": round(math.log(max(s.median_loss, 1.0001)) / 0.1, 3), "sigma": 5.0}
        )

    return Law(
        "kaplan_nd",
        ("params", "tokens"),
        (
            Parameter("alpha_N", "exponent", _exponent_prior(0.1, 0.3), "exponent of N"),
            Parameter("alpha_D", "exponent", _exponent_prior(0.1, 0.3), "exponent of D"),
            Parameter("log_N_term", "coefficient", term_rule, "(alpha_N/alpha_D) log(N_c/N_ref)"),
            Parameter("log_D_term", "coefficient", term_rule, "log(D_c/D_ref)"),
        ),
        log_loss,
        to_reported,
        from_reported,
        ("N_c", "D_c", "alpha_N", "alpha_D"),
        "L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
        "Kaplan et al. 2020, arXiv:2001.08361",
    )


def _bnsl(k: int, x_input: str) -> Law:
    # y = a + b x^-c0 prod_i (1 + (x/d_i)^(1/f_i))^(-c_i f_i), in log space:
    # log(y - a) = log_term - c0 xc - sum_i c_i f_i softplus((xc - log_d_i)/f_i)
    if isinstance(k, bool | np.bool_) or not isinstance(k, numbers.Integral):
        raise ValueError(f"bnsl needs a whole number of breaks k but got k={short_repr(k)}")
    k = int(k)
    if k < 1:
        raise ValueError(f"bnsl needs k >= 1 breaks but got k={k!r}")
    if k > _MAX_BREAKS:  # a spec with k = 10**8 would never finish building
        raise ValueError(f"bnsl takes at most {_MAX_BREAKS} breaks but got k={k!r}")
    if x_input not in INPUTS:
        raise ValueError(f"bnsl input x must be one of {INPUTS} but got {x_input!r}")

    def break_locations(t):
        loc = t["log_d_1"]
        out = [loc]
        for i in range(2, k + 1):
            loc = loc + t[f"gap_{i}"]
            out.append(loc)
        return out

    def log_loss(t, x):
        xc = x[x_input]
        inner = t["log_term"] - t["c0"] * xc
        for i, loc in enumerate(break_locations(t), start=1):
            f = t[f"f_{i}"]
            z = (xc - loc) / f
            inner = inner - t[f"c_{i}"] * f * _xp(z).logaddexp(0.0, z)
        return _lae(_log(t["a"]), inner)

    def to_reported(t, ref):
        out = {"a": t["a"], "b": np.exp(t["log_term"] + t["c0"] * ref[x_input]), "c0": t["c0"]}
        loc = t["log_d_1"]
        for i in range(1, k + 1):
            if i > 1:
                loc = loc + t[f"gap_{i}"]
            out[f"c_{i}"] = t[f"c_{i}"]
            out[f"d_{i}"] = np.exp(loc + ref[x_input])
            out[f"f_{i}"] = t[f"f_{i}"]
        return out

    def from_reported(r, ref):
        out = {"a": r["a"], "c0": r["c0"], "log_term": np.log(r["b"]) - r["c0"] * ref[x_input]}
        prev = None
        for i in range(1, k + 1):
            loc = np.log(r[f"d_{i}"]) - ref[x_input]
            if i == 1:
                out["log_d_1"] = loc
            else:
                out[f"gap_{i}"] = loc - prev
            prev = loc
            out[f"c_{i}"] = r[f"c_{i}"]
            out[f"f_{i}"] = r[f"f_{i}"]
        return out

    params = [
        Parameter("a", "floor", _floor_prior, "limit as x grows"),
        Parameter("c0", "exponent", _exponent_prior(), "slope before the first break"),
        Parameter("log_term", "coefficient", _term_prior(), "log b/x_ref^c0"),
    ]
    for i in range(1, k + 1):
        params.append(
            Parameter(
                f"c_{i}",
                "exponent",
                Prior("Normal", {"mu": 0.0, "sigma": 0.5}),
                f"change of slope at break {i}",
            )
        )
        if i == 1:
            params.append(
                Parameter(
                    "log_d_1",
                    "shape",
                    Prior("Normal", {"mu": 0.0, "sigma": 2.0}),
                    "log(d_1/x_ref), first break location",
                )
            )
        else:
            params.append(
                Parameter(
                    f"gap_{i}",
                    "shape",
                    Prior("LogNormal", {"mu": 0.5, "sigma": 1.0}),
                    f"log(d_{i}/d_{i - 1}) > 0, keeps breaks ordered",
                )
            )
        params.append(
            Parameter(
                f"f_{i}",
                "shape",
                Prior("LogNormal", {"mu": 0.0, "sigma": 0.75}),
                f"sharpness of break {i} (log-x units)",
            )
        )
    names = ("a", "b", "c0", *tuple(f"{p}_{i}" for i in range(1, k + 1) for p in ("c", "d", "f")))
    sym = _SYMBOL[x_input]
    return Law(
        "bnsl",
        (x_input,),
        tuple(params),
        log_loss,
        to_reported,
        from_reported,
        names,
        f"y = a + b {sym}^-c0 prod_i (1 + ({sym}/d_i)^(1/f_i))^(-c_i f_i), {k} break(s)",
        "Caballero et al. 2022, arXiv:2210.14891",
        (("k", k), ("x", x_input)),
    )


def _downstream() -> Law:
    # Err = eps - k exp(-gamma L): a function of the loss, chained onto a loss law.
    def error_fn(t, loss):
        z = -t["gamma"] * loss
        return t["eps"] - t["k"] * _xp(z).exp(z)

    def identity(t, ref):
        return {n: t[n] for n in ("eps", "k", "gamma")}

    return Law(
        "downstream",
        ("loss",),
        (
            Parameter(
                "eps",
                "floor",
                Prior("Uniform", {"low": 0.0, "high": 1.0}),
                "error of a model that learned nothing (chance level)",
            ),
            Parameter("k", "coefficient", Prior("LogNormal", {"mu": 1.0, "sigma": 2.0}), "scale"),
            Parameter(
                "gamma",
                "exponent",
                Prior("LogNormal", {"mu": 0.0, "sigma": 1.0}),
                "rate at which error falls with loss",
            ),
        ),
        error_fn,
        identity,
        identity,
        ("eps", "k", "gamma"),
        "Err = eps - k exp(-gamma L)",
        "Gadre et al. 2024, arXiv:2403.08540",
    )


_BUILDERS: dict[str, Callable[..., Law]] = {
    "chinchilla": _chinchilla,
    "gadre2024": _gadre2024,
    "kaplan_n": lambda irreducible=False: _kaplan_single("kaplan_n", "params", irreducible),
    "kaplan_d": lambda irreducible=False: _kaplan_single("kaplan_d", "tokens", irreducible),
    "kaplan_c": lambda irreducible=False: _kaplan_single("kaplan_c", "compute", irreducible),
    "kaplan_nd": _kaplan_nd,
    "bnsl": lambda k=1, x="compute": _bnsl(k, x),
    "downstream": _downstream,
}
_CUSTOM: dict[str, Law] = {}


def list_laws() -> list[str]:
    """Names of the built-in and registered laws.

    Example:
        >>> "chinchilla" in list_laws()
        True
    """
    return sorted({*_BUILDERS, *_CUSTOM})


def get_law(name: str | Law, **options) -> Law:
    """Look up a law by name, with options (``k`` for bnsl, ``irreducible`` for Kaplan).

    Example:
        >>> get_law("bnsl", k=2).reported_names[:5]
        ('a', 'b', 'c0', 'c_1', 'd_1')
        >>> get_law("chinchila")
        Traceback (most recent call last):
        ...
        ValueError: unknown law 'chinchila'; did you mean 'chinchilla'? Known laws: ...
    """
    if isinstance(name, Law):
        return name
    if name in _CUSTOM:
        return _CUSTOM[name]
    if name not in _BUILDERS:
        extra = did_you_mean(name, list_laws())
        raise ValueError(f"unknown law {name!r}{extra} Known laws: {', '.join(list_laws())}")
    try:
        return _BUILDERS[name](**options)
    except TypeError as exc:
        raise ValueError(f"law {name!r} does not take options {sorted(options)}: {exc}") from None


def register_law(law: Law) -> Law:
    """Make a user-defined law available by name (also to :func:`load_fit`)."""
    _CUSTOM[law.name] = law
    return law


def custom_law(
    name: str,
    fn: Callable,
    priors: Mapping[str, Prior | str | Mapping],
    inputs: tuple[str, ...] = ("params", "tokens"),
    roles: Mapping[str, str] | None = None,
    formula: str = "",
    register: bool = True,
) -> Law:
    """Build a law from a natural-scale function, without editing the package.

    ``fn(theta, **inputs)`` receives the sampled parameters and the inputs on their
    natural scale (``params=N``, ``tokens=D``, ``compute=C`` and any named input such
    as ``U=unique tokens``, as jax arrays) and returns the loss. A named input is read
    from the runs' column mapped to it (``fit(..., inputs={"U": "unique_tokens"})``). Parameters are reported as sampled. For speed, write a log-space
    :class:`Law` directly; this form is for convenience.

    Example:
        >>> import jax.numpy as jnp
        >>> law = custom_law("power_floor", lambda t, params: t["E"] + t["A"] * params ** -t["a"],
        ...                  {"E": "Uniform(low=0, high=2)", "A": "LogNormal(mu=3, sigma=2)",
        ...                   "a": "Uniform(low=0, high=1)"}, inputs=("params",))
        >>> law.reported_names
        ('E', 'A', 'a')
    """
    import jax.numpy as jnp

    from ..data.runs import check_input_name

    for input_name in inputs:
        if input_name not in INPUTS:
            check_input_name(input_name)
    parsed = {k: parse_prior(v) for k, v in priors.items()}
    roles = dict(roles or {})

    def log_loss(t, x):
        natural = {k: jnp.exp(x[k]) for k in inputs}  # ref is 0 for custom laws: x is log input
        return jnp.log(fn(t, **natural))

    def identity(t, ref):
        return {k: t[k] for k in parsed}

    params = tuple(
        Parameter(
            k,
            roles.get(k, "exponent" if k.startswith(("alpha", "beta", "eta")) else "coefficient"),
            p,
        )
        for k, p in parsed.items()
    )
    law = Law(
        name,
        tuple(inputs),
        params,
        log_loss,
        identity,
        identity,
        tuple(parsed),
        formula or name,
        "user-defined",
        (("custom", True),),
    )
    if register:
        register_law(law)
    return law


def law_uses_reference(law: Law) -> bool:
    """Custom laws see uncentred log-inputs (their reference scale is 0)."""
    return dict(law.options).get("custom") is not True


# laws over named inputs and of hyper-parameters live in their own modules, which import
# the helpers above and add their BUILDERS to _BUILDERS (also when imported first)
from . import covariate, hyper  # noqa: E402, F401
