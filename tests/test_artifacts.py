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
from conftest import sampled

import bayescale as bs
from bayescale.cli import main
from bayescale.posterior.fitfile import CHECKSUM_ATTR, file_checksum

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
            frame,
            "chinchilla",
            **sampled(params="params", tokens="tokens", loss="loss", seed=seed, **TINY),
        )
    result.info["warn"] = False
    return result


@pytest.fixture(scope="module")
def tiny_fit():
    return fit_tiny(eight_runs())


@pytest.fixture
def saved(tiny_fit, tmp_path):
    return tiny_fit.to_netcdf(tmp_path / "fit.nc")


def _edit_record(path, edit, sign: bool = True) -> None:
    """Rewrite the JSON record in a fit file's root attribute (as a tamperer would).

    ``sign`` also rewrites the checksum to match (a tamperer who knows the format), so the
    tests below reach the parsing of the record itself.
    """
    with h5py.File(path, "r+") as handle:
        record = json.loads(handle.attrs["bayescale"])
        edit(record)
        handle.attrs["bayescale"] = json.dumps(record)
    if sign:
        digest = file_checksum(path)
        with h5py.File(path, "r+") as handle:
            handle.attrs[CHECKSUM_ATTR] = digest


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
        groups = sorted(handle)
    assert record.pop("groups") == groups  # what the checksum expects to find
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
        (lambda r: r.update(format=3), "of format 1 or 2"),
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


def _one_line_refusal(path, capsys, fragment: str) -> None:
    """``load_fit`` and ``bayescale summary`` both refuse ``path`` with one line."""
    with pytest.raises(ValueError, match=fragment) as info:
        bs.load_fit(path)
    assert "\n" not in str(info.value)
    assert main(["summary", str(path), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err


def test_an_edited_record_fails_its_checksum(saved, capsys):
    _edit_record(saved, lambda r: r["info"].update(seed=7), sign=False)
    _one_line_refusal(saved, capsys, "contents do not match the checksum written with them")


def test_a_record_that_is_not_an_object_fails_its_checksum(saved, capsys):
    with h5py.File(saved, "r+") as handle:
        handle.attrs["bayescale"] = json.dumps([1, 2])
    _one_line_refusal(saved, capsys, "contents do not match the checksum written with them")


def test_an_edited_draw_fails_its_checksum(saved, capsys):
    with h5py.File(saved, "r+") as handle:
        handle["bayescale_samples/alpha"][0, 0] += 1e-9  # one draw, in the 9th digit
    _one_line_refusal(saved, capsys, "contents do not match the checksum")


@pytest.mark.parametrize("group", ["posterior", "bayescale_samples", "constant_data"])
def test_a_deleted_group_is_named(saved, capsys, group):
    # a file without its posterior group used to predict, from bayescale_samples
    with h5py.File(saved, "r+") as handle:
        del handle[group]
    _one_line_refusal(saved, capsys, f"group {group!r} is missing")


def test_a_removed_checksum_is_refused(saved, capsys):
    with h5py.File(saved, "r+") as handle:
        del handle.attrs[CHECKSUM_ATTR]
    _one_line_refusal(saved, capsys, "it has no checksum")


def test_files_cut_or_corrupted_anywhere_are_refused(saved, tmp_path):
    """Truncation at 40 offsets and a flipped byte at 40 more: none loads silently."""
    data = saved.read_bytes()
    rng = np.random.default_rng(0)
    offsets = rng.integers(1, len(data), 40)
    tried = refused = 0
    for i, offset in enumerate(offsets):
        cut = tmp_path / f"cut{i}.nc"
        cut.write_bytes(data[:offset])
        flipped = tmp_path / f"flip{i}.nc"
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        flipped.write_bytes(bytes(changed))
        for path in (cut, flipped):
            tried += 1
            try:
                loaded = bs.load_fit(path)
            except ValueError as exc:
                assert "\n" not in str(exc) and str(path) in str(exc)
                refused += 1
                continue
            # a flipped byte in HDF5 padding or free space changes nothing that is read
            for name, value in loaded.samples.items():
                np.testing.assert_array_equal(value, bs.load_fit(saved).samples[name])
    assert tried == 80 and refused >= 40  # every truncation is refused, at least
    print(f"fit files: {tried} corrupted copies tried, {refused} refused, the rest identical")


def test_checksum_covers_record_and_every_dataset(saved):
    with h5py.File(saved, "r") as handle:
        stored = handle.attrs[CHECKSUM_ATTR]
        n_datasets = []
        handle.visititems(lambda n, o: n_datasets.append(n) if hasattr(o, "dtype") else None)
    assert stored == file_checksum(saved) and len(stored) == 64
    assert {"posterior/alpha", "bayescale_samples/alpha", "constant_data/loss"} <= set(n_datasets)


def test_format_1_files_still_load(saved):
    """Files from before checksums (format 1, no checksum attribute) load as before."""
    with h5py.File(saved, "r+") as handle:
        record = json.loads(handle.attrs["bayescale"])
        record["format"] = 1
        record.pop("groups")
        handle.attrs["bayescale"] = json.dumps(record)
        del handle.attrs[CHECKSUM_ATTR]
    assert bs.load_fit(saved).runs.n_runs == 8


def test_log_likelihood_is_stored_only_when_small(tiny_fit, tmp_path, monkeypatch):
    import bayescale.posterior._datatree as datatree

    small = tiny_fit.to_datatree()
    expected = tiny_fit.log_likelihood()
    np.testing.assert_allclose(small["log_likelihood"]["log_loss"].values, expected)
    monkeypatch.setattr(datatree, "LOGLIK_MAX_VALUES", expected.size - 1)
    big = tiny_fit.to_datatree()
    assert "log_likelihood" not in big.children
    assert "Fit.log_likelihood()" in json.loads(big.attrs["bayescale"])["log_likelihood"]
    assert "log_likelihood" in tiny_fit.to_datatree(log_likelihood=True).children
    path = tiny_fit.to_netcdf(tmp_path / "big.nc")
    loaded = bs.load_fit(path)  # computed on demand from the stored draws
    np.testing.assert_allclose(loaded.log_likelihood(), expected)


def test_concurrent_writers_leave_one_whole_file(tiny_fit, tmp_path):
    """Eight threads write the same path at once: one whole, verified file, no temp left."""
    from concurrent.futures import ThreadPoolExecutor

    target = tmp_path / "same.nc"
    other = fit_tiny(eight_runs(seed=1))
    fits = [tiny_fit, other] * 4
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda f: f.to_netcdf(target, overwrite=True), fits))
    loaded = bs.load_fit(target)
    assert any(
        np.array_equal(loaded.samples["alpha"], f.samples["alpha"]) for f in (tiny_fit, other)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.nc"]


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
