"""Hostile tables, priors and TOML specs: a correct result or one clear line, never worse.

What the suite guarantees, for every case it tries:

* ``read_runs`` on a hostile CSV (byte-order marks, CRLF, unicode or repeated headers,
  ragged rows, quoted newlines, overflowing, subnormal or tiny numbers, megabyte cells, a
  100,000-row table) returns runs whose every value is the number written in its cell (checked
  against Python's own ``csv`` and ``float``), or raises a single-line :class:`RunsError`
  naming the column, the row and the rule;
* ``parse_prior`` on hostile text (Python code, look-alike letters, 10,000 nested
  parentheses, a megabyte of input) returns the prior written, or raises a single-line
  ``ValueError`` of bounded length; nothing is ever evaluated (a sentinel file is never made);
* ``load_model`` on a hostile TOML spec returns the spec written, or raises a single-line
  ``ValueError``;
* ``bayescale fit`` on the same inputs exits 0 with a finite posterior, or exits 2 with exactly
  one ``error: `` line on stderr, no traceback and no output file.

The default run is fast (``make test``); ``BAYESCALE_ADVERSARIAL_FULL=1`` (``make adversarial``)
runs far more random examples and a sweep of tiny fits on random hostile CSV files. The module
ends by printing ``adversarial: N cases tried, N passed``.
"""

import contextlib
import csv
import io
import json
import math
import os
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_hardening import TINY, _check_outcome, _run_cli, csv_texts

import bayescale as bs
from bayescale.data.runs import RunsError, RunsWarning
from bayescale.laws.priors import FAMILIES, Prior, parse_prior
from bayescale.laws.specs import load_model

FULL = os.environ.get("BAYESCALE_ADVERSARIAL_FULL") == "1"
#: Seeded (derandomized) sweeps: the same examples on every run.
SWEEP = settings(
    derandomize=True,
    max_examples=1500 if FULL else 80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: An error line is for a person to read: a megabyte of input must not become a megabyte line.
MAX_MESSAGE = 500
COLUMNS = {"params": "N", "tokens": "D", "loss": "L"}
GOOD = "N,D,L\n1e8,2e9,3.1\n2e8,4e9,2.9\n4e8,8e9,2.7\n"
GOOD_VALUES = {"params": [1e8, 2e8, 4e8], "tokens": [2e9, 4e9, 8e9], "loss": [3.1, 2.9, 2.7]}

TALLY = {"tried": 0, "passed": 0}


@contextlib.contextmanager
def case():
    """Count one adversarial case: tried on entry, passed when its checks all hold."""
    TALLY["tried"] += 1
    yield
    TALLY["passed"] += 1


@pytest.fixture(scope="module", autouse=True)
def _report_tally():
    yield
    print(f"\nadversarial: {TALLY['tried']} cases tried, {TALLY['passed']} passed")


def _one_line(message: str, *fragments: str) -> None:
    assert message and "\n" not in message and "\r" not in message, message
    assert "Traceback" not in message
    assert len(message) <= MAX_MESSAGE, (len(message), message[:200])
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def expect_error(call, error, *fragments: str) -> str:
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, ValueError)
    _one_line(str(info.value), *fragments)
    return str(info.value)


def expect_cli_error(argv, out: Path, *fragments: str) -> str:
    code, stdout, stderr = _run_cli(argv)
    lines = stderr.splitlines()
    assert code == 2, (code, stderr[:500])
    assert stdout == "" and not out.exists()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[:500]
    _one_line(lines[0], *fragments)
    return lines[0]


def fit_argv(path: Path, out: Path, columns=None, *extra: str) -> list[str]:
    flags = [f"--{role}" for role in ("params", "tokens", "compute", "loss", "group")]
    roles = [(flag, (columns or COLUMNS).get(flag[2:])) for flag in flags]
    named = [x for flag, col in roles if col is not None for x in (flag, col)]
    return ["fit", str(path), *named, *TINY, "--no-progress", "--out", str(out), *extra]


def expect_finite_fit(argv, out: Path) -> dict:
    """``bayescale fit`` exits 0, prints only warnings (no numerical ones), writes finite draws."""
    return _check_fitted(*_run_cli([*argv, "--json"]), out)


def _check_fitted(code: int, stdout: str, stderr: str, out: Path) -> dict:
    assert code == 0, stderr[:500]
    for line in stderr.splitlines():  # 100 draws may not be "ok"; no numpy overflow warnings
        assert line.startswith("warning: ") and "encountered" not in line, line
    payload = json.loads(stdout)
    for name, row in payload["parameters"].items():
        assert all(math.isfinite(row[k]) for k in ("mean", "median", "lower", "upper")), name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        loaded = bs.load_fit(out)
    for name, value in loaded.samples.items():
        assert np.all(np.isfinite(value)), name
    return payload


# --------------------------------------------------------------------------- CSV files

BIG = "1" + "0" * 400  # 10**400 written out
MEGA = "x" * 1_000_000

