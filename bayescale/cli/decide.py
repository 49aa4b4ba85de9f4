"""``bayescale decide``, ``crossover`` and ``next``: decisions between arms on the command line.

A thin shell over :mod:`bayescale.decide`. Each command prints a readable table, or with
``--json`` exactly one JSON object (keys in DESIGN.md). A fit that fails the decision gate
(R-hat > 1.01 or divergent transitions) still gets its answer, with ``warning: ...`` on
stderr and a ``"warning"`` key in the JSON.

Example:
    >>> from bayescale.cli import main
    >>> main(["decide", "fit.nc", "--compute", "1e22", "--json"])   # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import math

from .app import CliError, _add_at, _add_json, _emit, _load, _pairs, _positive_float, _prob

__all__ = ["register"]


def _target(args, params: str = "params", tokens: str = "tokens", compute: str = "compute"):
    """(params, tokens, compute) from the flags, with one-line errors for bad mixes."""
    n, d, c = getattr(args, params), getattr(args, tokens), getattr(args, compute)
    flag_c = "--" + compute.replace("_", "-")
    if c is not None and n is not None and d is not None:
        raise CliError(f"give either --params N --tokens D or {flag_c} C, not both")
    if c is None and (n is None) != (d is None):
        missing = "--tokens" if d is None else "--params"
        raise CliError(
            f"--params and --tokens go together: {missing} is missing (or give {flag_c} C)"
        )
    if c is None and n is None:
        raise CliError(f"give a target: --params N --tokens D, or {flag_c} C")
    return n, d, c


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def _warning_text(payload: dict) -> str:
    return f"\nWARNING: {payload['warning']}" if payload.get("warning") else ""


# --------------------------------------------------------------------------- decide


def cmd_decide(args) -> int:
    from ..decide.decision import compare

    params, tokens, compute = _target(args)  # flags first: no fit is loaded for a typo
    fit = _load(args.fit)
    result = compare(
        fit,
        params=params,
        tokens=tokens,
        compute=compute,
        arms=args.arms,
        metric=args.metric,
        noise=args.noise,
        margin=args.margin,
        prob=args.prob,
        seed=args.seed,
        at=_pairs(args.at, "--at"),
    )
    payload = result.to_dict()
    frame = result.to_frame()
    question = (
        "will one new run of each arm beat the others (run noise included)"
        if args.noise
        else "which arm's law is better (parameter uncertainty only; --noise for one new run)"
    )
    lines = [
        f"{args.metric} at {_describe(payload['target'])}: {question}",
        f"draws {'paired (one joint posterior)' if result.paired else 'unpaired (random pairing)'}",
        "",
        frame.to_string(float_format=lambda v: f"{v:.4g}"),
        "",
        f"recommended: {result.recommended} (smallest expected {args.metric} = smallest "
        f"expected regret); EVPI {result.evpi:.4g} "
        f"(MCSE {_fmt(payload['mcse']['evpi'], 2)})",
    ]
    if "equivalence" in payload:
        eq = payload["equivalence"]
        parts = ", ".join(f"{a}: {p:.3f}" for a, p in eq["p_equivalent"].items())
        lines.append(f"P(|difference| < {eq['margin']:g}) versus {eq['versus']}: {parts}")
    _emit(args, payload, "\n".join(lines) + _warning_text(payload))
    return 0


def _describe(target: dict) -> str:
    if target.get("params") is None and target.get("tokens") is None:
        return f"C = {target['compute']:.3g} FLOPs (each arm at its compute-optimal N, D)"
    return ", ".join(f"{k} = {v:.3g}" for k, v in target.items() if v is not None)


# --------------------------------------------------------------------------- crossover


def cmd_crossover(args) -> int:
    from ..decide.decision import crossover

    lo, hi = args.compute_range
    if not lo < hi:
        raise CliError(f"--compute-range LO HI needs LO < HI but got LO={lo:g}, HI={hi:g}")
    if args.arms[0] == args.arms[1]:
        raise CliError(f"crossover needs two different arms but got {args.arms[0]!r} twice")
    at = _pairs(args.at, "--at")
    fit = _load(args.fit)
    result = crossover(
        fit,
        args.arms[0],
        args.arms[1],
        (lo, hi),
        grid=args.grid,
        prob=args.prob,
        seed=args.seed,
        at=at,
    )
    payload = result.to_dict()
    if at:
        payload["at"] = {k: float(v) for k, v in at.items()}
    a, b = payload["arms"]
    lines = [
        f"{a} vs {b} along their compute-optimal frontiers, C in [{lo:.3g}, {hi:.3g}]"
        f" (smallest observed run: {_fmt(payload['observed_min_compute'], 3)})",
        f"  P(crossed already, between the smallest run and {lo:.3g}) = {payload['p_already']:.3f}",
        f"  P(crosses once in range)                          = {payload['p_in_range']:.3f}",
        f"  P(never crosses)                                  = {payload['p_never']:.3f}",
        f"  P(crosses several times)                          = {payload['p_multiple']:.3f}",
    ]
    if payload["median"] is None:
        lines.append("  no draw crosses in range: no crossing interval")
    else:
        lines.append(
            f"  if it crosses in range: median {payload['median']:.3g} FLOPs, "
            f"{100 * args.prob:g}% interval [{payload['lower']:.3g}, {payload['upper']:.3g}]"
        )
    lines.append(
        f"  P({a} better) at {lo:.3g}: {payload['winner_at_lo'][a]:.3f}; "
        f"at {hi:.3g}: {payload['winner_at_hi'][a]:.3f}"
    )
    _emit(args, payload, "\n".join(lines) + _warning_text(payload))
    return 0


# --------------------------------------------------------------------------- next


def cmd_next(args) -> int:
    from ..decide.decision import next_experiment, read_candidates

    params, tokens, compute = _target(args, compute="target_compute")
    at = _pairs(args.at, "--at")
    if args.candidates is not None:
        read_candidates(args.candidates)  # its errors before a fit is loaded
    fit = _load(args.fit)
    result = next_experiment(
        fit,
        args.candidates,
        params=params,
        tokens=tokens,
        compute=compute,
        arms=args.arms,
        metric=args.metric,
        simulations=args.simulations,
        replicates=args.replicates,
        seed=args.seed,
        at=at,
    )
    payload = result.to_dict()
    from ..laws.base import INPUTS  # here, not at import: --help and --version stay light

    named = [k for k in result.candidates.columns if k in set(fit.law.inputs) - set(INPUTS)]
    columns = ["params", "tokens", *named, "group", "cost", "evsi", "evsi_per_flop"]
    table = result.candidates[[*columns, "pareto_k", "reliable"]]
    lines = [
        f"decision at {_describe(payload['target'])}: now {result.recommended}, "
        f"EVPI {result.evpi:.4g} ({args.metric})",
        "candidate runs ranked by EVSI per FLOP (reliable: Pareto k <= 0.7):",
        table.to_string(float_format=lambda v: f"{v:.3g}"),
    ]
    _emit(args, payload, "\n".join(lines) + _warning_text(payload))
    return 0


# --------------------------------------------------------------------------- parsers


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="seed of noise draws and random pairing")
    _add_json(p)


def register(subparsers) -> None:
    """Add ``decide``, ``crossover`` and ``next`` to the ``bayescale`` command line."""
    p = subparsers.add_parser(
        "decide",
        help="which arm wins at a target: P(best), expected regret, EVPI",
        description=(
            "Compare the arms (groups) of a grouped fit at a target run (--params N --tokens "
            "D) or a compute budget (--compute C, each arm at its compute-optimal allocation). "
            "Default --no-noise: the arms' laws, parameter uncertainty only ('which law is "
            "better'); --noise: one new run per arm, run-to-run noise included ('will our "
            "single big run of A beat B?')."
        ),
    )
    p.add_argument("fit", help="FIT.nc written by bayescale fit (grouped: one group per arm)")
    p.add_argument("--params", type=_positive_float, help="model size N of the target run")
    p.add_argument("--tokens", type=_positive_float, help="training tokens D of the target run")
    p.add_argument(
        "--compute", type=_positive_float, help="FLOP budget, each arm at its compute-optimal N, D"
    )
    p.add_argument("--metric", choices=("loss", "downstream"), default="loss")
    p.add_argument("--arms", nargs="+", metavar="ARM", help="compare only these arms")
    p.add_argument(
        "--margin",
        type=_positive_float,
        help="practical-equivalence margin: adds P(|L_arm - L_recommended| < margin)",
    )
    p.add_argument(
        "--noise",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="include run-to-run noise (one new run per arm); default: --no-noise (the laws)",
    )
    p.add_argument("--prob", type=_prob, default=0.95, help="interval probability (default 0.95)")
    _add_at(p)
    _add_common(p)
    p.set_defaults(func=cmd_decide)

    p = subparsers.add_parser(
        "crossover",
        help="where arm A's compute-optimal frontier crosses arm B's, and how sure",
    )
    p.add_argument("fit", help="FIT.nc of a grouped fit")
    p.add_argument("--arms", nargs=2, metavar=("A", "B"), required=True)
    p.add_argument(
        "--compute-range",
        nargs=2,
        type=_positive_float,
        metavar=("LO", "HI"),
        required=True,
        help="FLOP range to look for the crossing in",
    )
    p.add_argument("--grid", type=int, default=300, help="log-grid points (default 300)")
    p.add_argument("--prob", type=_prob, default=0.95, help="interval probability (default 0.95)")
    _add_at(p)
    _add_common(p)
    p.set_defaults(func=cmd_crossover)

    p = subparsers.add_parser(
        "next",
        help="which small run is worth most before committing (EVSI per FLOP)",
    )
    p.add_argument("fit", help="FIT.nc of a grouped fit")
    p.add_argument(
        "--target-compute",
        type=_positive_float,
        help="FLOP budget of the decision (each arm at its compute-optimal N, D)",
    )
    p.add_argument("--params", type=_positive_float, help="or: model size N of the target run")
    p.add_argument("--tokens", type=_positive_float, help="and training tokens D")
    p.add_argument(
        "--candidates",
        help="CSV with columns params, tokens[, group] (empty group: every arm) and any "
        "named input of the law (E, U; else the --at value)",
    )
    p.add_argument("--metric", choices=("loss", "downstream"), default="loss")
    p.add_argument("--arms", nargs="+", metavar="ARM", help="decide between these arms only")
    p.add_argument(
        "--simulations", type=int, default=200, help="simulated outcomes per candidate (>= 20)"
    )
    p.add_argument(
        "--replicates",
        type=int,
        default=0,
        help="also rank a new seed of the K largest runs already trained per arm (default 0)",
    )
    _add_at(p)
    _add_common(p)
    p.set_defaults(func=cmd_next)
