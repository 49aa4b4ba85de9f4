"""``bayescale calibrate``: simulation-based calibration from the command line.

Example:
    $ bayescale calibrate --law chinchilla --replicates 100 --seed 0 --json --out sbc/
    $ bayescale calibrate --misspecification beyond --replicates 40 --json
"""

from __future__ import annotations

import argparse

from .app import CliError, _add_json, _emit, _fmt_table

__all__ = ["cmd_calibrate", "register"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer but got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 but got {text!r}")
    return value


def cmd_calibrate(args) -> int:
    """Run SBC (or the misspecification study) and print/write the coverage table."""
    from pathlib import Path

    from ..trust.calibration import calibrate
    from ..trust.misspecified import misspecification

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and any(out.iterdir()) and not args.force:
        raise CliError(f"output folder {str(out)!r} is not empty; pass --force to overwrite it")
    settings = {"chains": args.chains, "draws": args.draws, "warmup": args.warmup}
    if args.misspecification:
        results = misspecification(
            args.replicates,
            seed=args.seed,
            break_at=args.misspecification,
            kind=args.kind,
            runs_per_fit=args.runs_per_fit or 16,
            discrepancy=args.discrepancy,
            **settings,
        )
        payload = {name: r.to_dict() for name, r in results.items()}
        text = "\n\n".join(
            f"{name} (check fired in {r.check_fired}/{r.replicates} fits):\n"
            f"{_fmt_table(r.coverage(), 3)}"
            for name, r in results.items()
        )
        if out is not None:
            for name, r in results.items():
                r.write(out / name, overwrite=args.force)
    else:
        result = calibrate(
            args.law,
            args.replicates,
            runs_per_fit=args.runs_per_fit,
            seed=args.seed,
            progress=args.progress and not args.json,
            **settings,
        )
        payload = result.to_dict()
        band = result.band()
        text = (
            f"SBC of {result.law}: {result.replicates} replicates, {result.rejected} prior "
            f"draws redrawn (loss outside [1e-5, 20]), {result.not_ok} fits with diagnostics "
            f"not ok\n\ncoverage (99% binomial band: "
            + ", ".join(f"{k}: [{band.loc['low', k]:.2f}, {band.loc['high', k]:.2f}]" for k in band)
            + f")\n{_fmt_table(result.table(), 3)}"
        )
        if out is not None:
            result.write(out, overwrite=args.force)
    if out is not None:
        payload["out"] = str(out)
        text += f"\n\nwritten to {out}"
    _emit(args, payload, text)
    return 0


def register(subparsers) -> None:
    """Add ``calibrate`` to the ``bayescale`` command line."""
    p = subparsers.add_parser(
        "calibrate",
        help="simulation-based calibration: coverage of intervals on simulated ladders",
    )
    p.add_argument("--law", default="chinchilla", help="law to calibrate (default chinchilla)")
    p.add_argument("--replicates", type=_positive_int, required=True, help="number of fits")
    p.add_argument(
        "--runs-per-fit", type=_positive_int, help="runs in each simulated ladder (default 20)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chains", type=_positive_int, default=2)
    p.add_argument("--draws", type=_positive_int, default=300)
    p.add_argument("--warmup", type=_positive_int, default=300)
    p.add_argument(
        "--misspecification",
        choices=("inside", "beyond"),
        help="instead of SBC: simulate a broken power law (break inside or just beyond the "
        "ladder) and fit kaplan_c with E; compare with a well-specified control",
    )
    p.add_argument(
        "--kind",
        choices=("flatten", "steepen"),
        default="flatten",
        help="with --misspecification: the slope halves (flatten) or doubles after the break",
    )
    p.add_argument(
        "--discrepancy",
        action="store_true",
        help="with --misspecification: fit the discrepancy term",
    )
    p.add_argument("--out", help="folder for calibration.json, ranks.csv, coverage.csv, ranks.png")
    p.add_argument("--force", action="store_true", help="overwrite files in --out")
    p.add_argument("--progress", action="store_true", help="one line per replicate")
    _add_json(p)
    p.set_defaults(func=cmd_calibrate)
