"""``bayescale report FIT.nc --out DIR``: Markdown + figures + LaTeX table for an appendix.

With ``--json`` it prints one object listing the files written::

    {"out": DIR, "report": "DIR/report.md", "table": "DIR/table.tex",
     "figures": [...], "files": [...], "diagnostics_ok": true}
"""

from __future__ import annotations

import math

from .app import CliError, _add_at, _add_json, _emit, _load, _pairs, _prob

__all__ = ["cmd_report", "parse_target", "register"]


def parse_target(text: str) -> dict:
    """``PARAMS,TOKENS`` (``70e9,1.4e12``) or a lone ``COMPUTE`` (compute-only laws).

    Example:
        >>> parse_target("70e9,1.4e12")
        {'params': 70000000000.0, 'tokens': 1400000000000.0}
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(math.isfinite(v) and v > 0 for v in values):
        raise CliError(
            f"--target expects PARAMS,TOKENS (e.g. 70e9,1.4e12) or COMPUTE, positive numbers, "
            f"but got {text!r}"
        )
    if len(values) == 1:
        return {"compute": values[0]}
    return {"params": values[0], "tokens": values[1]}


def cmd_report(args) -> int:
    from ..report.document import report_command, write_report

    targets = [parse_target(t) for t in args.target or []]
    result = _load(args.fit)
    if "params" in result.law.inputs or "tokens" in result.law.inputs:
        for text, target in zip(args.target or [], targets, strict=True):
            if "compute" in target:
                raise CliError(
                    f"law {result.law.name!r} needs --target PARAMS,TOKENS (e.g. 70e9,1.4e12) "
                    f"but got {text!r}"
                )
    argv = ["report", args.fit, "--out", args.out]
    for t in args.target or []:
        argv += ["--target", t]
    if args.prob != 0.95:
        argv += ["--prob", f"{args.prob:g}"]
    if args.no_backtest:
        argv += ["--no-backtest"]
    for name, value in args.at or []:
        argv += ["--at", f"{name}={value:g}"]
    files = write_report(
        result,
        args.out,
        targets=targets or None,
        prob=args.prob,
        command=report_command(argv),
        force=args.force,
        backtest=not args.no_backtest,
        at=_pairs(args.at, "--at"),
    )
    verdict = "ok" if files["diagnostics_ok"] else "NOT OK: " + result.diagnostics.verdict()
    text = (
        f"wrote {files['report']}, {files['table']} and {len(files['figures'])} figure files "
        f"under {args.out}/figures (diagnostics {verdict})"
    )
    _emit(args, files, text)
    return 0


def register(subparsers) -> None:
    """Add ``report`` to the ``bayescale`` command line."""
    p = subparsers.add_parser(
        "report", help="Markdown report, figures (PNG + PDF) and LaTeX table of a fit"
    )
    p.add_argument("fit", help="fit file written by 'bayescale fit --out'")
    p.add_argument("--out", required=True, help="folder to write report.md, table.tex, figures/")
    p.add_argument(
        "--target",
        action="append",
        metavar="PARAMS,TOKENS",
        help="predict (and compare arms, allocate compute) at this size; repeatable",
    )
    p.add_argument("--prob", type=_prob, default=0.95, help="interval probability (default 0.95)")
    p.add_argument("--force", action="store_true", help="overwrite an existing report in --out")
    p.add_argument(
        "--no-backtest",
        action="store_true",
        help="leave out the backtest of the fit's own ladder (one more fit)",
    )
    _add_at(p)
    _add_json(p)
    p.set_defaults(func=cmd_report)
