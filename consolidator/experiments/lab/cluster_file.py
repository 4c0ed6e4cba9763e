"""The lab's ``cluster.toml``: the manager service's configuration for the hosts ``lab up`` made.

``consolidator manager --config <lab>/cluster.toml`` then manages the lab like any cluster: the
lab's emulated hosts are woken through their agents, metered by the power model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from consolidator.domain.types import HostSpec, Role
from consolidator.experiments.lab.lab import LabState
from consolidator.manager.config import load_cluster_config


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items() if x is not None) + " }"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a TOML basic string


def _table(name: str, values: Mapping[str, Any]) -> str:
    lines = [f"[{name}]"] if name else []
    lines += [f"{k} = {_value(v)}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


def cluster_toml(state: LabState, hosts: Sequence[HostSpec] | None = None, **top: Any) -> str:
    """The text of the lab's cluster.toml. ``hosts``: roles, cores, memory and power of each lab host
    (default: the first a Warehouse node, the paper's host otherwise); ``top``: top-level keys and
    tables (``mode``, ``period_s``, ``policy``, ``migration``, ``limits``, ``vms``, ...)."""
    specs = {h.name: h for h in hosts or ()}
    folder = Path(state.folder)
    settings: dict[str, Any] = {"mode": "auto", "run_store": str(folder / "manager.sqlite"),
                                "api_token_file": str(state.token_file), "listen": "127.0.0.1:8780"}
    settings.update({k: v for k, v in top.items() if not isinstance(v, Mapping)})
    text = "# written by 'consolidator lab up': the manager's view of this lab\n" + _table("", settings)
    for name, table in top.items():
        if isinstance(table, Mapping) and name != "vms":
            text += "\n" + _table(name, table)
    for vm, rules in (top.get("vms") or {}).items():
        text += "\n" + _table(f"vms.{vm}", rules)
    for i, host in enumerate(state.hosts):
        spec = specs.get(host)
        role = spec.role if spec is not None else (Role.WAREHOUSE if i == 0 else Role.SERVER)
        entry: dict[str, Any] = {"role": role.value, "driver": "agent", "url": state.agent_url(host),
                                 "token_file": str(state.token_file)}
        if spec is not None:
            p = spec.power
            entry.update(cores=spec.cores, core_speed=spec.core_speed, mem_mib=spec.mem_mib, suspend_s=p.suspend_s,
                         wake_s=p.resume_s,
                         profile={"idle_watts": p.idle_watts, "max_watts": p.max_watts,
                                  "suspended_watts": p.suspended_watts, "off_watts": p.off_watts,
                                  "full_load_cores": p.full_load_cores if p.full_load_cores is not None
                                  else spec.cores, "table_watts": list(p.table_watts) if p.table_watts else None})
        text += "\n" + _table(f"hosts.{host}", entry)
    return text


def write_cluster_config(state: LabState, hosts: Sequence[HostSpec] | None = None, **top: Any) -> Path:
    """Write ``<lab>/cluster.toml`` and check it with the manager's own loader; returns its path."""
    path = state.cluster_file
    path.write_text(cluster_toml(state, hosts, **top))
    load_cluster_config(path)
    return path
