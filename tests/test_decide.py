"""Decisions between arms with known truth: crossover, P(best), regret, EVSI, PSIS, CLI.

Four simulated arms share Hoffmann et al.'s exponents (so a ``shared`` fit is the true
model): ``base`` (Hoffmann's law), ``crosser`` (higher E, smaller A and B: better at small
compute, worse beyond the crossing at ~1e21 FLOPs along the compute-optimal frontiers),
``dominated`` (worse everywhere, never crosses) and ``twin`` (the very same runs as
``base``: an exchangeable arm). Ladders stop at 2e19 FLOPs, so 1e21 is 50x beyond the data.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import sampled
from scipy.optimize import brentq

import bayescale as bs
from bayescale import decide
from bayescale.allocate import compute_optimal
from bayescale.cli import main
from bayescale.decide import Comparison, DecisionWarning
from bayescale.decide._arms import resolve_arms
from bayescale.decide._psis import gpd_fit, psis, tail_length

# the gate has its own test; elsewhere a borderline R-hat on a small test fit must not fail
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.decide.DecisionWarning")

HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
LADDER = {"params": (2e7, 5e7, 1.2e8, 3e8), "tokens_per_param": (5.0, 10.0, 20.0, 40.0)}
CROSSING = 1e21  # where the crosser's frontier meets the base's (the truth below solves for it)
RANGE = (1e20, 1e24)
#: 4 x 300 draws: intervals and Monte Carlo errors to two digits, within the test budget
DRAWS = {"chains": 4, "draws": 300, "warmup": 300}


def _frontier_loss(truth: dict, compute: float) -> float:
    a, b = truth["alpha"], truth["beta"]
    g = (a * truth["A"] / (b * truth["B"])) ** (1 / (a + b))
    n = g * (compute / 6) ** (b / (a + b))
    return float(bs.get_law("chinchilla").loss(truth, params=n, tokens=compute / (6 * n)))


def _scaled(factor: float, d_e: float) -> dict:
    return {
        **HOFFMANN,
        "E": HOFFMANN["E"] + d_e,
        "A": HOFFMANN["A"] * factor,
        "B": HOFFMANN["B"] * factor,
    }


# the crosser: E + 0.08 and A, B scaled so that the frontiers meet exactly at CROSSING
CROSS_FACTOR = brentq(
    lambda f: _frontier_loss(_scaled(f, 0.08), CROSSING) - _frontier_loss(HOFFMANN, CROSSING),
    0.5,
    0.999,
)
TRUTHS = {
    "base": HOFFMANN,
    "crosser": _scaled(CROSS_FACTOR, 0.08),
    "dominated": _scaled(1.2, 0.05),
}


def _ladder(name: str, seed: int) -> pd.DataFrame:
    return bs.simulate_ladder(
        "chinchilla", TRUTHS[name], **LADDER, noise=0.01, seed=seed, group=name
    )


def _quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.fit(*args, **sampled(progress=False, **kwargs))


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    base = _ladder("base", 1)
    return {
        "base": base,
        "crosser": _ladder("crosser", 2),
        "dominated": _ladder("dominated", 3),
        "twin": base.assign(group="twin"),
    }


@pytest.fixture(scope="module")
def arms_fit(frames):
    """One grouped fit, shared exponents: every arm's draw s is one joint posterior draw."""
    data = pd.concat(list(frames.values()), ignore_index=True)
    return _quiet_fit(
        data,
        "chinchilla",
        params="params",
        tokens="tokens",
        loss="loss",
        group="group",
        pooling="shared",
        seed=0,
        **DRAWS,
    )


@pytest.fixture(scope="module")
def base_alone(frames):
    """The base arm fitted on its own: an ungrouped fit with its own posterior."""
    return _quiet_fit(
        frames["base"].drop(columns="group"),
        "chinchilla",
        params="params",
        tokens="tokens",
        loss="loss",
        seed=1,
        **DRAWS,
    )


@pytest.fixture(scope="module")
def separate_fits(base_alone, arms_fit):
    """Arms from two different fits: their posteriors are independent, never paired."""
    return {"base": base_alone, "crosser": (arms_fit, "crosser")}


@pytest.fixture(scope="module")
def fit_file(arms_fit, tmp_path_factory):
    path = tmp_path_factory.mktemp("decide") / "arms.nc"
    arms_fit.to_netcdf(path)
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- PSIS


