"""fit()'s sampler settings travel in one SamplerOptions; the old keywords still work, warned."""

import numpy as np
import pytest

import bayescale as bs
from bayescale.settings import FIELDS

COLS = {"params": "params", "tokens": "tokens", "loss": "loss"}
TINY = {"chains": 2, "draws": 60, "warmup": 60, "progress": False, "extend": 0}


@pytest.fixture(scope="module")
def ladder():
    return bs.simulate_ladder(params=(5e7, 1e8, 2e8, 4e8), tokens_per_param=(10, 40), seed=0)


def test_defaults_are_the_documented_ones():
    options = bs.SamplerOptions()
    assert (options.chains, options.draws, options.warmup, options.device) == (
        4,
        1000,
        None,
        "auto",
    )
    assert (options.target_accept, options.dense_mass, options.extend) == (None, True, 3)
    assert FIELDS == (
        "chains",
        "draws",
        "warmup",
        "device",
        "progress",
        "target_accept",
        "dense_mass",
        "extend",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chains": 0}, "chains must be an integer >= 1 but got 0"),
        ({"draws": 1.5}, "draws must be an integer >= 1 but got 1.5"),
        ({"warmup": -1}, "warmup must be an integer >= 0 but got -1"),
        ({"extend": True}, "extend must be an integer >= 0 but got True"),
        (
            {"device": "gpux"},
            "device must be one of 'cpu', 'gpu', 'auto' but got 'gpux'; did you mean 'gpu'?",
        ),
        ({"target_accept": 1.0}, "target_accept must be in (0, 1) but got 1.0"),
        ({"progress": "yes"}, "progress must be True or False but got 'yes'"),
        ({"dense_mass": None}, "dense_mass must be True or False but got None"),
    ],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(ValueError) as info:
        bs.SamplerOptions(**options)
    assert str(info.value) == message


def test_numpy_integers_are_accepted_and_replace_validates():
    options = bs.SamplerOptions(chains=np.int64(2))
    assert options.chains == 2 and type(options.chains) is int
    assert options.replace(draws=50).draws == 50
    with pytest.raises(TypeError, match=r"no option 'draw'; did you mean 'draws'\?"):
        options.replace(draw=50)
    with pytest.raises(ValueError, match="draws must be an integer >= 1 but got 0"):
        options.replace(draws=0)


def test_sampler_settings_are_options(monkeypatch):
    monkeypatch.setenv("BAYESCALE_FAST", "1")
    assert bs.sampler_settings() == bs.SamplerOptions(chains=4, draws=500, warmup=500)
    monkeypatch.setenv("BAYESCALE_FAST", "0")
    full = bs.sampler_settings(target_accept=0.99)
    assert (full.draws, full.warmup, full.target_accept) == (1000, 1000, 0.99)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayescale.FitWarning")  # 60 draws: R-hat is not the point
def test_old_keywords_warn_and_give_the_same_draws(ladder):
    new = bs.fit(ladder, seed=4, drift=False, sampler=bs.SamplerOptions(**TINY), **COLS)
    with pytest.warns(DeprecationWarning) as seen:
        old = bs.fit(ladder, seed=4, drift=False, **TINY, **COLS)
    seen = [w for w in seen if w.category is DeprecationWarning]
    assert len(seen) == 1
    assert str(seen[0].message) == (
        "fit(chains=2, draws=60, warmup=60, progress=False, extend=0) is deprecated: pass "
        "sampler=bayescale.SamplerOptions(chains=2, draws=60, warmup=60, progress=False, "
        "extend=0)"
    )
    assert seen[0].filename == __file__  # points at the caller, not at bayescale
    np.testing.assert_array_equal(old.samples["alpha"], new.samples["alpha"])
    assert old.info["command"] == new.info["command"]
    assert new.info["command"].endswith(
        "seed=4, sampler=SamplerOptions(chains=2, draws=60, warmup=60))"
    )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayescale.FitWarning")
def test_fit_many_takes_the_options_and_warns_on_the_old_keywords(ladder):
    options = bs.SamplerOptions(chains=2, draws=60, warmup=60)
    new = bs.fit_many([ladder, ladder], seed=1, sampler=options, **COLS)
    with pytest.warns(DeprecationWarning, match=r"^fit_many\(chains=2, draws=60, warmup=60\)"):
        old = bs.fit_many([ladder, ladder], seed=1, chains=2, draws=60, warmup=60, **COLS)
    assert new[1].samples["alpha"].shape == (2, 60)
    np.testing.assert_array_equal(old[1].samples["alpha"], new[1].samples["alpha"])


def test_wrong_spellings_are_type_errors_before_any_sampling(ladder):
    with pytest.raises(TypeError, match=r"^fit\(\) got both sampler= and chains=: put them in"):
        bs.fit(ladder, sampler=bs.SamplerOptions(), chains=2, **COLS)
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument 'prior'; did you mean 'priors'\?"
    ):
        bs.fit(ladder, prior={}, **COLS)
    with pytest.raises(
        TypeError, match=r"sampler=\.\.\.\) must be a bayescale\.SamplerOptions but got dict"
    ):
        bs.fit(ladder, sampler={"chains": 2}, **COLS)
    with pytest.raises(ValueError, match="chains must be an integer >= 1 but got 0"):
        with pytest.warns(DeprecationWarning):
            bs.fit(ladder, chains=0, **COLS)
