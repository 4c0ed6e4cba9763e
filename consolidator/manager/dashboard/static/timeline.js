// The migration timeline: one lane per VM, one bar per migration (start to end, or to now while it runs).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A round step for the time axis: about six ticks over the window.
function tickStep(spanS) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
  return steps.find((s) => spanS / s <= 7) || 86400;
}

// migrations: [{vm, src, dst, method, start_s, end_s|null, outcome|null, downtime_s}], nowS: run time.
function drawTimeline(container, migrations, nowS, windowS = 600) {
  container.replaceChildren();
  if (!migrations.length) return;
  const lanes = [...new Set(migrations.map((m) => m.vm))].sort();
  const t1 = Math.max(nowS, ...migrations.map((m) => m.end_s ?? m.start_s));
  const t0 = Math.max(0, t1 - windowS);  // the last ten minutes of the run, like the power chart
  const span = Math.max(t1 - t0, 10);
  const width = Math.max(container.clientWidth, 480), laneH = 26, labelW = 90, top = 6, axisH = 22;
  const height = top + lanes.length * laneH + axisH;
  const x = (t) => labelW + ((t - t0) / span) * (width - labelW - 10);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, height, role: "img",
    "aria-label": `${migrations.length} migrations of ${lanes.length} VMs` });

  const step = tickStep(span);
  for (let t = Math.ceil(t0 / step) * step; t <= t0 + span; t += step) {
    root.append(svg("line", { class: "grid", x1: x(t), x2: x(t), y1: top, y2: height - axisH }));
    root.append(svg("text", { class: "axis", x: x(t), y: height - 6, "text-anchor": "middle" }, Fmt.clock(t)));
  }
  lanes.forEach((vm, i) => {
    root.append(svg("text", { class: "lane-label", x: 0, y: top + i * laneH + 17 }, vm));
  });
  for (const m of migrations) {
    const end = m.end_s ?? t1;
    if (end < t0) continue;
    const x0 = x(Math.max(m.start_s, t0)), w = Math.max(x(end) - x0, 3);
    const state = m.outcome ?? "running";
    const bar = svg("rect", { class: `mig ${state} ${m.method}`, x: x0, y: top + lanes.indexOf(m.vm) * laneH + 4,
      width: w, height: laneH - 8, "data-vm": m.vm });
    const took = m.end_s !== null && m.end_s !== undefined ? Fmt.seconds(m.end_s - m.start_s) : "running";
    const down = Number.isFinite(m.downtime_s) && m.downtime_s > 0 ? `, downtime ${Fmt.seconds(m.downtime_s)}` : "";
    bar.append(svg("title", {}, `${m.vm}: ${m.src} → ${m.dst}, ${m.method}, ${state} (${took}${down})`));
    root.append(bar);
    if (w > 70) {
      root.append(svg("text", { class: "bar-label", x: x0 + 5, y: top + lanes.indexOf(m.vm) * laneH + 17 },
        `${m.src} → ${m.dst}`));
    }
  }
  container.append(root);
  const legend = el("div", { class: "legend" },
    ...[["postcopy", "var(--on)"], ["precopy", "var(--accent)"], ["hybrid", "#7a5cd6"], ["running", "var(--busy)"],
      ["failed / cancelled", "var(--bad)"]].map(([name, colour]) => {
      const swatch = el("i");
      swatch.style.background = colour;
      return el("span", {}, swatch, name);
    }));
  container.append(legend);
}
