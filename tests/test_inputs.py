"""Named inputs: columns beyond params/tokens/compute, through fit, the fit file and the CLI."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import sampled

import bayescale as bs
from bayescale import load_fit
from bayescale.cli import main
from bayescale.data.runs import RunsError, RunsWarning, read_runs
from bayescale.laws import get_law

#: Muennighoff et al. 2023's fitted law (their Table/eq. 10 values)
TRUTH = {
    "E": 1.87,
    "A": 521.0,
    "B": 1488.0,
    "alpha": 0.35,
    "beta": 0.353,
    "R_D_star": 15.4,
    "R_N_star": 5.3,
}
SAMPLER = {"chains": 4, "draws": 500, "warmup": 500, "seed": 0, "progress": False}


def simulated_table(seed: int = 0) -> pd.DataFrame:
    """4 sizes x 4 unique-token pools x 6 epoch counts from the paper's law, 1% noise, and two
    runs of half an epoch (D/U = 0.5) that the law reads as U_D = D."""
    rows = [
        (n, u * epochs, u)
        for n in (3e7, 1e8, 3e8, 1e9)
        for u in (n / 2, 2 * n, 5 * n, 20 * n)
        for epochs in (1, 2, 4, 10, 25, 60)
    ]
    rows += [(1e8, 1e9, 2e9), (3e8, 3e9, 6e9)]
    df = pd.DataFrame(rows, columns=["params", "tokens", "unique_tokens"])
    mu = get_law("muennighoff2023").loss(
        TRUTH, params=df.params.values, tokens=df.tokens.values, U=df.unique_tokens.values
    )
    rng = np.random.default_rng(seed)
    df["loss"] = mu * np.exp(0.01 * rng.standard_normal(len(df)))
    df.index = [f"run{i}" for i in range(len(df))]
    return df


EPOCH_WARNING = (
    "law 'muennighoff2023': D/U < 1 in rows run96, run97 (tokens below unique tokens U; the "
    "law assumes at least one epoch and uses U_D = min(U, D) there: check that --tokens and "
    "--input U are not swapped)"
)


@pytest.fixture(scope="module")
def constrained_fit():
    df = simulated_table()
    with pytest.warns(RunsWarning, match=re.escape(EPOCH_WARNING)):
        fitted = bs.fit(
            df,
            **sampled(
                law="muennighoff2023",
                params="params",
                tokens="tokens",
                loss="loss",
                inputs={"U": "unique_tokens"},
                **SAMPLER,
            ),
        )
    return df, fitted


def small_table() -> pd.DataFrame:
    return pd.DataFrame(
        {"N": [1e8, 2e8, 4e8], "D": [2e9, 4e9, 8e9], "U": [1e9, 2e9, 4e9], "loss": [3.0, 2.8, 2.6]}
    )


def read_with_u(df, column="U"):
    return read_runs(df, params="N", tokens="D", loss="loss", inputs={"U": column})


# --------------------------------------------------------------------------- bad input


def test_named_input_is_read_and_kept_through_select():
    runs = read_with_u(small_table())
    assert runs.input_names == ("params", "tokens", "compute", "U")
    np.testing.assert_array_equal(runs.input("U"), [1e9, 2e9, 4e9])
    np.testing.assert_array_equal(runs.select(np.array([False, True, True])).input("U"), [2e9, 4e9])


def test_named_input_column_missing_is_one_line_naming_the_input():
    with pytest.raises(RunsError) as err:
        read_with_u(small_table(), column="uniq")
    assert str(err.value) == (
        "column 'uniq' (input U) not found; available columns: 'N', 'D', 'U', 'loss'"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.nan, "column 'U' row 1: value is missing (input U must be given for every run)"),
        (0.0, "column 'U' row 1: value 0.0 is not positive (input U must be > 0)"),
        (-5.0, "column 'U' row 1: value -5.0 is not positive (input U must be > 0)"),
    ],
)
def test_named_input_nan_or_non_positive_is_one_line(value, message):
    df = small_table()
    df.loc[1, "U"] = value
    with pytest.raises(RunsError) as err:
        read_with_u(df)
    assert str(err.value) == message


def test_law_needing_an_input_the_table_lacks_names_both():
    df = simulated_table()
    with pytest.raises(RunsError) as err:
        bs.fit(df, law="muennighoff2023", params="params", tokens="tokens", loss="loss")
    assert str(err.value) == (
        "law 'muennighoff2023' needs input 'U', but the runs have no input 'U' (map a column "
        "to it: --input U=COLUMN / inputs={'U': COLUMN}; the runs have: params, tokens, compute)"
    )


# --------------------------------------------------------------------------- recovery


@pytest.mark.slow
def test_fit_with_inputs_recovers_the_data_constrained_law(constrained_fit):
    _, fitted = constrained_fit
    assert fitted.diagnostics.ok, fitted.diagnostics
    assert fitted.runs.columns["U"] == "unique_tokens"
    summary = fitted.summary(prob=0.95)
    for name, value in TRUTH.items():
        lower, upper = summary.loc[name, "lower"], summary.loc[name, "upper"]
        assert lower < value < upper, (name, lower, value, upper)
    # the data pins R*_D to within a factor ~1.5 and R*_N to a factor ~3 (95% intervals)
    assert summary.loc["R_D_star", "upper"] / summary.loc["R_D_star", "lower"] < 1.6
    assert summary.loc["R_N_star", "upper"] / summary.loc["R_N_star", "lower"] < 3.5


@pytest.mark.slow
def test_predict_at_a_named_input_and_its_errors(constrained_fit):
    _, fitted = constrained_fit
    true_loss = float(get_law("muennighoff2023").loss(TRUTH, params=5e8, tokens=4e10, U=2e9))
    at = fitted.predict(params=5e8, tokens=4e10, at={"U": 2e9}, noise=False)
    assert at.lower[0] < true_loss < at.upper[0]
    # more unique data (fewer epochs) is a lower loss in every draw
    fresh = fitted.predict(params=5e8, tokens=4e10, at={"U": 4e10}, noise=False)
    assert np.all(fresh.draws < at.draws)
    with pytest.raises(ValueError) as err:
        fitted.predict(params=5e8, tokens=4e10, at={"V": 2e9})
    assert str(err.value) == (
        "unknown input 'V'; this fit knows the inputs params, tokens, compute, U"
    )
    with pytest.raises(ValueError) as err:
        fitted.predict(params=5e8, tokens=4e10)
    assert str(err.value) == "law 'muennighoff2023' needs U to predict (give --at U=VALUE)"


def true_optimum(compute: float, unique: float | None) -> dict:
    """The true law's optimum along C = 6ND on a fine log grid of N (U = D: unlimited)."""
    n = np.geomspace(1e7, 1e11, 200_001)
    d = compute / (6 * n)
    loss = get_law("muennighoff2023").loss(
        TRUTH, params=n, tokens=d, U=d if unique is None else np.full_like(n, unique)
    )
    i = int(np.argmin(loss))
    return {"params": n[i], "tokens": d[i], "loss": loss[i]}


