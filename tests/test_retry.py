"""A fit that diverges is re-run at the target acceptances of ``RETRY_ACCEPTS`` in turn.

The sampler is wrapped so that every run below a chosen acceptance reports one divergent
transition: the fit must climb the ladder (default, 0.99, 0.999), stop at the first clean
run, record where it stopped, and leave a user's own target acceptance alone. On the real
5-run Gadre et al. ladders the ladder is measured in ``bayescale/inference/fitting.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import bayescale as bs
from bayescale.inference import fitting
from bayescale.inference.sampling import sample as real_sample

SAMPLER = {"chains": 4, "draws": 500, "warmup": 500, "progress": False}


@pytest.fixture
def diverging_below(monkeypatch):
    """Make every sampler run below ``limit`` report a divergence; returns the accepts run."""
    seen: list[float] = []

    def install(limit: float):
        def sample(*args, target_accept, **kwargs):
            seen.append(target_accept)
            samples, stats, end = real_sample(*args, target_accept=target_accept, **kwargs)
            if target_accept < limit:
                stats = {**stats, "diverging": np.array(stats["diverging"], copy=True)}
                stats["diverging"][0, 0] = True
            return samples, stats, end

        monkeypatch.setattr(fitting, "sample", sample)
        return seen

    return install


def _fit(**sampler):
    runs = bs.simulate_ladder(seed=0)
    return bs.fit(
        runs,
        "chinchilla",
        params="params",
        tokens="tokens",
        loss="loss",
        drift=False,
        # one noise scale: at these short runs the default's scatter growth sometimes
        # needs a continued block of draws, a sampler call the ladder would also record
        scatter_growth=False,
        seed=0,
        sampler=bs.SamplerOptions(**{**SAMPLER, **sampler}),
    )


def test_a_fit_that_still_diverges_at_0_99_is_run_again_at_0_999(diverging_below):
    seen = diverging_below(0.999)
    fitted = _fit()
    assert seen == [0.95, *fitting.RETRY_ACCEPTS] == [0.95, 0.99, 0.999]
    assert fitted.info["target_accept"] == 0.999
    assert fitted.diagnostics.divergences == 0


def test_the_ladder_stops_at_the_first_run_without_divergences(diverging_below):
    seen = diverging_below(0.99)
    fitted = _fit()
    assert seen == [0.95, 0.99]
    assert fitted.info["target_accept"] == 0.99


def test_divergences_at_every_rung_are_reported_not_hidden(diverging_below):
    seen = diverging_below(2.0)
    with pytest.warns(bs.FitWarning, match="1 divergent transitions"):
        fitted = _fit()
    assert seen == [0.95, 0.99, 0.999]
    assert fitted.diagnostics.divergences == 1 and not fitted.diagnostics.ok


def test_a_target_acceptance_the_user_chose_is_not_raised(diverging_below):
    seen = diverging_below(2.0)
    with pytest.warns(bs.FitWarning, match="1 divergent transitions"):
        fitted = _fit(target_accept=0.9)
    assert seen == [0.9]
    assert fitted.info["target_accept"] == 0.9 and fitted.diagnostics.divergences == 1
