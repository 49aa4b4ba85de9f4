"""Reproducible, self-describing, safely written fit files; diagnostics gate predictions."""

import builtins
import json
import os
import pickle
import shutil
import stat
import warnings
from dataclasses import replace

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayescale as bs
from bayescale.cli import main

#: Tiny settings shared with test_hardening.py: one compiled program for both files.
TINY = {"chains": 2, "draws": 50, "warmup": 50}


def eight_runs(seed: int = 0) -> pd.DataFrame:
    """An 8-run ladder (4 sizes x 2 token multipliers) from Hoffmann's law."""
    return bs.simulate_ladder(
        params=(5e7, 1e8, 2e8, 4e8), tokens_per_param=(10, 40), noise=0.01, seed=seed
    )


def fit_tiny(frame: pd.DataFrame, seed: int = 0) -> bs.Fit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)  # 100 draws: R-hat is not the point
        result = bs.fit(
            frame, "chinchilla", params="params", tokens="tokens", loss="loss", seed=seed, **TINY
        )
    result.info["warn"] = False
    return result


@pytest.fixture(scope="module")
def tiny_fit():
    return fit_tiny(eight_runs())


@pytest.fixture
def saved(tiny_fit, tmp_path):
    return tiny_fit.to_netcdf(tmp_path / "fit.nc")


def _edit_record(path, edit) -> None:
    """Rewrite the JSON record in a fit file's root attribute (as a tamperer would)."""
    with h5py.File(path, "r+") as handle:
        record = json.loads(handle.attrs["bayescale"])
        edit(record)
        handle.attrs["bayescale"] = json.dumps(record)


# --------------------------------------------------------------------------- reproducible


def test_same_seed_gives_bit_identical_draws(tiny_fit):
    again = fit_tiny(eight_runs())
    assert set(again.samples) == set(tiny_fit.samples)
    for name, value in tiny_fit.samples.items():
        np.testing.assert_array_equal(again.samples[name], value)
    np.testing.assert_array_equal(again.stats["energy"], tiny_fit.stats["energy"])
    other = fit_tiny(eight_runs(), seed=1)
    assert not np.array_equal(other.samples["alpha"], tiny_fit.samples["alpha"])


def test_record_carries_versions_law_priors_data_hash_and_command(tiny_fit, saved):
    import arviz
    import jax
    import numpyro

    with h5py.File(saved, "r") as handle:
        record = json.loads(handle.attrs["bayescale"])
    assert record == json.loads(json.dumps(tiny_fit._record()))
    assert record["bayescale_version"] == bs.__version__
    versions = record["versions"]
    assert versions["jax"] == jax.__version__ and versions["numpyro"] == numpyro.__version__
    assert versions["numpy"] == np.__version__ and versions["arviz"] == arviz.__version__
    assert versions["xarray"] == xr.__version__ and versions["python"].count(".") == 2
    # 8 runs for 5 law parameters: too few for the robust likelihood (fewer than 2k - 1)
    assert record["law"] == "chinchilla" and record["likelihood"] == "normal"
    assert record["priors"]["alpha"] == str(tiny_fit.model.priors["alpha"])
    assert record["priors"]["E"].startswith("TruncatedNormal(mu=")
    assert record["data_hash"] == tiny_fit.runs.data_hash() and len(record["data_hash"]) == 64
    command = record["info"]["command"]
    assert command.startswith("bayescale.fit(DataFrame, law='chinchilla'")
    assert "seed=0" in command and "draws=50" in command
    assert record["info"]["seed"] == 0 and record["info"]["chains"] == 2


def _small_fit_argv(csv, out) -> list[str]:
    """``bayescale fit`` on the eight-run CSV with a tiny sampler."""
    columns = ["--params", "params", "--tokens", "tokens", "--loss", "loss"]
    sampler = ["--chains", "2", "--draws", "50", "--warmup", "50"]
    return ["fit", str(csv), *columns, *sampler, "--out", str(out)]


def test_cli_records_its_command_line(tmp_path, capsys, monkeypatch):
    csv = tmp_path / "runs.csv"
    eight_runs().to_csv(csv, index=False)
    argv = _small_fit_argv(csv, tmp_path / "f.nc")
    monkeypatch.setattr("sys.argv", ["bayescale", *argv])
    assert main([*argv, "--json"]) == 0
    capsys.readouterr()
    with h5py.File(tmp_path / "f.nc", "r") as handle:
        record = json.loads(handle.attrs["bayescale"])
    assert record["info"]["command"] == "bayescale " + " ".join(argv)


def test_loaded_fit_reproduces_predictions(tiny_fit, saved):
    loaded = bs.load_fit(saved)
    loaded.info["warn"] = False
    a = tiny_fit.predict(params=7e9, tokens=1.4e11, seed=3)
    b = loaded.predict(params=7e9, tokens=1.4e11, seed=3)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert loaded.runs.data_hash() == tiny_fit.runs.data_hash()


def test_file_from_another_version_warns(saved, tmp_path):
    copy = tmp_path / "old.nc"
    shutil.copy(saved, copy)
    _edit_record(copy, lambda r: r.update(bayescale_version="0.0.1"))
    with pytest.warns(bs.FitWarning, match=r"written by bayescale 0\.0\.1, this is "):
        loaded = bs.load_fit(copy)
    assert loaded.law.name == "chinchilla"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bs.load_fit(saved)  # the same version: silent


# --------------------------------------------------------------------------- writes


def test_never_overwrites_without_permission(tiny_fit, saved):
    before = saved.read_bytes()
    with pytest.raises(ValueError, match=r"exists; pass overwrite=True \(--force\) to replace it"):
        tiny_fit.to_netcdf(saved)
    assert saved.read_bytes() == before
    tiny_fit.to_netcdf(saved, overwrite=True)
    assert bs.load_fit(saved).runs.n_runs == 8