#: (id, file contents, columns, expected): expected is the values read (a dict), or the
#: fragments of the one-line error (a tuple); errors are also checked through the CLI.
CSV_CASES = [
    ("bom", "\ufeff" + GOOD, COLUMNS, GOOD_VALUES),
    ("crlf", GOOD.replace("\n", "\r\n"), COLUMNS, GOOD_VALUES),
    ("bom+crlf", "\ufeff" + GOOD.replace("\n", "\r\n"), COLUMNS, GOOD_VALUES),
    ("cr only", GOOD.replace("\n", "\r"), COLUMNS, GOOD_VALUES),
    (
        "unicode names",
        GOOD.replace("N,D,L", "模型参数,tokens ✓,Ünïcødé"),
        {"params": "模型参数", "tokens": "tokens ✓", "loss": "Ünïcødé"},
        GOOD_VALUES,
    ),
    ("blank lines", GOOD.replace("\n", "\n\n"), COLUMNS, GOOD_VALUES),
    (
        "trailing empty columns",
        "N,D,L,,\n1e8,2e9,3.1,,\n2e8,4e9,2.9,,\n4e8,8e9,2.7,,\n",
        COLUMNS,
        GOOD_VALUES,
    ),
    (
        "quoted cells with newlines",
        'N,D,L\n"1e8\n",2e9,3.1\n2e8," 4e9\r\n",2.9\n4e8,8e9,2.7\n',
        COLUMNS,
        GOOD_VALUES,
    ),
    (
        "flag with the header's trailing space",
        GOOD.replace("N,D,L", "N ,D,L"),
        {"params": "N ", "tokens": "D", "loss": "L"},
        GOOD_VALUES,
    ),
    (
        "all-equal losses",
        "N,D,L\n1e8,2e9,3\n2e8,4e9,3\n4e8,8e9,3\n",
        COLUMNS,
        {**GOOD_VALUES, "loss": [3.0, 3.0, 3.0]},
    ),
    (
        "one model size",
        "N,D,L\n1e8,2e9,3.1\n1e8,4e9,2.9\n1e8,8e9,2.7\n",
        COLUMNS,
        {**GOOD_VALUES, "params": [1e8, 1e8, 1e8]},
    ),
    (
        "tiny but valid magnitudes",
        "N,D,L\n1e-300,1e-10,3.1\n2e-300,2e-10,2.9\n4e-300,4e-10,2.7\n",
        COLUMNS,
        {"params": [1e-300, 2e-300, 4e-300], "tokens": [1e-10, 2e-10, 4e-10]},
    ),
    (
        "huge but valid magnitudes",
        "N,D,L\n1e150,1e151,3.1\n2e150,2e151,2.9\n4e150,4e151,2.7\n",
        COLUMNS,
        {"params": [1e150, 2e150, 4e150], "tokens": [1e151, 2e151, 4e151]},
    ),
    (
        "duplicated header",
        "N,N,L\n1e8,2e9,3\n2e8,4e9,2.9\n",
        COLUMNS,
        ("column header 'N' appears 2 times", "rename the columns so each header is unique"),
    ),
    ("empty file", "", COLUMNS, ("cannot read runs file", "No columns to parse from file")),
    ("header only", "N,D,L\n", COLUMNS, ("runs table is empty: no rows",)),
    ("one row", "N,D,L\n1e8,2e9,3\n", COLUMNS, ("need at least 2 runs, found 1",)),
    (
        "string in a number column",
        "N,D,L\n1e8,2e9,3\n2e8,abc,2.9\n",
        COLUMNS,
        ("column 'D' row 1: value 'abc' is not a number",),
    ),
    (
        "thousands separator",
        'N,D,L\n1e8,2e9,3\n"1,000",4e9,2.9\n',
        COLUMNS,
        ("column 'N' row 1: value '1,000' is not a number",),
    ),
    (
        "boolean text",
        "N,D,L\n1e8,2e9,3\nTrue,4e9,2.9\n",
        COLUMNS,
        ("column 'N' row 1: value 'True' is not a number",),
    ),
    (
        "1e308 overflows compute",
        "N,D,L\n1e8,2e9,3\n1e308,4e9,2.9\n",
        COLUMNS,
        ("row 1: derived compute inf is not a positive finite float64",),
    ),
    (
        "-1e308",
        "N,D,L\n1e8,2e9,3\n-1e308,4e9,2.9\n",
        COLUMNS,
        ("column 'N' row 1: value -1e+308 is not positive", "must be > 0"),
    ),
    (
        "subnormal 1e-320",
        "N,D,L\n1e8,2e9,3\n1e-320,4e9,2.9\n",
        COLUMNS,
        ("row 1: tokens per parameter D/N = 4e+09 / 1e-320 is outside the float64 range",),
    ),
    (
        "tokens per parameter underflow",
        "N,D,L\n1e8,2e9,3\n1e300,1e-30,2.9\n",
        COLUMNS,
        ("row 1: tokens per parameter D/N = 1e-30 / 1e+300 is outside the float64 range",),
    ),
    (
        "inf",
        "N,D,L\n1e8,2e9,3\n2e8,inf,2.9\n",
        COLUMNS,
        ("column 'D' row 1: value inf is not finite", "must be finite"),
    ),
    (
        "nan input",
        "N,D,L\n1e8,2e9,3\nnan,4e9,2.9\n",
        COLUMNS,
        ("column 'N' row 1: value is missing", "must be given for every run"),
    ),
    (
        "1e400 written as a float",
        "N,D,L\n1e8,2e9,3\n1e400,4e9,2.9\n",
        COLUMNS,
        ("column 'N' row 1: value inf is not finite",),
    ),
    (
        "10**400 as text in params",
        f"N,D,L\n{BIG},2e9,3\n2e8,4e9,2.9\n",
        COLUMNS,
        (
            "column 'N' row 0: value '1000000000",
            "...' (401 characters) is not a float64 number (magnitudes above 1.8e308 overflow)",
        ),
    ),
    (
        "10**400 after an integer",  # pandas reads the column as Python ints
        f"N,D,L\n100000000,2e9,3\n{BIG},4e9,2.9\n",
        COLUMNS,
        (
            "column 'N' row 1: value 1000000000",
            "... (401 characters) is not a float64 number (magnitudes above 1.8e308 overflow)",
        ),
    ),
    (
        "10**400 after a float",  # pandas reads the column as float64: inf
        f"N,D,L\n1e8,2e9,3\n{BIG},4e9,2.9\n",
        COLUMNS,
        ("column 'N' row 1: value inf is not finite (sizes, tokens and compute must be finite)",),
    ),
    (
        "10**400 as text in the loss",
        f"N,D,L\n1e8,2e9,3\n2e8,4e9,{BIG}\n",
        COLUMNS,
        ("column 'L' row 1: value 1000000000", "(401 characters) is not a float64 number"),
    ),
    (
        "tiny loss",
        "N,D,L\n1e8,2e9,3\n2e8,4e9,1e-300\n",
        COLUMNS,
        ("column 'L' row 1: value 1e-300 is below 1e-05", "per-token loss in nats"),
    ),
    (
        "loss above 20",
        "N,D,L\n1e8,2e9,3\n2e8,4e9,1e308\n",
        COLUMNS,
        ("column 'L' row 1: value 1e+308 is outside (0, 20]",),
    ),
    (
        "a trailing comma on data lines only",
        "N,D,L\n1e8,2e9,3.1,\n2e8,4e9,2.9,\n",
        COLUMNS,
        ("row 0: 4 fields but the header names 3 columns", "give every column a header"),
    ),
    (
        "an extra value would shift every column",
        "N,D,L\n1e8,2e9,3.1,2.5\n2e8,4e9,2.9,2.4\n4e8,8e9,2.7,2.3\n",
        COLUMNS,
        ("row 0: 4 fields but the header names 3 columns",),
    ),
    (
        "a later row with an extra field",
        "N,D,L\n1e8,2e9,3.1\n2e8,4e9,2.9,7\n",
        COLUMNS,
        ("cannot read runs file", "Expected 3 fields in line 3, saw 4"),
    ),
    (
        "quoted header with a newline",
        'N,D,"L\nx"\n1e8,2e9,3\n2e8,4e9,2.9\n',
        COLUMNS,
        ("column 'L' not found; available columns: 'N', 'D', 'L\\nx'",),
    ),
    (
        "bad cell after a quoted newline names the record, not the line",
        'N,D,L,G\n1e8,2e9,3.1,"arm\nA"\n2e8,4e9,2.9,b\n4e8,x,2.7,b\n',
        {**COLUMNS, "group": "G"},
        ("column 'D' row 2: value 'x' is not a number",),
    ),
    (
        "header with a trailing space, flag without",
        GOOD.replace("N,D,L", "N ,D,L"),
        COLUMNS,
        ("column 'N' not found; available columns: 'N ', 'D', 'L'; did you mean 'N '?",),
    ),
    (
        "a megabyte cell",
        f"N,D,L\n1e8,2e9,3\n2e8,{MEGA},2.9\n",
        COLUMNS,
        ("column 'D' row 1: value 'xxxxxxxx", "(1000000 characters) is not a number"),
    ),
    (
        "NUL byte",
        "N,D,L\n1e8,2e9,3\x00\n2e8,4e9,2.9\n",
        COLUMNS,
        ("column 'L' row 0: value '3\\x00' is not a number",),
    ),
    (
        "latin-1 bytes",
        "Ñ,D,L\n1e8,2e9,3\n2e8,4e9,2.9\n".encode("latin-1"),
        {**COLUMNS, "params": "Ñ"},
        ("cannot read runs file", "'utf-8' codec can't decode byte 0xd1"),
    ),
]


