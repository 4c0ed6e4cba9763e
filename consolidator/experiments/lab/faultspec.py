"""The SPEC of a fault-injection run (``consolidator lab run --faults SPEC``): a built-in name or a TOML
file. Validated; a bad value is a UserError naming the file and field.

    seed = 1                    # which migrations get which fault (a seeded shuffle)
    migrations = 5              # moves of one VM back and forth between two lab hosts
    vm_mem_mib = 256
    link_mb_s = 30.0            # each host's migration link (slow enough for a fault to land midway)
    cut_s = 4.0                 # how long a link_cut keeps the link down
    [faults]                    # kind = how many migrations get it (at most one fault per migration)
    link_cut = 1                # postcopy; the source's link goes down mid-postcopy for cut_s, then up
                                #   again (shorter than the agent's stall time: TCP rides it out)
    long_link_cut = 1           # postcopy; down for the stall time + cut_s: paused, then recovered
    kill_source_agent = 1       # postcopy; SIGKILL of the source agent mid-migration, restarted 1 s later
    kill_destination_agent = 1  # postcopy; the same at the destination
    kill_destination_qemu = 1   # precopy; the destination QEMU is killed: the VM must stay on the source
    slow_link = 1               # precopy; the source's link drops to 1/10 of its rate: cancelled at the
                                #   time-out or completed late, the VM never lost
    kill_destination_qemu_postcopy = 1  # postcopy; the destination QEMU (the running half) is killed:
                                #   the VM is lost, and must be reported lost (a loss the fault forces)
    kill_source_host = 1        # postcopy; the source's agent and QEMU are SIGKILLed (a dead host): the
                                #   manager must record the VM lost within 5 s (a loss the fault forces);
                                #   the agent is back 8 s later
    drop_wol = 1                # precopy to a destination put to sleep first, whose Wake-on-LAN packets
                                #   are all dropped: the waker must fall back to IPMI (powerfaults)
    bmc_down = 1                # postcopy to a sleeping destination whose BMC answers nothing: meter
                                #   and IPMI wake errors reported, woken by Wake-on-LAN, nothing lost

Migrations without a fault alternate postcopy and precopy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consolidator.domain.errors import UserError
from consolidator.domain.tomlfile import Fields, read_toml
from consolidator.domain.types import MigrationMethod

FAULT_METHODS = {
    "link_cut": MigrationMethod.POSTCOPY,
    "long_link_cut": MigrationMethod.POSTCOPY,
    "kill_source_agent": MigrationMethod.POSTCOPY,
    "kill_destination_agent": MigrationMethod.POSTCOPY,
    "kill_destination_qemu": MigrationMethod.PRECOPY,
    "slow_link": MigrationMethod.PRECOPY,
    "kill_destination_qemu_postcopy": MigrationMethod.POSTCOPY,
    "kill_source_host": MigrationMethod.POSTCOPY,
    "drop_wol": MigrationMethod.PRECOPY,
    "bmc_down": MigrationMethod.POSTCOPY,
}
# half of a postcopy's guest dies with its host: a loss the fault forces
FORCED_LOSS = {"kill_destination_qemu_postcopy", "kill_source_host"}
BUILT_IN: dict[str, dict[str, Any]] = {
    "quick": {"seed": 1, "migrations": 7, "link_mb_s": 30.0,
              "faults": {"link_cut": 1, "kill_source_agent": 1, "kill_destination_agent": 1,
                         "kill_destination_qemu": 1, "kill_destination_qemu_postcopy": 1, "drop_wol": 1,
                         "bmc_down": 1}},
    "all": {"seed": 1, "migrations": 11, "link_mb_s": 30.0, "faults": {kind: 1 for kind in FAULT_METHODS}},
}


@dataclass(frozen=True, slots=True)
class Step:
    """One migration of the run: its method and the fault injected into it (None: no fault)."""

    method: MigrationMethod
    fault: str | None


@dataclass(frozen=True, slots=True)
class FaultSpec:
    name: str
    seed: int
    steps: tuple[Step, ...]
    vm_mem_mib: int
    link_bytes_per_s: float
    cut_s: float


def parse_spec(data: dict[str, Any], name: str, source: str) -> FaultSpec:
    doc = Fields(data, source)
    doc.only({"seed", "migrations", "vm_mem_mib", "link_mb_s", "cut_s", "faults"})
    faults = doc.sub("faults")
    plan: list[str | None] = []
    for kind in faults.table:
        if kind not in FAULT_METHODS:
            faults.fail(kind, f"unknown fault kind; known: {sorted(FAULT_METHODS)}")
        plan += [kind] * int(faults.number(kind, 0, 0, 20))
    migrations = int(doc.number("migrations", max(len(plan), 1), 1, 50))
    if len(plan) > migrations:
        doc.fail("migrations", f"{len(plan)} faults need at least as many migrations")
    seed = int(doc.number("seed", 1, 0, 2**31))
    plan += [None] * (migrations - len(plan))
    random.Random(seed).shuffle(plan)
    plain = (MigrationMethod.POSTCOPY, MigrationMethod.PRECOPY)
    steps = tuple(Step(FAULT_METHODS[f] if f else plain[i % 2], f) for i, f in enumerate(plan))
    return FaultSpec(name, seed, steps, int(doc.number("vm_mem_mib", 256, 128, 1024)),
                     doc.number("link_mb_s", 30.0, 5.0, 1000.0) * 1e6, doc.number("cut_s", 4.0, 0.5, 60.0))


def load_spec(spec: str) -> FaultSpec:
    """A built-in name (``quick``, ``all``) or the path of a TOML file."""
    if spec in BUILT_IN:
        return parse_spec(BUILT_IN[spec], spec, f"built-in {spec}")
    path = Path(spec)
    if not path.exists():
        raise UserError(f"not a built-in ({', '.join(BUILT_IN)}) and no such file", source=spec, field="--faults")
    return parse_spec(read_toml(path, "a fault spec"), path.stem, spec)
