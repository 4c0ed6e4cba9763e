"""The import direction of DESIGN §1, enforced: domain <- models <- policies <- control <- worlds <- ...

Each top-level package is a room. A module may import its own room and any room on a lower layer.
Rooms on the same layer (sim, agent, manager, storage, power, literature; models and protocol) are
siblings: one imports another only through a door listed in ``DOORS``, each with the DESIGN section
that names it. Imports inside functions and relative imports count the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "consolidator"

# Lower number = more fundamental.
LAYERS = {
    "domain": 0,
    "scenarios": 0,  # data files only
    "models": 1,
    "protocol": 1,  # the agent API as both sides speak it: depends on domain only
    "traces": 1,  # workload trace files (PlanetLab, CSV): read and fetched, for sim and literature
    "policies": 2,
    "control": 3,
    "sim": 4,
    "agent": 4,
    "manager": 4,
    "storage": 4,
    "power": 4,
    "literature": 4,
    "experiments": 5,
    "reports": 5,
    "cli": 6,
}

# (importer, imported) -> why. Either side is an area or a dotted module path under ``consolidator``.
DOORS: dict[tuple[str, str], str] = {
    ("manager", "storage"): "the manager service records its run in the run store and restarts from it "
                            "(DESIGN §1: one object owns a run, store included; restart from agents + run store)",
    ("manager", "power"): "the manager meters its hosts and wakes sleeping ones by their configured methods "
                          "(DESIGN §1: the real world is host agents and meters; §2: S3, power-off, wake times)",
}

CORE = {"domain", "models", "policies", "control"}
# Nothing in the core touches time, I/O, processes, networks, databases, QEMU or plotting.
FORBIDDEN_IN_CORE = {
    "asyncio", "time", "socket", "sqlite3", "subprocess", "threading", "datetime", "random",
    "matplotlib", "qemu", "sqlalchemy", "httpx", "fastapi", "uvicorn", "requests", "os", "shutil",
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every module ``source`` imports (absolute names; relative ones resolved against ``module``)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            names.append(base)
            # ``from consolidator import manager`` imports a room too
            names.extend(f"{base}.{alias.name}" for alias in node.names if base == "consolidator")
    return names


def _matches(prefix: str, dotted: str) -> bool:
    return dotted == prefix or dotted.startswith(prefix + ".")


def _door(importer: str, target: str) -> str | None:
    """The door ``importer`` (dotted, without ``consolidator.``) may use to reach ``target``."""
    for (src, dst), why in DOORS.items():
        if _matches(src, importer) and _matches(dst, target):
            return why
    return None


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """What is wrong with the imports of ``module`` (dotted, e.g. ``consolidator.sim.engine``)."""
    inner = module.split(".", 1)[1] if "." in module else ""
    area = inner.split(".")[0]
    if not inner or (area not in LAYERS and not is_package and "." not in inner):
        return []  # consolidator/__init__.py, consolidator/__main__.py
    if area not in LAYERS:
        return [f"new top-level package {area!r}: give it a layer in this test"]
    found: list[str] = []
    for name in imported_names(module, source, is_package):
        parts = name.split(".")
        if parts[0] != "consolidator":
            if area in CORE and parts[0] in FORBIDDEN_IN_CORE:
                found.append(f"core module {module} imports {name}: keep I/O and clocks out")
            continue
        if len(parts) < 2 or parts[1] not in LAYERS or parts[1] == area:
            continue
        target = parts[1]
        if LAYERS[target] > LAYERS[area]:
            found.append(f"{module} imports {name}: {target} is above {area} (layer direction)")
        elif LAYERS[target] == LAYERS[area] and _door(inner, ".".join(parts[1:])) is None:
            found.append(f"{module} imports {name}: {area} and {target} are sibling rooms with no door "
                         "(move the shared code down, or add a door that DESIGN §1 names)")
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_and_through_doors(path: Path) -> None:
    assert violations(_dotted(path), path.read_text(), path.name == "__init__.py") == []


def test_every_door_joins_sibling_rooms_and_is_used() -> None:
    used = set()
    for path in _modules():
        module = _dotted(path)
        inner = module.split(".", 1)[1] if "." in module else ""
        for name in imported_names(module, path.read_text(), path.name == "__init__.py"):
            for src, dst in DOORS:
                if inner and _matches(src, inner) and _matches(dst, ".".join(name.split(".")[1:])):
                    used.add((src, dst))
    for src, dst in DOORS:
        a, b = src.split(".")[0], dst.split(".")[0]
        assert a != b and LAYERS[a] == LAYERS[b], f"door {src} -> {dst} joins no sibling rooms"
        assert "DESIGN §" in DOORS[(src, dst)], f"door {src} -> {dst} must cite the DESIGN section naming it"
    assert used == set(DOORS), f"doors nothing goes through (remove them): {sorted(set(DOORS) - used)}"


@pytest.mark.parametrize(("module", "source"), [
    ("consolidator.sim.engine", "from consolidator.manager.client import AgentClient"),
    ("consolidator.sim.engine", "import consolidator.agent.hypervisor"),
    ("consolidator.sim.engine", "def run():\n    from consolidator.storage import open_store\n"),
    ("consolidator.sim.engine", "from ..literature import traces"),
    ("consolidator.sim.engine", "from consolidator import power"),
    ("consolidator.power.monitor", "from consolidator.storage.records import PowerSample"),
    ("consolidator.storage.store", "from consolidator.manager.config import ClusterConfig"),
    ("consolidator.agent.host", "from consolidator.manager.client import AgentClient"),
    ("consolidator.manager.client", "from consolidator.agent.hypervisor import VmRunState"),
    ("consolidator.models.power", "from consolidator.protocol.schemas import VmBody"),
    ("consolidator.protocol.schemas", "from consolidator.control.loop import ControlLoop"),
    ("consolidator.control.loop", "from consolidator.sim.engine import run"),
    ("consolidator.domain.types", "import time"),
])
def test_a_new_sideways_or_upward_import_fails(module: str, source: str) -> None:
    assert violations(module, source), f"{module}: {source!r} should be refused"


@pytest.mark.parametrize(("module", "source"), [
    ("consolidator.manager.service", "from consolidator.storage import open_store"),
    ("consolidator.manager.setup", "def f():\n    from consolidator.power.wake import Waker\n"),
    ("consolidator.manager.client", "from consolidator.protocol.schemas import VmBody"),
    ("consolidator.agent.host", "from ..protocol.eventlog import EventLog"),
    ("consolidator.experiments.lab.lab", "from consolidator.manager.client import AgentClient"),
    ("consolidator.sim.engine", "from .cluster import SimCluster"),
])
def test_downward_own_room_and_door_imports_pass(module: str, source: str) -> None:
    assert violations(module, source) == []
