"""The compiled-program store: a new process loads exported NUTS programs instead of tracing.

A "new process" is simulated in-process by emptying the sampler's in-memory program table;
the store lives in a temporary BAYESCALE_CACHE_DIR. Counting calls of ``_nuts._setup``
(the numpyro model and NUTS kernels, traced by every program) shows whether anything was
traced.
"""

import numpy as np
import pytest
from conftest import FAST, assert_same_posterior, sampled, saturating_power_case

import bayescale as bs
from bayescale.inference import _nuts, _program_store, _programs, sampler

pytestmark = pytest.mark.slow

#: The suite's settings: their programs are compiled by other tests already (JAX's cache).
#: These tests count the programs one sampling run compiles: no drift folds, no continued
#: chains (each would add runs of the same or a warm-start program).
SMALL = {**FAST, "drift": False, "extend": 0}
PROGRAMS = ("advance", "finish", "init")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty program store and an empty in-memory program table (a fresh process)."""
    monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_programs, "_PROGRAMS", {})
    monkeypatch.setattr(_programs, "_STATE_TREES", {})
    return tmp_path / "bayescale-programs"


@pytest.fixture
def traces(monkeypatch):
    """How often the numpyro model and kernels were traced."""
    calls = []
    real = _nuts._setup

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_nuts, "_setup", counting)
    return calls


def _runs(seed=0):
    frame = bs.simulate_ladder(seed=seed)
    return bs.read_runs(frame, params="params", tokens="tokens", loss="loss")


def _fit(runs, **kwargs):
    return bs.fit(
        runs, "chinchilla", **sampled(**{"seed": 3, "progress": False, **SMALL, **kwargs})
    )


def _fresh_process(monkeypatch):
    monkeypatch.setattr(_programs, "_PROGRAMS", {})
    monkeypatch.setattr(_programs, "_STATE_TREES", {})


def test_second_process_loads_the_programs_without_tracing(store, traces, monkeypatch):
    runs = _runs()
    first = _fit(runs)
    assert sorted(p.name.split("-")[0] for p in store.iterdir()) == list(PROGRAMS)
    assert traces, "the first fit must trace the model"

    _fresh_process(monkeypatch)
    traces.clear()
    second = _fit(runs)
    assert traces == []
    for name in ("E", "alpha", "beta"):
        np.testing.assert_array_equal(first.samples[name], second.samples[name])
    np.testing.assert_array_equal(first.stats["n_steps"], second.stats["n_steps"])

    # new data of the same padded shape: the loaded programs serve it too
    other = _fit(_runs(seed=1))
    assert traces == []
    assert not np.array_equal(other.samples["E"], second.samples["E"])


def test_progress_bar_does_not_change_the_draws(store):
    runs = _runs()
    quiet = _fit(runs)
    # a bar advances the chains in 20 calls instead of one; the draws are the same bits
    shown = _fit(runs, progress=True)
    for name in quiet.samples:
        np.testing.assert_array_equal(quiet.samples[name], shown.samples[name])
    np.testing.assert_array_equal(quiet.stats["diverging"], shown.stats["diverging"])


def test_unreadable_program_is_traced_again_and_replaced(store, traces, monkeypatch):
    runs = _runs()
    first = _fit(runs)
    (advance,) = store.glob("advance-*")
    advance.write_bytes(b"not a program")

    _fresh_process(monkeypatch)
    traces.clear()
    again = _fit(runs)
    # advance is traced (and needs the state layout, which init did not trace): the same draws
    assert traces
    np.testing.assert_array_equal(first.samples["E"], again.samples["E"])
    import jax

    jax.export.deserialize(bytearray(advance.read_bytes()))  # rewritten, readable


def test_program_names_change_with_the_package_source(monkeypatch):
    key = ("chinchilla", "settings")
    monkeypatch.setattr(_program_store, "_DIGEST", ["source-a"])
    a = _program_store._program_path("advance", key)
    monkeypatch.setattr(_program_store, "_DIGEST", ["source-b"])
    b = _program_store._program_path("advance", key)
    assert a is not None and b is not None and a != b
    assert a.parent == b.parent
    monkeypatch.setattr(_program_store, "_DIGEST", [])
    assert _program_store._source_digest() == _program_store._source_digest() != "source-a"


def test_programs_are_exported_for_the_platform_they_run_on(store, monkeypatch):
    """jax.export exports for the default backend unless told otherwise: on a GPU machine a
    fit on its CPU (``device="cpu"``) failed with "exported for platforms ('cuda',) but it
    is used on ('cpu',)". CPU programs name their platform; the platform is in the key."""
    import jax

    asked = []
    real = jax.export.export

    def recording(fn, *args, **kwargs):
        asked.append(kwargs.get("platforms"))
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(jax.export, "export", recording)
    _fit(_runs(), device="cpu")
    assert len(asked) == len(PROGRAMS) and set(asked) == {("cpu",)}
    assert {key[0] for key in _programs._PROGRAMS} == {"cpu"}
    on_gpu = _programs._Program("advance", lambda x: x, ("gpu", "model"), None, (), False)
    assert on_gpu.platforms is None  # the accelerator: jax.export's default backend