@pytest.mark.parametrize(
    ("text", "columns", "expected"),
    [c[1:] for c in CSV_CASES],
    ids=[c[0] for c in CSV_CASES],
)
def test_hostile_csv_files(tmp_path, text, columns, expected):
    path = tmp_path / "runs.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    with case():
        if isinstance(expected, tuple):
            expect_error(lambda: bs.read_runs(path, **columns), RunsError, *expected)
            out = tmp_path / "fit.nc"
            expect_cli_error(fit_argv(path, out, columns), out, *expected)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RunsWarning)  # duplicated rows are fine here
                runs = bs.read_runs(path, **columns)
            for role, values in expected.items():
                np.testing.assert_array_equal(getattr(runs, role), values, err_msg=role)
            assert runs.rows.tolist() == [0, 1, 2]
            assert runs.columns == dict(columns)


def test_a_dataframe_with_repeated_columns_is_an_error_not_a_silent_pick():
    frame = pd.DataFrame([[1e8, 2e8, 2e9, 3.0], [4e8, 8e8, 4e9, 2.9]], columns=list("NNDL"))
    with case():
        expect_error(
            lambda: bs.read_runs(frame, **COLUMNS), RunsError, "column header 'N' appears 2 times"
        )


def test_python_objects_that_overflow_float64():
    frame = pd.DataFrame({"N": [1e8, 10**400], "D": [2e9, 4e9], "L": [3.0, 2.9]}, dtype=object)
    with case():
        expect_error(
            lambda: bs.read_runs(frame, **COLUMNS),
            RunsError,
            "column 'N' row 1: value 1000000000",
            "(401 characters) is not a float64 number",
        )