def test_psis_matches_arviz_reference():
    from arviz_stats.base import array_stats

    rng = np.random.default_rng(0)
    log_ratios = rng.standard_normal((6, 1500)) * np.array([0.3, 1, 2, 3, 5, 8])[:, None]
    log_weights, k = psis(log_ratios)
    # arviz-stats smooths LOO ratios, i.e. the negated log-likelihood it is given
    reference_lw, reference_k = array_stats.psislw(-log_ratios)
    np.testing.assert_allclose(k, reference_k, rtol=0, atol=1e-10)
    np.testing.assert_allclose(log_weights, reference_lw, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.exp(log_weights).sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("true_k", [0.3, 0.5, 0.9])
def test_psis_k_recovers_a_known_pareto_tail(true_k):
    # Lomax(shape 1/k) ratios have a generalised Pareto tail with shape exactly k
    rng = np.random.default_rng(1)
    ratios = rng.pareto(1 / true_k, size=(40, 4000)) + 1.0
    _, k = psis(np.log(ratios))
    assert abs(np.mean(k) - true_k) < 0.08
    assert (np.mean(k > 0.7) > 0.9) == (true_k > 0.7)


def test_gpd_fit_and_tail_length():
    assert tail_length(4000) == 189 and tail_length(200) == 40
    x = np.sort(np.random.default_rng(2).pareto(1 / 0.4, size=(1, 5000)), axis=-1)
    k, sigma = gpd_fit(x)
    assert abs(k[0] - 0.4) < 0.05 and abs(sigma[0] - 0.4) < 0.05  # Lomax: sigma = k


def test_psis_flat_tail_is_bounded_not_flagged():
    log_weights, k = psis(np.zeros((2, 300)))
    np.testing.assert_allclose(np.exp(log_weights), 1 / 300)
    assert np.all(k == 0.0)


# --------------------------------------------------------------------------- compare


def test_comparison_definitions_on_known_draws():
    # 4 draws x 3 arms, by hand: best arms per draw are a, b, a, c(tie b/c)
    draws = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 4.0], [1.0, 1.5, 1.2], [3.0, 2.0, 2.0]])
    result = Comparison(["a", "b", "c"], draws, 2, 2, True)
    np.testing.assert_allclose(result.p_best, [0.5, 0.375, 0.125])
    regret = draws - draws.min(axis=1, keepdims=True)
    np.testing.assert_allclose(result.expected_regret, regret.mean(axis=0))
    # the docstring's form: max(L_a - min over the other arms, 0)
    for k in range(3):
        others = np.delete(draws, k, axis=1).min(axis=1)
        np.testing.assert_allclose(
            result.expected_regret[k], np.maximum(draws[:, k] - others, 0).mean()
        )
    # expected values 1.75, 1.625, 2.55: b is recommended although a is best more often
    assert result.recommended == "b"
    assert result.evpi == pytest.approx(0.375)  # b's regrets: 1, 0, 0.5, 0


def test_comparison_recommends_min_expected(arms_fit):
    result = decide.compare(arms_fit, compute=1e22, margin=0.05)
    expected = result.expected
    assert result.recommended == result.arms[int(np.argmin(expected))]
    assert result.recommended == result.arms[int(np.argmin(result.expected_regret))]
    assert math.isclose(result.evpi, result.expected_regret.min(), rel_tol=1e-12)
    draws = result.draws
    assert math.isclose(
        result.evpi,
        float(np.mean(draws[:, result.arms.index(result.recommended)] - draws.min(axis=1))),
        rel_tol=1e-12,
    )
    assert math.isclose(result.p_best.sum(), 1.0)
    # the dominated arm loses in (nearly) every draw and carries the largest regret
    k = result.arms.index("dominated")
    assert result.p_best[k] < 0.01 and np.argmax(result.expected_regret) == k
    payload = result.to_dict()
    assert payload["paired"] is True and payload["variant"] == "law"
    assert payload["diagnostics"] == arms_fit.diagnostics.to_dict()


