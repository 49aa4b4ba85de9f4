"""Command line: JSON contracts of DESIGN.md, and exit 2 with one line on bad input."""

import json

import pytest

from bayescale import load_fit
from bayescale.cli import main

SUMMARY_KEYS = {"mean", "sd", "median", "lower", "upper", "r_hat", "ess_bulk"}
DIAGNOSTIC_KEYS = {"divergences", "max_r_hat", "min_ess_bulk", "ok"}
PREDICT_KEYS = {"median", "mean", "lower", "upper", "prob"}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def bad(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def chinchilla_fit(tmp_path_factory, shared_data):
    csv = shared_data / "chinchilla_epoch2024.csv"
    out = tmp_path_factory.mktemp("cli") / "chinchilla.nc"
    code = main(
        [
            "fit",
            str(csv),
            "--law",
            "chinchilla",
            "--params",
            "Model Size",
            "--compute",
            "Training FLOP",
            "--loss",
            "loss",
            "--draws",
            "300",
            "--warmup",
            "300",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    return csv, out


@pytest.mark.slow
def test_fit_summary_predict_json_contracts(chinchilla_fit, capsys):
    csv, out = chinchilla_fit
    capsys.readouterr()
    code, stdout, _ = run(capsys, "summary", out, "--json")
    assert code == 0
    payload = json.loads(stdout)  # exactly one JSON object
    # the law, its noise (growing toward the small runs), and the drift learned from the
    # ladder's own backtest
    assert set(payload["parameters"]) == {
        "E",
        "A",
        "B",
        "alpha",
        "beta",
        "sigma",
        "nu",
        "scatter_growth",
        "drift",
        "drift_ratio",
    }
    for stats in payload["parameters"].values():
        assert SUMMARY_KEYS <= set(stats)
    assert DIAGNOSTIC_KEYS <= set(payload["diagnostics"])
    besiroglu = {"E": (1.769, 1.871), "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}
    for name, (low, high) in besiroglu.items():
        assert low <= payload["parameters"][name]["median"] <= high, name

    code, stdout, _ = run(
        capsys, "predict", out, "--params", "7e10", "--tokens", "1.4e12", "--json"
    )
    assert code == 0
    prediction = json.loads(stdout)
    assert PREDICT_KEYS <= set(prediction)
    assert (
        prediction["lower"] < prediction["median"] < prediction["upper"]
        and prediction["prob"] == 0.95
    )

    code, stdout, _ = run(
        capsys,
        "predict",
        out,
        "--params",
        "7e10",
        "--compute",
        "5.88e23",
        "--prob",
        "0.5",
        "--no-noise",
        "--json",
    )
    narrow = json.loads(stdout)
    assert (
        narrow["prob"] == 0.5
        and narrow["upper"] - narrow["lower"] < prediction["upper"] - prediction["lower"]
    )

    code, stdout, _ = run(capsys, "summary", out)  # human-readable table
    assert code == 0 and "alpha" in stdout and "r_hat" in stdout

    assert "exists; pass --force" in bad(
        capsys,
        "fit",
        csv,
        "--params",
        "Model Size",
        "--compute",
        "Training FLOP",
        "--loss",
        "loss",
        "--out",
        out,
    )
    assert "law 'chinchilla' needs tokens" in bad(capsys, "predict", out, "--params", "7e10")
    assert "this fit has no groups" in bad(
        capsys, "predict", out, "--params", "7e10", "--tokens", "1e12", "--group", "x"
    )


@pytest.mark.slow
def test_fit_warm_starts_from_a_fit_file(chinchilla_fit, capsys, tmp_path):
    csv, first = chinchilla_fit
    columns = ["--params", "Model Size", "--compute", "Training FLOP", "--loss", "loss"]
    out = tmp_path / "again.nc"
    argv = ["fit", csv, "--law", "chinchilla", *columns, "--draws", "300"]
    code, stdout, _ = run(capsys, *argv, "--warm-start", first, "--out", out, "--json")
    assert code == 0
    assert json.loads(stdout)["diagnostics"]["ok"]
    info = load_fit(out).info
    assert info["warm_start"] is True and info["warmup"] == 200
    assert info["device"] == "cpu"  # the platform --device auto ran on, not "auto"
    # the refit's own file keeps an end state too: it warm-starts the next refit
    code, stdout, _ = run(capsys, *argv, "--warm-start", out, "--out", tmp_path / "3.nc", "--json")
    assert code == 0 and load_fit(tmp_path / "3.nc").info["warm_start"] is True
    line = bad(capsys, *argv, "--warm-start", tmp_path / "none.nc", "--out", tmp_path / "x.nc")
    assert line == f"error: fit file {str(tmp_path / 'none.nc')!r} not found"
    line = bad(capsys, *argv, "--chains", "2", "--warm-start", first, "--out", tmp_path / "y.nc")
    assert line == "error: warm_start: the previous fit has 4 chains but chains=2"


@pytest.mark.slow
def test_demo_prints_one_json_object(capsys):
    code, stdout, _ = run(capsys, "demo", "--draws", "300", "--warmup", "300", "--json")
    assert code == 0
    payload = json.loads(stdout)
    assert set(payload["covered"]) == {"E", "A", "B", "alpha", "beta"}
    assert sum(payload["covered"].values()) >= 4
    assert (
        payload["prediction"]["lower"]
        <= payload["true_loss_at_target"]
        <= payload["prediction"]["upper"]
    )


@pytest.mark.slow
def test_demo_progress_bar_follows_the_environment(capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BAYESCALE_NO_PROGRESS", raising=False)
    argv = ("demo", "--draws", "300", "--warmup", "300")
    assert "NUTS" in run(capsys, *argv)[2]
    monkeypatch.setenv("BAYESCALE_NO_PROGRESS", "1")
    code, stdout, stderr = run(capsys, *argv)
    assert code == 0 and "NUTS" not in stderr
    assert "Diagnostics:" in stdout


def test_bad_input_exits_2_with_one_line(capsys, tmp_path):
    csv = tmp_path / "runs.csv"
    csv.write_text("N,D,L\n1e8,2e9,3.1\n2e8,4e9,2.9\n4e8,8e9,2.7\n")
    assert "column 'loss' not found" in bad(
        capsys,
        "fit",
        csv,
        "--params",
        "N",
        "--tokens",
        "D",
        "--loss",
        "loss",
        "--out",
        tmp_path / "x.nc",
    )
    assert "cannot read runs file" in bad(
        capsys,
        "fit",
        tmp_path / "missing.csv",
        "--params",
        "N",
        "--loss",
        "L",
        "--out",
        tmp_path / "x.nc",
    )
    assert "unknown law or model spec 'chinchila'; did you mean 'chinchilla'?" in bad(
        capsys,
        "fit",
        csv,
        "--law",
        "chinchila",
        "--params",
        "N",
        "--tokens",
        "D",
        "--loss",
        "L",
        "--out",
        tmp_path / "x.nc",
    )
    assert "fit file" in bad(capsys, "summary", tmp_path / "nope.nc")
    assert "is not a bayescale fit file" in bad(capsys, "summary", csv)
    assert "The value of prob should be in the interval (0, 1) but got 1.5" in bad(
        capsys, "summary", csv, "--prob", "1.5"
    )
    assert "expected a positive finite number but got '-1'" in bad(
        capsys, "predict", csv, "--params", "-1"
    )
    assert "invalid choice" in bad(
        capsys, "fit", csv, "--loss", "L", "--out", "x.nc", "--likelihood", "cauchy"
    )
    assert "required" in bad(capsys, "fit", csv, "--params", "N")
    assert "--prior expects NAME=Family(...)" in bad(
        capsys,
        "fit",
        csv,
        "--params",
        "N",
        "--tokens",
        "D",
        "--loss",
        "L",
        "--out",
        tmp_path / "x.nc",
        "--prior",
        "alpha",
    )


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert "bayescale" in capsys.readouterr().out
    assert main(["fit", "--help"]) == 0
    assert "--params" in capsys.readouterr().out


# ------------------------------------------------------------------ the console script
_RUN = (
    "import atexit, gc, sys; from bayescale.cli import run; "
    "atexit.register(lambda: print('frozen', gc.get_freeze_count()));"
    "sys.argv = ['bayescale', *sys.argv[1:]]; run()"
)


def _console(*argv):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", _RUN, *argv], capture_output=True, text=True, timeout=120
    )


def test_console_script_is_run_and_freezes_the_imported_objects():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "bayescale"]
    assert script.value == "bayescale.cli:run"
    done = _console("--version")
    assert done.returncode == 0, done.stderr
    version, frozen = done.stdout.splitlines()
    assert version.startswith("bayescale ")
    # everything alive at the exit is out of the collector: the light package import for
    # --version, the stack a command imported (pandas here) for a command that ran
    light = int(frozen.split()[1])
    assert light > 5_000
    argv = ("fit", "missing.csv", "--params", "p", "--tokens", "t", "--loss", "l", "--out", "x.nc")
    heavy = int(_console(*argv).stdout.split()[1])
    assert heavy > light + 25_000


def test_console_script_exits_2_with_one_error_line():
    argv = ("fit", "missing.csv", "--params", "p", "--tokens", "t", "--loss", "l", "--out", "x.nc")
    done = _console(*argv)
    assert done.returncode == 2
    expected = "error: cannot read runs file 'missing.csv': No such file or directory"
    assert done.stderr.strip() == expected
    assert done.stdout.split() == ["frozen", done.stdout.split()[1]]


def test_main_leaves_the_garbage_collector_alone(capsys):
    import gc

    before = gc.get_freeze_count()
    assert main(["--version"]) == 0
    assert gc.get_freeze_count() == before
    assert capsys.readouterr().out.startswith("bayescale ")
