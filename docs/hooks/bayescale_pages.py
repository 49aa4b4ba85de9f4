"""MkDocs hook: pages written at build time from the package itself, so they cannot drift.

A page whose Markdown holds a marker line is completed here:

- ``<!-- bayescale:laws -->``: every registered law (formula, inputs, options, sampled
  parameters with their default priors, reported names, citation), the noise priors every
  law shares and the published specs in ``models/``;
- ``<!-- bayescale:cli -->``: every subcommand of the argparse parser with its usage and
  options;
- ``<!-- bayescale:json-schema -->``: the JSON Schema of each command's ``--json`` output,
  from ``docs/schema/*.json``;
- ``<!-- bayescale:contributing -->``: ``CONTRIBUTING.md``, with its links re-pointed.

The notebooks are shown executed: ``tests/test_notebooks.py`` writes each notebook it ran
to ``build/notebooks/``, and a copy whose code cells match the committed notebook replaces
it on the site (``make test`` runs the tests, then this build). Without a matching copy the
notebook is shown as committed, without outputs.

Nothing here needs the network. ``tests/test_docs.py`` imports this module to check that
the pages cover every law and every subcommand.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "docs" / "schema"
#: where tests/test_notebooks.py writes the notebooks it executed
EXECUTED_DIR = REPO / "build" / "notebooks"
if str(REPO) not in sys.path:  # the worktree's package, whatever the venv's editable install
    sys.path.insert(0, str(REPO))

MARKERS = {
    "<!-- bayescale:laws -->": "laws_markdown",
    "<!-- bayescale:cli -->": "cli_markdown",
    "<!-- bayescale:json-schema -->": "schema_markdown",
    "<!-- bayescale:contributing -->": "contributing_markdown",
}

#: the ladder that data-dependent default priors are shown for (they scale with the data)
EXAMPLE_SUMMARY = {"min_loss": 2.0, "median_loss": 2.5, "max_loss": 4.0}

_ROLE = {
    "floor": "irreducible loss",
    "exponent": "exponent",
    "coefficient": "coefficient",
    "shape": "shape",
}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- laws


def _builder_options(name: str) -> list[tuple[str, object]]:
    from bayescale.laws import core as laws

    builder = laws._BUILDERS.get(name)
    if builder is None:
        return []
    return [
        (p.name, p.default)
        for p in inspect.signature(builder).parameters.values()
        if p.default is not inspect.Parameter.empty
    ]


def _prior_text(parameter, summary) -> str:
    from bayescale.laws.priors import Prior

    if isinstance(parameter.prior, Prior):
        return f"`{parameter.prior!r}`"
    return f"`{parameter.default_prior(summary)!r}` (from the data)"


def law_names() -> list[str]:
    """The laws the Laws page documents: every name :func:`bayescale.list_laws` knows."""
    import bayescale as bs

    return bs.list_laws()


def laws_markdown() -> str:
    """The Laws page body, from ``bayescale.laws``' registry and ``models/*.toml``."""
    import bayescale as bs
    from bayescale.laws import DataSummary
    from bayescale.model import NOISE_PRIORS, STRUCTURED_PRIORS

    summary = DataSummary(**EXAMPLE_SUMMARY, log_ref={})
    out = [
        "Default priors marked *from the data* depend on the ladder being fitted; they are "
        f"shown here for a ladder whose smallest loss is {EXAMPLE_SUMMARY['min_loss']} and "
        f"median loss {EXAMPLE_SUMMARY['median_loss']} nats; a fit keeps the ones "
        "it used in `fit.model.priors`.",
        "",
    ]
    for name in law_names():
        law = bs.get_law(name)
        out += [f"## `{name}`", "", "```text", law.formula, "```", ""]
        out.append(f"- **inputs:** {', '.join(f'`{i}`' for i in law.inputs)}")
        out.append(f"- **reported parameters:** {', '.join(f'`{r}`' for r in law.reported_names)}")
        options = _builder_options(name)
        if options:
            text = ", ".join(f"`{k}` (default `{v!r}`)" for k, v in options)
            out.append(f"- **options:** {text}")
        out.append(f"- **citation:** {law.citation}")
        if law.noise:  # a law of another response than loss (lr_opt) sets its own scale
            text = ", ".join(f"`{k}` `{v!r}`" for k, v in law.noise)
            out.append(f"- **noise priors (replace the table below's):** {text}")
        out += ["", "| sampled parameter | role | default prior | meaning |", "|---|---|---|---|"]
        for p in law.parameters:
            out.append(
                f"| `{p.name}` | {_ROLE.get(p.role, p.role)} | {_cell(_prior_text(p, summary))} "
                f"| {_cell(p.doc)} |"
            )
        out.append("")

    out += [
        "## Noise and structure priors (every law)",
        "",
        "| parameter | default prior |",
        "|---|---|",
    ]
    for key, prior in {**NOISE_PRIORS, **STRUCTURED_PRIORS}.items():
        out.append(f"| `{key}` | `{prior!r}` |")
    out.append("")

    out += [
        "## Published specs (`models/*.toml`)",
        "",
        "`bs.load_model(name)` or `bayescale fit --law NAME` loads one.",
        "",
        "| spec | law | likelihood | prior overrides | citation |",
        "|---|---|---|---|---|",
    ]
    for name in bs.list_models():
        spec = bs.load_model(name)
        priors = "; ".join(f"`{k} ~ {v!r}`" for k, v in spec.priors.items()) or "-"
        out.append(
            f"| `{name}` | `{spec.law.name}` | {spec.likelihood} | {_cell(priors)} "
            f"| {_cell(spec.citation)} |"
        )
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- CLI


