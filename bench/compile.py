"""XLA compile cost of bayescale's programs, program by program, on this machine.

A cold fit (``bench/run.py``) is mostly XLA compiling three programs, two of them at
once, so its wall time says little about any one of them. This script compiles each
program of the bench's Chinchilla fit (4 chains x (1000 + 362)) again and again in one
process, with the persistent cache off, one at a time, and prints the least and the
median wall and CPU seconds of ``--repeats`` compiles, and how many CPU kernels (fusions)
XLA made. The potential's value-and-gradient alone (one chain, one point) is the last row:
every program holds it, ``init`` vmapped over the start candidates, ``advance`` inside
NUTS's trajectory loop.

CPU seconds are the process's (``time.process_time``), so they add XLA's threads up: on a
shared 2-core machine they vary less than wall time, but still by 10-20% between runs.

Usage:
    python bench/compile.py                 # 5 compiles of each (about a minute)
    python bench/compile.py --repeats 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

SPEC = "chinchilla_besiroglu2024"
SETTINGS = {"chains": 4, "warmup": 1000, "draws": 362}


def _timed(compile_once, repeats: int) -> dict:
    walls, cpus, kernels = [], [], 0
    for r in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        compiled = compile_once(r)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        kernels = compiled.as_text().count(" fusion(")
    return {
        "wall_min": min(walls),
        "wall_median": statistics.median(walls),
        "cpu_min": min(cpus),
        "cpu_median": statistics.median(cpus),
        "kernels": kernels,
    }


def _options(base, r: int) -> dict:
    # JAX keeps compiled programs in memory, keyed on the options: a distinct value of an
    # option that changes nothing (dumping is off) makes every compile a real one
    return {**(base or {}), "xla_dump_max_hlo_modules": 10_000 + r}


def measure(repeats: int) -> dict[str, dict]:
    os.environ["BAYESCALE_CACHE_DIR"] = "off"
    os.environ.setdefault("BAYESCALE_NO_PROGRESS", "1")
    import jax

    import bayescale as bs
    from bayescale.inference import _nuts, _programs
    from bayescale.inference.fitting import resolve_spec
    from bayescale.inference.sampling import model_arguments
    from bayescale.model import build_model

    lowered = {}
    plain_compile = _programs._Program.compile

    def keep(program):
        lowered[program.name] = (program.lowered, program.options)
        plain_compile(program)

    _programs._Program.compile = keep
    try:
        runs = bs.load_chinchilla()
        bs.fit(runs, SPEC, seed=0, sampler=bs.SamplerOptions(progress=False, **SETTINGS))
    finally:
        _programs._Program.compile = plain_compile
    out = {}
    for name in ("init", "advance", "finish"):
        low, base = lowered[name]
        out[name] = _timed(lambda r, low=low, base=base: low.compile(_options(base, r)), repeats)

    model = build_model(resolve_spec(SPEC), runs)
    data = model_arguments(model, runs)
    key = jax.numpy.zeros(2, jax.numpy.uint32)

    def value_and_grad(z, data):
        info, _, _ = _nuts._setup(model.model, key, *data)
        return jax.value_and_grad(info.potential_fn)(z)

    z = jax.eval_shape(lambda: _nuts._setup(model.model, key, *data)[0].param_info.z)
    low = jax.jit(value_and_grad).lower(jax.ShapeDtypeStruct(z.shape, z.dtype), data)
    out["value_and_grad"] = _timed(lambda r: low.compile(_options(None, r)), repeats)
    return out


def table(results: dict[str, dict]) -> str:
    lines = [
        "| program | wall s (min / median) | CPU s (min / median) | kernels |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['wall_min']:.2f} / {r['wall_median']:.2f} "
            f"| {r['cpu_min']:.2f} / {r['cpu_median']:.2f} | {r['kernels']} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="compiles of each program")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    print(table(measure(args.repeats)))


if __name__ == "__main__":
    main()
