"""``bayescale allocate``: the compute-optimal split of a FLOP budget, with intervals.

A thin shell over :func:`bayescale.allocate.compute_optimal`. With ``--json`` it prints one
object: the contract keys ``params``, ``tokens``, ``tokens_per_param`` and ``loss`` (each
``{"median", "lower", "upper"}``), plus ``compute``, ``prob``, ``group``, ``method``,
``flops``, ``exponents`` (``a`` and ``b`` of N_opt ~ C^a, D_opt ~ C^b) and ``diagnostics``;
``warning`` is added when the fit's sampler diagnostics are not ok.

Example:
    >>> from bayescale.cli import main
    >>> main(["allocate", "fit.nc", "--compute", "1e24", "--json"])   # doctest: +SKIP
    0
"""

from __future__ import annotations

import sys

from .app import _add_at, _add_json, _emit, _load, _pairs, _positive_float, _prob

__all__ = ["allocate_payload", "register"]


def allocate_payload(
    fit, compute: float, group=None, prob: float = 0.95, flops_per_token=None, at=None
):
    """The ``allocate --json`` object for one budget (also used by reports).

    With named inputs ``at`` (``{"U": 5e9}``) it adds ``at``, ``epochs``, ``loss_cost`` and
    ``unlimited`` (see :class:`bayescale.allocate.constrained.ConstrainedAllocation`) and has no
    ``exponents``.

    Example:
        >>> allocate_payload(fit, 1e24)["params"]["median"]     # doctest: +SKIP
    """
    from ..allocate.optimal import compute_optimal, scaling_exponents

    alloc = compute_optimal(fit, compute, group=group, flops_per_token=flops_per_token, at=at)
    payload = alloc.to_dict(prob)
    payload.update(
        compute=float(compute),
        prob=float(prob),
        group=None if group is None else str(group),
        method=alloc.method,
        flops=alloc.flops,
        diagnostics={**fit.diagnostics.to_dict(), "verdict": fit.diagnostics.verdict()},
    )
    if "at" not in payload:
        exps = scaling_exponents(fit, compute, group=group, flops_per_token=flops_per_token)
        payload["exponents"] = {
            "a": _three(exps.interval("a", prob)),
            "b": _three(exps.interval("b", prob)),
            "method": exps.method,
        }
    if not fit.diagnostics.ok:
        payload["warning"] = (
            f"fit diagnostics not ok, do not trust this allocation: {fit.diagnostics.verdict()}"
        )
    return payload


def _three(stats: dict) -> dict:
    return {k: stats[k] for k in ("median", "lower", "upper")}


def _text(payload: dict) -> str:
    pct = f"{100 * payload['prob']:g}%"
    lines = [
        f"compute-optimal allocation of C = {payload['compute']:.3g} FLOPs ({payload['flops']}"
        + (f", group {payload['group']}" if payload["group"] else "")
        + "".join(f", {k} = {v:.3g}" for k, v in payload.get("at", {}).items())
        + f", {payload['method'].replace('_', ' ')}): median [{pct} interval]",
    ]
    for name, label in (
        ("params", "params N"),
        ("tokens", "tokens D"),
        ("tokens_per_param", "tokens per param D/N"),
        ("loss", "loss (the law, no run noise)"),
    ):
        s = payload[name]
        lines.append(f"  {label:<30} {s['median']:.4g}  [{s['lower']:.4g}, {s['upper']:.4g}]")
    if "epochs" in payload:
        s = payload["epochs"]
        lines.append(
            f"  {'epochs D/U':<30} {s['median']:.4g}  [{s['lower']:.4g}, {s['upper']:.4g}]"
        )
        for name, label in (("params", "N, unlimited data"), ("loss", "loss, unlimited data")):
            s = payload["unlimited"][name]
            lines.append(f"  {label:<30} {s['median']:.4g}  [{s['lower']:.4g}, {s['upper']:.4g}]")
        s = payload["loss_cost"]
        lines.append(
            f"  {'loss the constraint costs':<30} {s['median']:.4g}  [{s['lower']:.4g}, {s['upper']:.4g}]"
        )
    for name in ("a", "b") if "exponents" in payload else ():
        s = payload["exponents"][name]
        what = "N_opt ~ C^a" if name == "a" else "D_opt ~ C^b"
        lines.append(f"  {what:<30} {s['median']:.4g}  [{s['lower']:.4g}, {s['upper']:.4g}]")
    if payload.get("warning"):
        lines.append(f"WARNING: {payload['warning']}")
    return "\n".join(lines)


def cmd_allocate(args) -> int:
    fit = _load(args.fit)
    payload = allocate_payload(
        fit,
        args.compute,
        args.group,
        args.prob,
        flops_per_token=args.flops_per_token,
        at=_pairs(args.at, "--at"),
    )
    if payload.get("warning"):
        print(f"warning: {payload['warning']}", file=sys.stderr)
    _emit(args, payload, _text(payload))
    return 0


def register(subparsers) -> None:
    """Add ``allocate`` to the ``bayescale`` command line."""
    p = subparsers.add_parser(
        "allocate", help="compute-optimal N, D, D/N and loss at a FLOP budget, with intervals"
    )
    p.add_argument("fit", help="FIT.nc written by bayescale fit")
    p.add_argument(
        "--compute", "--budget", type=_positive_float, required=True, help="budget C in FLOPs"
    )
    _add_at(p)
    p.add_argument("--group", help="arm of a grouped fit")
    p.add_argument("--prob", type=_prob, default=0.95, help="interval probability (0.95)")
    p.add_argument(
        "--flops-per-token",
        type=_positive_float,
        default=None,
        help="k in C = k*N*D (default: the fit's, 6)",
    )
    _add_json(p)
    p.set_defaults(func=cmd_allocate)