def test_missing_loss_drops_the_row_and_says_so(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("N,D,L\n1e8,2e9,nan\n2e8,4e9,2.9\n4e8,8e9,\n8e8,1e10,2.5\n")
    with case():
        with pytest.warns(RunsWarning, match=r"dropped 2 rows with missing 'L' \(rows 0, 2\)"):
            runs = bs.read_runs(path, **COLUMNS)
        assert runs.rows.tolist() == [1, 3]
        np.testing.assert_array_equal(runs.loss, [2.9, 2.5])


def test_one_model_size_cannot_fit_a_law_of_model_size(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("N,D,L\n" + "".join(f"1e8,{d:g},{3 - d / 1e11}\n" for d in (1e9, 2e9, 4e9)))
    out = tmp_path / "fit.nc"
    with case():
        expect_cli_error(
            fit_argv(path, out),
            out,
            "law 'chinchilla' needs at least 2 distinct model sizes, found 1 (params = 1e+08)",
        )


# --------------------------------------------------------------------------- magnitudes: fits


def _ladder() -> pd.DataFrame:
    return bs.simulate_ladder(params=(5e7, 1e8, 2e8, 4e8), tokens_per_param=(10, 40), seed=1)


@pytest.mark.parametrize(
    ("params_scale", "tokens_scale", "loss"),
    [(1e-280, 1.0, None), (1e140, 1e140, None), (1.0, 1.0, 3.0)],
    ids=["params near 1e-272", "compute near 1e297", "all-equal losses"],
)
def test_extreme_but_valid_tables_fit_with_a_finite_posterior(
    tmp_path, params_scale, tokens_scale, loss
):
    frame = _ladder()
    frame = frame.assign(params=frame.params * params_scale, tokens=frame.tokens * tokens_scale)
    if loss is not None:
        frame["loss"] = loss
    path, out = tmp_path / "runs.csv", tmp_path / "fit.nc"
    frame.rename(columns={"params": "N", "tokens": "D", "loss": "L"})[["N", "D", "L"]].to_csv(
        path, index=False
    )
    with case():
        expect_finite_fit(fit_argv(path, out), out)


def test_huge_coefficients_have_a_finite_posterior_sd(tmp_path):
    frame = _ladder()
    frame["params"] *= 1e139
    path, out = tmp_path / "runs.csv", tmp_path / "fit.nc"
    frame.rename(columns={"params": "N", "tokens": "D", "loss": "L"})[["N", "D", "L"]].to_csv(
        path, index=False
    )
    payload = expect_finite_fit(fit_argv(path, out), out)
    assert all(row["sd"] is not None for row in payload["parameters"].values())


# --------------------------------------------------------------------------- 100,000 rows

BIG_ROWS = 100_000
BAD_ROW = 73_456


@pytest.fixture(scope="module")
def big_table(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "N": 10 ** rng.uniform(6, 10, BIG_ROWS),
            "D": 10 ** rng.uniform(8, 12, BIG_ROWS),
            "L": rng.uniform(1.5, 5.0, BIG_ROWS),
        }
    )
    path = tmp_path_factory.mktemp("big") / "runs.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_a_100k_row_table_validates_in_seconds_and_keeps_every_row(big_table):
    path, frame = big_table
    with case():
        started = time.perf_counter()
        runs = bs.read_runs(path, **COLUMNS)
        seconds = time.perf_counter() - started
        assert seconds < 5, seconds
        assert runs.n_runs == BIG_ROWS and runs.rows.tolist() == list(range(BIG_ROWS))
        np.testing.assert_array_equal(runs.params, frame.N.to_numpy())
        np.testing.assert_array_equal(runs.tokens, frame.D.to_numpy())
        np.testing.assert_array_equal(runs.loss, frame.L.to_numpy())


@pytest.mark.parametrize(
    ("column", "cell", "message"),
    [
        ("D", "12x", f"column 'D' row {BAD_ROW}: value '12x' is not a number"),
        ("N", "-5", f"column 'N' row {BAD_ROW}: value -5.0 is not positive"),
        ("L", "25", f"column 'L' row {BAD_ROW}: value 25.0 is outside (0, 20]"),
        ("L", BIG, f"column 'L' row {BAD_ROW}: value inf is not finite (loss must be finite"),
    ],
)
def test_one_bad_cell_in_100k_rows_is_named_by_its_row(tmp_path, big_table, column, cell, message):
    _, frame = big_table
    frame = frame.astype({column: object})
    frame.loc[BAD_ROW, column] = cell
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    with case():
        started = time.perf_counter()
        expect_error(lambda: bs.read_runs(path, **COLUMNS), RunsError, message)
        assert time.perf_counter() - started < 5


# --------------------------------------------------------------------------- priors


def _code(sentinel: Path) -> list[str]:
    """Python that would create ``sentinel`` if anything evaluated it."""
    touch = f"__import__('os').system('touch {sentinel}')"
    return [
        touch,
        f'eval("{touch}")',
        f'exec("{touch}")',
        f"lambda: {touch}",
        f"(lambda: {touch})()",
        f"open('{sentinel}', 'w')",
        f"Normal(mu={touch}, sigma=1)",
        f"Normal(mu=(lambda: {touch})(), sigma=1)",
        f"Normal(mu=0, sigma=1); {touch}",
        f"Normal(mu=0, sigma=1).__class__.__init__.__globals__['os'].system('touch {sentinel}')",
        "().__class__.__base__.__subclasses__()",
        f"f'{{{touch}}}'",
        f"Normal(mu=f'{{{touch}}}', sigma=1)",
        f"Normal(**{{'mu': {touch}}})",
        f"Normal(mu=0, sigma=1)\n{touch}",
    ]


def test_prior_text_that_is_code_is_never_run(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    for text in _code(sentinel):
        with case():
            message = expect_error(lambda text=text: parse_prior(text), ValueError)
            assert message.startswith(("cannot read prior", "prior argument")), message
            assert not sentinel.exists(), text


LOOKALIKE_NORMAL = "\u039dormal"  # Greek capital Nu
LOOKALIKE_SIGMA = "\u0455igma"  # Cyrillic dze

PRIOR_ERRORS = [
    ("Foo(mu=0)", "unknown prior family 'Foo'; valid families: Normal, HalfNormal"),
    ("normal(mu=0, sigma=1)", "unknown prior family 'normal'", "did you mean 'Normal'?"),
    ("Cauchy(scale=1)", "unknown prior family 'Cauchy'"),
    ("Normal(mu=0)", "prior Normal needs parameter 'sigma'"),
    ("Normal()", "prior Normal needs parameter 'mu'"),
    (
        "Normal(mu=0, sigma=1, x=2)",
        "prior Normal has no parameter 'x'; its parameters are mu, sigma",
    ),
    ("Normal(0, 1)", "cannot read prior argument '0'", "arguments are name=number"),
    ("Normal(mu=0, mu=1, sigma=1)", "prior argument 'mu' is given twice"),
    ("Normal(mu=0, sigma=-1)", "prior Normal parameter 'sigma' must be > 0 but got -1.0"),
    ("HalfNormal(sigma=0)", "prior HalfNormal parameter 'sigma' must be > 0 but got 0.0"),
    ("Exponential(rate=-2)", "prior Exponential parameter 'rate' must be > 0 but got -2.0"),
    ("Gamma(concentration=-1, rate=1)", "parameter 'concentration' must be > 0 but got -1.0"),
    ("Beta(alpha=0, beta=1)", "prior Beta parameter 'alpha' must be > 0 but got 0.0"),
    ("StudentT(df=-3, mu=0, sigma=1)", "prior StudentT parameter 'df' must be > 0 but got -3.0"),
    ("HalfNormal(sigma=1e-400)", "parameter 'sigma' must be > 0 but got 0.0"),
    ("Normal(mu=nan, sigma=1)", "cannot read prior argument 'mu=nan'"),
    ("Normal(mu=inf, sigma=1)", "prior Normal parameter 'mu' must be finite but got inf"),
    ("Normal(mu=-inf, sigma=1)", "prior Normal parameter 'mu' must be finite but got -inf"),
    ("HalfNormal(sigma=1e400)", "parameter 'sigma' must be finite but got inf"),
    ("Uniform(low=-inf, high=inf)", "prior Uniform parameter 'low' must be finite but got -inf"),
    ("Uniform(low=0, high=inf)", "prior Uniform parameter 'high' must be finite but got inf"),
    ("Gamma(concentration=1, rate=1, loc=inf)", "parameter 'loc' must be finite but got inf"),
    ("Uniform(low=1, high=1)", "prior Uniform needs low < high but got low=1.0, high=1.0"),
    ("TruncatedNormal(mu=0, sigma=1, low=inf)", "prior TruncatedNormal needs low < high"),
    ("Normal(mu=0x10, sigma=1)", "cannot read prior argument 'mu=0x10'"),
    ("Normal(mu=1_000, sigma=1)", "cannot read prior argument 'mu=1_000'"),
    ("Normal", "cannot read prior 'Normal'; write it like 'Normal(mu=0, sigma=1)'"),
    ("", "cannot read prior ''"),
    ("Normal(mu=0, sigma=1))", "cannot read prior argument 'sigma=1)'"),
    ("Normal(mu=0, sigma=1) # comment", "cannot read prior"),
    (f"{LOOKALIKE_NORMAL}(mu=0, sigma=1)", f"cannot read prior '{LOOKALIKE_NORMAL}(mu=0"),
    (f"Normal(mu=0, {LOOKALIKE_SIGMA}=1)", f"cannot read prior argument '{LOOKALIKE_SIGMA}=1'"),
    ("Nor\u200bmal(mu=0, sigma=1)", "cannot read prior"),  # a zero-width space
    ("(" * 10_000 + ")" * 10_000, "cannot read prior '((((", "(20000 characters)"),
    (
        "Normal(" + "(" * 10_000 + "1" + ")" * 10_000 + ")",
        "cannot read prior argument '((((",
        "(20001 characters)",
    ),
    (
        "Normal(mu=" + "(" * 10_000 + "0" + ")" * 10_000 + ", sigma=1)",
        "cannot read prior argument 'mu=((((",
    ),
    (MEGA, "cannot read prior 'xxxx", "(1000000 characters)"),
    ("Normal(mu=" + "9" * 1_000_000 + ", sigma=1)", "parameter 'mu' must be finite but got inf"),
    (MEGA + "(mu=0)", "unknown prior family 'xxxx", "(1000000 characters)"),
    ("Normal(mu=0, " + "x" * 1_000_000 + "=1, sigma=1)", "has no parameter 'xxxx"),
]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [(c[0], c[1:]) for c in PRIOR_ERRORS],
    ids=[re.sub(r"\s", "_", c[0][:40]) or "empty" for c in PRIOR_ERRORS],
)
def test_hostile_prior_text(text, fragments):
    with case():
        started = time.perf_counter()
        expect_error(lambda: parse_prior(text), ValueError, *fragments)
        assert time.perf_counter() - started < 1


PRIOR_TABLE_ERRORS = [
    ({"dist": "Normal", "mu": 10**400, "sigma": 1}, "parameter 'mu' must be finite but got inf"),
    ({"dist": "Normal", "mu": -(10**400), "sigma": 1}, "must be finite but got -inf"),
    ({"dist": "Normal", "mu": math.nan, "sigma": 1}, "prior Normal parameter 'mu' is NaN"),
    ({"dist": "Normal", "mu": "0", "sigma": 1}, "parameter 'mu' must be a number, got '0'"),
    ({"dist": "Normal", "mu": True, "sigma": 1}, "parameter 'mu' must be a number, got True"),
    ({"dist": "Normal", "mu": [0], "sigma": 1}, "parameter 'mu' must be a number, got [0]"),
    ({"mu": 0, "sigma": 1}, "prior table needs a 'dist' entry naming the family"),
    ({"dist": ["Normal"]}, "prior table needs a 'dist' entry naming the family"),
    ({"dist": "__import__('os')"}, "unknown prior family \"__import__('os')\""),
    ({"dist": MEGA, "mu": "x"}, "prior 'xxxx", "(1000000 characters) parameter 'mu'"),
    (42, "cannot read a prior from 42"),
    (None, "cannot read a prior from None"),
]


@pytest.mark.parametrize(("table", "fragments"), [(c[0], c[1:]) for c in PRIOR_TABLE_ERRORS])
def test_hostile_prior_tables(table, fragments):
    with case():
        expect_error(lambda: parse_prior(table), ValueError, *fragments)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Normal(mu=0, sigma=1" + " " * 1_000_000 + ")", Prior("Normal", {"mu": 0, "sigma": 1})),
        ("  Normal ( mu = -0 , sigma = 5. , )  ", Prior("Normal", {"mu": 0, "sigma": 5})),
        (
            "TruncatedNormal(mu=0, sigma=1, low=-inf)",
            Prior("TruncatedNormal", {"mu": 0, "sigma": 1}),
        ),
        # a digit in another script is that digit (str.isdigit and float agree)
        ("Normal(mu=0, sigma=\uff11)", Prior("Normal", {"mu": 0, "sigma": 1})),
    ],
    ids=["a megabyte of spaces", "spaces and a trailing comma", "infinite bound", "fullwidth 1"],
)
def test_odd_but_valid_prior_text_gives_the_prior_written(text, expected):
    with case():
        assert parse_prior(text) == expected


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    _ladder()[["params", "tokens", "loss"]].rename(
        columns={"params": "N", "tokens": "D", "loss": "L"}
    ).to_csv(path, index=False)
    return path