def test_identical_arms_are_a_coin_flip(arms_fit):
    result = decide.compare(arms_fit, compute=1e22, arms=["base", "twin"], margin=0.05)
    mcse = result.mcse()
    p = result.p_best[0]
    se = mcse["arms"]["base"]["p_best"]
    assert 0 < se < 0.03
    assert abs(p - 0.5) < 4 * se
    assert result.to_dict()["p_equivalent"] > 0.8
    # exchangeable arms: equal expected regret within Monte Carlo error
    gap = abs(result.expected_regret[0] - result.expected_regret[1])
    assert gap < 4 * math.hypot(
        mcse["arms"]["base"]["expected_regret"], mcse["arms"]["twin"]["expected_regret"]
    )


def test_pairing_tightens_the_difference(arms_fit):
    paired = decide.compare(arms_fit, compute=1e22, arms=["base", "crosser"])
    shuffled = decide.compare(arms_fit, compute=1e22, arms=["base", "crosser"], paired=False)
    assert paired.paired and not shuffled.paired
    sd_paired = paired.difference("base", "crosser").std()
    sd_shuffled = shuffled.difference("base", "crosser").std()
    assert sd_paired < 0.7 * sd_shuffled
    # re-pairing leaves each arm's own posterior untouched
    np.testing.assert_allclose(np.sort(paired.draws, axis=0), np.sort(shuffled.draws, axis=0))


def test_next_run_variant_adds_noise(arms_fit):
    law = decide.compare(arms_fit, params=1e9, tokens=2e10, arms=["base", "twin"])
    run = decide.compare(arms_fit, params=1e9, tokens=2e10, arms=["base", "twin"], noise=True)
    assert run.variant == "next_run" and run.to_dict()["noise"] is True
    assert np.all(run.upper - run.lower > law.upper - law.lower)
    assert abs(run.p_best[0] - 0.5) < 4 * run.mcse()["arms"]["base"]["p_best"]


def test_separate_fits_are_unpaired(separate_fits):
    result = decide.compare(separate_fits, compute=1e22)
    assert result.arms == ["base", "crosser"] and result.paired is False
    assert set(result.to_dict()["diagnostics"]) == {"base", "crosser"}
    cross = decide.crossover(separate_fits, "base", "crosser", RANGE)
    assert cross.paired is False
    assert math.isclose(sum(cross.p(c) for c in decide.CLASSES), 1.0)
    with pytest.raises(ValueError, match="paired=True needs arms from one grouped fit"):
        decide.compare(separate_fits, compute=1e22, paired=True)


def test_pooling_none_is_unpaired(arms_fit):
    # the shared posterior read as a pooling="none" one (every site per group): what matters
    # here is that independent per-arm posteriors are reported and re-paired as such
    from bayescale.model import build_model

    model = build_model(arms_fit.spec.with_(pooling="none"), arms_fit.runs)
    n_groups = model.n_groups
    samples = {
        k: v if v.ndim == 3 else np.repeat(v[..., None], n_groups, axis=-1)
        for k, v in arms_fit.samples.items()
    }
    fit_none = bs.Fit(
        model, samples, arms_fit.stats, arms_fit.runs, {**arms_fit.info, "warn": False}
    )
    result = decide.compare(fit_none, compute=1e22, arms=["base", "twin"])
    assert result.to_dict()["paired"] is False
    assert abs(result.p_best[0] - 0.5) < 4 * result.mcse()["arms"]["base"]["p_best"]


def test_same_ungrouped_fit_twice_is_a_coin_flip(base_alone):
    fit = base_alone
    result = decide.compare({"x": fit, "y": fit}, compute=1e21)
    assert result.paired is False
    assert abs(result.p_best[0] - 0.5) < 4 * result.mcse()["arms"]["x"]["p_best"]


# --------------------------------------------------------------------------- crossover


def test_crossing_arms_interval_covers_the_truth(arms_fit):
    result = decide.crossover(arms_fit, "base", "crosser", RANGE)
    payload = result.to_dict()
    total = sum(payload[f"p_{c}"] for c in decide.CLASSES)
    assert math.isclose(total, 1.0)
    assert payload["p_in_range"] > 0.6
    assert payload["lower"] <= CROSSING <= payload["upper"]
    assert RANGE[0] <= payload["lower"] <= payload["median"] <= payload["upper"] <= RANGE[1]
    # the crosser wins below the range, base (most likely) above
    assert payload["winner_at_lo"]["crosser"] > 0.9
    assert payload["winner_at_hi"]["base"] > 0.6
    # the defective CDF ends at p_in_range and never decreases
    cdf = result.cdf(np.geomspace(*RANGE, 50))
    assert np.all(np.diff(cdf) >= 0) and math.isclose(cdf[-1], payload["p_in_range"])
    assert payload["observed_min_compute"] == pytest.approx(6 * 2e7 * 1e8)


