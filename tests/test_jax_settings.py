"""JAX start-up settings: XLA_FLAGS composed from the user's own and bayescale's."""

import os
import subprocess
import sys

import pytest

from bayescale._jax import GPU_DETERMINISTIC as GPU_DET
from bayescale._jax import GPU_GRAPHS, xla_flags


@pytest.mark.parametrize(
    ("given", "count", "graphs", "deterministic", "expected"),
    [
        ("", 4, True, True, f"--xla_force_host_platform_device_count=4 {GPU_GRAPHS} {GPU_DET}"),
        (
            "--xla_force_host_platform_device_count=8 --xla_dump_to=/tmp/d",
            2,
            True,
            False,
            f"--xla_force_host_platform_device_count=2 --xla_dump_to=/tmp/d {GPU_GRAPHS}",
        ),
        # the user's own command-buffer and determinism settings win, even an empty one
        (
            "--xla_gpu_enable_command_buffer= --xla_gpu_deterministic_ops=false",
            4,
            True,
            True,
            "--xla_force_host_platform_device_count=4 --xla_gpu_enable_command_buffer= "
            "--xla_gpu_deterministic_ops=false",
        ),
        (
            "--xla_dump_to=/tmp/d",
            1,
            False,
            True,
            f"--xla_force_host_platform_device_count=1 --xla_dump_to=/tmp/d {GPU_DET}",
        ),
    ],
)
def test_xla_flags_keep_the_users_flags_and_add_bayescales(
    given, count, graphs, deterministic, expected
):
    assert xla_flags(given, count, graphs, deterministic) == expected


def _run_python(code: str, **env) -> str:
    """``python -c code`` in a fresh process, without the caller's XLA flags or GPU-graph
    setting (``env`` adds to it); its stripped stdout."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "BAYESCALE_G"))}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _flags_in_fresh_process(**env) -> str:
    code = (
        "import os, bayescale._jax as j; j.configure(); import jax; "
        "print(os.environ['XLA_FLAGS']); print(len(jax.devices('cpu')))"
    )
    return _run_python(code, **env)


def test_a_fresh_process_gets_gpu_graphs_and_determinism_unless_turned_off():
    flags, devices = _flags_in_fresh_process(BAYESCALE_HOST_DEVICES="3").split("\n")[:2]
    assert flags == f"--xla_force_host_platform_device_count=3 {GPU_GRAPHS} {GPU_DET}"
    assert devices == "3"  # XLA accepted the flags and split the CPU
    off = _flags_in_fresh_process(BAYESCALE_HOST_DEVICES="3", BAYESCALE_GPU_GRAPHS="0")
    assert off.split("\n")[0] == f"--xla_force_host_platform_device_count=3 {GPU_DET}"
    off = _flags_in_fresh_process(
        BAYESCALE_HOST_DEVICES="3", BAYESCALE_GPU_GRAPHS="0", BAYESCALE_GPU_DETERMINISTIC="0"
    )
    assert off.split("\n")[0] == "--xla_force_host_platform_device_count=3"


def test_importing_numpyro_later_does_not_change_the_trace_context():
    # numpyro's import adds trace-context states (pallas, through jax.extend); using
    # bayescale's API must register them already, or every function jitted before numpyro's
    # lazy import would be traced again after it. (``import bayescale`` alone imports no
    # jax, so that the command line starts in ~0.1 s.)
    code = (
        "import bayescale, numpy as np, jax, jax.numpy as jnp; bayescale.read_runs; "
        "from jax._src import config as c; "
        "before = list(c.trace_context_names()); "
        "f = jax.jit(lambda x: 2 * x); f(jnp.ones(2)); "
        "import numpyro.infer; f(jnp.ones(2)); "
        "print([n for n in c.trace_context_names() if n not in before], f._cache_size())"
    )
    assert _run_python(code) == "[] 1"


@pytest.mark.slow
def test_numpyro_is_imported_outside_any_trace(tmp_path):
    # imported lazily, numpyro must still load before the first trace starts: a module-level
    # jax.numpy constant created inside a trace would be a tracer kept in a global (leaked)
    code = (
        "import sys\n"
        "from jax._src import core\n"
        "seen = []\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'numpyro' and not seen:\n"
        "            seen.append(core.trace_state_clean())\n"
        "        return None\n"
        "sys.meta_path.insert(0, Watch())\n"
        "import bayescale as bs\n"
        "runs = bs.read_runs(bs.simulate_ladder(seed=0), params='params', tokens='tokens', "
        "loss='loss')\n"
        "bs.fit(runs, 'chinchilla', seed=3, sampler=bs.SamplerOptions(progress=False, chains=2, warmup=150, draws=100))\n"
        "print(seen)\n"
    )
    out = _run_python(code, BAYESCALE_CACHE_DIR=str(tmp_path), BAYESCALE_NO_PROGRESS="1")
    assert out.splitlines()[-1] == "[True]"


@pytest.mark.slow
def test_a_process_with_stored_programs_never_imports_numpyro(tmp_path):
    # the first process traces the model (and imports numpyro); the second loads the
    # stored programs and draws the same, without numpyro's ~0.6 s import
    code = (
        "import sys, numpy as np, bayescale as bs; "
        "runs = bs.read_runs(bs.simulate_ladder(seed=0), params='params', "
        "tokens='tokens', loss='loss'); "
        "f = bs.fit(runs, 'chinchilla', seed=3, sampler=bs.SamplerOptions(progress=False, "
        "chains=2, warmup=150, draws=100)); "
        "print('numpyro' in sys.modules, float(np.mean(f.samples['E'])))"
    )
    env = {"BAYESCALE_CACHE_DIR": str(tmp_path), "BAYESCALE_NO_PROGRESS": "1"}
    first = _run_python(code, **env).splitlines()[-1].split()
    second = _run_python(code, **env).splitlines()[-1].split()
    assert first[0] == "True"
    assert second == ["False", first[1]]


def test_importing_bayescale_imports_no_jax_but_jax_then_runs_in_float64():
    code = (
        "import sys, bayescale; print('jax' in sys.modules, 'pandas' in sys.modules); "
        "import jax.numpy as jnp; print(jnp.ones(1).dtype); "
        "bayescale.Fit; print('jax' in sys.modules)"
    )
    assert _run_python(code).split("\n") == ["False False", "float64", "True"]


def test_bs_fit_is_the_function_whichever_import_comes_first():
    code = (
        "import bayescale as bs; from bayescale.inference.fitting import fit; import bayescale.cli; "
        "print(bs.fit is fit, bs.read_runs.__module__)"
    )
    assert _run_python(code) == "True bayescale.data.runs"
