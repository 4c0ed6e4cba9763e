// Units for people: watts, energy, loads and durations as an operator reads them.
"use strict";

const Fmt = {
  watts(w) {
    if (w === null || w === undefined || !Number.isFinite(w)) return "–";
    if (Math.abs(w) >= 10000) return `${(w / 1000).toFixed(1)} kW`;
    return `${Math.round(w)} W`;
  },
  // Energy in watt-hours, shown as Wh or kWh.
  energyWh(wh) {
    if (wh === null || wh === undefined || !Number.isFinite(wh)) return "–";
    if (Math.abs(wh) >= 1000) return `${(wh / 1000).toFixed(2)} kWh`;
    if (Math.abs(wh) >= 10) return `${wh.toFixed(0)} Wh`;
    return `${wh.toFixed(1)} Wh`;
  },
  // A load is a fraction of one "100 %" unit (DESIGN §2): 0.8 is 80 %.
  load(x) {
    if (x === null || x === undefined || !Number.isFinite(x)) return "–";
    return `${Math.round(x * 100)} %`;
  },
  percent(x, digits = 1) {
    if (x === null || x === undefined || !Number.isFinite(x)) return "";
    return `${(x * 100).toFixed(digits)} %`;
  },
  seconds(s) {
    if (s === null || s === undefined || !Number.isFinite(s)) return "–";
    if (s < 1) return `${Math.round(s * 1000)} ms`;
    if (s < 120) return `${s.toFixed(1)} s`;
    if (s < 7200) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${(s / 3600).toFixed(1)} h`;
  },
  // Run time (seconds since the manager started) as m:ss or h:mm:ss.
  clock(s) {
    if (!Number.isFinite(s)) return "";
    const sign = s < 0 ? "−" : "";
    s = Math.abs(Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return `${sign}${h ? h + ":" : ""}${mm}:${String(sec).padStart(2, "0")}`;
  },
};

// Builds DOM nodes from elements and text nodes, never from markup strings: every value from the API lands as text, never as markup.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
