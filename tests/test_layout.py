"""The package layout: layers import only downward, modules stay readable, old paths still work.

The layers, lowest first (``docs/developer/layout.md`` explains each):

    foundation (bayescale/_*.py, settings.py) -> data -> laws -> model -> posterior
        -> inference -> allocate -> decide -> plots -> trust -> report -> cli

The package root (``__init__.py``, which names the public API lazily) and ``__main__.py``
stand above every layer. A module may import its own layer and any layer below it, never one above, counting
imports inside functions too (a lazy import is still a dependency). The graph is read
from the source with :mod:`ast`, so the check needs no import of the package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import bayescale as bs

PACKAGE = Path(bs.__file__).resolve().parent
ROOT = PACKAGE.parent
LAYERS = (
    "foundation",
    "data",
    "laws",
    "model",
    "posterior",
    "inference",
    "allocate",
    "decide",
    "plots",
    "trust",
    "report",
    "cli",
)
MAX_LINES = 500
#: the package root names the public API (lazily) and ``python -m bayescale`` runs the CLI:
#: both stand above every layer
ENTRY_POINTS = ("__init__.py", "__main__.py")


def layer_of(module: str) -> str:
    """``bayescale.laws.core`` -> ``laws``; top-level modules are the foundation."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return "foundation"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every bayescale import in ``path``, lazy ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("bayescale"):
                continue
            if node.module is None or target == "bayescale":  # from . import x: x may be a module
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    is_module = (ROOT / sub.replace(".", "/")).is_dir() or (
                        ROOT / (sub.replace(".", "/") + ".py")
                    ).is_file()
                    found.append((node.lineno, sub if is_module else target))
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("bayescale")]
    return found


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_subpackage_is_a_known_layer():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(LAYERS) - {"foundation"}


def test_layers_import_only_downward():
    rank = {name: i for i, name in enumerate(LAYERS)}
    violations = []
    for path in sources():
        if path.parent == PACKAGE and path.name in ENTRY_POINTS:
            continue
        source = layer_of(module_name(path))
        for line, target in imports(path):
            if target == "bayescale":
                continue  # the package root: __version__, lazy public names
            dest = layer_of(target)
            if rank[dest] > rank[source]:
                rel = path.relative_to(ROOT)
                violations.append(f"{rel}:{line} ({source}) imports {target} ({dest})")
    assert not violations, "imports against the layer order:\n" + "\n".join(violations)


def test_foundation_modules_import_no_layer():
    for path in PACKAGE.glob("*.py"):
        if path.name in ENTRY_POINTS:
            continue
        targets = [t for _, t in imports(path) if layer_of(t) != "foundation"]
        assert not targets, f"{path.name} imports {targets}"


def test_the_layer_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The check is not vacuous: a model module importing the sampler is reported."""
    fake = tmp_path / "bayescale"
    (fake / "model").mkdir(parents=True)
    (fake / "inference").mkdir()
    for init in (fake / "__init__.py", fake / "model/__init__.py", fake / "inference/__init__.py"):
        init.write_text("")
    (fake / "model" / "bad.py").write_text("def f():\n    from ..inference import sampler\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = imports(fake / "model" / "bad.py")
    assert found == [(2, "bayescale.inference")]
    assert layer_of(found[0][1]) == "inference" and layer_of("bayescale.model.bad") == "model"


def test_no_module_is_over_500_lines():
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for p in sources()
        if len(p.read_text().splitlines()) > MAX_LINES
    }
    assert not sizes, f"modules over {MAX_LINES} lines: {sizes}"


def test_importing_the_package_pulls_in_no_layer():
    """``import bayescale`` stays cheap: no jax, no pandas, no subpackage until a name is used."""
    code = (
        "import sys, bayescale\n"
        "print(sorted(m for m in sys.modules if m.startswith('bayescale.')"
        " or m in ('jax', 'pandas', 'numpyro')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['bayescale._jax']"


@pytest.mark.parametrize("old", sorted(bs.MOVED))
def test_old_module_paths_import_the_moved_module_with_a_warning(old):
    import importlib

    new = importlib.import_module(f"bayescale.{bs.MOVED[old]}")
    sys.modules.pop(f"bayescale.{old}", None)
    with pytest.warns(DeprecationWarning, match=rf"bayescale\.{old} moved to bayescale\."):
        moved = importlib.import_module(f"bayescale.{old}")
    assert moved is new


def test_old_fit_path_keeps_bs_fit_the_function():
    sys.modules.pop("bayescale.fit", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from bayescale.fit import fit as old_fit
    assert callable(bs.fit) and bs.fit is old_fit and not isinstance(bs.fit, type(sys))


def test_public_names_still_resolve():
    for name in bs.__all__:
        assert getattr(bs, name) is not None, name


def test_a_fit_file_written_before_the_layout_still_loads():
    """tests/data/fit_format2_v0.1.0.nc was written by the flat-layout package (cc7a023)
    from ``simulate_ladder(seed=3)``, chinchilla, 2 chains x 300 draws."""
    from bayescale.laws.simulate import HOFFMANN_2022

    old = bs.load_fit(ROOT / "tests" / "data" / "fit_format2_v0.1.0.nc")
    assert old.law.name == "chinchilla" and old.n_chains == 2 and old.n_draws == 300
    summary = old.summary()
    for name in ("alpha", "beta"):
        row = summary.loc[name]
        assert row["lower"] < HOFFMANN_2022[name] < row["upper"], (name, row)
    pred = old.predict(params=1e9, tokens=2e10)
    assert pred.lower[0] < pred.median[0] < pred.upper[0]


def test_an_old_path_keeps_every_name_it_exported():
    """bayescale.calibrate's names were split over four modules: the old path is the layer."""
    sys.modules.pop("bayescale.calibrate", None)
    with pytest.warns(DeprecationWarning, match=r"bayescale\.calibrate moved to bayescale\.trust"):
        from bayescale.calibrate import (  # noqa: F401
            REFERENCE_TRUTH,
            binomial_band,
            calibrate,
            misspecification,
            plot_rank_grid,
            plot_ranks,
        )
