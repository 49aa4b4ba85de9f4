"""Law library: log-space functions against the papers' formulas, centring, registry."""

import numpy as np
import pytest

import bayescale as bs
from bayescale.laws import get_law, list_laws
from bayescale.laws.base import _lae

RNG = np.random.default_rng(0)
N = np.geomspace(1e7, 1e11, 7)
D = np.geomspace(1e9, 1e13, 7)
C = 6 * N * D


def _chinchilla(r, n, d, c):
    return r["E"] + r["A"] / n ** r["alpha"] + r["B"] / d ** r["beta"]


def _gadre(r, n, d, c):
    return r["E"] + r["A"] * n ** -r["eta"] + r["B"] * d ** -r["eta"]


def _kaplan_nd(r, n, d, c):
    return ((r["N_c"] / n) ** (r["alpha_N"] / r["alpha_D"]) + r["D_c"] / d) ** r["alpha_D"]


def _bnsl1(r, n, d, c):
    x = c
    return r["a"] + r["b"] * x ** -r["c0"] * (1 + (x / r["d_1"]) ** (1 / r["f_1"])) ** (
        -r["c_1"] * r["f_1"]
    )


def _bnsl2(r, n, d, c):
    x = c
    out = r["b"] * x ** -r["c0"]
    for i in (1, 2):
        out = out * (1 + (x / r[f"d_{i}"]) ** (1 / r[f"f_{i}"])) ** (-r[f"c_{i}"] * r[f"f_{i}"])
    return r["a"] + out