def test_hostile_cli_priors(tmp_path, runs_csv):
    sentinel = tmp_path / "SENTINEL"
    out = tmp_path / "fit.nc"
    cases = [(f"alpha={text}", ("cannot read prior",)) for text in _code(sentinel)[:8]]
    cases += [
        ("alpha=Foo(mu=0)", ("unknown prior family 'Foo'",)),
        ("alpha=Normal(mu=0)", ("prior Normal needs parameter 'sigma'",)),
        ("alpha=Normal(mu=0, sigma=-1)", ("parameter 'sigma' must be > 0 but got -1.0",)),
        ("alpha=Normal(mu=nan, sigma=1)", ("cannot read prior argument 'mu=nan'",)),
        ("alpha=Normal(mu=0, sigma=inf)", ("parameter 'sigma' must be finite but got inf",)),
        ("alpha=" + "(" * 10_000 + ")" * 10_000, ("cannot read prior '((((", "characters)")),
        ("alpha=" + MEGA, ("cannot read prior 'xxxx", "(1000000 characters)")),
        ("zeta=Normal(mu=0, sigma=1)", ("no parameter 'zeta' to put a prior on",)),
        ("\u0395=Normal(mu=0, sigma=1)", ("no parameter '\u0395' to put a prior on",)),  # Greek E
        ("alpha~HalfNormal(sigma:1)", ("--prior expects NAME=Family(...)",)),
        ("=Normal(mu=0, sigma=1)", ("--prior expects NAME=Family(...)",)),
        (MEGA, ("--prior expects NAME=Family(...), got 'xxxx", "(1000000 characters)")),
        ("alpha=", ("cannot read prior ''",)),
    ]
    for prior, fragments in cases:
        with case():
            expect_cli_error(fit_argv(runs_csv, out, None, "--prior", prior), out, *fragments)
            assert not sentinel.exists(), prior
    with case():
        twice = [
            "--prior",
            "alpha=Normal(mu=0.3, sigma=1)",
            "--prior",
            "alpha =Normal(mu=1, sigma=1)",
        ]
        expect_cli_error(
            fit_argv(runs_csv, out, None, *twice), out, "--prior 'alpha' is given twice"
        )


# --------------------------------------------------------------------------- TOML specs

SPEC_HEAD = 'law = "chinchilla"\n'
SPEC_PRIORS = (
    '[priors]\nalpha = { dist = "TruncatedNormal", mu = 0.3, sigma = 0.2, low = 0, high = 1.5 }\n'
)
VALID_SPEC = SPEC_HEAD + SPEC_PRIORS

SPEC_ERRORS = [
    ("invalid toml", "law = \n", "cannot read model spec", "Invalid value (at line 1, column 7)"),
    ("unclosed table", "[priors\nalpha = 1", "Expected ']' at the end of a table declaration"),
    ("no law", 'name = "x"\n', "needs a 'law' entry"),
    ("empty file", "", "needs a 'law' entry"),
    ("unknown law", 'law = "chinchila"\n', "unknown law 'chinchila'; did you mean 'chinchilla'?"),
    ("law as a list", 'law = ["chinchilla"]\n', "'law' must be a string, got list ['chinchilla']"),
    ("law as a table", "law = { a = 1 }\n", "'law' must be a string, got dict {'a': 1}"),
    ("law as a number", "law = 5\n", "'law' must be a string, got int 5"),
    ("priors as a string", 'law = "chinchilla"\npriors = "alpha"\n', "'priors' must be a table"),
    (
        "priors as a list",
        'law = "chinchilla"\npriors = ["a"]\n',
        "'priors' must be a table, got list",
    ),
    ("options as a list", 'law = "bnsl"\nlaw_options = [1]\n', "'law_options' must be a table"),
    (
        "likelihood list",
        'law = "chinchilla"\nlikelihood = ["normal"]\n',
        "'likelihood' must be a string",
    ),
    ("likelihood unknown", 'law = "chinchilla"\nlikelihood = "cauchy"\n', "got 'cauchy'"),
    (
        "pooling number",
        'law = "chinchilla"\npooling = 1\n',
        "'pooling' must be a string, got int 1",
    ),
    (
        "downstream 'false'",
        'law = "chinchilla"\ndownstream = "false"\n',
        "'downstream' must be true or false, got str 'false'",
    ),
    ("name table", 'law = "chinchilla"\nname = { a = 1 }\n', "'name' must be a string, got dict"),
    (
        "description list",
        'law = "chinchilla"\ndescription = [1]\n',
        "'description' must be a string",
    ),
    ("unknown key", 'law = "chinchilla"\nprior = {}\n', "has unknown key 'prior'; valid keys:"),
    (
        "prior as code",
        "law = \"chinchilla\"\n[priors]\nalpha = \"__import__('os').system('touch SENTINEL')\"\n",
        "cannot read prior \"__import__('os').system('touch SENTINEL')\"",
    ),
    (
        "prior family as code",
        "law = \"chinchilla\"\n[priors]\nalpha = { dist = \"__import__('os').system('touch SENTINEL')\" }\n",
        "unknown prior family \"__import__('os')",
    ),
    (
        "prior as a number",
        'law = "chinchilla"\n[priors]\nalpha = 5\n',
        "cannot read a prior from 5",
    ),
    (
        "prior huge integer",
        f'law = "chinchilla"\n[priors]\nalpha = {{ dist = "Normal", mu = {BIG}, sigma = 1 }}\n',
        "prior Normal parameter 'mu' must be finite but got inf",
    ),
    (
        "prior infinite bound",
        'law = "chinchilla"\n[priors]\nalpha = { dist = "Uniform", low = 0, high = inf }\n',
        "prior Uniform parameter 'high' must be finite but got inf",
    ),
    (
        "prior nan",
        'law = "chinchilla"\n[priors]\nalpha = { dist = "Normal", mu = nan, sigma = 1 }\n',
        "prior Normal parameter 'mu' is NaN",
    ),
    (
        "prior for no parameter",
        'law = "chinchilla"\n[priors]\ngamma2 = { dist = "Normal", mu = 0, sigma = 1 }\n',
        "law 'chinchilla' has no parameter 'gamma2'; did you mean 'gamma'?",
    ),
    (
        "a 100,000-character key",
        'law = "chinchilla"\n' + "k" * 100_000 + " = 1\n",
        "has unknown key 'kkkk",
        "(100000 characters)",
    ),
    (
        "a 100,000-character prior name",
        'law = "chinchilla"\n[priors]\n'
        + "k" * 100_000
        + ' = { dist = "Normal", mu = 0, sigma = 1 }\n',
        "has no parameter 'kkkk",
        "(100000 characters)",
    ),
    (
        "duplicate key",
        'law = "chinchilla"\nlaw = "kaplan_n"\n',
        "Cannot overwrite a value (at line 2",
    ),
    (
        "duplicate table",
        'law = "chinchilla"\n[priors]\n[priors]\n',
        "Cannot declare ('priors',) twice",
    ),
    (
        "bnsl k as text",
        'law = "bnsl"\n[law_options]\nk = "one"\n',
        "bnsl needs a whole number of breaks k but got k='one'",
    ),
    (
        "bnsl k fraction",
        'law = "bnsl"\n[law_options]\nk = 1.5\n',
        "whole number of breaks k but got k=1.5",
    ),
    (
        "bnsl k boolean",
        'law = "bnsl"\n[law_options]\nk = true\n',
        "whole number of breaks k but got k=True",
    ),
    (
        "bnsl k negative",
        'law = "bnsl"\n[law_options]\nk = -1\n',
        "bnsl needs k >= 1 breaks but got k=-1",
    ),
    (
        "bnsl k = 10**8",
        'law = "bnsl"\n[law_options]\nk = 100000000\n',
        "bnsl takes at most 20 breaks but got k=100000000",
    ),
    ("bnsl bad input", 'law = "bnsl"\n[law_options]\nx = "flops"\n', "bnsl input x must be one of"),
    (
        "kaplan irreducible 'false'",
        'law = "kaplan_n"\n[law_options]\nirreducible = "false"\n',
        "kaplan_n option irreducible must be true or false but got 'false'",
    ),
    (
        "option for another law",
        'law = "chinchilla"\n[law_options]\nk = 1\n',
        "law 'chinchilla' does not take options ['k']",
    ),
    (
        "deep arrays",
        'law = "chinchilla"\nx = ' + "[" * 5000 + "]" * 5000 + "\n",
        "nested too deeply",
    ),
    (
        "deep tables",
        'law = "chinchilla"\nx = ' + "{a=" * 3000 + "1" + "}" * 3000 + "\n",
        "nested too deeply",
    ),
    ("NUL", 'law = "chinchilla\x00"\n', "Illegal character '\\x00'"),
    ("5 MB of garbage", "law = " + "\u00e9" * 2_500_000, "cannot read model spec", "Invalid value"),
]


