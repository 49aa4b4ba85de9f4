"""The generated documentation pages cover the package, and the JSON schemas hold real output.

The Laws, Command line and JSON output pages are written at build time by
``docs/hooks/bayescale_pages.py``; these tests make sure a new law, subcommand or flag cannot
be left out of them, and that every ``--json`` output matches its documented schema. The
strict site build itself runs in ``make test`` (``make docs-strict``).
"""

import importlib.util
import json
import re
from pathlib import Path

import jsonschema
import pytest

import bayescale as bs
from bayescale.cli import main

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pages = _load("bayescale_pages")
griffe_rst = _load("griffe_rst")

#: the commands whose JSON keys are a contract (DESIGN.md, "Command line")
CONTRACT_COMMANDS = {"summary", "predict", "decide", "crossover", "allocate", "next"}


def test_laws_page_has_every_registered_law_with_its_formula_priors_and_citation():
    text = pages.laws_markdown()
    assert pages.law_names() == bs.list_laws()
    for name in bs.list_laws():
        law = bs.get_law(name)
        section = text.split(f"## `{name}`\n", 1)[1].split("\n## ", 1)[0]
        assert law.formula in section and law.citation in section, name
        for parameter in law.parameters:
            assert f"| `{parameter.name}` |" in section, (name, parameter.name)
        for reported in law.reported_names:
            assert f"`{reported}`" in section, (name, reported)
    for spec in bs.list_models():
        assert f"| `{spec}` |" in text


def test_laws_page_follows_the_registry():
    name = "docs_test_power_floor"
    bs.custom_law(
        name,
        lambda t, params: t["E"] + t["A"] * params ** -t["a"],
        {
            "E": "Uniform(low=0, high=2)",
            "A": "LogNormal(mu=3, sigma=2)",
            "a": "Uniform(low=0, high=1)",
        },
        inputs=("params",),
        formula="L = E + A N^-a",
    )
    try:
        text = pages.laws_markdown()
        assert f"## `{name}`" in text and "L = E + A N^-a" in text
        assert "| `a` | coefficient | `Uniform(low=0, high=1)` |" in text
    finally:
        from bayescale.laws import core as laws

        laws._CUSTOM.pop(name)
    assert f"## `{name}`" not in pages.laws_markdown()


def test_cli_page_has_every_subcommand_and_every_flag():
    text = pages.cli_markdown()
    parser = pages.cli_parser()
    action, _ = pages._subparsers(parser)
    assert set(pages.cli_commands()) >= CONTRACT_COMMANDS | {"demo", "fit", "report", "backtest"}
    for name, sub in action.choices.items():
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert f"bayescale {name}" in section, name
        for option in sub._actions:
            for flag in option.option_strings:
                if flag not in ("-h", "--help"):
                    # the row's first cell: "`--noise, --no-noise`", "`--arms A B`", ...
                    cell = rf"^\| `[^`]*(?<![\w-]){re.escape(flag)}(?![\w-])[^`]*` \|"
                    assert re.search(cell, section, re.MULTILINE), (name, flag)


def test_every_contract_command_has_a_valid_schema():
    schemas = pages.schemas()
    assert set(schemas) == CONTRACT_COMMANDS
    for command, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert set(schema["required"]) <= set(schema["properties"]), command
    text = pages.schema_markdown()
    for command in CONTRACT_COMMANDS:
        assert f"## `bayescale {command} --json`" in text


def test_schema_rejects_output_without_a_contract_key():
    schema = pages.schemas()["predict"]
    good = {"median": 2.0, "mean": 2.0, "lower": 1.9, "upper": 2.1, "prob": 0.95}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError, match="'mean' is a required property"):
        jsonschema.validate({k: v for k, v in good.items() if k != "mean"}, schema)


def test_rst_roles_and_example_sections_become_markdown():
    text = "Uses :class:`~bayescale.posterior.Fit` and :func:`bayescale.fit`.\n\n    Example:\n"
    assert griffe_rst.rst_to_markdown(text) == (
        "Uses `Fit` and `bayescale.fit`.\n\n    Examples:\n"
    )


def test_contributing_page_links_resolve_inside_the_site():
    text = pages.contributing_markdown()
    assert "](docs/" not in text and "](benchmarks.md)" in text


@pytest.mark.slow
def test_json_outputs_match_their_schemas(two_arm_fits, tmp_path, capsys):
    path = tmp_path / "arms.nc"
    two_arm_fits["grouped"].to_netcdf(path)
    candidates = tmp_path / "candidates.csv"
    candidates.write_text("params,tokens,group\n1e8,2e9,arm_a\n1e8,2e9,arm_b\n")
    argv = {
        "summary": ["summary", path],
        "predict": ["predict", path, "--params", "7e9", "--tokens", "1.4e11", "--group", "arm_a"],
        "decide": ["decide", path, "--compute", "1e22"],
        "crossover": [
            "crossover",
            path,
            "--arms",
            "arm_a",
            "arm_b",
            "--compute-range",
            "1e19",
            "1e23",
        ],
        "allocate": ["allocate", path, "--compute", "1e22", "--group", "arm_b"],
        "next": ["next", path, "--target-compute", "1e22", "--candidates", candidates],
    }
    schemas = pages.schemas()
    assert set(argv) == set(schemas)
    for command, args in argv.items():
        capsys.readouterr()
        assert main([str(a) for a in args] + ["--json"]) == 0, command
        payload = json.loads(capsys.readouterr().out)
        jsonschema.validate(payload, schemas[command])


def test_the_site_shows_an_executed_notebook_only_when_its_code_is_the_committed_code(tmp_path):
    import json

    def notebook(path, code, outputs):
        cell = {"cell_type": "code", "source": code, "metadata": {}, "outputs": outputs}
        cell["execution_count"] = None
        nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        path.write_text(json.dumps(nb))
        return path

    source = notebook(tmp_path / "01_x.ipynb", "print(1)", [])
    executed_dir = tmp_path / "executed"
    executed_dir.mkdir()
    assert pages.executed_notebook(source, executed_dir) is None  # never run: shown as is
    out = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    copy = notebook(executed_dir / "01_x.ipynb", "print(1)", out)
    assert pages.executed_notebook(source, executed_dir) == copy
    notebook(source, "print(2)", [])  # edited after the tests ran: the outputs are stale
    assert pages.executed_notebook(source, executed_dir) is None
    copy.write_text("{not json")
    assert pages.executed_notebook(source, executed_dir) is None