def test_crossover_roots_are_roots(arms_fit):
    # bisection precision: at each refined root the two frontiers agree to ~1e-9 in log loss
    result = decide.crossover(arms_fit, "base", "crosser", RANGE)
    draws = np.flatnonzero(~np.isnan(result.roots))[:25]
    arm_set = resolve_arms(arms_fit, ["base", "crosser"])
    gaps = []
    roots = result.roots[draws]
    for arm in arm_set.arms:
        # log N_opt of draw s at its own root: the diagonal of (draws x roots)
        log_n = arm.frontier_log_params(roots)[draws, np.arange(len(draws))]
        log_loss = arm.frontier_log_loss(np.log(roots)[:, None], log_n[:, None], draws=draws)
        gaps.append(log_loss[:, 0])
    assert np.max(np.abs(gaps[0] - gaps[1])) < 1e-8


def test_never_crossing_arms(arms_fit):
    payload = decide.crossover(arms_fit, "base", "dominated", RANGE).to_dict()
    assert payload["p_never"] > 0.9
    assert payload["winner_at_lo"]["base"] > 0.99 and payload["winner_at_hi"]["base"] > 0.9
    if payload["p_in_range"] == 0:
        assert payload["median"] is None and payload["lower"] is None


def test_crossover_already_crossed_inside_the_data(arms_fit):
    # the crossing at 1e21 lies before a range starting at 1e23: "already" crossed
    payload = decide.crossover(arms_fit, "base", "crosser", (1e23, 1e25)).to_dict()
    assert payload["p_already"] > 0.5
    assert payload["p_already"] > payload["p_in_range"]


# --------------------------------------------------------------------------- EVSI


def test_evsi_run_at_the_target_beats_a_run_far_from_it(arms_fit):
    target = 1e22
    alloc = compute_optimal(arms_fit, target, group="base")
    n_opt = float(np.median(alloc.params))
    candidates = [
        {"params": n_opt, "tokens": target / (6 * n_opt), "group": "base"},
        {"params": 2e7, "tokens": 1e8, "group": "base"},
    ]
    ranked = decide.next_experiment(
        arms_fit, candidates, compute=target, arms=["base", "crosser"], simulations=300
    )
    table = ranked.candidates.set_index("cost")
    at_target = table.loc[table.index.max()]
    far = table.loc[table.index.min()]
    assert at_target.evsi > far.evsi + 3 * math.hypot(at_target.evsi_mcse, far.evsi_mcse)
    comparison = decide.compare(arms_fit, compute=target, arms=["base", "crosser"])
    assert math.isclose(ranked.evpi, comparison.evpi, rel_tol=1e-12)
    assert at_target.evsi <= ranked.evpi + 3 * at_target.evsi_mcse  # information is bounded
    ordering = ranked.candidates["evsi_per_flop"].to_numpy()
    assert np.all(np.diff(ordering) <= 0)
    assert np.all(np.isfinite(ranked.candidates["pareto_k"]))


def test_evsi_expands_ungrouped_candidates_and_adds_replicates(arms_fit):
    ranked = decide.next_experiment(
        arms_fit,
        [{"params": 1e8, "tokens": 2e9}],
        compute=1e21,
        arms=["base", "crosser"],
        simulations=50,
        replicates=1,
    )
    table = ranked.candidates
    assert sorted(table.loc[table.source == "candidates", "group"]) == ["base", "crosser"]
    replicate = table[table.source == "replicate"]
    assert len(replicate) == 2 and set(replicate.params) == {3e8}
    assert np.all(table.evsi >= 0)


# --------------------------------------------------------------------------- gate


