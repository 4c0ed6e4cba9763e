"""The simulator's models applied to one plan: what it would cost and save, and what it risks.

Each Migrate is priced by the migration model (``models.migration.estimate``: duration, downtime,
whether a precopy converges) at the VM's dirty rate and the link rate the plan's moves would get;
host power by the power model (``models.power.host_watts``). ``energy_wh_per_hour`` is the power
the plan saves over the next hour (hosts suspended minus hosts woken, each at its idle load) less
the energy its migrations cost (``migration_watts`` per endpoint while a move lasts, plus
``dirty_tracking_watts`` at a precopy's source). Risk: postcopy moves and their window in which a
host or link failure loses the VM (``vm_loss_window_s``), precopies the model says may not
converge before the timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from consolidator.domain.actions import Migrate, Plan, Suspend, Wake
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import MIB, HostSpec, MigrationMethod, PowerState
from consolidator.models.migration import MigrationParams, estimate
from consolidator.models.power import host_watts

HOUR_S = 3600.0


def predict(plan: Plan, s: Snapshot, hosts: Mapping[str, HostSpec], params: MigrationParams) -> dict[str, Any]:
    """Predicted effect of ``plan`` on the cluster in ``s`` (see the module doc)."""
    vm_index = {name: i for i, name in enumerate(s.vm_names)}
    moves = [a for a in plan.actions if isinstance(a, Migrate)]
    migration_s = migration_wh = loss_window_s = 0.0
    postcopy = may_not_converge = 0
    for m in moves:
        v = vm_index.get(m.vm)
        if v is None:
            continue
        mem = float(s.vm_mem_mib[v]) * MIB
        est = estimate(m.method, mem, mem, float(s.vm_dirty_bytes_per_s[v]), params)
        migration_s = max(migration_s, est.duration_s)
        src, dst = hosts.get(m.src), hosts.get(m.dst)
        watts = sum(h.power.migration_watts for h in (src, dst) if h is not None)
        if m.method is MigrationMethod.PRECOPY and src is not None:
            watts += src.power.dirty_tracking_watts
        migration_wh += watts * est.duration_s / HOUR_S
        if m.method in (MigrationMethod.POSTCOPY, MigrationMethod.HYBRID):
            postcopy += 1
            loss_window_s += est.duration_s
        if not est.converged and not est.switched_to_postcopy:
            may_not_converge += 1
    saved_w = 0.0
    for a in plan.actions:
        spec = hosts.get(a.host) if isinstance(a, Suspend | Wake) else None
        if spec is None:
            continue
        idle = host_watts(spec.power, PowerState.ON, 0.0, spec.cores)
        asleep = host_watts(spec.power, PowerState.SUSPENDED, 0.0, spec.cores)
        saved_w += (idle - asleep) * (1 if isinstance(a, Suspend) else -1)
    on_before = int(np.count_nonzero(s.host_state == PowerState.ON.code))
    suspends = sum(1 for a in plan.actions if isinstance(a, Suspend))
    wakes = sum(1 for a in plan.actions if isinstance(a, Wake))
    return {
        "moves": len(moves),
        "migration_s": round(migration_s, 3),
        "energy_wh_per_hour": round(saved_w - migration_wh, 3),
        "hosts_on_before": on_before,
        "hosts_on_after": on_before - suspends + wakes,
        "risk": {"postcopy_moves": postcopy, "vm_loss_window_s": round(loss_window_s, 3),
                 "precopy_may_not_converge": may_not_converge},
    }