CASES = [
    (
        "chinchilla",
        {},
        {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
        _chinchilla,
    ),
    ("gadre2024", {}, {"E": 1.9, "A": 300.0, "B": 900.0, "eta": 0.3}, _gadre),
    (
        "kaplan_n",
        {},
        {"N_c": 8.8e13, "alpha_N": 0.076},
        lambda r, n, d, c: (r["N_c"] / n) ** r["alpha_N"],
    ),
    (
        "kaplan_n",
        {"irreducible": True},
        {"N_c": 8.8e13, "alpha_N": 0.2, "E": 1.5},
        lambda r, n, d, c: (r["N_c"] / n) ** r["alpha_N"] + r["E"],
    ),
    (
        "kaplan_d",
        {},
        {"D_c": 5.4e13, "alpha_D": 0.095},
        lambda r, n, d, c: (r["D_c"] / d) ** r["alpha_D"],
    ),
    (
        "kaplan_c",
        {},
        {"C_c": 3.1e23, "alpha_C": 0.05},
        lambda r, n, d, c: (r["C_c"] / c) ** r["alpha_C"],
    ),
    (
        "kaplan_nd",
        {},
        {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103},
        _kaplan_nd,
    ),
    (
        "bnsl",
        {"k": 1},
        {"a": 1.5, "b": 2e3, "c0": 0.15, "c_1": 0.2, "d_1": 1e19, "f_1": 0.5},
        _bnsl1,
    ),
    (
        "bnsl",
        {"k": 2},
        {
            "a": 1.5,
            "b": 2e3,
            "c0": 0.15,
            "c_1": 0.2,
            "d_1": 1e19,
            "f_1": 0.5,
            "c_2": -0.1,
            "d_2": 1e21,
            "f_2": 0.3,
        },
        _bnsl2,
    ),
]


@pytest.mark.parametrize(("name", "options", "truth", "formula"), CASES)
def test_log_space_law_matches_the_papers_formula(name, options, truth, formula):
    law = get_law(name, **options)
    assert set(law.reported_names) == set(truth)
    inputs = {"params": N, "tokens": D, "compute": C}
    got = law.loss(truth, **{k: inputs[k] for k in law.inputs})
    want = formula(truth, N, D, C)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize(("name", "options", "truth", "formula"), CASES)
def test_centring_changes_the_coordinates_not_the_law(name, options, truth, formula):
    """Sampled coefficients live at a reference scale; the reported law does not move."""
    import jax.numpy as jnp

    law = get_law(name, **options)
    inputs = {"params": N, "tokens": D, "compute": C}
    log_ref = {k: float(RNG.uniform(15, 30)) for k in law.inputs}
    theta = law.from_reported(truth, log_ref)
    x = {k: jnp.log(inputs[k]) - log_ref[k] for k in law.inputs}
    centred = np.exp(np.asarray(law.log_loss(theta, x)))
    np.testing.assert_allclose(centred, formula(truth, N, D, C), rtol=1e-10)
    back = law.to_reported(theta, log_ref)
    for key, value in truth.items():
        np.testing.assert_allclose(back[key], value, rtol=1e-10)


def test_log_sum_of_terms_is_exact_where_exp_overflows():
    import jax
    import jax.numpy as jnp

    from bayescale._jax import configure

    configure()  # float64, as every fit runs
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(scale=300.0, size=(3, 1000))  # exp() of most of these overflows
    expected = np.logaddexp(np.logaddexp(a, b), c)
    np.testing.assert_allclose(_lae(a, b, c), expected, rtol=1e-14, atol=1e-13)
    # broadcasting (a scalar irreducible term), all -inf, and +inf
    np.testing.assert_allclose(_lae(0.0, np.array([0.0, -np.inf])), [np.log(2.0), 0.0])
    assert float(_lae(-np.inf, -np.inf)) == -np.inf
    assert float(_lae(np.inf, 1.0)) == np.inf
    # its gradient is the softmax of the terms, and finite next to a -inf term
    x = jnp.array([1.0, 2.0, 3.0])
    grad = jax.grad(lambda v: _lae(v[0], v[1], v[2]))(x)
    np.testing.assert_allclose(grad, np.exp(x - np.log(np.exp(x).sum())), rtol=1e-14)
    np.testing.assert_array_equal(
        jax.grad(lambda v: _lae(v[0], v[1]))(jnp.array([-jnp.inf, 2.0])), [0.0, 1.0]
    )


def test_law_functions_broadcast_over_draws_and_runs():
    import jax.numpy as jnp

    law = get_law("chinchilla")
    theta = {
        "E": jnp.full((5, 1), 1.7),
        "alpha": jnp.full((5, 1), 0.3),
        "beta": jnp.full((5, 1), 0.3),
        "log_N_term": jnp.zeros((5, 1)),
        "log_D_term": jnp.zeros((5, 1)),
    }
    x = {"params": jnp.zeros((1, 7)), "tokens": jnp.zeros((1, 7))}
    assert law.log_loss(theta, x).shape == (5, 7)


def test_every_design_law_is_registered_with_contract_names():
    assert {
        "kaplan_n",
        "kaplan_d",
        "kaplan_c",
        "kaplan_nd",
        "chinchilla",
        "gadre2024",
        "bnsl",
        "downstream",
    } <= set(list_laws())
    assert get_law("chinchilla").reported_names == ("E", "A", "B", "alpha", "beta")
    assert get_law("gadre2024").reported_names == ("E", "A", "B", "eta")
    assert get_law("kaplan_nd").reported_names == ("N_c", "D_c", "alpha_N", "alpha_D")
    assert get_law("kaplan_c", irreducible=True).reported_names == ("C_c", "alpha_C", "E")
    assert get_law("downstream").reported_names == ("eps", "k", "gamma")


def test_downstream_link_is_gadres_exponential():
    law = get_law("downstream")
    t = {"eps": 0.8, "k": 3.0, "gamma": 0.5}
    loss = np.array([2.5, 3.0, 4.0])
    np.testing.assert_allclose(np.asarray(law.log_loss(t, loss)), 0.8 - 3.0 * np.exp(-0.5 * loss))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: get_law("chinchila"),
            "unknown law 'chinchila'; did you mean 'chinchilla'\\? Known laws: ",
        ),
        (lambda: get_law("bnsl", k=0), "bnsl needs k >= 1 breaks but got k=0"),
        (lambda: get_law("bnsl", x="flops"), "bnsl input x must be one of"),
        (lambda: get_law("chinchilla", k=2), "law 'chinchilla' does not take options \\['k'\\]"),
        (
            lambda: get_law("chinchilla").loss({}, params=1e9),
            "law 'chinchilla' needs inputs tokens",
        ),
    ],
)
def test_law_errors_are_one_line(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_custom_law_evaluates_its_natural_scale_function():
    law = bs.custom_law(
        "test_power_floor",
        lambda t, params: t["E"] + t["A"] * params ** -t["a"],
        {
            "E": "Uniform(low=0, high=3)",
            "A": "LogNormal(mu=3, sigma=2)",
            "a": "Uniform(low=0, high=1)",
        },
        inputs=("params",),
    )
    truth = {"E": 1.2, "A": 50.0, "a": 0.25}
    np.testing.assert_allclose(law.loss(truth, params=N), 1.2 + 50.0 * N**-0.25, rtol=1e-12)
    assert get_law("test_power_floor") is law
    # named inputs are allowed, but not a name the runs table already uses for a role
    with pytest.raises(ValueError, match="input name 'loss' is reserved"):
        bs.custom_law("bad", lambda t, loss: loss, {"a": "Normal(mu=0, sigma=1)"}, inputs=("loss",))