def test_gate_warns_and_marks_the_result(arms_fit, tmp_path, capsys):
    stats = dict(arms_fit.stats)
    stats["diverging"] = np.zeros_like(stats["diverging"])
    stats["diverging"][0, :3] = True
    info = {**arms_fit.info, "warn": False}
    bad = bs.Fit(arms_fit.model, arms_fit.samples, stats, arms_fit.runs, info)
    with pytest.warns(DecisionWarning, match="3 divergent transitions"):
        result = decide.compare(bad, compute=1e22)
    assert "3 divergent transitions" in result.to_dict()["warning"]
    path = bad.to_netcdf(tmp_path / "bad.nc")
    code, out, err = _run(capsys, "decide", path, "--compute", "1e22", "--json")
    assert code == 0
    assert "warning" in json.loads(out)
    assert any(
        line.startswith("warning: the fit fails the decision gate") for line in err.splitlines()
    )


# --------------------------------------------------------------------------- CLI


def test_cli_decide_json_contract(fit_file, capsys):
    code, out, _ = _run(capsys, "decide", fit_file, "--compute", "1e22", "--json")
    assert code == 0
    payload = json.loads(out)
    assert {"arms", "recommended", "evpi"} <= set(payload)
    assert set(payload["arms"]) == {"base", "crosser", "dominated", "twin"}
    for arm in payload["arms"].values():
        assert set(arm) == {"p_best", "expected", "expected_regret", "lower", "upper"}
    assert payload["recommended"] in payload["arms"] and payload["noise"] is False
    code, out, _ = _run(
        capsys,
        "decide",
        fit_file,
        "--params",
        "1e9",
        "--tokens",
        "2e10",
        "--arms",
        "base",
        "crosser",
        "--noise",
        "--margin",
        "0.01",
        "--json",
    )
    payload = json.loads(out)
    assert code == 0 and payload["variant"] == "next_run" and 0 <= payload["p_equivalent"] <= 1
    code, out, _ = _run(capsys, "decide", fit_file, "--compute", "1e22")
    assert code == 0 and "recommended:" in out


def test_cli_crossover_json_contract(fit_file, capsys):
    code, out, _ = _run(
        capsys,
        "crossover",
        fit_file,
        "--arms",
        "base",
        "crosser",
        "--compute-range",
        "1e20",
        "1e24",
        "--json",
    )
    assert code == 0
    payload = json.loads(out)
    assert {"p_already", "p_in_range", "p_never", "p_multiple", "median", "lower", "upper"} <= set(
        payload
    )
    assert payload["lower"] <= CROSSING <= payload["upper"]
    code, out, _ = _run(
        capsys,
        "crossover",
        fit_file,
        "--arms",
        "base",
        "crosser",
        "--compute-range",
        "1e20",
        "1e24",
    )
    assert code == 0 and "P(never crosses)" in out


