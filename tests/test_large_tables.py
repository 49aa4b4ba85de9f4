"""Large run tables: memory bounded in the number of runs times draws or iterations.

XLA's CPU runtime holds memory for the NUTS iterations one call of ``advance`` ran on
several host devices until the call returns (20,000 runs: 5.1 GB in one call, 1.4 GB in
six), so a large table's chains advance in calls of bounded rows x iterations; per-draw
values of every run are computed in chunks of bounded draws x runs.
"""

import numpy as np
import pytest
from conftest import FAST, sampled

import bayescale as bs
from bayescale import _chunks
from bayescale._chunks import advance_calls, row_chunks
from bayescale.inference import sampler

SMALL = {**FAST, "drift": False, "extend": 0, "seed": 3, "progress": False}


def _runs(seed=0):
    frame = bs.simulate_ladder(seed=seed)
    return bs.read_runs(frame, params="params", tokens="tokens", loss="loss")


def test_advance_calls_bound_rows_times_iterations():
    # the default table sizes run in one call, as before; large ones in many
    assert advance_calls(2000, rows=1024, parallel=True, progress=False) == 1
    assert advance_calls(2000, rows=1024, parallel=True, progress=True) == 20
    calls = advance_calls(2000, rows=131_072, parallel=True, progress=False)
    assert calls == 80
    assert 2000 / calls * 131_072 <= _chunks.ADVANCE_ROW_ITERATIONS
    # vmapped chains (GPU) are not split: the measured growth is the host devices'
    assert advance_calls(2000, rows=131_072, parallel=False, progress=False) == 1
    # never more calls than iterations
    assert advance_calls(3, rows=10**7, parallel=True, progress=False) == 3


def test_chunked_advance_gives_the_same_draws(monkeypatch):
    runs = _runs()
    whole = bs.fit(runs, "chinchilla", **sampled(**SMALL))
    # as if the table were large: 1500 iterations of 32 padded rows in calls of 100
    monkeypatch.setattr(_chunks, "ADVANCE_ROW_ITERATIONS", 32 * 100)
    counts = []
    real = sampler.advance_calls

    def counting(*args, **kwargs):
        counts.append(real(*args, **kwargs))
        return counts[-1]

    monkeypatch.setattr(sampler, "advance_calls", counting)
    split = bs.fit(runs, "chinchilla", **sampled(**SMALL))
    assert counts == [15]
    for name in whole.samples:
        np.testing.assert_array_equal(whole.samples[name], split.samples[name])
    np.testing.assert_array_equal(whole.stats["n_steps"], split.stats["n_steps"])


@pytest.mark.parametrize("rows, draws", [(10, 4), (7, 1000), (1, 5), (0, 3)])
def test_row_chunks_cover_the_rows_within_the_budget(rows, draws):
    chunks = row_chunks(rows, draws=draws, values=12)
    covered = np.concatenate([np.arange(rows)[c] for c in chunks]) if chunks else []
    np.testing.assert_array_equal(covered, np.arange(rows))
    # each chunk within the budget, or a single run when one run's draws exceed it
    assert all((c.stop - c.start) * draws <= 12 or c.stop - c.start == 1 for c in chunks)


def test_large_tables_adapt_an_unshrunk_metric(monkeypatch):
    # Stan's 1e-3 shrinkage of the metric swamps a many-run posterior's covariance: tables
    # padded beyond REGULARIZE_MAX_ROWS adapt without it, smaller ones as before
    import importlib

    fit_module = importlib.import_module("bayescale.inference.sampling")
    seen = []
    real = sampler.run_chains

    def recording(*args, **kwargs):
        seen.append((len(args[3]["mask"]), kwargs["regularize_mass_matrix"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(sampler, "run_chains", recording)
    runs = _runs()
    bs.fit(runs, "chinchilla", **sampled(**SMALL))
    from bayescale.inference.fitting import resolve_spec
    from bayescale.model import build_model

    model = build_model(resolve_spec("chinchilla"), runs)
    settings = dict(chains=2, draws=20, warmup=20, seed=0, device=None)
    fit_module.sample(model, runs, size=fit_module.REGULARIZE_MAX_ROWS * 2, **settings)
    assert seen == [(32, True), (2048, False)]


@pytest.fixture(scope="module")
def ladder_fit():
    return bs.fit(_runs(), "chinchilla", **sampled(**SMALL))


def test_model_check_in_chunks_equals_all_runs_at_once(ladder_fit, monkeypatch):
    from bayescale.posterior import model_check

    fit = ladder_fit
    whole = model_check.check_fit(fit, warn=False)
    # all runs at once, as the check computed them before
    k_all, log_w = model_check._loo(fit.log_likelihood())
    shapes = []
    real_loo = model_check._loo

    def recording(log_lik):
        shapes.append(log_lik.shape)
        return real_loo(log_lik)

    # chunks of 3 runs: no array of the check holds more than 3 runs' draws
    draws = fit.n_chains * fit.n_draws
    monkeypatch.setattr(_chunks, "CHUNK_VALUES", 3 * draws)
    monkeypatch.setattr(model_check, "_loo", recording)
    k, pit = model_check._loo_pit(fit, fit.runs, {k: getattr(fit.runs, k) for k in fit.law.inputs})
    split = model_check.check_fit(fit, warn=False)
    assert len(shapes) == 2 * 10 and all(s == (fit.n_chains, fit.n_draws, 3) for s in shapes)
    np.testing.assert_allclose(k, k_all, rtol=1e-12)
    assert k.shape == (fit.runs.n_runs,) and np.all((pit > 0) & (pit < 1))
    assert split.to_dict() == whole.to_dict()
    assert float(np.max(np.abs(np.logaddexp.reduce(log_w, axis=0)))) < 1e-9


def test_trend_permutations_in_blocks_equal_one_array(monkeypatch):
    from bayescale.posterior.model_check import _trend_p

    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(0, 5, 40))
    score = 0.5 * (x - 2.5) ** 2 + 0.3 * rng.standard_normal(40)
    whole = _trend_p(score, x, seed=1)
    monkeypatch.setattr(_chunks, "CHUNK_VALUES", 40 * 7)  # blocks of 7 permutations
    assert _trend_p(score, x, seed=1) == whole
    assert 0 < whole < 0.05  # the bend is there
