"""Tests for bayescale.data.runs: every bad input gives one exact line naming column, row and rule."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayescale.data.runs import Runs, RunsError, RunsWarning, read_runs


def table(**overrides):
    base = {
        "N": [1e8, 2e8, 4e8, 8e8],
        "D": [2e9, 4e9, 8e9, 1.6e10],
        "loss": [3.2, 3.0, 2.8, 2.6],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def read(df, **kw):
    kw.setdefault("params", "N")
    kw.setdefault("tokens", "D")
    kw.setdefault("loss", "loss")
    return read_runs(df, **kw)


def raises(message):
    """pytest.raises for an exact one-line RunsError message."""
    return pytest.raises(RunsError, match="^" + re.escape(message) + "$")


# --- reading -------------------------------------------------------------------------------


def test_csv_and_dataframe_agree(tmp_path):
    df = table()
    df.to_csv(tmp_path / "runs.csv", index=False)
    a, b = read(df), read(str(tmp_path / "runs.csv"))
    assert a.data_hash() == b.data_hash() == read(tmp_path / "runs.csv").data_hash()
    assert a.columns == {"params": "N", "tokens": "D", "loss": "loss"}
    assert a.n_runs == 4 and a.n_groups == 1 and a.derived == ("compute",)


def test_missing_file():
    with raises("cannot read runs file 'nope/runs.csv': No such file or directory"):
        read_runs("nope/runs.csv", params="N", loss="loss")


def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with raises(f"cannot read runs file '{tmp_path / 'e.csv'}': No columns to parse from file"):
        read_runs(tmp_path / "e.csv", params="N", loss="loss")


def test_unparsable_file_is_one_line(tmp_path):
    (tmp_path / "bad.csv").write_text("N,loss\n1,2\n3,4,5,6\n")
    with pytest.raises(
        RunsError, match=r"^cannot read runs file '.*bad\.csv': Error tokenizing data"
    ) as err:
        read_runs(tmp_path / "bad.csv", params="N", loss="loss")
    assert "\n" not in str(err.value)


def test_header_only_file_is_empty(tmp_path):
    (tmp_path / "h.csv").write_text("N,D,loss\n")
    with raises("runs table is empty: no rows"):
        read(tmp_path / "h.csv")


def test_empty_dataframe():
    with raises("runs table is empty: no rows"):
        read(table().iloc[:0])


def test_bad_source_type():
    with raises("source must be a CSV path or a pandas DataFrame, got list"):
        read_runs([1, 2], params="N", loss="loss")


def test_missing_column_with_suggestion():
    with raises("column 'n' not found; available columns: 'N', 'D', 'loss'; did you mean 'N'?"):
        read(table(), params="n")
    with raises(
        "column 'Model Siz' not found; available columns: 'Model Size', 'loss'; did you mean 'Model Size'?"
    ):
        read_runs(
            pd.DataFrame({"Model Size": [1e8, 2e8], "loss": [3.0, 2.9]}),
            params="Model Siz",
            loss="loss",
        )


def test_missing_column_without_suggestion():
    with raises("column 'xyz' not found; available columns: 'N', 'D', 'loss'"):
        read(table(), downstream="xyz")


def test_duplicated_header_in_csv(tmp_path):
    (tmp_path / "d.csv").write_text("N,loss,loss\n1e8,3.0,3.1\n2e8,2.9,3.0\n")
    with raises(
        "column header 'loss' appears 2 times; rename the columns so each header is unique"
    ):
        read_runs(tmp_path / "d.csv", params="N", loss="loss")
    # pandas' mangled name does not exist in the file
    with pytest.raises(
        RunsError, match=r"^column 'loss\.1' not found; available columns: 'N', 'loss'"
    ):
        read_runs(tmp_path / "d.csv", params="N", loss="loss.1")


def test_duplicated_header_in_dataframe():
    df = pd.DataFrame([[1e8, 2e9, 3.0], [2e8, 4e9, 2.9]], columns=["N", "N", "loss"])
    with raises("column header 'N' appears 2 times; rename the columns so each header is unique"):
        read_runs(df, params="N", loss="loss")


def test_unrelated_duplicated_header_is_ignored(tmp_path):
    (tmp_path / "d.csv").write_text("note,note,N,D,loss\na,b,1e8,2e9,3.0\nc,d,2e8,4e9,2.9\n")
    assert read(tmp_path / "d.csv").n_runs == 2


def test_argument_errors():
    with raises("give at least one of params, tokens or compute (column names)"):
        read_runs(table(), loss="loss")
    with raises("the loss column is required (loss=...)"):
        read_runs(table(), params="N", loss=None)
    with raises("column 'N' is given for both params and tokens"):
        read_runs(table(), params="N", tokens="N", loss="loss")
    with raises("flops_per_token must be a positive number, got 0"):
        read(table(), flops_per_token=0)
    with raises("flops_per_token must be a positive number, got 'six'"):
        read(table(), flops_per_token="six")


# --- numbers -------------------------------------------------------------------------------


def test_non_numeric_string():
    with raises("column 'N' row 2: value 'abc' is not a number"):
        read(table(N=["1e8", "2e8", "abc", "8e8"]))


def test_numeric_strings_are_fine(tmp_path):
    runs = read(table(N=["1e8", " 2e8", "4E8", "800000000"]))
    np.testing.assert_array_equal(runs.params, [1e8, 2e8, 4e8, 8e8])
    assert runs.params.dtype == np.float64


def test_booleans_are_not_numbers():
    with raises("column 'loss' row 0: value True is not a number (booleans are not numbers)"):
        read(table(loss=[True, False, True, False]))
    with raises("column 'D' row 1: value False is not a number (booleans are not numbers)"):
        read(table(D=[2e9, False, 8e9, 1.6e10]))


def test_other_objects_are_not_numbers():
    with raises("column 'N' row 3: value [1] is not a number"):
        read(table(N=[1e8, 2e8, 4e8, [1]]))


def test_nan_input_is_an_error():
    with raises(
        "column 'D' row 1: value is missing (sizes, tokens and compute must be given for every run)"
    ):
        read(table(D=[2e9, np.nan, 8e9, 1.6e10]))
    with raises(
        "column 'N' row 3: value is missing (sizes, tokens and compute must be given for every run)"
    ):
        read(table(N=["1e8", "2e8", "4e8", ""]))


def test_inf_input_is_an_error():
    with raises(
        "column 'N' row 0: value inf is not finite (sizes, tokens and compute must be finite)"
    ):
        read(table(N=[np.inf, 2e8, 4e8, 8e8]))


@pytest.mark.parametrize("bad", [0.0, -3.0])
def test_non_positive_inputs(bad):
    with raises(
        f"column 'Model Size' row 2: value {bad!r} is not positive (sizes, tokens and compute must be > 0)"
    ):
        read_runs(
            pd.DataFrame(
                {"Model Size": [1e8, 2e8, bad], "Training FLOP": [1e18] * 3, "loss": [3.0] * 3}
            ),
            params="Model Size",
            compute="Training FLOP",
            loss="loss",
        )


def test_row_labels_are_the_index():
    df = table(N=[1e8, 2e8, -1.0, 8e8])
    df.index = ["a", "b", "c", "d"]
    with raises(
        "column 'N' row c: value -1.0 is not positive (sizes, tokens and compute must be > 0)"
    ):
        read(df)
    assert read(table()).rows.tolist() == [0, 1, 2, 3]


def test_missing_loss_rows_are_dropped_with_warning():
    with pytest.warns(
        RunsWarning,
        match=r"^dropped 2 rows with missing 'loss' \(rows 1, 3\): runs without a final evaluation$",
    ):
        runs = read(table(loss=[3.2, np.nan, 2.8, None]))
    assert runs.n_runs == 2 and runs.rows.tolist() == [0, 2]
    np.testing.assert_array_equal(runs.loss, [3.2, 2.8])


def test_missing_loss_drop_lists_first_ten_rows():
    n = 14
    loss = [np.nan] * 12 + [3.0, 2.9]
    df = pd.DataFrame({"N": np.arange(1, n + 1) * 1e8, "D": [1e10] * n, "loss": loss})
    msg = "dropped 12 rows with missing 'loss' (rows 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...): runs without a final evaluation"
    with pytest.warns(RunsWarning, match="^" + re.escape(msg) + "$"):
        assert read(df).n_runs == 2


def test_missing_loss_wins_over_missing_inputs():
    # an unfinished run often lacks everything: it is dropped, not an error
    with pytest.warns(RunsWarning, match=r"dropped 1 row with missing 'loss' \(row 3\)"):
        runs = read(table(N=[1e8, 2e8, 4e8, np.nan], loss=[3.2, 3.0, 2.8, np.nan]))
    assert runs.n_runs == 3


def test_inf_loss_is_an_error():
    with raises(
        "column 'loss' row 1: value inf is not finite "
        "(loss must be finite; leave it empty for a run without a final evaluation)"
    ):
        read(table(loss=[3.2, np.inf, 2.8, 2.6]))


@pytest.mark.parametrize("bad", [0.0, -1.0, 25.0])
def test_loss_out_of_range(bad):
    with raises(
        f"column 'loss' row 3: value {bad!r} is outside (0, 20] (loss is a per-token loss in nats)"
    ):
        read(table(loss=[3.2, 3.0, 2.8, bad]))


def test_loss_of_exactly_20_is_allowed():
    assert read(table(loss=[20.0, 3.0, 2.8, 2.6])).loss[0] == 20.0


def test_downstream_checks():
    with raises(
        "column 'err' row 0: value 1.5 is outside [0, 1] (downstream must be an error rate)"
    ):
        read(table(err=[1.5, 0.5, 0.4, 0.3]), downstream="err")
    with raises(
        "column 'err' row 2: value -0.1 is outside [0, 1] (downstream must be an error rate)"
    ):
        read(table(err=[0.6, 0.5, -0.1, 0.3]), downstream="err")
    with pytest.warns(
        RunsWarning,
        match=r"^dropped 1 row with missing 'err' \(row 2\): runs without a downstream evaluation$",
    ):
        runs = read(table(err=[0.6, 0.5, np.nan, 0.3]), downstream="err")
    np.testing.assert_array_equal(runs.downstream, [0.6, 0.5, 0.3])
    assert runs.frame().columns.tolist() == ["params", "tokens", "compute", "loss", "downstream"]


def test_at_least_two_runs():
    with raises("need at least 2 runs, found 1"):
        read(table().iloc[:1])
    with (
        raises("need at least 2 runs, found 1 after dropping rows with missing values"),
        pytest.warns(RunsWarning, match="dropped 3 rows"),
    ):
        read(table(loss=[3.0, np.nan, np.nan, np.nan]))


# --- float64 bookkeeping -------------------------------------------------------------------


def test_int64_token_counts_survive_exactly():
    tokens = np.array([10**12, 2 * 10**12 + 1, 3 * 10**12 + 7], dtype=np.int64)
    params = np.array([10**10, 2 * 10**10, 3 * 10**10], dtype=np.int64)
    runs = read(pd.DataFrame({"N": params, "D": tokens, "loss": [2.5, 2.4, 2.3]}))
    assert runs.tokens.dtype == np.float64
    assert runs.tokens.tolist() == [1e12, 2e12 + 1, 3e12 + 7]
    # 6 N D = 6e22 overflows int64 (9.2e18); it must be computed in float64
    assert runs.compute.tolist() == [
        6.0 * 1e10 * 1e12,
        6.0 * 2e10 * (2e12 + 1),
        6.0 * 3e10 * (3e12 + 7),
    ]
    assert np.all(runs.compute > 1e22)


def test_python_ints_beyond_int64():
    # pandas keeps integers above 2**63 as Python ints in an object column
    df = table(C=[6 * 10**8 * 2 * 10**9, 10**30, 10**19, 2**70], N=[1e8] * 4)
    assert df["C"].dtype == object
    with pytest.warns(RunsWarning, match="compute differs from 6"):
        runs = read(df, compute="C")
    assert runs.compute.tolist() == [1.2e18, 1e30, 1e19, float(2**70)]


def test_tokens_derived_from_compute():
    n = np.array([5.7e7, 3.1e8, 1.6e10])
    c = np.array([1.4e18, 7.7e19, 1.3e22])
    runs = read_runs(
        pd.DataFrame({"N": n, "C": c, "L": [4.0, 3.0, 2.1]}), params="N", compute="C", loss="L"
    )
    np.testing.assert_allclose(runs.tokens, c / (6 * n), rtol=1e-12, atol=0)
    np.testing.assert_allclose(6 * runs.params * runs.tokens, c, rtol=1e-12, atol=0)
    assert runs.derived == ("tokens",) and runs.compute is not c


def test_compute_derived_from_tokens():
    runs = read(table())
    np.testing.assert_allclose(runs.compute, 6 * runs.params * runs.tokens, rtol=1e-12, atol=0)
    runs8 = read(table(), flops_per_token=8.0)
    np.testing.assert_allclose(runs8.compute, 8 * runs8.params * runs8.tokens, rtol=1e-12, atol=0)
    assert runs8.flops_per_token == 8.0


def test_compute_only_data():
    runs = read_runs(
        pd.DataFrame({"C": [1e18, 1e19, 1e20], "L": [3.0, 2.8, 2.6]}), compute="C", loss="L"
    )
    assert runs.params is None and runs.tokens is None
    frame = runs.frame()
    assert frame.columns.tolist() == ["params", "tokens", "compute", "loss"]
    assert frame["params"].isna().all()
    runs.require(("compute",), 2, "kaplan_c")
    with raises(
        "law 'chinchilla' needs params, but the runs have no params column (available: compute)"
    ):
        runs.require(("params", "tokens"), 5, "chinchilla")


def test_compute_consistency_warning():
    df = table(C=[1.2e18, 4.8e18, 1.92e19 * 3, 7.68e19])
    with pytest.warns(
        RunsWarning,
        match=r"^column 'C' row 2: compute differs from 6\*N\*D by more than a factor 2 "
        r"\(row 2: 5\.76e\+19 vs 1\.92e\+19\); kept; check the columns or flops_per_token$",
    ):
        runs = read(df, compute="C")
    assert runs.compute[2] == 1.92e19 * 3 and runs.derived == ()


def test_consistent_compute_does_not_warn():
    read(table(C=[1.2e18, 4.8e18 * 1.5, 1.92e19, 7.68e19]), compute="C")


def test_derived_overflow_is_an_error():
    with raises("row 1: derived compute inf is not a positive finite float64"):
        read(table(N=[1e8, 1e200, 4e8, 8e8], D=[2e9, 1e200, 8e9, 1.6e10]))


# --- duplicates and groups -----------------------------------------------------------------


def test_duplicated_rows_warn_and_are_kept():
    df = table(N=[1e8, 2e8, 1e8, 8e8], D=[2e9, 4e9, 2e9, 1.6e10], loss=[3.2, 3.0, 3.2, 2.6])
    with pytest.warns(
        RunsWarning,
        match=r"^duplicated runs \(same inputs, group and loss\) at rows 0, 2: kept; "
        r"fine if they are replicate seeds that share a loss, otherwise remove the copies$",
    ):
        runs = read(df)
    assert runs.n_runs == 4


def test_replicate_seeds_do_not_warn():
    df = table(N=[1e8, 2e8, 1e8, 8e8], D=[2e9, 4e9, 2e9, 1.6e10], loss=[3.2, 3.0, 3.21, 2.6])
    assert read(df).n_runs == 4  # filterwarnings=error would fail on any warning


def test_same_run_in_two_groups_is_not_a_duplicate():
    df = table(
        N=[1e8, 2e8, 1e8, 2e8],
        D=[2e9, 4e9, 2e9, 4e9],
        loss=[3.2, 3.0, 3.2, 3.0],
        g=["a", "a", "b", "b"],
    )
    assert read(df, group="g").n_groups == 2


def test_group_codes_sorted_and_stable():
    runs = read(table(g=["rw", "c4", "rw", "rpj"]), group="g")
    assert runs.group_names == ("c4", "rpj", "rw")
    assert runs.group.tolist() == [2, 0, 2, 1] and runs.group.dtype == np.int64
    assert runs.frame()["group"].tolist() == ["rw", "c4", "rw", "rpj"]


def test_numeric_groups_sort_numerically():
    runs = read(table(g=[10, 2, 10, 2]), group="g")
    assert runs.group_names == ("2", "10") and runs.group.tolist() == [1, 0, 1, 0]
    runs = read(table(g=[1.5, 2.0, 1.5, 2.0]), group="g")
    assert runs.group_names == ("1.5", "2")


def test_missing_group_is_an_error():
    with raises("column 'g' row 1: label is missing (every run needs one)"):
        read(table(g=["a", None, "b", "b"]), group="g")
    with raises("column 'g' row 3: label is missing (every run needs one)"):
        read(table(g=["a", "a", "b", " "]), group="g")


def test_sweep_column():
    runs = read(table(s=[1e18, 1e18, 1e19, 1e19]), sweep="s")
    assert runs.sweep_names == ("1e+18", "1e+19")
    assert runs.sweep.tolist() == [0, 0, 1, 1]
    assert runs.columns["sweep"] == "s" and "sweep" in runs.frame().columns


# --- the Runs object -----------------------------------------------------------------------


def test_arrays_are_read_only():
    runs = read(table())
    with pytest.raises(ValueError, match="read-only"):
        runs.loss[0] = 1.0


def test_frame():
    df = table(g=["x", "y", "x", "y"])
    df.index = [10, 11, 12, 13]
    frame = read(df, group="g").frame()
    assert frame.columns.tolist() == ["params", "tokens", "compute", "loss", "group"]
    assert frame.index.tolist() == [10, 11, 12, 13]
    assert frame["compute"].tolist() == pytest.approx([1.2e18, 4.8e18, 1.92e19, 7.68e19], rel=1e-15)


def test_select_keeps_group_names():
    runs = read(table(g=["a", "b", "a", "c"]), group="g")
    sub = runs.select(runs.group == 0)
    assert sub.n_runs == 2 and sub.group_names == ("a", "b", "c") and sub.n_groups == 3
    assert sub.rows.tolist() == [0, 2]
    assert runs.select([3, 1]).loss.tolist() == [2.6, 3.0]
    assert isinstance(sub, Runs) and sub.columns == runs.columns


def test_select_errors():
    runs = read(table())
    with raises("selection mask has shape (2,), expected (4,)"):
        runs.select([True, False])
    with raises("selection keeps no runs"):
        runs.select(np.zeros(4, dtype=bool))
    with raises("selection index out of range for 4 runs"):
        runs.select([0, 4])
    with raises("select() takes a boolean mask or integer positions, got dtype float64"):
        runs.select([0.5])


def test_require_counts_distinct_runs():
    df = table(N=[1e8, 1e8, 2e8, 2e8], D=[2e9, 2e9, 4e9, 4e9], loss=[3.2, 3.1, 3.0, 2.95])
    runs = read(df)
    runs.require(("params", "tokens"), 1, "kaplan_nd")
    with raises(
        "law 'chinchilla' has 5 parameters and needs at least 6 distinct runs (unique params, tokens values), found 2"
    ):
        runs.require(("params", "tokens"), 5, "chinchilla")


def test_require_needs_two_model_sizes():
    runs = read(table(N=[1e8] * 4))
    runs.require(("tokens",), 2, "kaplan_d")
    with raises("law 'kaplan_n' needs at least 2 distinct model sizes, found 1 (params = 1e+08)"):
        runs.require(("params",), 2, "kaplan_n")


def test_require_two_model_sizes_per_group():
    df = table(N=[1e8, 2e8, 3e8, 3e8], D=[2e9, 4e9, 6e9, 8e9], g=["a", "a", "b", "b"])
    runs = read(df, group="g")
    with raises(
        "law 'chinchilla' needs at least 2 distinct model sizes in group 'b', found 1 (params = 3e+08)"
    ):
        runs.require(("params", "tokens"), 3, "chinchilla")


def test_require_unknown_input():
    # any name can be an input now; one the runs lack names the law, the input and a fix
    with raises(
        "law 'x' needs input 'flops', but the runs have no input 'flops' (map a column to it: "
        "--input flops=COLUMN / inputs={'flops': COLUMN}; the runs have: params, tokens, compute)"
    ):
        read(table()).require(("flops",), 1, "x")


def test_data_hash():
    a = read(table())
    assert len(a.data_hash()) == 64 and a.data_hash() == read(table()).data_hash()
    assert a.data_hash() != read(table(loss=[3.2, 3.0, 2.8, 2.61])).data_hash()
    assert a.data_hash() != read(table(g=["a"] * 4), group="g").data_hash()
    assert a.select([0, 1, 2, 3]).data_hash() == a.data_hash()


def test_runs_error_is_a_single_line_value_error():
    err = RunsError("first\nsecond\r\n third")
    assert isinstance(err, ValueError) and str(err) == "first second third"


cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.text(max_size=4),
    st.booleans(),
    st.none(),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(cells, cells, cells, cells), min_size=0, max_size=6))
def test_junk_never_escapes_as_anything_but_runs_error(rows):
    df = (
        pd.DataFrame(rows, columns=["N", "D", "loss", "g"])
        if rows
        else pd.DataFrame(columns=["N", "D", "loss", "g"])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunsWarning)
        try:
            runs = read(df, group="g")
        except RunsError as err:
            assert "\n" not in str(err) and str(err)
            return
    assert runs.n_runs >= 2
    assert np.all(np.isfinite(runs.compute)) and np.all(runs.params > 0) and np.all(runs.tokens > 0)
    assert np.all((runs.loss > 0) & (runs.loss <= 20))


def test_nullable_integer_columns():
    df = table(N=pd.array([10**8, 2 * 10**8, None, 8 * 10**8], dtype="Int64"))
    with raises(
        "column 'N' row 2: value is missing (sizes, tokens and compute must be given for every run)"
    ):
        read(df)
    df = table(
        D=pd.array([2 * 10**9, 4 * 10**9, 8 * 10**9, 10**12], dtype="Int64"),
        loss=[3.2, 3.0, 2.8, None],
    )
    with pytest.warns(RunsWarning, match=r"row 3\)"):
        assert read(df).tokens.tolist() == [2e9, 4e9, 8e9]


def test_groups_of_dropped_rows_disappear():
    df = table(g=["a", "b", "a", "b"], loss=[3.2, np.nan, 2.8, None])
    with pytest.warns(RunsWarning, match=r"dropped 2 rows"):
        runs = read(df, group="g")
    assert runs.group_names == ("a",) and runs.n_groups == 1
    # a run without a final evaluation may also lack its label
    with pytest.warns(RunsWarning, match=r"dropped 1 row "):
        assert (
            read(table(g=["a", "a", "b", None], loss=[3.2, 3.0, 2.8, np.nan]), group="g").n_runs
            == 3
        )