def test_custom_law_programs_are_never_written(store):
    law, _, frame = saturating_power_case()
    runs = bs.read_runs(frame, params="params", loss="loss")
    result = bs.fit(runs, law, **sampled(seed=0, progress=False, **SMALL))
    assert result.samples["a"].shape == (FAST["chains"], FAST["draws"])
    assert not store.exists() or not any(store.iterdir())


def test_store_off_keeps_programs_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESCALE_CACHE_DIR", "off")
    assert _program_store._program_path("init", ("anything",)) is None


def test_once_per_fit_programs_compile_light_and_fall_back(store, monkeypatch):
    """init and finish compile without LLVM optimisation; an XLA without that option still
    compiles them (as usual) and samples the same posterior (not the same bits: the
    optimised init rounds differently, so the chains start apart)."""
    seen = {}
    real = _programs._Program.compile

    def recording(self):
        seen[self.name] = self.options
        return real(self)

    monkeypatch.setattr(_programs._Program, "compile", recording)
    runs = _runs()
    light = _fit(runs)
    assert seen == {
        "init": _programs._LIGHT_OPTIONS,
        "advance": None,
        "finish": _programs._LIGHT_OPTIONS,
    }

    # an XLA that does not know the option refuses it; the refusal is simulated in
    # jax.stages, not by handing XLA an unknown option: XLA's own refusal path left the
    # test process to crash later (SIGSEGV / abort in executable (de)serialization)
    import jax.stages

    real_compile = jax.stages.Lowered.compile
    refusals = []

    def old_xla(self, compiler_options=None, **kwargs):
        if compiler_options:
            refusals.append(dict(compiler_options))
            raise RuntimeError(f"INVALID_ARGUMENT: No such compile option: {compiler_options}")
        return real_compile(self, compiler_options, **kwargs)

    _fresh_process(monkeypatch)
    monkeypatch.setattr(jax.stages.Lowered, "compile", old_xla)
    refused = _fit(runs)  # loads the stored programs, compiles init/finish the usual way
    assert refused.diagnostics.ok
    assert refusals == [_programs._LIGHT_OPTIONS, _programs._LIGHT_OPTIONS]
    assert_same_posterior(light, refused)


@pytest.fixture
def shaped(monkeypatch):
    """Every ``_prepare`` call: ``init``'s real output shapes and ``init_shapes``'s."""
    import jax

    pairs = []
    real = sampler._prepare

    def checking(progs, keys, start, which, data):
        avals = _programs._init_avals(keys, start, which, data)
        starter = progs.starter(start is not None)
        pairs.append((jax.eval_shape(starter.jitted, *avals), progs.init_shapes(avals)))
        return real(progs, keys, start, which, data)

    monkeypatch.setattr(sampler, "_prepare", checking)
    return pairs


def _avals(tree):
    import jax

    return jax.tree.structure(tree), [(a.shape, a.dtype) for a in jax.tree.leaves(tree)]


def test_advance_is_shaped_by_init_traced_without_the_potential(store, shaped):
    """advance is lowered before init, from init's output shapes traced at the template
    with a zero potential: they must be init's real shapes (cold, warm, batched)."""
    runs = _runs()
    first = _fit(runs)
    _fit(_runs(seed=1), warm_start=first, warmup=50)
    bs.fit_many([runs, _runs(seed=2)], "chinchilla", **sampled(seed=3, **FAST))
    assert len(shaped) == 3  # cold fit, warm refit (its own init), batch
    for real, traced in shaped:
        assert _avals(traced) == _avals(real)


def test_each_program_traces_the_potential_at_most_once(store, monkeypatch):
    """init evaluates its candidate starts and the start's gradient in one vmapped
    value-and-gradient; advance's leapfrog is the only other trace of the potential."""
    import numpyro.infer.util as util

    traced = []
    program = ["shapes"]
    real_lower, real_get = _programs._Program.lower, util.get_potential_fn

    def lower(self, avals):
        program[0] = self.name
        try:
            return real_lower(self, avals)
        finally:
            program[0] = "shapes"

    def get_potential_fn(*args, **kwargs):
        potential, postprocess = real_get(*args, **kwargs)

        def counted(z):
            traced.append(program[0])
            return potential(z)

        return counted, postprocess

    monkeypatch.setattr(_programs._Program, "lower", lower)
    monkeypatch.setattr(util, "get_potential_fn", get_potential_fn)
    _fit(_runs())
    assert sorted(traced) == ["advance", "init"]


def test_programs_compile_and_load_in_the_calling_thread(store, monkeypatch):
    """Cold (compiled) and warm (loaded from the store and JAX's cache) programs compile
    in the thread that called fit: XLA's deserialization of a cache hit in a worker
    thread crashed a test process (SIGSEGV)."""
    import threading

    where = []
    real = _programs._Program.compile

    def recording(self):
        where.append((self.name, threading.current_thread() is threading.main_thread()))
        return real(self)

    monkeypatch.setattr(_programs._Program, "compile", recording)
    runs = _runs()
    _fit(runs)
    _fresh_process(monkeypatch)
    _fit(runs)  # loads the stored programs; JAX's cache has their executables
    assert sorted(name for name, _ in where) == sorted(PROGRAMS * 2)
    assert all(main for _, main in where), where