def test_cli_next_json_contract(fit_file, tmp_path, capsys):
    candidates = tmp_path / "cands.csv"
    candidates.write_text("params,tokens,group\n2e7,1e8,base\n7e9,2.4e11,crosser\n1e8,2e9,\n")
    code, out, _ = _run(
        capsys,
        "next",
        fit_file,
        "--target-compute",
        "1e22",
        "--candidates",
        candidates,
        "--arms",
        "base",
        "crosser",
        "--simulations",
        "40",
        "--json",
    )
    assert code == 0
    payload = json.loads(out)
    assert {"candidates", "evpi", "target"} <= set(payload)
    rows = payload["candidates"]
    assert len(rows) == 4  # the ungrouped candidate is tried in both arms
    for row in rows:
        assert {
            "params",
            "tokens",
            "group",
            "cost",
            "evsi",
            "evsi_per_flop",
            "pareto_k",
            "reliable",
        } <= set(row)
        assert row["cost"] == pytest.approx(6 * row["params"] * row["tokens"])
    per_flop = [r["evsi_per_flop"] for r in rows]
    assert per_flop == sorted(per_flop, reverse=True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["decide", "{fit}", "--compute", "1e22", "--arms", "base", "crossr"],
            "error: unknown arm 'crossr'; did you mean 'crosser'?",
        ),
        (
            ["decide", "{fit}", "--params", "1e9", "--tokens", "2e10", "--compute", "1e22"],
            "error: give either --params N --tokens D or --compute C, not both",
        ),
        (["decide", "{fit}", "--params", "1e9"], "error: --params and --tokens go together"),
        (["decide", "{fit}"], "error: give a target"),
        (
            ["crossover", "{fit}", "--arms", "base", "crosser", "--compute-range", "1e22", "1e21"],
            "error: --compute-range LO HI needs LO < HI but got LO=1e+22, HI=1e+21",
        ),
        (
            ["crossover", "{fit}", "--arms", "base", "base", "--compute-range", "1e20", "1e22"],
            "error: crossover needs two different arms",
        ),
        (
            ["crossover", "{fit}", "--arms", "base", "crosser", "--compute-range", "-1", "1e22"],
            "error: ",
        ),
        (
            ["next", "{fit}", "--target-compute", "1e22", "--candidates", "{bad}"],
            "error: candidates file '{bad}' lacks column 'tokens'",
        ),
        (
            ["next", "{fit}", "--target-compute", "1e22", "--candidates", "{neg}"],
            "error: candidates column 'params' row 1: value -5",
        ),
        (
            ["next", "{fit}", "--target-compute", "1e22", "--candidates", "{fit}.missing.csv"],
            "error: candidates file",
        ),
    ],
)
def test_cli_bad_input_exits_2(fit_file, tmp_path, capsys, argv, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("params,group\n1e8,base\n")
    neg = tmp_path / "neg.csv"
    neg.write_text("params,tokens\n1e8,2e9\n-5,2e9\n")
    subs = {"{fit}": str(fit_file), "{bad}": str(bad), "{neg}": str(neg)}

    def fill(text):
        for key, value in subs.items():
            text = text.replace(key, value)
        return text

    code, out, err = _run(capsys, *[fill(a) for a in argv])
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith(fill(message))


def test_cli_ungrouped_fit_exits_2(base_alone, tmp_path, capsys):
    path = base_alone.to_netcdf(tmp_path / "single.nc")
    code, _, err = _run(capsys, "decide", path, "--compute", "1e22")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: a decision needs arms: a grouped fit")


# --------------------------------------------------------------------------- API input


def test_bad_api_input(arms_fit):
    with pytest.raises(ValueError, match="metric 'downstream' needs fits with a downstream"):
        decide.compare(arms_fit, compute=1e22, metric="downstream")
    with pytest.raises(ValueError, match="metric must be 'loss' or 'downstream' but got 'acc'"):
        decide.compare(arms_fit, compute=1e22, metric="acc")
    with pytest.raises(ValueError, match="margin must be a number > 0 but got -1"):
        decide.compare(arms_fit, compute=1e22, margin=-1)
    with pytest.raises(ValueError, match=r"compute must be finite and > 0 but got -1"):
        decide.compare(arms_fit, compute=-1)
    with pytest.raises(ValueError, match="compute_range must satisfy 0 < LO < HI"):
        decide.crossover(arms_fit, "base", "crosser", (1e22, 1e21))
    with pytest.raises(ValueError, match="a decision needs at least 2 arms but got 1"):
        decide.compare(arms_fit, compute=1e22, arms=["base"])
    with pytest.raises(ValueError, match="simulations must be an integer >= 20"):
        decide.next_experiment(
            arms_fit, [{"params": 1e8, "tokens": 1e9}], compute=1e22, simulations=5
        )
    with pytest.raises(ValueError, match="give candidate runs"):
        decide.next_experiment(arms_fit, None, compute=1e22)


# --------------------------------------------------------------------------- plots


def test_decision_plots_return_axes(arms_fit):
    import matplotlib.pyplot as plt

    from bayescale.plots.decide import plot_crossover, plot_frontiers, plot_p_best

    fig, axes = plt.subplots(1, 3)
    try:
        ax = plot_p_best(arms_fit, (1e18, 1e24), arms=["base", "crosser"], points=20, ax=axes[0])
        assert ax is axes[0] and len(ax.get_lines()) == 2
        result = decide.crossover(arms_fit, "base", "crosser", RANGE)
        ax = plot_crossover(result, ax=axes[1])
        assert ax is axes[1] and ax.get_lines()[0].get_ydata()[-1] == pytest.approx(
            result.p("in_range")
        )
        assert any("never" in t.get_text() for t in ax.get_legend().get_texts())
        ax = plot_frontiers(
            arms_fit, (1e16, 1e23), arms=["base", "dominated"], points=20, ax=axes[2]
        )
        assert ax is axes[2] and len(ax.collections) >= 4  # 2 bands + 2 sets of runs
    finally:
        plt.close(fig)
