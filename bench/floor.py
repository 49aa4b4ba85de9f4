"""How much of a cold fit any HMC kernel must compile: bayescale's fit against a floor kernel.

``bench/run.py`` times a cold fit (fresh process, empty compilation cache) of the Chinchilla
posterior against PyMC and nutpie; on a 2-core machine most of that time is XLA compiling
numpyro's NUTS. This script asks how far a kernel of our own could take it. Each run is a
fresh process with an empty cache, alternating:

* ``bayescale``: ``import bayescale``, load the 245 Chinchilla points and ``bs.fit`` them as
  the bench does (4 chains x (1000 + 362), the draws its cold fit needs for ESS >= 1000);
* ``floor``: the same imports, data and numpyro potential (bayescale's own ``_setup``), then
  the least any HMC sampler of this posterior must compile and run: ONE program, shard_mapped
  over the same 4 host devices, with ONE value-and-gradient site (a leapfrog in a while
  loop, dense metric), a momentum and an accept draw per iteration, a Welford covariance,
  a dual-averaging step and the draw buffer: 1362 iterations of 3, 7 or 15 leapfrog steps
  (numpyro's NUTS used 12.6 on average here). It starts at the prior's feasible point with
  an infinite potential and a zero gradient, so that its first proposal is accepted (no start
  search, no ``init`` program), and has no trajectory
  tree, no U-turn or divergence checks, no adaptation windows and no constrained values: it
  is not a sampler, only a lower bound on what one costs.

It prints the medians of both, phase by phase. The floor's process time is a lower bound on
any cold fit with a compiled HMC kernel on this machine; with ``--peers`` (a JSON file of
``bench/run.py``) it also prints the ratio to nutpie and PyMC that such a fit could reach.

Usage:
    python bench/floor.py                   # 3 runs of each (about 1.5 minutes on 2 cores)
    python bench/floor.py --runs 5 --peers bench/results/latest.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

from common import emit, log, spawn

SPEC = "chinchilla_besiroglu2024"
SETTINGS = {"chains": 4, "warmup": 1000, "draws": 362}


def _imports_and_data(started: float) -> tuple:
    import jax  # noqa: F401

    import bayescale as bs

    t_import = time.perf_counter()
    runs = bs.load_chinchilla()
    return bs, runs, t_import - started


def worker_bayescale(p: dict) -> dict:
    started = time.perf_counter()
    bs, runs, imports = _imports_and_data(started)
    t0 = time.perf_counter()
    fit = bs.fit(runs, SPEC, seed=0, sampler=bs.SamplerOptions(progress=False, **SETTINGS))
    return {
        "imports": imports,
        # the sampler's trace, compiles and sampling (init, advance, finish)
        "kernel": fit.info["seconds"],
        "fit": time.perf_counter() - t0,
        "in_process": time.perf_counter() - started,
        "min_ess_bulk": float(fit.diagnostics.min_ess_bulk),
    }


def worker_floor(p: dict) -> dict:
    started = time.perf_counter()
    _, runs, imports = _imports_and_data(started)
    t0 = time.perf_counter()
    import jax
    import jax.numpy as jnp
    from jax import lax
    from jax.sharding import PartitionSpec as P

    from bayescale.inference import _nuts, _programs, sampler
    from bayescale.inference.fitting import resolve_spec
    from bayescale.inference.sampling import model_arguments
    from bayescale.model import build_model

    model = build_model(resolve_spec(SPEC), runs)
    data = model_arguments(model, runs)
    layout = _programs._layout("parallel", 1, SETTINGS["chains"], sampler._host_devices("parallel"))
    warmup, draws = SETTINGS["warmup"], SETTINGS["draws"]

    def chain(key, data):
        info, _, _ = _nuts._setup(model.model, key, *data)  # imports numpyro, as a fit does
        value_and_grad = jax.value_and_grad(info.potential_fn)
        z0 = info.param_info.z
        dim = z0.size

        def leapfrog(c):
            z, r, g, pe, n, eps, metric = c
            r = r - 0.5 * eps * g
            z = z + eps * (metric @ r)
            pe, g = value_and_grad(z)
            return z, r - 0.5 * eps * g, g, pe, n + 1, eps, metric

        def iteration(i, c):
            z, g, pe, key, mean, m2, log_eps, buffer = c
            key, k_momentum, k_steps, k_accept = jax.random.split(key, 4)
            r = jax.random.normal(k_momentum, (dim,))
            metric = jnp.eye(dim) + m2 / jnp.maximum(i, 1.0)
            steps = 2 ** jax.random.randint(k_steps, (), 2, 5) - 1
            z1, r1, g1, pe1, _, _, _ = lax.while_loop(
                lambda c: c[4] < steps, leapfrog, (z, r, g, pe, 0, jnp.exp(log_eps), metric)
            )
            kinetic = 0.5 * (r @ metric @ r - r1 @ metric @ r1)
            log_ratio = pe - pe1 + kinetic  # NaN (e.g. inf - inf): rejected
            accept = jnp.exp(jnp.minimum(0.0, jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)))
            take = jax.random.uniform(k_accept) < accept
            z, g, pe = (jnp.where(take, a, b) for a, b in ((z1, z), (g1, g), (pe1, pe)))
            delta = z - mean
            mean = mean + delta / (i + 1)
            m2 = m2 + jnp.outer(delta, z - mean)
            log_eps = log_eps - 0.05 / jnp.sqrt(i + 1.0) * (0.95 - accept)
            slot = jnp.maximum(i - warmup, 0)
            return z, g, pe, key, mean, m2, log_eps, buffer.at[slot].set(z)

        # no potential or gradient at the start (that would be a second site): an infinite
        # potential makes the first proposal accepted, and from then on both are real
        start = (z0, jnp.zeros_like(z0), jnp.asarray(jnp.inf), key, jnp.zeros(dim))
        start += (jnp.zeros((dim, dim)), jnp.log(0.1), jnp.zeros((draws, dim)))
        return lax.fori_loop(0, warmup + draws, iteration, start)[-1]

    def device(keys, data):
        return chain(keys[0], data)[None]

    program = jax.jit(
        jax.shard_map(
            device,
            mesh=layout.mesh(),
            in_specs=(P("d"), P()),
            out_specs=P("d"),
            check_vma=False,
        )
    )
    keys = jax.random.split(jax.random.PRNGKey(0), SETTINGS["chains"])
    t_lower = time.perf_counter()
    lowered = program.lower(keys, data)
    t_compile = time.perf_counter()
    compiled = lowered.compile()
    t_run = time.perf_counter()
    out = jax.block_until_ready(compiled(keys, data))
    t_end = time.perf_counter()
    return {
        "imports": imports,
        "kernel": t_end - t0,
        "fit": t_end - t0,
        "in_process": t_end - started,
        "setup_trace_lower": t_compile - t0,
        "lower": t_compile - t_lower,
        "compile": t_run - t_compile,
        "run": t_end - t_run,
        "draws_shape": list(out.shape),  # (chains, draws, unconstrained parameters)
        "finite_draws": bool(jnp.all(jnp.isfinite(out))),
        # the smallest spread of a coordinate over a chain's draws: 0 if a chain never moved
        "min_draw_sd": float(jnp.min(jnp.std(out, axis=1))),
    }


WORKERS = {"bayescale": worker_bayescale, "floor": worker_floor}


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _report(rows: dict[str, list[dict]], peers: dict | None = None, source: str = "") -> str:
    """The table of medians; with ``peers`` (bench/run.py's JSON) the ratios the floor allows."""
    floor = rows["floor"]
    lines = [
        f"medians of {len(floor)} fresh processes with an empty cache (seconds)",
        f"{'':16s}{'process':>9s}{'imports':>9s}{'fit':>8s}{'sampler':>9s}",
    ]
    for name, label in (("bayescale", "bayescale fit"), ("floor", "floor kernel")):
        r = rows[name]
        keys = ("process_wall", "imports", "fit", "kernel")
        wall, imports, fit, kernel = (_median(r, key) for key in keys)
        lines.append(f"{label:16s}{wall:9.2f}{imports:9.2f}{fit:8.2f}{kernel:9.2f}")
    phases = (_median(floor, k) for k in ("setup_trace_lower", "lower", "compile", "run"))
    lines.append(
        "floor kernel: setup+trace+lower {:.2f} (lower {:.2f}), XLA compile {:.2f}, "
        "run {:.2f}".format(*phases)
    )
    lines.append(f"bayescale min bulk ESS {_median(rows['bayescale'], 'min_ess_bulk'):.0f}")
    paired = statistics.median(
        f["process_wall"] / b["process_wall"] for f, b in zip(floor, rows["bayescale"], strict=True)
    )
    lines.append(f"floor / bayescale process time, paired by run: median {paired:.2f}")
    if peers:
        wall = _median(floor, "process_wall")
        pymc = min(peers[k]["time_to_ess"] for k in ("pymc_first", "pymc_second"))
        lines.append(f"at best, against the peers of {source} (started {peers.get('started')}):")
        for label, t in (("nutpie", peers["nutpie"]["time_to_ess"]), ("PyMC, faster run", pymc)):
            lines.append(f"  {label}: {t:.1f} s / floor {wall:.2f} s = {t / wall:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--peers", help="a bench/run.py JSON file: print the floor's ratios")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        emit(WORKERS[args.worker](json.loads(sys.stdin.read() or "{}")))
        return 0
    rows: dict[str, list[dict]] = {"bayescale": [], "floor": []}
    for i in range(args.runs):
        for name in rows:
            with tempfile.TemporaryDirectory(prefix="bayescale-floor-") as cache:
                result = spawn(__file__, [name], {}, env={"BAYESCALE_CACHE_DIR": cache})
            rows[name].append(result)
            log(f"run {i + 1}/{args.runs} {name}: process {result['process_wall']:.2f} s")
    peers = None
    if args.peers:
        with open(args.peers) as fh:
            peers = json.load(fh)
    print(_report(rows, peers, args.peers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
