"""Backtests of laws over named inputs: ``backtest(..., inputs=...)`` and ``--input``."""

import json

import numpy as np
import pytest
from test_inputs import simulated_table

from bayescale.cli import main
from bayescale.data.runs import read_runs
from bayescale.trust import backtest

#: short chains: the data-constrained posterior on 80 runs mixes well (R-hat checked below)
SAMPLER = {"chains": 2, "draws": 300, "warmup": 300, "seed": 0}


def one_epoch_or_more():
    """The simulated Muennighoff ladder without its two half-epoch runs (D/U < 1 warns)."""
    df = simulated_table()
    return df[df.tokens >= df.unique_tokens]


@pytest.fixture(scope="module")
def largest_out():
    kwargs = dict(holdout="params==max", params="params", tokens="tokens", loss="loss")
    constrained = backtest(
        one_epoch_or_more(),
        "muennighoff2023",
        inputs={"U": "unique_tokens"},
        baseline=False,
        **kwargs,
        **SAMPLER,
    )
    plain = backtest(one_epoch_or_more(), "chinchilla", baseline=False, **kwargs, **SAMPLER)
    return constrained, plain


@pytest.mark.slow
def test_a_law_over_a_named_input_predicts_the_held_out_size(largest_out):
    constrained, plain = largest_out
    s = constrained.summary()
    held = constrained.runs
    assert s["n"] == 24 and set(held["params"]) == {1e9}
    assert constrained.folds["max_r_hat"].max() <= 1.05
    # the simulation's own law with 1% noise: the intervals hold the truth, the error is noise
    assert s["coverage_95"] >= 0.8
    assert s["median_rel_error"] < 0.02
    # ignoring U on repeated-epoch data is far off on the same split (its short chains may
    # fail the diagnostics gate, so its runs are read whether or not the fold is ok)
    assert np.median(plain.runs["rel_error"]) > 2 * s["median_rel_error"]


@pytest.mark.slow
def test_cli_backtest_reads_named_inputs(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    one_epoch_or_more().to_csv(csv, index_label="id")
    argv = ["backtest", str(csv), "--law", "muennighoff2023", "--params", "params"]
    argv += ["--tokens", "tokens", "--loss", "loss", "--input", "U=unique_tokens"]
    argv += ["--holdout", "params==max", "--no-baseline", "--chains", "2", "--draws", "300"]
    argv += ["--warmup", "300", "--json"]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["summary"]["n"] == 24
    assert payload["settings"]["law"] == "muennighoff2023"
    assert np.isfinite(payload["summary"]["median_rel_error"])


def test_cli_backtest_without_the_input_the_law_needs_is_one_line(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    one_epoch_or_more().to_csv(csv, index_label="id")
    argv = ["backtest", str(csv), "--law", "muennighoff2023", "--params", "params"]
    argv += ["--tokens", "tokens", "--loss", "loss", "--holdout", "params==max"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "law 'muennighoff2023' needs input 'U'" in err[0]
    assert "--input U=COLUMN" in err[0]


def test_inputs_with_a_runs_object_is_refused():
    runs = read_runs(
        one_epoch_or_more(),
        params="params",
        tokens="tokens",
        loss="loss",
        inputs={"U": "unique_tokens"},
    )
    with pytest.raises(ValueError, match=r"^inputs= maps columns of a table; these Runs already"):
        backtest(runs, "muennighoff2023", holdout="params==max", inputs={"U": "unique_tokens"})
