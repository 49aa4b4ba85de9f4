"""The ``bayescale`` command line: a thin shell over the Python API.

Every command accepts ``--json`` and then prints exactly one JSON object on stdout. Bad
input exits with status 2 and one line ``error: ...`` on stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence

from .._util import short_repr

__all__ = ["main", "run"]

EXIT_BAD_INPUT = 2
#: Ctrl-C (SIGINT), as a shell reports a process it interrupted: 128 + 2
EXIT_INTERRUPTED = 130


class CliError(ValueError):
    """Bad command-line input."""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number but got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number but got {text!r}")
    return value


def _prob(text: str) -> float:
    from .._util import check_prob

    try:
        return check_prob(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's own code too)
        if len(message) > 300:  # it quotes the offending value, which may be a megabyte
            message = f"{message[:300]}... ({len(message)} characters)"
        raise CliError(f"{self.prog}: {message}")


def _named_input(text: str) -> tuple[str, str]:
    """``NAME=COLUMN`` of ``fit --input``."""
    name, sep, column = text.partition("=")
    if not sep or not name.strip() or not column.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=COLUMN but got {text!r}")
    return name.strip(), column.strip()


def _input_value(text: str) -> tuple[str, float]:
    """``NAME=VALUE`` of ``--at``: a named input of the target run."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE but got {text!r}")
    try:
        return name.strip(), _positive_float(value.strip())
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"--at {name.strip()}: {exc}") from None


def _add_input(p) -> None:
    """``--input NAME=COLUMN`` (repeatable), for the commands that read a runs table."""
    p.add_argument(
        "--input",
        action="append",
        type=_named_input,
        metavar="NAME=COLUMN",
        help="a named input the law reads, e.g. --input U=unique_tokens (repeatable)",
    )


def _pairs(items, flag: str) -> dict | None:
    """Repeated ``--input``/``--at`` pairs as a dict; a name given twice is an error."""
    if not items:
        return None
    out: dict = {}
    for name, value in items:
        if name in out:
            raise CliError(f"{flag} {name} is given twice")
        out[name] = value
    return out


def _add_at(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--at",
        action="append",
        type=_input_value,
        metavar="NAME=VALUE",
        help="a named input of the target, e.g. --at U=5e9 (repeatable)",
    )


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")


def _add_target(p: argparse.ArgumentParser, compute: bool = True) -> None:
    p.add_argument("--params", type=_positive_float, help="model size N of the target run")
    p.add_argument("--tokens", type=_positive_float, help="training tokens D of the target run")
    if compute:
        p.add_argument("--compute", type=_positive_float, help="training FLOPs C (D = C/6N)")
    p.add_argument("--prob", type=_prob, default=0.95, help="interval probability (default 0.95)")
    _add_at(p)


def _emit(args, payload: dict, text: str) -> None:
    if args.json:
        print(json.dumps(payload, allow_nan=False, default=_json_default))
    else:
        print(text)


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _load(path: str):
    from ..posterior.core import load_fit

    return load_fit(path)


def _fmt_table(frame, digits: int = 4) -> str:
    return frame.to_string(float_format=lambda v: f"{v:.{digits}g}")


# --------------------------------------------------------------------------- commands


def cmd_demo(args) -> int:
    from .demo import run_demo

    payload, text = run_demo(
        draws=args.draws,
        warmup=args.warmup,
        chains=args.chains,
        seed=args.seed,
        # None: the bar unless CI or BAYESCALE_NO_PROGRESS is set, as for every fit
        progress=False if (args.no_progress or args.json) else None,
    )
    _emit(args, payload, text)
    return 0


def cmd_fit(args) -> int:
    from pathlib import Path

    from ..inference.fitting import fit
    from ..settings import SamplerOptions

    out = Path(args.out)
    if out.exists() and not args.force:
        raise CliError(f"output {str(out)!r} exists; pass --force to overwrite it")
    warm_start = _load(args.warm_start) if args.warm_start else None
    result = fit(
        args.runs,
        args.law,
        params=args.params,
        tokens=args.tokens,
        compute=args.compute,
        loss=args.loss,
        group=args.group,
        downstream=args.downstream,
        sweep=args.sweep,
        inputs=_pairs(args.input, "--input"),
        likelihood=args.likelihood,
        pooling=args.pooling,
        seed=args.seed,
        sampler=SamplerOptions(
            chains=args.chains,
            draws=args.draws,
            warmup=args.warmup,
            device=args.device,
            progress=False if (args.no_progress or args.json) else None,
            target_accept=args.target_accept,
            extend=args.extend,
        ),
        priors=_parse_priors(args.prior),
        warm_start=warm_start,
        drift=not args.no_drift,
        scatter_growth=args.scatter_growth,  # None: bayescale's choice
        command="bayescale " + " ".join(sys.argv[1:]) if sys.argv else None,
    )
    result.to_netcdf(out, overwrite=args.force)
    payload = result.to_dict()
    payload["out"] = str(out)
    text = f"{result!r}\n\n{_fmt_table(result.summary())}\n\nwritten to {out}"
    _emit(args, payload, text)
    return 0