def _write_spec(folder: Path, text: str | bytes, name: str = "spec.toml") -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize(
    ("text", "fragments"),
    [(c[1], c[2:]) for c in SPEC_ERRORS],
    ids=[c[0] for c in SPEC_ERRORS],
)
def test_hostile_model_specs(tmp_path, monkeypatch, text, fragments):
    monkeypatch.chdir(tmp_path)  # where the code cases' sentinel would appear
    path = _write_spec(tmp_path, text)
    with case():
        started = time.perf_counter()
        expect_error(lambda: load_model(path), ValueError, *fragments)
        expect_error(lambda: load_model(str(path)), ValueError, *fragments)
        assert time.perf_counter() - started < 5
        assert not (tmp_path / "SENTINEL").exists()


def test_spec_files_that_are_not_files(tmp_path):
    (tmp_path / "folder.toml").mkdir()
    with case():
        expect_error(
            lambda: load_model(tmp_path / "folder.toml"),
            ValueError,
            f"cannot read model spec '{tmp_path / 'folder.toml'}': Is a directory",
        )
    with case():
        expect_error(
            lambda: load_model(tmp_path / "missing.toml"),
            ValueError,
            f"model spec file '{tmp_path / 'missing.toml'}' not found",
        )
    with case():
        expect_error(
            lambda: load_model("x" * 100_000 + ".toml"),
            ValueError,
            "...' (100005 characters) not found",
        )
    with case():
        expect_error(
            lambda: load_model(_write_spec(tmp_path, b"\xff\xfelaw")),
            ValueError,
            "'utf-8' codec can't decode byte 0xff in position 0",
        )


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff" + VALID_SPEC,
        VALID_SPEC.replace("\n", "\r\n"),
        SPEC_HEAD + 'description = "' + "x" * 5_000_000 + '"\n' + SPEC_PRIORS,
        VALID_SPEC + ("# " + "y" * 98 + "\n") * 50_000,
    ],
    ids=["bom", "crlf", "a 5 MB description", "5 MB of comments"],
)
def test_odd_but_valid_specs_give_the_spec_written(tmp_path, text):
    path = _write_spec(tmp_path, text)
    with case():
        started = time.perf_counter()
        spec = load_model(path)
        assert time.perf_counter() - started < 5
        assert spec.law.name == "chinchilla" and spec.likelihood == "student_t"
        assert spec.priors == {
            "alpha": parse_prior("TruncatedNormal(mu=0.3, sigma=0.2, low=0, high=1.5)")
        }
        assert spec.description in ("", "x" * 5_000_000)


def test_hostile_specs_through_the_cli(tmp_path, runs_csv):
    out = tmp_path / "fit.nc"
    for _, text, *fragments in SPEC_ERRORS[::3]:
        path = _write_spec(tmp_path, text)
        with case():
            expect_cli_error(fit_argv(runs_csv, out, None, "--law", str(path)), out, *fragments)
    (tmp_path / "folder.toml").mkdir()
    with case():
        argv = fit_argv(runs_csv, out, None, "--law", str(tmp_path / "folder.toml"))
        expect_cli_error(argv, out, "cannot read model spec", "Is a directory")


def test_a_valid_spec_file_fits_through_the_cli(tmp_path, runs_csv):
    path = _write_spec(tmp_path, "\ufeff" + VALID_SPEC.replace("\n", "\r\n"), "my spec ✓.toml")
    out = tmp_path / "fit.nc"
    with case():
        payload = expect_finite_fit(fit_argv(runs_csv, out, None, "--law", str(path)), out)
        assert set(payload["parameters"]) >= {"E", "A", "B", "alpha", "beta"}


# --------------------------------------------------------------------------- random sweeps


