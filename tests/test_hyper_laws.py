"""lr_opt and batch_opt: optimal learning rate and batch size as power laws of compute.

There is no learning-rate or batch-size sweep in ../shared/data, so these laws are checked
on a simulated table: DeepSeek LLM's fitted laws (eta_opt = 0.3118 C^-0.125, B_opt = 0.2920
C^0.3271) at 10 budgets from 1e17 to 3e20 FLOPs, two sweeps per budget, 10% log-normal
scatter (an optimum read off a grid of factor-1.4 steps). Measured (4 x 1000 + 500 draws,
seed 0; ``.venv/bin/python -m pytest -q tests/test_hyper_laws.py``, 7 s): a_lr -0.1321 (sd
0.0081, truth -0.125: 0.9 sd), a_B 0.3303 (sd 0.0071, truth 0.3271: 0.45 sd), sigma 8.4% and
7.1% (truth 10%).
"""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import FAST, sampled

import bayescale as bs
from bayescale.cli import main
from bayescale.laws import get_law

TRUTH = {"lr_opt": {"lr_c": 0.3118, "a_lr": -0.125}, "batch_opt": {"B_c": 0.2920, "a_B": 0.3271}}
EXPONENT = {"lr_opt": "a_lr", "batch_opt": "a_B"}
SAMPLER = {**FAST, "seed": 0, "progress": False}


def sweeps(seed: int = 0) -> pd.DataFrame:
    compute = np.repeat(np.geomspace(1e17, 3e20, 10), 2)
    rng = np.random.default_rng(seed)
    lr = get_law("lr_opt").loss(TRUTH["lr_opt"], compute=compute)
    batch = get_law("batch_opt").loss(TRUTH["batch_opt"], compute=compute)
    return pd.DataFrame(
        {
            "C": compute,
            "lr": lr * np.exp(0.1 * rng.standard_normal(compute.size)),
            "batch_tokens": batch * np.exp(0.1 * rng.standard_normal(compute.size)),
        }
    )


@pytest.fixture(scope="module")
def hyper_fits():
    df = sweeps()
    return {
        "lr_opt": bs.fit(df, **sampled(law="lr_opt", compute="C", loss="lr", **SAMPLER)),
        "batch_opt": bs.fit(
            df, **sampled(law="batch_opt", compute="C", loss="batch_tokens", **SAMPLER)
        ),
    }


def test_laws_read_their_response_as_the_loss_column_with_sweep_noise():
    law = get_law("lr_opt")
    assert law.inputs == ("compute",) and law.reported_names == ("lr_c", "a_lr")
    assert dict(law.noise)["sigma"] == bs.Prior("LogNormal", {"mu": -2.3026, "sigma": 1.0})
    assert get_law("batch_opt", x="params").inputs == ("params",)
    with pytest.raises(ValueError, match="batch_opt input x must be one of"):
        get_law("batch_opt", x="E")
    # y = k X^a: at X = 1 the law is its coefficient
    assert float(law.loss({"lr_c": 0.5, "a_lr": -0.2}, compute=1.0)) == pytest.approx(0.5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lr_opt", "batch_opt"])
def test_exponents_are_recovered_within_their_posterior_sd(hyper_fits, name):
    fitted = hyper_fits[name]
    assert fitted.diagnostics.ok, fitted.diagnostics
    row = fitted.summary().loc[EXPONENT[name]]
    truth = TRUTH[name][EXPONENT[name]]
    assert abs(row["median"] - truth) < 3 * row["sd"], row.to_dict()  # measured < 1 sd
    assert row["sd"] < 0.02  # 20 sweeps over 3.5 decades pin it to ~0.008
    assert fitted.model.priors["sigma"] == dict(get_law(name).noise)["sigma"]
    # 300x beyond the largest budget the law's median is the truth's within its interval
    true_value = float(get_law(name).loss(TRUTH[name], compute=1e23))
    p = fitted.predict(compute=1e23, noise=False)
    assert p.lower[0] < true_value < p.upper[0]


@pytest.mark.slow
def test_cli_fits_the_learning_rate_law(tmp_path, capsys):
    csv, out = tmp_path / "sweeps.csv", tmp_path / "lr.nc"
    sweeps().to_csv(csv, index=False)
    argv = ["fit", csv, "--law", "lr_opt", "--compute", "C", "--loss", "lr", "--out", out]
    argv += ["--chains", "4", "--draws", "1000", "--warmup", "500", "--seed", "0"]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    assert main(["predict", str(out), "--compute", "1e22", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    true_lr = float(get_law("lr_opt").loss(TRUTH["lr_opt"], compute=1e22))
    assert payload["lower"] < true_lr < payload["upper"], (payload, true_lr)
