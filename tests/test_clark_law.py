"""The clark2022 law (Clark et al. 2022): its expert transform, a simulated recovery through
the command line, and its bad-input errors."""

import json

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.cli import main
from bayescale.data.runs import RunsError
from bayescale.laws import get_law
from bayescale.laws.covariate import _log_e_hat_ratio

#: a routed law whose gain saturates inside the simulated expert counts (E_max = 100)
TRUTH = {"a": -0.08, "b": -0.05, "c": 0.001, "d": 2.5, "E_start": 2.0, "E_max": 100.0}
SAMPLER = ["--chains", "4", "--draws", "500", "--warmup", "500", "--seed", "0"]


def e_hat(e, e_start, e_max):
    """Clark et al.'s transform as the paper writes it."""
    inv = 1.0 / (np.asarray(e, float) - 1 + 1.0 / (1.0 / e_start - 1.0 / e_max)) + 1.0 / e_max
    return 1.0 / inv


def test_transform_is_the_papers_and_finite_for_a_dense_model():
    e = np.array([1.0, 2.0, 8.0, 64.0, 512.0, 1e9])
    u = _log_e_hat_ratio(np, np.log(e), 2.0, np.log(100.0 / 2.0))
    np.testing.assert_allclose(u, np.log(e_hat(e, 2.0, 100.0) / 2.0), rtol=1e-12, atol=1e-12)
    assert u[0] == 0.0  # E = 1: Ê = E_start exactly
    assert np.all(np.diff(u) > 0) and u[-1] < np.log(100.0 / 2.0)  # rises, saturates at E_max
    # E_start = 1, E_max -> inf: Ê = E
    np.testing.assert_allclose(_log_e_hat_ratio(np, np.log(e), 1.0, 60.0), np.log(e), atol=1e-9)


def test_reported_parameters_round_trip_and_match_the_papers_formula():
    law = get_law("clark2022")
    ref = {"params": np.log(1e8), "E": 0.0}
    back = law.to_reported(law.from_reported(TRUTH, ref), ref)
    for name, value in TRUTH.items():
        assert back[name] == pytest.approx(value, rel=1e-10), name
    n, e = np.array([3e7, 1e9]), np.array([1.0, 256.0])
    log_e_hat = np.log(e_hat(e, TRUTH["E_start"], TRUTH["E_max"]))
    t = TRUTH
    paper = t["a"] * np.log(n) + t["b"] * log_e_hat + t["c"] * np.log(n) * log_e_hat + t["d"]
    np.testing.assert_allclose(law.loss(TRUTH, params=n, E=e), np.exp(paper), rtol=1e-5)


def simulated_table(seed: int = 0) -> pd.DataFrame:
    """Dense runs (E = 1) and one router at E = 4..64, 5 sizes, 1% noise."""
    sizes = (1.5e7, 4e7, 1e8, 2.5e8, 6e8)
    rows = [(n, 1.0, "Dense") for n in sizes] * 2
    rows += [(n, e, "routed") for n in sizes for e in (4.0, 8.0, 16.0, 32.0, 64.0)]
    df = pd.DataFrame(rows, columns=["dense_params", "num_experts", "router"])
    mu = get_law("clark2022").loss(TRUTH, params=df.dense_params.values, E=df.num_experts.values)
    df["loss"] = mu * np.exp(0.01 * np.random.default_rng(seed).standard_normal(len(df)))
    return df


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def bad(capsys, *argv) -> str:
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def cli_fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clark")
    csv, out = folder / "runs.csv", folder / "fit.nc"
    simulated_table().to_csv(csv, index=False)
    argv = ["fit", csv, "--law", "clark2022", "--params", "dense_params", "--loss", "loss"]
    argv += ["--input", "E=num_experts", "--group", "router", "--pooling", "shared"]
    assert main([str(a) for a in [*argv, *SAMPLER, "--out", out]]) == 0
    return bs.load_fit(out), out


@pytest.mark.slow
def test_cli_fit_recovers_the_law_and_predicts_an_unseen_expert_count(cli_fit, capsys):
    fitted, path = cli_fit
    assert fitted.diagnostics.ok, fitted.diagnostics
    summary = fitted.summary(prob=0.99)
    for name in ("a", "b", "c", "d", "E_start"):  # E_max: only its lower reaches are seen
        row = summary.loc[f"{name}[routed]"]
        assert row["lower"] < TRUTH[name] < row["upper"], (name, row.to_dict())
    # the dense law is shared: a and d of the Dense group are the routed group's at E = 1
    dense = fitted.predict(params=1e8, at={"E": 1.0}, group="Dense", noise=False)
    routed = fitted.predict(params=1e8, at={"E": 1.0}, group="routed", noise=False)
    np.testing.assert_allclose(dense.draws, routed.draws)
    # E = 256 was never trained: the law extrapolates it
    true_loss = float(get_law("clark2022").loss(TRUTH, params=1e9, E=256.0))
    code, out, err = run(
        capsys, "predict", path, "--params", "1e9", "--at", "E=256", "--group", "routed", "--json"
    )
    assert code == 0, err
    payload = json.loads(out)
    assert payload["lower"] < true_loss < payload["upper"], (payload, true_loss)
    assert abs(payload["median"] / true_loss - 1) < 0.02  # noise 1%, 4x beyond the data

    assert bad(
        capsys, "predict", path, "--params", "1e9", "--at", "E=0.5", "--group", "routed"
    ) == (
        "error: law 'clark2022': E must be >= 1 to predict (E counts experts; E = 1 is a dense "
        "model) but got 0.5"
    )
    assert bad(capsys, "predict", path, "--params", "1e9", "--at", "X=8", "--group", "routed") == (
        "error: unknown input 'X'; this fit knows the inputs params, tokens, compute, E"
    )
    assert bad(capsys, "predict", path, "--params", "1e9", "--group", "routed") == (
        "error: law 'clark2022' needs E to predict (give --at E=VALUE)"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            0.5,
            "column 'num_experts' row 3: value 0.5 is below 1 (input E of law 'clark2022' "
            "counts experts: E >= 1, and E = 1 is a dense model)",
        ),
        (
            np.nan,
            "column 'num_experts' row 3: value is missing (input E must be given for every run)",
        ),
        (0.0, "column 'num_experts' row 3: value 0.0 is not positive (input E must be > 0)"),
    ],
)
def test_bad_expert_counts_are_one_line_errors(value, message, tmp_path, capsys):
    df = simulated_table()
    df.loc[3, "num_experts"] = value
    with pytest.raises(RunsError) as err:
        bs.fit(
            df,
            law="clark2022",
            params="dense_params",
            loss="loss",
            inputs={"E": "num_experts"},
            group="router",
        )
    assert str(err.value) == message
    csv = tmp_path / "runs.csv"
    df.to_csv(csv, index=False)
    line = bad(
        capsys, "fit", csv, "--law", "clark2022", "--params", "dense_params", "--loss", "loss",
        "--input", "E=num_experts", "--out", tmp_path / "fit.nc",
    )  # fmt: skip
    assert line == f"error: {message}"
    assert not (tmp_path / "fit.nc").exists()


def test_e_ref_option_is_checked():
    with pytest.raises(ValueError, match=r"clark2022 option e_ref must be a number > 1"):
        get_law("clark2022", e_ref=1.0)
    assert dict(get_law("clark2022", e_ref=16).options) == {"e_ref": 16.0}
