"""Every notebook in notebooks/ runs top to bottom without errors (BAYESCALE_FAST=1).

Notebooks are the user-facing tutorials; each ends with assertions of the claims it makes,
so executing it is a test. New notebooks are picked up by the glob. Notebooks are committed
without outputs; this test never writes them back. It writes each executed notebook to
``build/notebooks/`` (git-ignored), which the docs build shows in place of the committed one.
"""

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
#: executed copies for the documentation site (docs/hooks/bayescale_pages.py reads them)
EXECUTED_DIR = REPO / "build" / "notebooks"
#: seconds any one cell may take (the slowest cells compile a sampler on a busy machine)
CELL_TIMEOUT = 600

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A ``python3`` kernelspec that runs this interpreter, and the notebooks' environment.

    Writing the spec (rather than trusting whatever ``python3`` kernel Jupyter finds) makes
    the kernel the current venv's Python on a fresh checkout, in CI and under ``make test``.
    """
    spec_dir = tmp_path_factory.mktemp("jupyter")
    kernel = spec_dir / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (bayescale tests)",
                "language": "python",
            }
        )
    )
    env = {
        "JUPYTER_PATH": os.pathsep.join(
            filter(None, [str(spec_dir), os.environ.get("JUPYTER_PATH")])
        ),
        "BAYESCALE_FAST": "1",
        "BAYESCALE_NO_PROGRESS": "1",
        "MPLBACKEND": "Agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_notebooks_exist():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, kernel_env, shared_data):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        f"{path.name} is committed with outputs; strip them (outputs come from running it)"
    )
    executed = EXECUTED_DIR / path.name
    executed.unlink(missing_ok=True)  # a failed run leaves no stale copy for the site
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on the first error
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
    partial = executed.with_suffix(".ipynb.partial")
    nbformat.write(notebook, partial)
    partial.replace(executed)
