"""Malformed tables never crash: read_runs and ``bayescale fit`` under property-based input.

Every outcome is either a valid fit input (and then a fit with a finite posterior) or a
single-line error naming the column, row and rule (``RunsError`` / exit status 2); never a
traceback and never a NaN in a posterior.
"""

import contextlib
import io
import json
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import bayescale as bs
from bayescale.cli import main
from bayescale.data.runs import RunsError, RunsWarning

#: Deterministic and modest: the same examples on every run, a few seconds each.
FAST = settings(derandomize=True, max_examples=120, deadline=None, database=None)
SLOW = settings(
    derandomize=True,
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
#: The same tiny settings as test_artifacts.py (one compiled program for both files).
TINY = ["--chains", "2", "--draws", "50", "--warmup", "50"]

NAMES = st.sampled_from(
    ["N", "D", "L", "loss", "模型参数", "tokens ✓", "Ünïcødé", "C", "x y", "n_params", " N"]
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-300, max_value=1e300),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1e6, 1e27, 1e-320, 2**63, 10**30, 20.0, 20.000001]),
)
CELLS = st.one_of(
    NUMBERS,
    st.none(),
    st.booleans(),
    st.text(max_size=6),
    st.sampled_from(["", " 3.1 ", "1,000", "1e9", "nan", "inf", "-inf", "NA", "abc"]),
)


