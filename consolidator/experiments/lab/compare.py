"""Live against simulated: the timeline of each method (migrations, suspend/resume) side by side.

Events are paired per key — (vm, src, dst) for migrations, (host, state) for power events — by an
order-keeping alignment that minimises the total time difference, an event left unpaired costing
``GAP_FRACTION`` of the run's duration: so an extra live decision (a VM sent away and back) is
shown as unpaired instead of shifting every later pair.
Differences are given in lab seconds and in the paper's seconds (divided by the time scale), and
relative to the simulated time of the event.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

from consolidator.experiments.runs import timeline
from consolidator.sim.engine import RunResult


def _keyed(items: list[tuple[tuple[str, ...], float]]) -> dict[tuple[str, ...], list[float]]:
    out: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for key, t in items:
        out[key].append(t)
    return out


def _marks(result: RunResult) -> list[tuple[tuple[str, ...], float]]:
    line = timeline(result)
    marks: list[tuple[tuple[str, ...], float]] = []
    for m in cast(list[dict[str, Any]], line["migrations"]):
        marks.append((("migration start", m["vm"], m["src"], m["dst"]), float(m["start_s"])))
        marks.append((("migration end", m["vm"], m["src"], m["dst"], m["outcome"]), float(m["end_s"])))
    for e in cast(list[dict[str, Any]], line["power_events"]):
        marks.append((("host " + e["state"], e["host"]), float(e["t_s"])))
    return marks


GAP_FRACTION = 0.1
# The lab's usual agreement with the simulator (docs/agent.md, docs/literature.md): every paired event
# of the story within 10 % of its simulated time (runs here: 4.4 % at load 2, 9 % at load 10), and
# the energy within 10 % (-1.3 % and +4.3 % in the paper policy's runs).
AGREEMENT_REL = 0.10


def disagreements(c: dict[str, Any], rel: float = AGREEMENT_REL) -> list[str]:
    """What in comparison ``c`` falls outside the lab's usual agreement: events left unpaired, paired
    events further than ``rel`` of their simulated time apart, energy further than ``rel`` apart."""
    found = [f"unpaired: {event}" for event in c["unmatched"]]
    found += [f"{r['event']} #{r['n']}: live {r['live_s']:.2f} s, simulated {r['sim_s']:.2f} s ({r['rel']:+.1%})"
              for r in c["events"] if r.get("rel") is not None and abs(r["rel"]) > rel]
    e = c["energy_ws"]
    if e["sim"] > 0 and abs(e["live"] - e["sim"]) > rel * e["sim"]:
        found.append(f"energy: live {e['live']:.0f} Ws, simulated {e['sim']:.0f} Ws")
    return found


def align(a: list[float], b: list[float], gap: float) -> list[tuple[int | None, int | None]]:
    """Order-keeping pairing of two sorted time lists minimising |differences| + gap per unpaired."""
    n, m = len(a), len(b)
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 or j == 0:
                cost[i][j] = gap * (i + j)
            else:
                cost[i][j] = min(cost[i - 1][j - 1] + abs(a[i - 1] - b[j - 1]),
                                 cost[i - 1][j] + gap, cost[i][j - 1] + gap)
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + abs(a[i - 1] - b[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and (j == 0 or cost[i][j] == cost[i - 1][j] + gap):
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


def compare(live: RunResult, sim: RunResult, time_scale: float, against: str = "simulated") -> dict[str, Any]:
    """Rows of (event, live_s, sim_s, diff), plus energy and the worst relative difference."""
    a, b = _keyed(_marks(live)), _keyed(_marks(sim))
    rows = []
    gap = GAP_FRACTION * (sim.totals.duration_s or 1.0)
    for key in sorted(set(a) | set(b), key=lambda k: min(a.get(k, []) + b.get(k, []) or [0.0])):
        la, lb = sorted(a.get(key, [])), sorted(b.get(key, []))
        for k, (i, j) in enumerate(align(la, lb, gap)):
            t_live = la[i] if i is not None else None
            t_sim = lb[j] if j is not None else None
            row: dict[str, Any] = {"event": " ".join(key), "n": k + 1, "live_s": t_live, "sim_s": t_sim}
            if t_live is not None and t_sim is not None:
                row["diff_s"] = round(t_live - t_sim, 3)
                row["diff_paper_s"] = round((t_live - t_sim) / time_scale, 2)
                row["rel"] = round((t_live - t_sim) / t_sim, 4) if t_sim > 0 else None
            rows.append(row)
    rows.sort(key=lambda r: r["sim_s"] if r["sim_s"] is not None else r["live_s"])
    rel = [abs(r["rel"]) for r in rows if r.get("rel") is not None]
    unmatched = [r["event"] for r in rows if r["live_s"] is None or r["sim_s"] is None]
    return {
        "method": live.method.value, "against": against, "time_scale": time_scale, "events": rows,
        "max_rel_diff": max(rel) if rel else None, "unmatched": unmatched,
        # one summary (models.summary) on both sides: the same definitions of energy and unserved CPU
        "energy_ws": {"live": round(live.totals.energy_ws, 1), "sim": round(sim.totals.energy_ws, 1)},
        "unserved_cpu_pct": {"live": round(live.totals.unserved_cpu_pct, 3),
                             "sim": round(sim.totals.unserved_cpu_pct, 3)},
    }


def to_markdown(comparisons: list[dict[str, Any]]) -> str:
    lines = ["# Live lab against the simulator", ""]
    for c in comparisons:
        lines += [f"## {c['method']}: live against {c['against']} (time scale {c['time_scale']:g})", "",
                  "| event | # | live (s) | simulated (s) | live − sim (s) | in paper s | relative |",
                  "|---|---|---|---|---|---|---|"]
        for r in c["events"]:
            def f(v: Any, fmt: str = "{:.2f}") -> str:
                return "—" if v is None else fmt.format(v)
            lines.append(f"| {r['event']} | {r['n']} | {f(r['live_s'])} | {f(r['sim_s'])} | "
                         f"{f(r.get('diff_s'))} | {f(r.get('diff_paper_s'))} | {f(r.get('rel'), '{:+.1%}')} |")
        e, u = c["energy_ws"], c["unserved_cpu_pct"]
        lines += ["", f"Energy: live {e['live']:.0f} Ws, simulated {e['sim']:.0f} Ws. "
                      f"Unserved CPU: live {u['live']:.2f} %, simulated {u['sim']:.2f} %.", ""]
    return "\n".join(lines) + "\n"