@pytest.mark.slow
def test_allocation_under_a_data_constraint_recovers_the_true_optimum(constrained_fit):
    from bayescale.allocate import compute_optimal

    _, fitted = constrained_fit
    budgets = [1e20, 1e21]
    alloc = compute_optimal(fitted, budgets, at={"U": 2e9})
    for j, c in enumerate(budgets):
        truth, free = true_optimum(c, 2e9), true_optimum(c, None)
        expected = {
            "params": truth["params"],
            "tokens": truth["tokens"],
            "loss": truth["loss"],
            "epochs": truth["tokens"] / 2e9,  # 11.3 and 41.9
            "unlimited_params": free["params"],
            "unlimited_loss": free["loss"],
            "loss_cost": truth["loss"] - free["loss"],  # 0.096 and 0.22 nats
        }
        for name, value in expected.items():
            stats = alloc.interval(name, 0.95)
            assert stats["lower"][j] < value < stats["upper"][j], (c, name, stats, value)
    # the constraint never helps: no draw's constrained optimum beats its unlimited one
    assert np.all(alloc.loss_cost > -1e-9)
    # more unique data, fewer epochs at the same budget
    more = compute_optimal(fitted, budgets, at={"U": 8e9})
    assert np.all(np.median(more.epochs, axis=0) < np.median(alloc.epochs, axis=0))


