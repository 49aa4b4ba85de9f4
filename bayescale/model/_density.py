"""Log-density pieces of the model, written for XLA's CPU compiler as much as for accuracy.

On a 2-core CPU a cold fit is mostly XLA compiling the NUTS programs, and each program
holds the potential's value and gradient. How they are written changes what XLA makes
of them, not what they compute.

numpyro's ``StudentT`` writes its normaliser with two ``gammaln`` calls. XLA expands
``lgamma`` and, in the gradient, ``digamma`` into Lanczos series whose terms share
subexpressions, and it compiles each shared term as a kernel of its own (a divide is too
costly to duplicate into the per-run consumer): 25 of the 86 CPU kernels of the
Chinchilla posterior's value-and-gradient. Here the normaliser is
:func:`log_gamma_half_ratio`, ``log Gamma(x + 1/2) - log Gamma(x)``, one series with its
own derivative, computed per group apart from the per-run terms
(:func:`student_t_df_terms`, behind an optimisation barrier): 62 kernels in all, ~25%
less XLA compile CPU for that value-and-gradient (``bench/compile.py``), the same values to
rounding. It is
also more accurate: ``gammaln(x + 1/2) - gammaln(x)`` loses digits to cancellation for
large ``x`` (4e-7 relative at ``x = 1e9``; here ~1e-15).
"""

from __future__ import annotations

from functools import cache

__all__ = [
    "log_gamma_half_ratio",
    "student_t",
    "student_t_df_terms",
    "student_t_log_prob",
]

#: Shift of the argument before the asymptotic series: ``x + SHIFT >= 10`` for ``x > 0``.
SHIFT = 10
#: ``(c, p)``: the asymptotic series of ``log Gamma(y + 1/2) - log Gamma(y)`` is
#: ``log(y) / 2 + sum c / y**p``, with ``c = (2**(1 - 2m) - 2) B_2m / (2m (2m - 1))``
#: (Bernoulli numbers; ``p = 2m - 1``). Truncated after ``m = 6``: at ``y >= 10`` the
#: first omitted term is ~1.3e-15.
SERIES = (
    (-1 / 8, 1),
    (1 / 192, 3),
    (-1 / 640, 5),
    (17 / 14336, 7),
    (-31 / 18432, 9),
    (691 * 4095 / (2730 * 2048) / 132, 11),
)


def _ratio_and_derivative(x):
    """``log Gamma(x + 1/2) - log Gamma(x)`` and its derivative, for ``x > 0``.

    ``Gamma(x + 1) = x Gamma(x)`` moves the argument to ``y = x + SHIFT``:
    ``D(x) = D(y) - sum_k log1p(1/2 / (x + k))``, ``D'(x) = D'(y) + sum_k 1/2 / ((x + k)
    (x + k + 1/2))``, ``k = 0 .. SHIFT - 1``; ``D(y)`` and ``D'(y)`` from the series.
    """
    import jax.numpy as jnp

    y = x + SHIFT
    inv = 1.0 / y
    inv2 = inv * inv
    series = 0.0
    dseries = 0.0
    power = inv
    for c, p in SERIES:
        series = series + c * power
        dseries = dseries - p * c * power * inv
        power = power * inv2
    shift = 0.0
    dshift = 0.0
    for k in range(SHIFT):
        shift = shift + jnp.log1p(0.5 / (x + k))
        dshift = dshift + 0.5 / ((x + k) * (x + k + 0.5))
    return 0.5 * jnp.log(y) + series - shift, 0.5 * inv + dseries + dshift


@cache
def _ratio_fn():
    import jax

    @jax.custom_jvp
    def ratio(x):
        return _ratio_and_derivative(x)[0]

    @ratio.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        value, derivative = _ratio_and_derivative(x)
        return value, derivative * t

    return ratio


def log_gamma_half_ratio(x):
    """``log Gamma(x + 1/2) - log Gamma(x)`` for ``x > 0``, differentiable (float64: ~1e-15).

    Its derivative is ``digamma(x + 1/2) - digamma(x)``, from the same series.

    Example:
        >>> import math
        >>> value = float(log_gamma_half_ratio(3.0))
        >>> round(value, 12) == round(math.lgamma(3.5) - math.lgamma(3.0), 12)
        True
    """
    import jax.numpy as jnp

    return _ratio_fn()(jnp.asarray(x, dtype=jnp.result_type(float)))


def student_t_df_terms(df):
    """The terms of the Student-t log density that depend on ``df`` alone.

    ``log Gamma((df + 1) / 2) - log Gamma(df / 2) - log(df pi) / 2``, behind an optimisation
    barrier so that XLA compiles them apart from the per-run terms (a kernel or two, see
    the module doc). Computed per group (a scalar, or one value per group) and gathered
    per run, they cost nothing per run and per gradient.
    """
    import jax.numpy as jnp
    from jax import lax

    return lax.optimization_barrier(log_gamma_half_ratio(0.5 * df) - 0.5 * jnp.log(df * jnp.pi))


def student_t_log_prob(value, df, loc, scale, df_terms=None):
    """Student-t log density, the same as ``numpyro.distributions.StudentT.log_prob``.

    ``df_terms`` is :func:`student_t_df_terms` of ``df``, when the caller has it already
    (per group rather than per run).

    Example:
        >>> from scipy import stats
        >>> mine = float(student_t_log_prob(0.3, 4.0, 0.1, 0.5))
        >>> round(mine, 12) == round(float(stats.t.logpdf(0.3, 4.0, 0.1, 0.5)), 12)
        True
    """
    import jax.numpy as jnp

    if df_terms is None:
        df_terms = student_t_df_terms(df)
    y = (value - loc) / scale
    return df_terms - jnp.log(scale) - 0.5 * (df + 1.0) * jnp.log1p(y * y / df)


@cache
def _student_t_class():
    import numpyro.distributions as dist

    class StudentT(dist.StudentT):
        """numpyro's StudentT with :func:`student_t_log_prob` as its log density."""

        def __init__(self, df, loc=0.0, scale=1.0, df_terms=None, *, validate_args=None):
            super().__init__(df, loc, scale, validate_args=validate_args)
            self.df_terms = df_terms

        def log_prob(self, value):
            df_terms = getattr(self, "df_terms", None)
            return student_t_log_prob(value, self.df, self.loc, self.scale, df_terms)

    return StudentT


def student_t(df, loc, scale, df_terms=None):
    """A numpyro ``StudentT(df, loc, scale)`` whose ``log_prob`` is :func:`student_t_log_prob`.

    ``df_terms``: :func:`student_t_df_terms` of ``df``, computed where ``df`` is still per
    group (the model passes it; otherwise it is computed per value of ``df``).
    """
    return _student_t_class()(df, loc, scale, df_terms)
