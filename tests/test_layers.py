"""The layers and their import directions (pyproject.toml's import-linter contracts, docs/architecture.md) hold,
and the checker really refuses an import that breaks them: planted in a copy of the package, an engine -> runs
import and a plugin -> internal-module import each fail their contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
PLUGIN_PACKAGES = ("condgen_label", "condgen_inpaint", "condgen_regression")


def lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the packages under ``root``, with the repo's contracts (found first on the path)."""
    return subprocess.run([str(LINT), "--no-logo", "--no-cache", str(root / "pyproject.toml")], cwd=root,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(root)})


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The package and the built-in plugins' packages copied side by side, with the repo's pyproject.toml."""
    shutil.copytree(REPO / "condgen", tmp_path / "condgen", ignore=shutil.ignore_patterns("__pycache__"))
    for package in PLUGIN_PACKAGES:
        source = next((REPO / "plugins").glob(f"*/{package}"))
        shutil.copytree(source, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (pip install -e .[dev])")
def test_the_layers_hold_and_a_planted_import_breaks_them(copy):
    clean = lint(copy)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Contracts: 3 kept, 0 broken." in clean.stdout

    engine = copy / "condgen" / "engine" / "gaussian.py"
    engine.write_text(engine.read_text() + "\nfrom ..runs import config  # planted: the engine reads a run config\n")
    label = copy / "condgen_label" / "conditioner.py"
    label.write_text(label.read_text() + "\nfrom condgen.runs.store import read_run  # planted: an internal module\n")
    planted = lint(copy)
    assert planted.returncode == 1, planted.stdout + planted.stderr
    assert "Contracts: 0 kept, 3 broken." in planted.stdout
    assert "condgen.engine.gaussian -> condgen.runs.config" in planted.stdout  # the layers, and the engine's own rule
    assert "condgen_label.conditioner -> condgen.runs.store" in planted.stdout


def _root_imports(path: Path, module: str) -> list[str]:
    """The lines of ``path`` (module ``module``) that import the package ``condgen`` itself or a name from it:
    ``import condgen``, ``from condgen import Run``, ``from .. import Run`` at the top of a layer."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(a.name == "condgen" for a in node.names):
            found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".")[: len(module.split(".")) - (node.level - (path.name == "__init__.py"))]
            target = node.module if node.level == 0 else ".".join(base + ([node.module] if node.module else []))
            if target == "condgen" and not all(
                    (REPO / "condgen" / alias.name).exists() or (REPO / "condgen" / f"{alias.name}.py").exists()
                    for alias in node.names):
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_module_of_condgen_reaches_another_layer_through_the_package_itself():
    # `from condgen import Run` inside condgen would be a dependency the contracts cannot see: the package's
    # exports are imported lazily, so the import graph shows only an import of `condgen`, which is no layer
    offenders = {}
    for path in sorted((REPO / "condgen").rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        if module in ("condgen", "condgen.__main__", "condgen.hookspecs"):
            continue
        lines = _root_imports(path, module)
        if lines:
            offenders[module] = lines
    assert offenders == {}


def test_the_root_import_check_sees_each_form(tmp_path):
    planted = tmp_path / "gaussian.py"
    planted.write_text("import condgen\nfrom condgen import Run\nfrom .. import RunConfig\nfrom .. import engine\n"
                       "from . import prior\n")
    assert _root_imports(planted, "condgen.engine.gaussian") == ["gaussian.py:1", "gaussian.py:2", "gaussian.py:3"]
