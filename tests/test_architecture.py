"""The import direction of DESIGN §1, enforced: domain <- models <- policies <- control <- worlds <- ..."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "consolidator"

# Lower number = more fundamental. A module may import its own layer or lower ones only.
LAYERS = {
    "domain": 0,
    "models": 1,
    "protocol": 1,  # the agent API as both sides speak it: depends on domain only
    "policies": 2,
    "control": 3,
    "sim": 4,
    "agent": 4,
    "manager": 4,
    "storage": 4,
    "power": 4,
    "literature": 4,
    "experiments": 5,
    "scenarios": 0,  # data files only
    "reports": 5,
    "cli": 6,
}
CORE = {"domain", "models", "policies", "control"}
# Nothing in the core touches time, I/O, processes, networks, databases, QEMU or plotting.
FORBIDDEN_IN_CORE = {
    "asyncio", "time", "socket", "sqlite3", "subprocess", "threading", "datetime", "random",
    "matplotlib", "qemu", "sqlalchemy", "httpx", "fastapi", "uvicorn", "requests", "os", "shutil",
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _area(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    area = _area(path)
    if area is None:
        return
    assert area in LAYERS, f"new top-level package {area!r}: give it a layer in this test"
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "consolidator":
            parts = name.split(".")
            if len(parts) < 2 or parts[1] not in LAYERS:
                continue
            target = parts[1]
            assert LAYERS[target] <= LAYERS[area], f"{area} must not import {name} (layer direction)"
        elif area in CORE:
            assert top not in FORBIDDEN_IN_CORE, f"core module imports {name}: keep I/O and clocks out"
