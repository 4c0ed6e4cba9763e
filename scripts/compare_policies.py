"""The paper's heuristic against `aware` (with given arguments) on the complex scenario, any seed range.

    python scripts/compare_policies.py FIRST_SEED SEEDS ['{"fill": 0.8}' ...]

Prints, per row, the gap removed in energy to complete (per seed against that seed's `none` and `ideal`,
then averaged, as `reproduce` does), energy to complete, delay p95 and mean, host-seconds on and moves.
docs/models.md quotes it for seeds 20-39, which played no part in choosing `aware`'s defaults.
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

from consolidator.domain.types import MigrationMethod
from consolidator.experiments.runs import simulate
from consolidator.sim.scenario import load_scenario

E = "energy_to_complete_ws"


def main(first: int, count: int, arg_sets: list[dict[str, float]]) -> None:
    sc = load_scenario("complex")
    seeds = range(first, first + count)

    def runs(policy: str, method: MigrationMethod, args: dict[str, float]) -> list[dict[str, Any]]:
        return [simulate(sc, policy, method, seed=s, policy_args=args, record_vms=False).summary for s in seeds]

    none, ideal = runs("none", MigrationMethod.POSTCOPY, {}), runs("ideal", MigrationMethod.INSTANT, {})
    rows = [("paper (postcopy)", runs("paper", MigrationMethod.POSTCOPY, {}))]
    rows += [(f"aware {json.dumps(a)}", runs("aware", MigrationMethod.POSTCOPY, a)) for a in arg_sets or [{}]]
    for name, summaries in rows:
        gap = statistics.fmean(100 * (n[E] - r[E]) / (n[E] - i[E]) for n, r, i in zip(none, summaries, ideal,
                                                                                        strict=True))

        def mean(key: str, summaries: list[dict[str, Any]] = summaries) -> float:
            return statistics.fmean(r[key] for r in summaries)

        print(f"{name:32s} gap {gap:6.1f} %  E {mean(E):9,.0f} Ws  p95 {mean('delay_p95_s'):5.1f} s  "
              f"mean {mean('delay_mean_s'):5.2f} s  host-s {mean('active_host_s'):6.0f}  "
              f"moves {mean('migrations'):5.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), [json.loads(a) for a in sys.argv[3:]])