# --------------------------------------------------------------------------- CLI


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def bad(capsys, *argv) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.slow
def test_cli_input_and_at_round_trip_through_the_fit_file(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    simulated_table().to_csv(csv, index_label="id")
    out = tmp_path / "fit.nc"
    code, _, err = run(
        capsys,
        "fit",
        csv,
        "--law",
        "muennighoff2023",
        "--params",
        "params",
        "--tokens",
        "tokens",
        "--loss",
        "loss",
        "--input",
        "U=unique_tokens",
        "--draws",
        "500",
        "--warmup",
        "500",
        "--out",
        out,
        "--json",
    )
    assert code == 0, err
    assert "D/U < 1 in rows" in err  # the CLI shows the epoch warning
    loaded = load_fit(out)
    assert loaded.runs.inputs.keys() == {"U"}
    np.testing.assert_array_equal(loaded.runs.input("U"), simulated_table().unique_tokens)

    code, stdout, _ = run(
        capsys, "predict", out, "--params", "5e8", "--tokens", "4e10", "--at", "U=2e9", "--json"
    )
    assert code == 0
    payload = json.loads(stdout)
    direct = loaded.predict(params=5e8, tokens=4e10, at={"U": 2e9}).to_dict()
    assert payload["median"] == pytest.approx(direct["median"], rel=1e-12)
    true_loss = float(get_law("muennighoff2023").loss(TRUTH, params=5e8, tokens=4e10, U=2e9))
    assert payload["lower"] < true_loss < payload["upper"]

    code, stdout, _ = run(capsys, "allocate", out, "--budget", "1e20", "--at", "U=2e9", "--json")
    assert code == 0
    payload = json.loads(stdout)
    assert {"params", "tokens", "tokens_per_param", "loss", "epochs", "loss_cost"} <= set(payload)
    assert payload["at"] == {"U": 2e9} and set(payload["unlimited"]) == {"params", "tokens", "loss"}
    from bayescale.allocate import compute_optimal

    direct = compute_optimal(loaded, 1e20, at={"U": 2e9}).to_dict()
    assert payload["epochs"] == pytest.approx(direct["epochs"], rel=1e-9)
    truth = true_optimum(1e20, 2e9)
    assert payload["params"]["lower"] < truth["params"] < payload["params"]["upper"]
    code, text, _ = run(capsys, "allocate", out, "--budget", "1e20", "--at", "U=2e9")
    assert code == 0 and "loss the constraint costs" in text and "epochs D/U" in text
    assert bad(capsys, "allocate", out, "--budget", "1e20") == (
        "error: law 'muennighoff2023' needs U to allocate (give --at U=VALUE)"
    )
    assert bad(capsys, "allocate", out, "--budget", "1e20", "--at", "V=1") == (
        "error: unknown input 'V'; this fit's named inputs are U"
    )

    line = bad(capsys, "predict", out, "--params", "5e8", "--tokens", "4e10", "--at", "u=2e9")
    assert line == (
        "error: unknown input 'u'; did you mean 'U'? this fit knows the inputs params, tokens, "
        "compute, U"
    )
    line = bad(capsys, "predict", out, "--params", "5e8", "--tokens", "4e10")
    assert line == "error: law 'muennighoff2023' needs U to predict (give --at U=VALUE)"
    line = bad(capsys, "predict", out, "--params", "5e8", "--tokens", "4e10", "--at", "U=-1")
    assert line == (
        "error: bayescale predict: argument --at: --at U: expected a positive finite number "
        "but got '-1'"
    )
    line = bad(
        capsys, "predict", out, "--params", "5e8", "--tokens", "4e10", "--at", "U=1", "--at", "U=2"
    )
    assert line == "error: --at U is given twice"


def test_cli_input_errors_before_any_fit(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    small_table().to_csv(csv, index=False)
    common = ["fit", csv, "--law", "muennighoff2023", "--params", "N", "--tokens", "D"]
    common += ["--loss", "loss", "--out", tmp_path / "f.nc"]
    assert bad(capsys, *common, "--input", "U=uniq") == (
        "error: column 'uniq' (input U) not found; available columns: 'N', 'D', 'U', 'loss'"
    )
    assert bad(capsys, *common, "--input", "U") == (
        "error: bayescale fit: argument --input: expected NAME=COLUMN but got 'U'"
    )
    assert bad(capsys, *common, "--input", "loss=U") == (
        "error: input name 'loss' is reserved (params, tokens, compute, loss, downstream, "
        "group, sweep, group_code, sweep_code); pick another name"
    )


# --------------------------------------------------------------------------- decisions at U

#: arm a has the lower floor, arm b keeps more value from repeated tokens: with plenty of
#: unique data a wins, under a tight data constraint b does
ARMS = {
    "a": {**TRUTH, "E": 1.80, "R_D_star": 5.0},
    "b": {**TRUTH, "E": 1.87, "R_D_star": 25.0},
}


def two_arm_table(seed: int = 1) -> pd.DataFrame:
    frames = []
    law = get_law("muennighoff2023")
    rng = np.random.default_rng(seed)
    for arm, truth in ARMS.items():
        rows = [
            (n, u * epochs, u)
            for n in (3e7, 1e8, 3e8, 1e9)
            for u in (n / 2, 2 * n, 20 * n)
            for epochs in (1, 3, 10, 30, 60)
        ]
        df = pd.DataFrame(rows, columns=["params", "tokens", "unique_tokens"])
        mu = law.loss(
            truth, params=df.params.values, tokens=df.tokens.values, U=df.unique_tokens.values
        )
        df["loss"] = mu * np.exp(0.01 * rng.standard_normal(len(df)))
        df["arm"] = arm
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def true_frontier_loss(truth: dict, compute: float, unique: float) -> float:
    n = np.geomspace(1e7, 1e11, 20_001)
    d = compute / (6 * n)
    return float(
        get_law("muennighoff2023").loss(truth, params=n, tokens=d, U=np.full_like(n, unique)).min()
    )


@pytest.fixture(scope="module")
def arms_fit(tmp_path_factory):
    fitted = bs.fit(
        two_arm_table(),
        **sampled(
            law="muennighoff2023",
            params="params",
            tokens="tokens",
            loss="loss",
            group="arm",
            pooling="shared",
            inputs={"U": "unique_tokens"},
            **SAMPLER,
        ),
    )
    path = tmp_path_factory.mktemp("arms") / "arms.nc"
    fitted.to_netcdf(path)
    return fitted, path


@pytest.mark.slow
def test_decide_and_crossover_carry_the_named_input(arms_fit):
    from bayescale.decide import compare, crossover

    fitted, _ = arms_fit
    assert fitted.diagnostics.ok, fitted.diagnostics
    tight = compare(fitted, params=5e8, tokens=1e11, at={"U": 2e9})  # 50 epochs
    loose = compare(fitted, params=5e8, tokens=1e11, at={"U": 1e11})  # 1 epoch
    assert tight.recommended == "b" and tight.p_best[tight.arms.index("b")] > 0.99
    assert loose.recommended == "a" and loose.p_best[loose.arms.index("a")] > 0.99
    assert tight.to_dict()["target"] == {"params": 5e8, "tokens": 1e11, "compute": None, "U": 2e9}
    # a budget: each arm at its own loss-optimal split under the constraint
    budget = compare(fitted, compute=1e21, at={"U": 2e9})
    assert budget.recommended == "b"
    for k, arm in enumerate(budget.arms):
        true_loss = true_frontier_loss(ARMS[arm], 1e21, 2e9)
        assert budget.lower[k] < true_loss < budget.upper[k], (arm, true_loss)
    with pytest.raises(ValueError) as err:
        compare(fitted, params=5e8, tokens=1e11)
    assert str(err.value) == "law 'muennighoff2023' needs U at the target (give --at U=VALUE)"

    # along the constrained frontiers b overtakes a once the epochs pile up
    grid = np.geomspace(1e18, 1e23, 400)
    gap = [
        true_frontier_loss(ARMS["a"], c, 2e9) - true_frontier_loss(ARMS["b"], c, 2e9) for c in grid
    ]
    true_cross = float(grid[np.flatnonzero(np.diff(np.sign(gap)))[0]])
    result = crossover(fitted, "a", "b", (1e18, 1e23), at={"U": 2e9})
    payload = result.to_dict()
    assert payload["p_in_range"] > 0.95
    assert payload["lower"] < true_cross < payload["upper"], (payload, true_cross)


@pytest.mark.slow
def test_cli_decide_crossover_report_take_at(arms_fit, tmp_path, capsys):
    _, path = arms_fit
    code, out, _ = run(
        capsys, "decide", path, "--params", "5e8", "--tokens", "1e11", "--at", "U=2e9", "--json"
    )
    assert code == 0 and json.loads(out)["recommended"] == "b"
    code, out, _ = run(
        capsys, "decide", path, "--params", "5e8", "--tokens", "1e11", "--at", "U=1e11", "--json"
    )
    assert code == 0 and json.loads(out)["recommended"] == "a"
    code, out, _ = run(
        capsys,
        "crossover",
        path,
        "--arms",
        "a",
        "b",
        "--compute-range",
        "1e18",
        "1e23",
        "--at",
        "U=2e9",
        "--json",
    )
    payload = json.loads(out)
    assert code == 0 and payload["at"] == {"U": 2e9} and payload["p_in_range"] > 0.95
    assert bad(
        capsys, "crossover", path, "--arms", "a", "b", "--compute-range", "1e18", "1e23"
    ) == ("error: law 'muennighoff2023' needs U at the target (give --at U=VALUE)")
    report = tmp_path / "report"
    code, _, err = run(
        capsys,
        "report",
        path,
        "--out",
        report,
        "--target",
        "5e8,1e11",
        "--at",
        "U=2e9",
        "--no-backtest",
    )
    assert code == 0, err
    text = (report / "report.md").read_text()
    assert "| N | D | C (FLOPs) | U | Group |" in text
    assert "recommended `b`" in text
    assert "--at U=2e+09" in text  # the reproduce line carries it


@pytest.mark.slow
def test_next_takes_at_for_the_target_and_the_candidates(arms_fit, tmp_path, capsys):
    from bayescale.decide import next_experiment

    fitted, path = arms_fit
    target = {"params": 5e8, "tokens": 1e11, "simulations": 40}
    one = [{"params": 1e8, "tokens": 3e10, "group": "a"}]
    tight = next_experiment(fitted, one, at={"U": 2e9}, **target)
    assert tight.recommended == "b" and tight.target["U"] == 2e9
    assert next_experiment(fitted, one, at={"U": 1e11}, **target).recommended == "a"
    # a candidate without a U column takes the target's; with one, its own
    # (b wins by far at 50 epochs: EVSI ~ 0; the reweighted draws' ESS shows which U was used)
    explicit = next_experiment(fitted, [{**one[0], "U": 2e9}], at={"U": 2e9}, **target)
    assert explicit.candidates.ess[0] == tight.candidates.ess[0]
    assert explicit.to_dict()["candidates"][0]["at"] == {"U": 2e9}
    fresh = next_experiment(fitted, [{**one[0], "U": 3e10}], at={"U": 2e9}, **target)
    assert fresh.candidates.ess[0] != tight.candidates.ess[0]

    cands = tmp_path / "cands.csv"
    pd.DataFrame([{"params": 1e8, "tokens": 3e10, "group": "a"}]).to_csv(cands, index=False)
    argv = ["next", path, "--params", "5e8", "--tokens", "1e11", "--candidates", cands]
    argv += ["--simulations", "40"]
    code, out, err = run(capsys, *argv, "--at", "U=2e9", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["target"]["U"] == 2e9 and payload["recommended"] == "b"
    assert payload["candidates"][0]["ess"] == pytest.approx(tight.candidates.ess[0], rel=1e-12)
    assert bad(capsys, *argv) == (
        "error: law 'muennighoff2023' needs U at the target (give --at U=VALUE)"
    )
    assert bad(capsys, *argv, "--at", "V=1") == (
        "error: unknown input 'V'; this fit's named inputs are U"
    )