def test_cli_refuses_to_overwrite_without_force(saved, tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    eight_runs().to_csv(csv, index=False)
    before = saved.read_bytes()
    argv = _small_fit_argv(csv, saved)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"error: output {str(saved)!r} exists; pass --force to overwrite it\n"
    assert saved.read_bytes() == before
    assert main([*argv, "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(saved)


def test_interrupted_write_leaves_no_half_file(tiny_fit, saved, tmp_path, monkeypatch):
    real = xr.DataTree.to_netcdf

    def crash_midway(self, path, *args, **kwargs):
        real(self, path, *args, **kwargs)
        with open(path, "r+b") as handle:  # a half-written file on disk ...
            handle.truncate(os.path.getsize(path) // 2)
        raise KeyboardInterrupt  # ... and then the user presses Ctrl-C

    monkeypatch.setattr(xr.DataTree, "to_netcdf", crash_midway)
    fresh = tmp_path / "new.nc"
    with pytest.raises(KeyboardInterrupt):
        tiny_fit.to_netcdf(fresh)
    assert not fresh.exists()
    before = saved.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        tiny_fit.to_netcdf(saved, overwrite=True)
    assert saved.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.nc"]  # no temp files left
    monkeypatch.undo()
    assert bs.load_fit(saved).runs.n_runs == 8


def test_a_written_fit_gets_the_permissions_of_any_new_file(tiny_fit, tmp_path):
    # written through tempfile.mkstemp, fits were 0600 whatever the umask: a colleague
    # could not read a fit shared in a group folder
    old = os.umask(0o022)
    try:
        shared = tiny_fit.to_netcdf(tmp_path / "shared.nc")
        os.umask(0o077)
        private = tiny_fit.to_netcdf(tmp_path / "private.nc")
    finally:
        os.umask(old)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["private.nc", "shared.nc"]


# --------------------------------------------------------------------------- loading is safe


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r["priors"].update(alpha="__import__('os').system('touch {marker}')"),
            "cannot read prior",
        ),
        (lambda r: r.update(law="__import__('os').system('touch {marker}')"), "unknown law"),
        (lambda r: r["law_options"].update(k="exec('touch {marker}')"), "not a valid"),
        (lambda r: r.pop("priors"), "missing 'priors'"),
        (lambda r: r.update(format=2), "of format 1"),
    ],
)
def test_loading_never_executes_code(saved, tmp_path, monkeypatch, edit, message):
    marker = tmp_path / "pwned"

    def tamper(record):
        edit(record)
        text = json.dumps(record).replace("{marker}", str(marker))
        record.clear()
        record.update(json.loads(text))

    _edit_record(saved, tamper)

    def forbidden(*args, **kwargs):
        raise AssertionError("load_fit must not evaluate or unpickle anything")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    with pytest.raises(ValueError, match=message) as info:
        bs.load_fit(saved)
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_non_fit_files_are_rejected_cleanly(tmp_path, capsys):
    junk = tmp_path / "junk.nc"
    junk.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="is not a bayescale fit file"):
        bs.load_fit(junk)
    assert main(["summary", str(junk), "--json"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    xr.Dataset({"x": ("i", [1.0])}).to_netcdf(tmp_path / "plain.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match=r"is not a bayescale fit file \(KeyError\)"):
        bs.load_fit(tmp_path / "plain.nc")


# --------------------------------------------------------------------------- diagnostics gate


@pytest.fixture
def broken_fit(tiny_fit):
    """The tiny fit with its second chain shifted: R-hat far above 1.01."""
    samples = {k: v.copy() for k, v in tiny_fit.samples.items()}
    samples["alpha"][1] += 0.2
    with pytest.warns(bs.FitWarning, match="fit diagnostics not ok: max R-hat"):
        broken = bs.Fit(
            tiny_fit.model, samples, tiny_fit.stats, tiny_fit.runs, {**tiny_fit.info, "warn": True}
        )
    return broken


def test_predict_surfaces_a_bad_verdict(broken_fit):
    assert not broken_fit.diagnostics.ok
    assert "R-hat" in broken_fit.diagnostics.verdict()
    with pytest.warns(bs.FitWarning, match="predicting from a fit whose diagnostics are not ok"):
        prediction = broken_fit.predict(params=7e9, tokens=1.4e11)
    payload = prediction.to_dict()
    assert {"median", "mean", "lower", "upper", "prob"} <= set(payload)
    assert payload["diagnostics"]["ok"] is False
    assert "max R-hat" in payload["warning"] and "run more" in payload["warning"]


def test_cli_predict_json_carries_the_warning(broken_fit, tmp_path, capsys):
    path = broken_fit.to_netcdf(tmp_path / "broken.nc")
    argv = ["predict", str(path), "--params", "7e9", "--tokens", "1.4e11", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert {"median", "mean", "lower", "upper", "prob"} <= set(payload)
    assert payload["diagnostics"]["ok"] is False and "R-hat" in payload["warning"]
    assert "warning: predicting from a fit whose diagnostics are not ok" in captured.err


def test_predict_from_a_good_fit_is_quiet(tiny_fit):
    good = bs.Fit(tiny_fit.model, tiny_fit.samples, tiny_fit.stats, tiny_fit.runs, tiny_fit.info)
    good.info["warn"] = True
    # the verdict itself is tested above; here only what predict does with an ok one
    good._diagnostics = replace(good.diagnostics, ok=True, messages=[])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        payload = good.predict(params=7e9, tokens=1.4e11).to_dict()
    assert payload["diagnostics"]["ok"] is True and payload["diagnostics"]["verdict"] == "ok"
    assert "warning" not in payload
