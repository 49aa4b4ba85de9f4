"""Run the real-data backtest corpus with bayescale's defaults and print one row per study.

    .venv/bin/python bench/backtest.py                  # the whole corpus (make backtest)
    .venv/bin/python bench/backtest.py --studies epoch porian/   # a subset (name or prefix)
    .venv/bin/python bench/backtest.py --json out.json  # also write every number
    .venv/bin/python bench/backtest.py --no-scatter-growth   # every fit without it

The data folder is $BAYESCALE_DATA or ../shared/data. See bayescale/trust/corpus.py for the
studies and docs/backtest.md for how to read the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("BAYESCALE_NO_PROGRESS", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", nargs="*", help="study names or prefixes (default: all)")
    parser.add_argument("--json", help="write the table, pooled scores and every run here")
    parser.add_argument("--no-baseline", action="store_true", help="skip the point-fit baseline")
    from bayescale.cli.app import _add_scatter_growth

    _add_scatter_growth(parser)  # every study with, or without, the growth term
    args = parser.parse_args(argv)

    from bayescale.trust.corpus import format_table, pooled, run_corpus

    started = time.perf_counter()
    table = run_corpus(
        names=args.studies or None,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        baseline=not args.no_baseline,
        scatter_growth=args.scatter_growth,
    )
    summary = pooled(table)
    print(format_table(table, summary))
    print(f"\n{len(table)} studies in {time.perf_counter() - started:.0f} s")
    if args.json:
        payload = {
            "pooled": summary,
            "studies": json.loads(table.drop(columns=[], errors="ignore").to_json(orient="index")),
            "backtests": {k: bt.to_dict() for k, bt in table.attrs["backtests"].items()},
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