def cli_parser() -> argparse.ArgumentParser:
    """The ``bayescale`` parser with every subcommand registered."""
    from bayescale.cli import app as cli

    cli._load_extra_commands()
    return cli.build_parser()


def _subparsers(parser: argparse.ArgumentParser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in action._choices_actions}
    return action, helps


def cli_commands() -> list[str]:
    """Every subcommand of the ``bayescale`` parser."""
    action, _ = _subparsers(cli_parser())
    return list(action.choices)


def _option_row(action: argparse.Action) -> str:
    if action.option_strings:
        flags = ", ".join(action.option_strings)
        if action.nargs != 0:
            metavar = action.metavar or action.dest.upper()
            if isinstance(metavar, tuple):
                metavar = " ".join(metavar)
            elif action.nargs not in (None, "?", 1):
                count = action.nargs if isinstance(action.nargs, int) else 1
                metavar = " ".join([metavar] * count)
            flags += f" {metavar}"
    else:
        flags = action.metavar or action.dest
    default = ""
    if action.nargs != 0 and action.default not in (None, argparse.SUPPRESS):
        default = f"`{action.default!r}`"
    choices = ", ".join(f"`{c}`" for c in action.choices) if action.choices else ""
    required = "yes" if (action.required or not action.option_strings) else ""
    return f"| `{_cell(flags)}` | {required} | {default} | {choices} | {_cell(action.help or '')} |"


def cli_markdown() -> str:
    """The CLI reference body, from ``bayescale.cli.app.build_parser()``."""
    parser = cli_parser()
    action, helps = _subparsers(parser)
    out = ["| command | what it does |", "|---|---|"]
    out += [f"| [`{name}`](#{name}) | {_cell(helps.get(name) or '')} |" for name in action.choices]
    out.append("")
    for name, sub in action.choices.items():
        usage = sub.format_usage().removeprefix("usage: ").strip()
        out += [f"## {name}", "", helps.get(name) or "", "", "```text", usage, "```", ""]
        if sub.description:
            out += [sub.description, ""]
        out += [
            "| argument | required | default | choices | meaning |",
            "|---|---|---|---|---|",
        ]
        out += [_option_row(a) for a in sub._actions if not isinstance(a, argparse._HelpAction)]
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- JSON


def schemas() -> dict[str, dict]:
    """``{command: JSON Schema}`` from ``docs/schema/<command>.json``."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(SCHEMA_DIR.glob("*.json"))}


def schema_markdown() -> str:
    """The JSON page body: each command's schema, its description and its required keys."""
    out = []
    for command, schema in schemas().items():
        out += [f"## `bayescale {command} --json`", "", schema.get("description", ""), ""]
        required = schema.get("required", [])
        props = schema.get("properties", {})
        if props:
            out += ["| key | required | meaning |", "|---|---|---|"]
            for key, sub in props.items():
                mark = "yes" if key in required else ""
                out.append(f"| `{key}` | {mark} | {_cell(sub.get('description', ''))} |")
            out.append("")
        out += ['??? note "Schema"', "", "    ```json"]
        out += ["    " + line for line in json.dumps(schema, indent=2).splitlines()]
        out += ["    ```", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- CONTRIBUTING


def contributing_markdown() -> str:
    """``CONTRIBUTING.md``, its links re-pointed from the repository root to this page."""
    text = (REPO / "CONTRIBUTING.md").read_text()
    return text.replace("](docs/developer/", "](").replace("](docs/", "](../")


# --------------------------------------------------------------------------- hook


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, function in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, globals()[function]())
    return markdown


def _code_sources(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    return ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code"]


def executed_notebook(source: Path, executed_dir: Path = EXECUTED_DIR) -> Path | None:
    """The executed copy of ``source`` if its code cells are the committed ones, else None.

    A copy from an older version of the notebook (cells edited since the tests ran) is
    never shown: its outputs would belong to other code.
    """
    copy = executed_dir / source.name
    if not copy.is_file():
        return None
    try:
        same = _code_sources(copy) == _code_sources(source)
    except (OSError, ValueError):
        return None
    return copy if same else None


def on_files(files, config):
    """Point each notebook page at its executed copy (runs after mkdocs-jupyter's on_files)."""
    import logging

    log = logging.getLogger("mkdocs.hooks.bayescale")
    for file in files:
        if not (file.src_uri.startswith("notebooks/") and file.src_uri.endswith(".ipynb")):
            continue
        copy = executed_notebook(Path(file.abs_src_path))
        if copy is None:
            log.info("%s: no executed copy in build/notebooks, shown without outputs", file.src_uri)
        else:
            file.abs_src_path = str(copy)
    return files
