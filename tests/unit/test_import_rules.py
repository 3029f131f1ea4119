"""The dependency direction of DESIGN §2, checked on the source: ``scheduler`` and ``protocol``
import nothing of the project, ``store`` never imports ``gateway`` or ``scheduler``, and nothing
outside ``gateway`` (but the tests and benchmarks) imports ``gateway``; and the relay simulator
(``gateway.sim``) is reached only from the command line, never from the serving path."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {"gateway", "protocol", "store", "scheduler"}
FORBIDDEN = {
    "scheduler": PROJECT - {"scheduler"},
    "protocol": PROJECT - {"protocol"},
    "store": {"gateway", "scheduler"},
}


def imported_modules(path: Path) -> set[str]:
    """Full dotted names of every absolute import in one module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in one module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    """No module of ``package`` imports a project package the design forbids it."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_rule_checker_sees_imports() -> None:
    """The checker itself finds a forbidden import (so the rule test can fail)."""
    here = imported_packages(Path(__file__))
    assert {"ast", "pytest"} <= here
    assert "gateway" in imported_packages(ROOT / "gateway" / "cli" / "main.py")


def test_serving_path_never_imports_the_simulator() -> None:
    """Only ``gateway.sim`` itself and the command line import the simulator."""
    allowed = {ROOT / "gateway" / "sim", ROOT / "gateway" / "cli"}
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "gateway").rglob("*.py"))
        if path.parent not in allowed
        and any(name == "gateway.sim" or name.startswith("gateway.sim.") for name in imported_modules(path))
    ]
    assert offenders == []
    assert "gateway.sim" in imported_modules(ROOT / "gateway" / "cli" / "main.py")
