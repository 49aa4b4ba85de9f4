"""Tests for bayescale.data.datasets on the real public files (skipped only when they are absent)."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayescale.data.datasets import (
    data_dir,
    flag_diverged,
    gadre2024_table,
    load_chinchilla,
    load_gadre2024,
    load_porian2024,
    load_porian2024_exponents,
    load_xlstm,
)
from bayescale.data.runs import RunsError, RunsWarning

XLSTM_MISSING = (
    r"^dropped 5 rows with missing 'val_dclm_loss_final' \(rows 20, 35, 64, 65, 90\): "
    r"runs without a final evaluation$"
)


def test_data_dir_precedence(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESCALE_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    assert data_dir(shared_data) == shared_data
    monkeypatch.delenv("BAYESCALE_DATA")
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if default.is_dir():
        assert data_dir() == default
    else:
        with pytest.raises(RunsError, match=r"\(default location\) not found"):
            data_dir()


def test_data_dir_missing(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(
        RunsError,
        match="^"
        + re.escape(
            f"data directory '{missing}' (given path) not found; pass path=... or set BAYESCALE_DATA"
        ),
    ):
        data_dir(missing)
    monkeypatch.setenv("BAYESCALE_DATA", str(missing))
    with pytest.raises(RunsError, match=r"\(BAYESCALE_DATA\) not found"):
        load_chinchilla()


def test_data_file_missing(tmp_path):
    with pytest.raises(
        RunsError,
        match="^"
        + re.escape(
            f"data file 'chinchilla_epoch2024.csv' not found in '{tmp_path}'; pass path=... or set BAYESCALE_DATA"
        )
        + "$",
    ):
        load_chinchilla(tmp_path)


def test_chinchilla(shared_data):
    runs = load_chinchilla(shared_data)
    raw = pd.read_csv(shared_data / "chinchilla_epoch2024.csv")
    assert runs.n_runs == 245 == len(raw)
    np.testing.assert_array_equal(runs.compute, raw["Training FLOP"].to_numpy())
    np.testing.assert_allclose(
        runs.tokens, raw["Training FLOP"] / (6 * raw["Model Size"]), rtol=1e-12, atol=0
    )
    assert runs.derived == ("tokens",) and runs.group is None
    assert runs.columns == {"params": "Model Size", "compute": "Training FLOP", "loss": "loss"}
    assert 2.0 < runs.loss.min() < runs.loss.max() < 5.1
    # the path may also be the file itself, or come from the environment
    assert load_chinchilla(shared_data / "chinchilla_epoch2024.csv").data_hash() == runs.data_hash()


def test_chinchilla_from_env(shared_data, monkeypatch):
    monkeypatch.setenv("BAYESCALE_DATA", str(shared_data))
    assert load_chinchilla().n_runs == 245


def test_gadre_all(shared_data):
    runs = load_gadre2024(path=shared_data)
    raw = gadre2024_table(shared_data)
    assert runs.n_runs == len(raw) == 101
    assert runs.group_names == ("c4_original", "rpj", "rw_original")
    assert [int((runs.group == g).sum()) for g in range(3)] == [33, 34, 34]
    np.testing.assert_array_equal(runs.tokens, raw["n_tokens"].to_numpy(dtype=float))
    np.testing.assert_allclose(runs.compute, 6 * runs.params * runs.tokens, rtol=1e-12)
    # compute agrees with the file's exact integer 6ND (which overflows int64)
    np.testing.assert_allclose(runs.compute, [float(x) for x in raw["flops_6ND"]], rtol=1e-12)
    np.testing.assert_array_equal(runs.downstream, raw["err_avg_17task_subset"].to_numpy())


def test_gadre_paper_fit_set(shared_data):
    runs = load_gadre2024(distributions=["rpj"], roles=["fit_loss+fit_error"], path=shared_data)
    assert runs.n_runs == 5 and runs.group_names == ("rpj",)
    assert sorted(runs.params.tolist()) == [10569312, 10569312, 78914048, 153677376, 411616256]
    both = load_gadre2024(
        distributions="rpj", roles=["fit_loss+fit_error", "fit_error_only"], path=shared_data
    )
    assert both.n_runs == 6


def test_gadre_filters_match_csv(shared_data):
    raw = gadre2024_table(shared_data)
    for dist in ("c4_original", "rpj", "rw_original"):
        for role in raw["default_fit_role"].unique():
            expect = int(((raw.data_distribution == dist) & (raw.default_fit_role == role)).sum())
            if expect < 2:  # fit_error_only and heldout_target: one run per distribution
                with pytest.raises(RunsError, match=r"^need at least 2 runs, found 1$"):
                    load_gadre2024(distributions=[dist], roles=[role], path=shared_data)
                continue
            runs = load_gadre2024(distributions=[dist], roles=[role], path=shared_data)
            assert runs.n_runs == expect
    held = load_gadre2024(
        eval="loss_openlm", downstream=None, roles="heldout_target", path=shared_data
    )
    assert held.n_runs == 3 and held.downstream is None
    assert (
        held.rows.tolist()
        == raw.index[raw.default_fit_role == "heldout_target"].tolist()
        == [32, 66, 100]
    )
    rpj_target = raw.loc[66]
    assert rpj_target.loss_c4_val == pytest.approx(2.5021, abs=1e-4)


def test_gadre_bad_names(shared_data):
    with pytest.raises(
        RunsError,
        match="^"
        + re.escape(
            "unknown gadre2024 data_distribution 'c4'; valid values: 'c4_original', 'rpj', 'rw_original'; "
            "did you mean 'c4_original'?"
        )
        + "$",
    ):
        load_gadre2024(distributions=["rpj", "c4"], path=shared_data)
    with pytest.raises(
        RunsError,
        match=r"^unknown gadre2024 default_fit_role 'fit_los'; .*did you mean 'fit_loss\+fit_error'\?$",
    ):
        load_gadre2024(roles=["fit_los"], path=shared_data)
    with pytest.raises(
        RunsError,
        match=r"^unknown gadre2024 eval column 'loss_c4'; valid values: .*did you mean 'loss_c4_val'\?$",
    ):
        load_gadre2024(eval="loss_c4", path=shared_data)
    with pytest.raises(
        RunsError, match=r"^unknown gadre2024 downstream column 'err_avg'; .*did you mean"
    ):
        load_gadre2024(downstream="err_avg", path=shared_data)


def test_xlstm(shared_data):
    with pytest.warns(RunsWarning, match=XLSTM_MISSING):
        runs = load_xlstm(path=shared_data)
    raw = pd.read_csv(shared_data / "xlstm_llama_dclm_ctx16k.csv")
    assert runs.n_runs == 86 == int(raw.completed.sum())
    assert runs.group_names == ("llama", "mlstm")
    assert [int((runs.group == g).sum()) for g in range(2)] == [34, 52]
    assert runs.sweep_names == (
        "sclaw_llama_iso11",
        "sclaw_llama_iso12",
        "sclaw_mlstm_ctx_iso5",
        "sclaw_mlstm_ctx_iso6",
    )
    assert [int((runs.sweep == s).sum()) for s in range(4)] == [20, 14, 28, 24]
    # the dropped rows are exactly the completed=False runs
    assert sorted(set(raw.index) - set(runs.rows.tolist())) == raw.index[~raw.completed].tolist()
    np.testing.assert_allclose(runs.compute, 6 * runs.params * runs.tokens, rtol=1e-12)


def test_xlstm_has_no_diverged_runs(shared_data):
    raw = pd.read_csv(shared_data / "xlstm_llama_dclm_ctx16k.csv")
    for loss in ("val_dclm_loss_final", "train_loss_mean_final"):
        assert not flag_diverged(raw, loss, ["arch", "isoflop_group"]).any()


def test_xlstm_train_loss(shared_data):
    with pytest.warns(RunsWarning, match=r"^dropped 5 rows with missing 'train_loss_mean_final'"):
        assert load_xlstm("train_loss_mean_final", path=shared_data).n_runs == 86
    with pytest.raises(
        RunsError,
        match=r"^unknown xlstm loss column 'val_dclm'; .*did you mean 'val_dclm_loss_final'\?$",
    ):
        load_xlstm("val_dclm", path=shared_data)


@pytest.fixture
def diverged_xlstm(shared_data, tmp_path):
    """The real xLSTM table with one run made to diverge and one stopped early (written to tmp)."""
    raw = pd.read_csv(shared_data / "xlstm_llama_dclm_ctx16k.csv")
    raw.loc[7, "val_dclm_loss_final"] = 7.25  # a llama 200M run in sclaw_llama_iso11
    raw.loc[50, "completed"] = False
    raw.to_csv(tmp_path / "xlstm.csv", index=False)
    return tmp_path / "xlstm.csv", raw.loc[7, "run_name"]


def test_xlstm_diverged_run_is_reported_and_kept(diverged_xlstm):
    file, name = diverged_xlstm
    with (
        pytest.warns(RunsWarning, match=XLSTM_MISSING),
        pytest.warns(
            RunsWarning,
            match=r"^dropped 1 incomplete runs \(completed=False\) that have a 'val_dclm_loss_final' \(row 50\)",
        ),
        pytest.warns(
            RunsWarning,
            match="^"
            + re.escape(
                f"1 runs look diverged (loss far above their isoFLOP group): {name} (7.250); kept (pass drop_diverged=True to drop them)"
            )
            + "$",
        ),
    ):
        runs = load_xlstm(path=file)
    assert runs.n_runs == 85 and 7 in runs.rows and 50 not in runs.rows


def test_xlstm_diverged_run_dropped_on_request(diverged_xlstm):
    file, name = diverged_xlstm
    with (
        pytest.warns(RunsWarning, match=XLSTM_MISSING),
        pytest.warns(RunsWarning, match=r"incomplete runs"),
        pytest.warns(RunsWarning, match=re.escape(f"{name} (7.250); dropped")),
    ):
        runs = load_xlstm(path=file, drop_diverged=True)
    assert runs.n_runs == 84 and 7 not in runs.rows


def test_flag_diverged():
    frame = pd.DataFrame(
        {
            "g": ["a"] * 5 + ["b"] * 3,
            "loss": [3.0, 3.1, 3.4, 3.05, 3.9, 5.0, 5.2, np.nan],
        }
    )
    assert flag_diverged(frame, "loss", "g").tolist() == [
        False,
        False,
        False,
        False,
        True,
        False,
        False,
        False,
    ]
    assert not flag_diverged(frame, "loss", ["g"], floor=1.0).any()
    assert flag_diverged(frame, "loss", "g").index.equals(frame.index)


def test_porian_default_setup(shared_data):
    runs = load_porian2024(path=shared_data)
    raw = pd.read_csv(shared_data / "porian2024_isoflop_points.csv")
    mask = (
        (raw.dataset == "rw")
        & (raw.hparams == "tuned")
        & (raw.warmup == "short")
        & (raw.decay == "const")
        & (raw.param_count == "standard")
        & (raw.loss_split == "val")
    )
    assert runs.n_runs == int(mask.sum()) == 121
    assert (
        len(runs.sweep_names) == 12
        and runs.sweep_names[0] == "1.25e+16"
        and runs.sweep_names[-1] == "2.56e+19"
    )
    budgets = raw.loc[mask, "flop_budget"].to_numpy()
    np.testing.assert_allclose(runs.compute, budgets, rtol=1e-9)
    np.testing.assert_array_equal(runs.rows, raw.index[mask].to_numpy())


def test_porian_kaplan_reproduction(shared_data):
    runs = load_porian2024(
        hparams="base",
        warmup="long",
        decay="kaplan",
        param_count="kaplan",
        loss_split="train",
        path=shared_data,
    )
    assert runs.n_runs == 107


def test_porian_all_setups_load(shared_data):
    raw = pd.read_csv(shared_data / "porian2024_isoflop_points.csv")
    setups = raw.groupby(
        ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]
    ).size()
    assert len(setups) == 15
    for key, count in setups.items():
        runs = load_porian2024(*key, path=shared_data)
        assert runs.n_runs == count


def test_porian_bad_setup(shared_data):
    with pytest.raises(
        RunsError,
        match="^"
        + re.escape("unknown porian2024 dataset 'refinedweb'; valid values: 'owt2', 'rw'")
        + "$",
    ):
        load_porian2024(dataset="refinedweb", path=shared_data)
    with pytest.raises(
        RunsError,
        match="^"
        + re.escape(
            "unknown porian2024 decay 'Const'; valid values: 'chinchilla', 'const', 'kaplan'; did you mean 'const'?"
        )
        + "$",
    ):
        load_porian2024(decay="Const", path=shared_data)
    with pytest.raises(
        RunsError,
        match=r"^no porian2024 setup rw/tuned/long/const/standard/val "
        r"\(dataset/hparams/warmup/decay/param_count/loss_split\); the 15 setups are: owt2/base/long/kaplan/kaplan/train, ",
    ):
        load_porian2024(warmup="long", path=shared_data)


def test_porian_exponents(shared_data):
    table = load_porian2024_exponents(shared_data)
    assert table.shape == (15, 11)
    row = table[
        (table.hparams == "tuned")
        & (table.decay == "const")
        & (table.param_count == "standard")
        & (table.dataset == "rw")
    ]
    assert row.a_est_bs_median_weighted.item() == pytest.approx(0.497, abs=1e-3)
    kaplan = table[
        (table.dataset == "rw") & (table.param_count == "kaplan") & (table.hparams == "base")
    ]
    assert kaplan.a_est_bs_median_weighted.item() == pytest.approx(0.835, abs=1e-3)