def _parse_priors(items: Sequence[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CliError(f"--prior expects NAME=Family(...), got {short_repr(item)}")
        if name.strip() in out:  # the last one would win silently
            raise CliError(f"--prior {name.strip()!r} is given twice")
        out[name.strip()] = value.strip()
    return out


def cmd_summary(args) -> int:
    result = _load(args.fit)
    payload = result.to_dict(prob=args.prob)
    text = f"{result!r}\n\n{_fmt_table(result.summary(prob=args.prob))}"
    _emit(args, payload, text)
    return 0


def cmd_predict(args) -> int:
    result = _load(args.fit)
    prediction = result.predict(
        params=args.params,
        tokens=args.tokens,
        compute=args.compute,
        group=args.group,
        metric=args.metric,
        noise=not args.no_noise,
        prob=args.prob,
        seed=args.seed,
        at=_pairs(args.at, "--at"),
    )
    payload = prediction.to_dict()
    text = (
        f"{args.metric} of {'a new run' if not args.no_noise else 'the law (no run noise)'}: "
        f"median {payload['median']:.4f}, mean {payload['mean']:.4f}, "
        f"{100 * args.prob:g}% interval [{payload['lower']:.4f}, {payload['upper']:.4f}]"
    )
    _emit(args, payload, text)
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bayescale", description="Bayesian inference of neural scaling laws")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("demo", help="simulate a ladder from Hoffmann's law, fit, print a summary")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    _add_json(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("fit", help="fit a scaling law to a runs CSV and write FIT.nc")
    p.add_argument("runs", help="CSV with one row per training run")
    p.add_argument("--law", default="chinchilla", help="law or model spec (see --list)")
    p.add_argument("--params", help="column with model sizes N")
    p.add_argument("--tokens", help="column with training tokens D")
    p.add_argument("--compute", help="column with training FLOPs C")
    p.add_argument("--loss", required=True, help="column with the final loss")
    p.add_argument("--group", help="column with arms (architecture, data mix, recipe)")
    p.add_argument("--downstream", help="column with a downstream error rate")
    p.add_argument("--sweep", help="column identifying a sweep/budget (shared deviation)")
    _add_input(p)
    p.add_argument("--likelihood", choices=("student_t", "normal"))
    p.add_argument("--pooling", choices=("none", "shared", "partial"))
    p.add_argument(
        "--prior",
        action="append",
        metavar="NAME=DIST",
        help="override a prior, e.g. --prior 'alpha=Uniform(low=0, high=1)'",
    )
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument(
        "--warmup", type=int, default=None, help="warm-up iterations (1000; 200 with --warm-start)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--warm-start",
        metavar="FIT.nc",
        help="start the chains where this fit's ended, with its mass matrix (a refit on "
        "new or more runs of the same model structure)",
    )
    p.add_argument(
        "--target-accept",
        type=float,
        default=None,
        help="NUTS target acceptance (default 0.95; 0.97 with --pooling partial)",
    )
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default="auto")
    p.add_argument(
        "--extend",
        type=int,
        default=3,
        metavar="K",
        help="continue the chains up to K times by --draws while R-hat or ESS fail (3; 0: never)",
    )
    p.add_argument(
        "--no-drift",
        action="store_true",
        help="the law's posterior alone beyond the data (no drift learned from the ladder's "
        "own backtest; such intervals are too narrow on real ladders)",
    )
    _add_scatter_growth(p)
    p.add_argument("--out", required=True, help="netCDF file to write")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--no-progress", action="store_true")
    _add_json(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("summary", help="posterior summary and diagnostics of a fit")
    p.add_argument("fit")
    p.add_argument("--prob", type=_prob, default=0.95)
    _add_json(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("predict", help="posterior predictive for a new run")
    p.add_argument("fit")
    _add_target(p)
    p.add_argument("--group", help="arm to predict for (grouped fits)")
    p.add_argument("--metric", choices=("loss", "downstream"), default="loss")
    p.add_argument(
        "--no-noise",
        action="store_true",
        help="parameter uncertainty only (the law, not a new run)",
    )
    p.add_argument("--seed", type=int, default=0)
    _add_json(p)
    p.set_defaults(func=cmd_predict)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Later modules (decide, allocate, report, calibrate, ...) append a function
# ``register(subparsers)`` here; see ``bayescale/cli/*.py``.
_EXTRA_COMMANDS: list[Callable] = []


def _version() -> str:
    from .. import __version__

    return f"bayescale {__version__}"


#: the modules of this package that each add commands through ``register(subparsers)``
COMMAND_MODULES = ("allocate", "backtest", "calibrate", "decide", "report")


def _load_extra_commands() -> None:
    import importlib

    for module in COMMAND_MODULES:
        mod = importlib.import_module(f"{__package__}.{module}")
        if hasattr(mod, "register") and mod.register not in _EXTRA_COMMANDS:
            _EXTRA_COMMANDS.append(mod.register)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _load_extra_commands()
        parser = build_parser()
        args = parser.parse_args(argv)
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    except (CliError, ValueError, OSError, KeyError) as exc:
        message = str(exc).replace("\n", " ").strip() or type(exc).__name__
        if isinstance(exc, KeyError):
            message = f"missing key {message}"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # Ctrl-C: fit files are written atomically, nothing is half-done
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run() -> None:
    """The ``bayescale`` console script (and ``python -m bayescale``): :func:`main`, then exit.

    Everything alive once the command has run (jax, numpyro, pandas: ~10^6 objects)
    lives until the process ends, so it is frozen out of the garbage collector:
    Python's last collection at exit no longer walks it, which made every command end
    ~0.4 s sooner (``bayescale demo`` in a second process: 0.61 -> 0.2 s from the last
    line to the exit). Objects the command creates are collected as usual. :func:`main`
    itself, which tests and notebooks call in their own process, leaves the collector alone.

    ``import bayescale`` imports no JAX (:func:`bayescale._jax.prepare`), so Ctrl-C is
    answered by :func:`main` (exit 130, ``error: interrupted``) from about 0.1 s after the
    process starts; before that it falls in Python's own start-up.
    """
    # Ctrl-C ends the command here and now. Python's own KeyboardInterrupt surfaces in
    # whatever code runs next; inside a weakref callback or a finaliser it cannot propagate
    # and is printed as a traceback while the command goes on (seen in the SIGINT sweep of
    # tests/test_interrupt.py).
    signal.signal(signal.SIGINT, _exit_interrupted)
    gc.freeze()
    code = main()
    gc.freeze()  # and what the command imported (jax, numpyro, pandas), before the exit
    # the command is done: Ctrl-C while Python shuts down (jax's exit hooks) must not print
    # a traceback either. Output is flushed first, since the handler skips Python's exit.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    if code == EXIT_INTERRUPTED:
        # CPython ends a process by SIGINT when it believes a KeyboardInterrupt went
        # unhandled, and C code that sees the interrupt first can set that belief even
        # though main() handled it: under load tests/test_interrupt.py saw exit -2 after
        # "error: interrupted". The command is over and its files are whole: exit now.
        os._exit(EXIT_INTERRUPTED)
    # The command is over and its files are whole, so Ctrl-C from here on is ignored.
    # Python's finalisation resets a Python-level SIGINT handler to the default, which
    # kills the process (exit -2, seen in CI after a fit had written its file); a
    # handler set to SIG_IGN is left as it is, and the exit status stays the command's.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def _exit_interrupted(signum, frame) -> None:
    """SIGINT in the console script: remove unfinished fit files' temporaries, exit 130."""
    fitfile = sys.modules.get("bayescale.posterior.fitfile")
    if fitfile is not None:
        fitfile.remove_pending()
    os.write(2, b"error: interrupted\n")
    os._exit(EXIT_INTERRUPTED)


def _add_scatter_growth(p) -> None:
    """``--scatter-growth`` / ``--no-scatter-growth`` (default: bayescale's choice)."""
    both = p.add_mutually_exclusive_group()
    both.add_argument(
        "--scatter-growth",
        dest="scatter_growth",
        action="store_const",
        const=True,
        default=None,
        help="let the scatter widen toward the small end of the ladder (default: on for "
        "laws of params, tokens and compute with at least 2k - 1 runs)",
    )
    both.add_argument(
        "--no-scatter-growth",
        dest="scatter_growth",
        action="store_const",
        const=False,
        help="one scatter for every run, however far below the top of the ladder",
    )


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = str(message).replace("\n", " ")
    print(f"warning: {text}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    run()
