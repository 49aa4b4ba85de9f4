"""Holdout rules and rolling origins: which runs a backtest fits and which it predicts."""

import numpy as np
import pandas as pd
import pytest

from bayescale.trust._holdout import level_order, parse_holdout, rolling_folds, rule_mask


@pytest.mark.parametrize(
    ("text", "column", "op", "value"),
    [
        ("compute>=6.4e18", "compute", ">=", 6.4e18),
        (" params > 1e9 ", "params", ">", 1e9),
        ("isoflop_group==max", "isoflop_group", "==", "max"),
        ("'Model Size'<=5e8", "Model Size", "<=", 5e8),
        ("arch!=llama", "arch", "!=", "llama"),
    ],
)
def test_rules_parse_into_column_operator_and_value(text, column, op, value):
    rule = parse_holdout(text)
    assert (rule.column, rule.op, rule.value) == (column, op, value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("compute", "holdout 'compute' is not COLUMN OP VALUE with OP one of >=, <=, ==, !=, >, <"),
        ("compute>=inf", "holdout 'compute>=inf': the value must be finite but got 'inf'"),
    ],
)
def test_malformed_rules_are_one_line_errors(text, message):
    with pytest.raises(ValueError, match=r"^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_holdout(text)


FRAME = pd.DataFrame(
    {
        "compute": [1e18, 2e18, 4e18, 1e18, 3e18],
        "arch": ["a", "a", "a", "b", "b"],
        # labels whose lexical order is not their compute order
        "budget": ["iso12", "iso11", "iso10", "x2", "x1"],
    }
)


def test_numeric_rules_compare_values():
    assert rule_mask(parse_holdout("compute>=2e18"), FRAME).tolist() == [0, 1, 1, 0, 1]


def test_max_is_taken_per_group_and_labels_follow_their_compute():
    compute, groups = FRAME["compute"].to_numpy(), FRAME["arch"].to_numpy()
    top = rule_mask(parse_holdout("budget==max"), FRAME, compute, groups)
    assert top.tolist() == [False, False, True, False, True]
    top_numeric = rule_mask(parse_holdout("compute==max"), FRAME, compute, groups)
    assert top_numeric.tolist() == [False, False, True, False, True]
    below = rule_mask(parse_holdout("budget<max"), FRAME, compute, groups)
    assert below.tolist() == [True, True, False, True, False]


def test_level_order_sorts_labels_by_median_compute():
    assert level_order(FRAME["budget"].to_numpy()[:3], FRAME["compute"].to_numpy()[:3]) == [
        "iso12",
        "iso11",
        "iso10",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "computee>=1",
            "holdout column 'computee' not found; columns: 'compute', 'arch', 'budget'; did you mean 'compute'?",
        ),
        ("arch>=1", "holdout arch>=1: column 'arch' holds labels, not numbers"),
        ("arch>b", "holdout arch>b: column 'arch' holds labels; order comparisons need numbers"),
        ("arch==c", "holdout arch==c: no run has arch == 'c'; values: 'a', 'b'"),
        (
            "compute==big",
            "holdout compute==big: column 'compute' holds numbers but the value 'big' is not one",
        ),
    ],
)
def test_rules_that_cannot_apply_say_why(text, message):
    with pytest.raises(ValueError) as info:
        rule_mask(parse_holdout(text), FRAME)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_rolling_folds_fit_up_to_each_origin_and_hold_out_the_next_levels():
    levels = np.array([1, 1, 2, 3, 4, 5])
    folds = rolling_folds(levels, [1, 2, 3, 4, 5], horizon=2, first=3)
    assert [o for o, _, _ in folds] == [3, 4]
    _origin, fit, held = folds[0]
    assert fit.tolist() == [True, True, True, True, False, False]
    assert held.tolist() == [False, False, False, False, True, True]
    with pytest.raises(ValueError, match="rolling horizon must be an integer >= 1 but got 0"):
        rolling_folds(levels, [1, 2, 3, 4, 5], horizon=0)