def _check_outcome(call):
    """Run ``call``; it must return valid Runs or raise a one-line RunsError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow/invalid RuntimeWarnings would fail here
        warnings.simplefilter("ignore", RunsWarning)  # dropped/duplicated rows are fine
        try:
            runs = call()
        except RunsError as exc:
            message = str(exc)
            assert message and "\n" not in message
            assert "Traceback" not in message
            event("rejected")
            return None
    event("valid runs")
    for name in ("params", "tokens", "compute"):
        value = getattr(runs, name)
        if value is not None:
            assert value.dtype == np.float64
            assert np.all(np.isfinite(value)) and np.all(value > 0), name
    assert np.all((runs.loss > 0) & (runs.loss <= 20))
    assert runs.n_runs >= 2 and len(runs.rows) == runs.n_runs
    return runs


GOOD = (
    st.floats(min_value=1e2, max_value=1e12),  # params
    st.floats(min_value=1e2, max_value=1e15),  # tokens (or compute, then 6ND is ~1e6..1e27)
    st.floats(min_value=1e-3, max_value=20.0),  # loss
)


@st.composite
def tables(draw):
    """Mostly plausible runs with 0-2 corrupted cells; names may repeat."""
    names = draw(st.lists(NAMES, min_size=3, max_size=4, unique=draw(st.booleans())))
    n_rows = draw(st.integers(0, 7))
    rows = [
        [draw(GOOD[j]) if j < 3 else draw(CELLS) for j in range(len(names))] for _ in range(n_rows)
    ]
    for _ in range(draw(st.integers(0, 2)) if n_rows else 0):
        rows[draw(st.integers(0, n_rows - 1))][draw(st.integers(0, len(names) - 1))] = draw(CELLS)
    return pd.DataFrame(rows, columns=names, dtype=object), names[:3]


@FAST
@given(tables())
def test_read_runs_on_random_dataframes(table):
    frame, (params, second, loss) = table
    for role in ("tokens", "compute"):
        columns = {"params": params, role: second, "loss": loss}
        _check_outcome(lambda columns=columns: bs.read_runs(frame, **columns))


TOKENS = st.one_of(
    st.floats(min_value=1e2, max_value=1e14).map(lambda v: f"{v:.6g}"),
    st.integers(min_value=1, max_value=10**40).map(str),  # huge integers: 6ND overflows
    st.sampled_from(["", "nan", "inf", "-5", "0", "1e-400", "1e400", "abc", '"1,5"', "  7 "]),
)
LOSSES = st.one_of(
    st.floats(min_value=1e-300, max_value=25.0).map(lambda v: f"{v:.17g}"),
    st.sampled_from(["", "nan", "3.0", "20", "20.5", "-1", "x"]),
)


@st.composite
def csv_texts(draw, min_rows: int = 0, max_rows: int = 8):
    """CSV text: unicode, repeated or quoted headers; plausible rows, some corrupted or cut."""
    names = draw(st.lists(NAMES, min_size=3, max_size=3, unique=draw(st.integers(0, 3)) > 0))
    lines = [",".join(names)]
    for _ in range(draw(st.integers(min_rows, max_rows))):
        if draw(st.integers(0, 5)) > 0:
            n = draw(st.floats(min_value=1e2, max_value=1e11))
            c = draw(st.floats(min_value=1e6, max_value=1e27))
            loss = draw(st.floats(min_value=1.5, max_value=8.0))
            lines.append(f"{n:.6g},{c:.6g},{loss:.6g}")
        else:
            lines.append(",".join([draw(TOKENS), draw(TOKENS), draw(LOSSES)]))
    if draw(st.integers(0, 4)) == 0:
        lines = lines[: draw(st.integers(0, len(lines)))]  # truncated or empty files
    return names, "\n".join(lines) + ("\n" if lines else "")


@FAST
@given(csv_texts())
def test_read_runs_on_random_csv_files(case):
    names, text = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs.csv"
        path.write_text(text, encoding="utf-8")
        for second in ("tokens", "compute"):
            columns = {"params": names[0], second: names[1], "loss": names[2]}
            if len(set(columns.values())) < 3:
                with pytest.raises(RunsError, match="is given for both"):
                    bs.read_runs(path, **columns)
                continue
            _check_outcome(lambda columns=columns: bs.read_runs(path, **columns))


def _run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _check_cli(argv, out_path: Path) -> int:
    code, stdout, stderr = _run_cli(argv)
    lines = [line for line in stderr.splitlines() if line]
    assert "Traceback" not in stderr
    assert all(line.startswith(("error: ", "warning: ")) for line in lines), stderr
    if code == 2:
        assert sum(line.startswith("error: ") for line in lines) == 1, stderr
        assert stdout == "" and not out_path.exists()
        return code
    assert code == 0, stderr
    payload = json.loads(stdout)
    for row in payload["parameters"].values():
        assert all(row[k] is not None and math.isfinite(row[k]) for k in ("mean", "median"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)  # 100 draws may not be "ok"
        loaded = bs.load_fit(out_path)
    for name, value in loaded.samples.items():
        assert np.all(np.isfinite(value)), name
    return code


@pytest.mark.slow
@SLOW
@given(csv_texts(min_rows=5))
def test_cli_fit_on_random_csv_files(case):
    names, text = case
    assume(len(set(names)) == 3)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs.csv"
        path.write_text(text, encoding="utf-8")
        out = Path(folder) / "fit.nc"
        argv = ["fit", str(path), "--params", names[0], "--compute", names[1]]
        code = _check_cli([*argv, "--loss", names[2], *TINY, "--out", str(out), "--json"], out)
    event(f"exit {code}")


# --------------------------------------------------------------------------- named cases


@pytest.mark.parametrize(
    ("text", "columns", "message"),
    [
        ("", ("N", "D", "L"), "cannot read runs file"),
        ("N,D,L\n", ("N", "D", "L"), "runs table is empty: no rows"),
        ("N,N,L\n1e8,2e9,3\n2e8,4e9,2.9\n", ("N", "D", "L"), "column header 'N' appears 2 times"),
        (
            "N,D,L\n1e200,1e200,3\n2e8,4e9,2.9\n",
            ("N", "D", "L"),
            "row 0: derived compute inf is not a positive finite float64",
        ),
        (
            "N,D,L\n1e8,2e9,3\n2e8,x,2.9\n",
            ("N", "D", "L"),
            "column 'D' row 1: value 'x' is not a number",
        ),
        ("N,D,L\n1e8,2e9,3\n2e8,4e9,25\n", ("N", "D", "L"), "column 'L' row 1: value 25.0"),
        (
            "模型参数,tokens ✓,L\n1e8,2e9,3\n2e8,4e9,2.9\n",
            ("模型参数", "tokens", "L"),
            "column 'tokens' not found; available columns: '模型参数', 'tokens ✓', 'L'",
        ),
    ],
)
def test_named_bad_inputs_exit_2_with_one_line(tmp_path, capsys, text, columns, message):
    path = tmp_path / "runs.csv"
    path.write_text(text, encoding="utf-8")
    argv = ["fit", str(path), "--params", columns[0], "--tokens", columns[1]]
    code = main([*argv, "--loss", columns[2], *TINY, "--out", str(tmp_path / "f.nc")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "f.nc").exists()


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1e-11, 1.0, 2.5e7])
def test_extreme_magnitudes_fit_with_a_finite_posterior(tmp_path, scale):
    """FLOPs from ~1e6 to ~1e27: a ladder of 8 runs rescaled, unicode column names."""
    frame = bs.simulate_ladder(params=(5e7, 1e8, 2e8, 4e8), tokens_per_param=(10, 40), seed=1)
    frame = frame.assign(params=frame.params * scale**0.5, tokens=frame.tokens * scale**0.5)
    frame["compute"] = 6 * frame.params * frame.tokens
    assert 1e5 < frame.compute.min() and frame.compute.max() < 1e28
    frame = frame.rename(columns={"params": "параметры", "compute": "FLOPs 🚀"})
    path = tmp_path / "runs.csv"
    frame[["параметры", "FLOPs 🚀", "loss"]].to_csv(path, index=False)
    out = tmp_path / "fit.nc"
    argv = ["fit", str(path), "--params", "параметры", "--compute", "FLOPs 🚀", "--loss", "loss"]
    assert _check_cli([*argv, *TINY, "--out", str(out), "--json"], out) == 0