def _csv_records(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and data records as Python's csv module reads them (blank lines skipped)."""
    records = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    data = [r for r in records[1:] if r and not (len(r) == 1 and not r[0].strip())]
    return (records[0] if records else []), data


@st.composite
def hostile_csv(draw):
    """test_hardening's random CSV files, then damaged the way real exports are."""
    names, text = draw(csv_texts(min_rows=1))
    lines = text.split("\n")
    if lines and draw(st.integers(0, 3)) == 0:  # a comma at the end of the data lines only
        lines = [lines[0]] + [line + "," if line else line for line in lines[1:]]
    if len(lines) > 2 and draw(st.integers(0, 4)) == 0:  # one row with a surplus value
        i = draw(st.integers(1, len(lines) - 2))
        lines[i] += ",2.5"
    if len(lines) > 2 and draw(st.integers(0, 3)) == 0:  # a cell replaced by something nasty
        i = draw(st.integers(1, len(lines) - 2))
        cells = lines[i].split(",")
        cells[draw(st.integers(0, len(cells) - 1))] = draw(
            st.sampled_from([BIG, "-" + BIG, "1e-320", '"1,000"', '"2e9\n"', "x" * 5000, "0x10"])
        )
        lines[i] = ",".join(cells)
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    if draw(st.booleans()):
        text = "\ufeff" + text
    return names, text


def _check_against_csv_module(runs, text: str, columns: dict) -> None:
    """Every kept value is ``float`` of its cell: nothing shifted, rounded or invented."""
    header, data = _csv_records(text)
    assert all(len(r) <= len(header) for r in data), "a longer row must be an error"
    for role, name in columns.items():
        where = header.index(name)
        expected = [float(data[int(r)][where].strip()) for r in runs.rows]
        np.testing.assert_allclose(getattr(runs, role), expected, rtol=1e-15, err_msg=role)


@SWEEP
@given(hostile_csv())
def test_random_hostile_csv_files(case_):
    names, text = case_
    with tempfile.TemporaryDirectory() as folder, case():
        path = Path(folder) / "runs.csv"
        path.write_text(text, encoding="utf-8", newline="")
        for second in ("tokens", "compute"):
            columns = {"params": names[0], second: names[1], "loss": names[2]}
            if len(set(columns.values())) < 3:
                expect_error(
                    lambda c=columns: bs.read_runs(path, **c), RunsError, "is given for both"
                )
                continue
            runs = _check_outcome(lambda c=columns: bs.read_runs(path, **c))
            if runs is not None:
                _check_against_csv_module(runs, text, columns)
            else:
                with warnings.catch_warnings(), pytest.raises(RunsError) as info:
                    warnings.simplefilter("ignore", RunsWarning)
                    bs.read_runs(path, **columns)
                assert len(str(info.value)) <= MAX_MESSAGE


FAMILY_TEXT = st.sampled_from(
    [*FAMILIES, "normal", LOOKALIKE_NORMAL, "Foo", "__import__", "lambda", "", "eval", "Normal.mu"]
)
ARG_NAME = st.sampled_from(
    [*"mu sigma low high rate concentration loc df alpha beta scale x __class__".split(), "1"]
)
ARG_NAME = ARG_NAME | st.sampled_from([LOOKALIKE_SIGMA, "", "mu mu"])
NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-5, max_value=5).map(lambda v: f"{v:.3g}"),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "-1e-400", BIG, "0x10", "1_000", ".5", "5."]),
    st.sampled_from(["+3", "--1", "1e", "e5", "(1)", "__import__('os').system('touch SENTINEL')"]),
)


@st.composite
def well_formed_prior_texts(draw):
    """``Family(name=number, ...)`` with the family's own names: mostly valid, odd spacing."""
    family = draw(st.sampled_from(list(FAMILIES)))
    names = draw(st.permutations(FAMILIES[family][0]))
    names = names[: draw(st.sampled_from([len(names), len(names), len(names), 0, 1]))]
    space = st.sampled_from(["", " ", "  ", "\t"])
    numbers = st.one_of(
        st.floats(min_value=-10, max_value=10).map(repr),
        st.floats(min_value=1e-300, max_value=1e300).map(repr),
        st.sampled_from(["0", "-0", "1", ".5", "5.", "1e-3", "2E+2", "inf", "-inf", "+1"]),
    )
    args = [f"{n}{draw(space)}={draw(space)}{draw(numbers)}" for n in names]
    comma = draw(st.sampled_from([", ", ",", " , "]))
    return f"{draw(space)}{family}{draw(space)}({comma.join(args)}){draw(space)}"


@st.composite
def prior_texts(draw):
    if draw(st.booleans()):
        return draw(well_formed_prior_texts())
    args = draw(
        st.lists(
            st.tuples(ARG_NAME, st.sampled_from(["=", " = ", "==", ":", ""]), NUMBER_TEXT),
            max_size=5,
        )
    )
    body = draw(st.sampled_from([", ", ",", " ,", ",,"])).join("".join(a) for a in args)
    opened = draw(st.sampled_from(["(", " (", "((", "", "["]))
    closed = draw(st.sampled_from([")", "))", "", ").", ") ", ")\n"]))
    suffix = draw(st.sampled_from(["", "", ".__class__", "; __import__('os')", " # c", "()"]))
    depth = draw(st.sampled_from([0, 0, 0, 1, 50, 10_000]))
    return "(" * depth + draw(FAMILY_TEXT) + opened + body + closed + suffix + ")" * depth


def _written_arguments(text: str) -> tuple[str, dict[str, float]]:
    """The family and name=number arguments of accepted prior text, read independently."""
    match = re.fullmatch(r"\s*(\w+)\s*\((.*)\)\s*", text, flags=re.DOTALL)
    assert match, text
    given_args: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in match.group(2).split(","))):
        name, value = (s.strip() for s in part.split("="))
        assert name not in given_args, text
        given_args[name] = float(value)
    return match.group(1), given_args


@SWEEP
@given(prior_texts())
def test_random_prior_text(text):
    with tempfile.TemporaryDirectory() as folder, case():
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            try:
                prior = parse_prior(text)
            except ValueError as exc:
                _one_line(str(exc))
                event("rejected")
                prior = None
            assert not (Path(folder) / "SENTINEL").exists()
        finally:
            os.chdir(cwd)
    if prior is None:
        return
    event("accepted")
    family, written = _written_arguments(text)
    names, defaults = FAMILIES[family]
    assert prior.family == family and set(written) <= set(names)
    for name in names:
        assert prior.params[name] == written.get(name, defaults.get(name)), name
        bound = prior.family == "TruncatedNormal" and name in ("low", "high")
        assert math.isfinite(prior.params[name]) or bound, name
    assert parse_prior(prior.to_dict()) == prior


