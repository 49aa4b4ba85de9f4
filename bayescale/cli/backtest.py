"""``bayescale backtest RUNS.csv``: fit the small runs, predict the large ones, score the intervals.

Example:
    $ bayescale backtest runs.csv --params N --tokens D --loss loss --holdout 'compute>=1e20'
    $ bayescale backtest porian.csv --params N_params --tokens D_tokens --loss loss \\
          --rolling 2 --by flop_budget --json --plot backtest.png

With ``--json`` it prints one object: ``{"summary": {...}, "folds": [...], "runs": [...],
"settings": {...}}`` (keys in ``docs/backtest.md``).
"""

from __future__ import annotations

from .app import CliError, _add_input, _add_json, _add_scatter_growth, _emit, _pairs
from .calibrate import _positive_int

__all__ = ["cmd_backtest", "register"]


def cmd_backtest(args) -> int:
    from pathlib import Path

    from ..trust.backtesting import backtest

    if args.holdout is None and args.rolling is None:
        raise CliError("give --holdout 'COLUMN OP VALUE' (e.g. 'compute>=6.4e18') or --rolling K")
    if args.plot and Path(args.plot).exists() and not args.force:
        raise CliError(f"output {args.plot!r} exists; pass --force to overwrite it")
    result = backtest(
        args.runs,
        args.law,
        holdout=args.holdout,
        fit_set=args.fit_set,
        rolling=args.rolling,
        by=args.by,
        first=args.first,
        params=args.params,
        tokens=args.tokens,
        compute=args.compute,
        loss=args.loss,
        group=args.group,
        sweep=args.sweep,
        inputs=_pairs(args.input, "--input"),
        baseline=not args.no_baseline,
        chains=args.chains,
        draws=args.draws,
        warmup=args.warmup,
        seed=args.seed,
        progress=False,
        **({"likelihood": args.likelihood} if args.likelihood else {}),
        **({"pooling": args.pooling} if args.pooling else {}),
        scatter_growth=args.scatter_growth,
    )
    payload = result.to_dict()
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        figure = result.plot()
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.plot)
        payload["plot"] = str(args.plot)
    _emit(args, payload, result.to_text() + (f"\n\nfigure: {args.plot}" if args.plot else ""))
    return 0


def register(subparsers) -> None:
    """Add ``backtest`` to the ``bayescale`` command line."""
    p = subparsers.add_parser(
        "backtest", help="fit the runs below a cutoff, predict those above it, score the intervals"
    )
    p.add_argument("runs", help="CSV with one row per training run")
    p.add_argument("--law", default="chinchilla", help="law or model spec")
    p.add_argument("--params", help="column with model sizes N")
    p.add_argument("--tokens", help="column with training tokens D")
    p.add_argument("--compute", help="column with training FLOPs C")
    p.add_argument("--loss", required=True, help="column with the final loss")
    p.add_argument("--group", help="column with arms (architecture, data mix, recipe)")
    p.add_argument("--sweep", help="column identifying a sweep/budget (shared deviation)")
    _add_input(p)
    p.add_argument(
        "--holdout",
        metavar="RULE",
        help="runs to predict: COLUMN OP VALUE, e.g. 'compute>=6.4e18', 'params>=1e9', "
        "'isoflop_group==max' (COLUMN: params, tokens, compute, loss, group, sweep or any "
        "column of the CSV)",
    )
    p.add_argument(
        "--fit-set",
        metavar="RULE",
        help="runs to fit (default: every run not held out), e.g. 'flop_budget<=1.6e18'",
    )
    p.add_argument(
        "--rolling",
        type=_positive_int,
        metavar="K",
        help="rolling origin: fit every level up to one, predict the next K levels",
    )
    p.add_argument(
        "--by", help="with --rolling: the column whose levels roll (default: sweep, else compute)"
    )
    p.add_argument(
        "--first", type=_positive_int, default=3, help="with --rolling: fewest levels fitted (3)"
    )
    p.add_argument("--likelihood", choices=("student_t", "normal"))
    p.add_argument("--pooling", choices=("none", "shared", "partial"))
    _add_scatter_growth(p)
    p.add_argument("--no-baseline", action="store_true", help="skip the point-fit baseline")
    p.add_argument("--chains", type=_positive_int, default=4)
    p.add_argument("--draws", type=_positive_int, default=1000)
    p.add_argument("--warmup", type=_positive_int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="FILE", help="write the figure (PNG, PDF, SVG)")
    p.add_argument("--force", action="store_true", help="overwrite --plot if it exists")
    _add_json(p)
    p.set_defaults(func=cmd_backtest)
