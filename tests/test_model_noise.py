"""Student-t noise: the degrees-of-freedom floor and the improper-posterior warnings."""

import numpy as np
import pytest

import bayescale as bs
from bayescale.inference.fitting import resolve_spec
from bayescale.model import NOISE_PRIORS, build_model


def _runs(n):
    frame = bs.simulate_ladder(seed=0).iloc[:n]
    return bs.read_runs(frame, params="params", tokens="tokens", loss="loss")


def test_default_nu_prior_has_a_floor_at_one():
    for name in ("nu", "nu_downstream"):
        assert str(NOISE_PRIORS[name]) == "Gamma(concentration=2, rate=0.1, loc=1)"


def test_too_few_runs_for_student_t_warn_with_the_rule():
    # chinchilla has 5 law parameters: proper needs at least 2 * 5 - 1 = 9 runs
    with pytest.warns(bs.FitWarning) as record:
        build_model(resolve_spec("chinchilla"), _runs(8))
    assert str(record[0].message) == (
        "student_t likelihood with 8 runs for 5 law parameters: the posterior can be improper "
        "(sigma -> 0 while the law passes exactly through 5 runs) below 9 runs; use "
        "likelihood='normal' or add runs"
    )


def test_enough_runs_or_a_normal_likelihood_do_not_warn(recwarn):
    build_model(resolve_spec("chinchilla"), _runs(9))
    build_model(resolve_spec("chinchilla").with_(likelihood="normal"), _runs(8))
    assert not [w for w in recwarn if issubclass(w.category, bs.FitWarning)]


def test_a_nu_prior_reaching_below_one_warns():
    spec = resolve_spec("chinchilla").with_(priors={"nu": "Gamma(concentration=2, rate=0.1)"})
    with pytest.warns(bs.FitWarning, match=r"allows Student-t degrees of freedom below 1"):
        build_model(spec, _runs(30))


def test_grouped_runs_are_counted_per_group_without_pooling():
    frame = bs.simulate_ladder(seed=0)
    frame["arm"] = np.where(np.arange(len(frame)) < 24, "big", "small")  # 6 runs in 'small'
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss", group="arm")
    with pytest.warns(bs.FitWarning, match=r"with 6 runs in group 'small' for 5 law parameters"):
        build_model(resolve_spec("chinchilla").with_(pooling="none"), runs)