def _toml(value) -> str:
    """A minimal TOML writer for the random specs (strings, numbers, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # TOML basic strings take JSON's escapes, but not a raw DEL
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml(key)


WRONG_TYPES = st.sampled_from([1, 1.5, True, [1], {"a": 1}, "text", ""])
PRIOR_VALUES = st.one_of(
    st.fixed_dictionaries(
        {"dist": st.sampled_from(["Normal", "HalfNormal", "Uniform", "Foo"])},
        optional={
            "mu": st.one_of(st.floats(-2, 2), st.just(math.nan), st.just(10**400)),
            "sigma": st.one_of(st.floats(-1, 3), st.just(math.inf)),
            "low": st.sampled_from([0.0, -math.inf, 1.0]),
            "high": st.sampled_from([1.5, math.inf, 0.5]),
            "x": st.just(1),
        },
    ),
    prior_texts(),
    st.sampled_from(["Normal(mu=0.3, sigma=0.1)", "HalfNormal(sigma=0.2)"]),
    WRONG_TYPES,
)


@st.composite
def spec_tables(draw):
    if draw(st.booleans()):  # a plausible spec: right types, real parameter names
        law = draw(st.sampled_from(["chinchilla", "kaplan_n", "bnsl"]))
        names = st.sampled_from((*bs.get_law(law).parameter_names, "sigma", "nu"))
        table = {"law": law}
        if draw(st.booleans()):
            table["priors"] = draw(
                st.dictionaries(names, well_formed_prior_texts() | PRIOR_VALUES, max_size=3)
            )
        for key, values in (
            ("likelihood", st.sampled_from(["student_t", "normal"])),
            ("pooling", st.sampled_from(["none", "shared", "partial"])),
            ("downstream", st.booleans()),
            ("name", st.text(max_size=20)),
        ):
            if draw(st.booleans()):
                table[key] = draw(values)
        return table
    law = draw(
        st.one_of(st.sampled_from(["chinchilla", "kaplan_n", "bnsl", "chinchila"]), WRONG_TYPES)
    )
    table = {"law": law}
    options = {
        "bnsl": st.fixed_dictionaries(
            {},
            optional={
                "k": st.one_of(st.integers(-2, 30), WRONG_TYPES),
                "x": st.sampled_from(["compute", "params", "flops", 1]),
            },
        ),
        "kaplan_n": st.fixed_dictionaries(
            {}, optional={"irreducible": st.one_of(st.booleans(), WRONG_TYPES)}
        ),
    }
    if draw(st.booleans()):
        table["law_options"] = draw(
            options.get(law, WRONG_TYPES) if isinstance(law, str) else WRONG_TYPES
        )
    if draw(st.booleans()):
        names = st.sampled_from(
            ["alpha", "beta", "E", "sigma", "alpha_N", "c0", "gamma2", "k" * 300]
        )
        table["priors"] = draw(
            st.one_of(st.dictionaries(names, PRIOR_VALUES, max_size=3), WRONG_TYPES)
        )
    for key, values in (
        ("likelihood", st.sampled_from(["student_t", "normal", "cauchy"])),
        ("pooling", st.sampled_from(["none", "shared", "partial", "all"])),
        ("downstream", st.booleans()),
        ("name", st.text(max_size=20)),
        ("description", st.text(max_size=20)),
        ("prior", st.just({})),
    ):
        if draw(st.integers(0, 4)) == 0:
            table[key] = draw(st.one_of(values, WRONG_TYPES))
    return table


def _check_spec(spec, table: dict) -> None:
    """An accepted spec is the table written: no value coerced, no key ignored."""
    assert isinstance(table["law"], str) and spec.law.name == table["law"]
    assert spec.likelihood == table.get("likelihood", "student_t")
    assert spec.pooling == table.get("pooling", "none")
    assert spec.downstream is table.get("downstream", False)
    assert spec.name == table.get("name", "spec") and spec.description == table.get(
        "description", ""
    )
    options = table.get("law_options", {})
    assert isinstance(options, dict) and dict(spec.law.options).items() >= options.items()
    assert not isinstance(options.get("k"), bool), "k = true is no number of breaks"
    assert spec.priors == {k: parse_prior(v) for k, v in table.get("priors", {}).items()}


@SWEEP
@given(spec_tables())
def test_random_model_specs(table):
    with tempfile.TemporaryDirectory() as folder, case():
        text = "".join(f"{_key(k)} = {_toml(v)}\n" for k, v in table.items())
        path = _write_spec(Path(folder), text)
        try:
            spec = load_model(path)
        except ValueError as exc:
            _one_line(str(exc))
            event("rejected")
            return
        event("accepted")
        _check_spec(spec, table)


SHIPPED = (
    Path(__file__).resolve().parents[1] / "models" / "chinchilla_besiroglu2024.toml"
).read_text()


@SWEEP
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(SHIPPED)),
            st.integers(0, 40),
            st.text(alphabet="[]{}=\"'=,.\n#\\ \x00\ufeffé0123456789abcdeinfltu", max_size=8),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_randomly_damaged_shipped_spec(edits):
    text = SHIPPED
    for start, length, insert in edits:
        text = text[:start] + insert + text[start + length :]
    with tempfile.TemporaryDirectory() as folder, case():
        path = _write_spec(Path(folder), text)
        try:
            spec = load_model(path)
        except ValueError as exc:
            _one_line(str(exc))
            event("rejected")
            return
        event("accepted")
        assert spec.likelihood in ("student_t", "normal") and isinstance(spec.downstream, bool)
        assert all(isinstance(p, Prior) for p in spec.priors.values())


@pytest.mark.skipif(not FULL, reason="the fit sweep runs with BAYESCALE_ADVERSARIAL_FULL=1")
@settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(hostile_csv())
def test_random_hostile_csv_files_through_cli_fits(case_):
    names, text = case_
    if len(set(names)) < 3:
        return
    with tempfile.TemporaryDirectory() as folder, case():
        path, out = Path(folder) / "runs.csv", Path(folder) / "fit.nc"
        path.write_text(text, encoding="utf-8", newline="")
        columns = {"params": names[0], "compute": names[1], "loss": names[2]}
        code, stdout, stderr = _run_cli(fit_argv(path, out, columns, "--json"))
        lines = stderr.splitlines()
        assert "Traceback" not in stderr
        if code == 2:
            assert stdout == "" and not out.exists()
            assert len(lines) == 1 and lines[0].startswith("error: ")
            _one_line(lines[0])
            event("exit 2")
            return
        assert code == 0, stderr[:500]
        assert all(line.startswith("warning: ") and "encountered" not in line for line in lines)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.FitWarning)
            loaded = bs.load_fit(out)
        assert all(np.all(np.isfinite(v)) for v in loaded.samples.values())
        event("exit 0")


LADDER_NAMES = ["N", "模型参数", "tokens ✓", "Ünïcødé", "x y", " L", "FLOPs 🚀", "loss"]


@st.composite
def hostile_ladders(draw):
    """A valid 8-run ladder, rescaled by up to 10^±60 and written the way real exports are.

    Sizes and tokens beyond ~10^±60 make the reported coefficients (``A ~ N^alpha``) so large
    that their posterior sd overflows: see test_huge_coefficients_have_a_finite_posterior_sd.
    """
    frame = _ladder()
    exponent = st.integers(-60, 60)
    frame = frame.assign(
        params=frame.params * 10.0 ** draw(exponent),
        tokens=frame.tokens * 10.0 ** draw(exponent),
        loss=frame.loss * draw(st.sampled_from([1.0, 1.0, 1e-4, 5.0])),
    )
    with np.errstate(over="ignore", under="ignore"):
        frame["compute"] = 6 * frame.params * frame.tokens
    second = draw(st.sampled_from(["tokens", "compute"]))
    names = draw(st.lists(st.sampled_from(LADDER_NAMES), min_size=3, max_size=3, unique=True))
    number = draw(st.sampled_from(["{!r}", "{:.17g}", "{:.6e}", '"{!r}"']))
    rows = [names] + [
        [number.format(float(v)) for v in (r.params, getattr(r, second), r.loss)]
        for r in frame.itertuples()
    ]
    end = "," if draw(st.booleans()) else ""  # a comma on every line: an unnamed column
    lines = [",".join(row) + end for row in rows]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(1, len(lines))), "")
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + "\n"
    return ("\ufeff" if draw(st.booleans()) else "") + text, dict(
        zip(("params", second, "loss"), names, strict=True)
    )


@pytest.mark.skipif(not FULL, reason="the fit sweep runs with BAYESCALE_ADVERSARIAL_FULL=1")
@settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(hostile_ladders())
def test_random_extreme_ladders_fit_or_fail_in_one_line(ladder):
    text, columns = ladder
    with tempfile.TemporaryDirectory() as folder, case():
        path, out = Path(folder) / "runs.csv", Path(folder) / "fit.nc"
        path.write_text(text, encoding="utf-8", newline="")
        code, stdout, stderr = _run_cli(fit_argv(path, out, columns, "--json"))
        if code == 2:
            lines = stderr.splitlines()
            assert stdout == "" and not out.exists()
            assert len(lines) == 1 and lines[0].startswith("error: "), stderr[:500]
            _one_line(lines[0])
            event(f"exit 2: {lines[0][7:110]}")
            return
        _check_fitted(code, stdout, stderr, out)
        event("fitted")
