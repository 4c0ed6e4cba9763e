// The dashboard: asks for the manager's token, then polls its authenticated JSON API and draws it.
// The page itself carries no data; without an accepted token it shows only the sign-in form.
"use strict";

const TOKEN_KEY = "consolidator.token";
const REFRESH_MS = 2000;
const API = {
  status: "api/status",
  power: "api/power",
  migrations: "api/migrations",
  recommendations: "api/recommendations",
  refusals: "api/refusals",
  energy: "api/energy",
  mode: "api/mode",
};
const $ = (id) => document.getElementById(id);
const CLOCK_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];

class Unauthorized extends Error {}

// API paths are relative to the manager's root: the page lives at <root>/dashboard/.
const apiRoot = new URL("../", window.location.href);

async function call(path, { method = "GET", body } = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new Unauthorized("no token");
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(new URL(path, apiRoot), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    credentials: "omit",
  });
  if (answer.status === 401) throw new Unauthorized("token refused");
  if (!answer.ok) {
    let detail = answer.statusText;
    try { detail = (await answer.json()).detail ?? detail; } catch (_) { /* not JSON */ }
    throw new Error(`${method} ${path}: ${answer.status} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return answer.status === 204 ? null : answer.json();
}

// An optional endpoint the manager may not serve: its absence leaves that panel empty, not an error.
async function optional(path) {
  try { return await call(path); } catch (err) {
    if (err instanceof Unauthorized) throw err;
    if (/: 404 /.test(err.message)) return null;
    throw err;
  }
}

// ---- sign-in ---------------------------------------------------------------------------------------

function showLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopPolling();
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
  $("token-input").value = "";
  $("token-input").focus();
}

async function signIn(event) {
  event.preventDefault();
  const token = $("token-input").value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    const status = await call(API.status);
    $("login").hidden = true;
    $("app").hidden = false;
    renderStatus(status);
    startPolling();
  } catch (err) {
    showLogin(err instanceof Unauthorized ? "The manager refused this token." : `Cannot reach the manager: ${err.message}`);
  }
}

// ---- polling ---------------------------------------------------------------------------------------

let timer = null;
let busy = false;

function startPolling() {
  stopPolling();
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

function stopPolling() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

async function refresh() {
  if (busy) return;  // a slow manager: skip a beat rather than pile requests up
  busy = true;
  try {
    const [status, power, migrations, recs, refusals, energy] = await Promise.all([
      call(API.status), optional(`${API.power}?seconds=600`), optional(API.migrations),
      optional(API.recommendations),
      optional(API.refusals), optional(API.energy),
    ]);
    renderStatus(status);
    renderPower(power);
    renderMigrations(migrations, status, power);
    renderRecommendations(recs, status);
    renderRefusals(refusals);
    renderEnergy(energy, status);
    setConnection(true, `updated ${new Date().toLocaleTimeString()}`);
    $("error-banner").hidden = true;
  } catch (err) {
    if (err instanceof Unauthorized) { showLogin("The manager no longer accepts this token."); return; }
    setConnection(false, "manager unreachable");
    $("error-banner").textContent = err.message;
    $("error-banner").hidden = false;
  } finally {
    busy = false;
  }
}

function setConnection(ok, text) {
  $("conn-dot").className = `dot ${ok ? "ok" : "bad"}`;
  $("conn-text").textContent = text;
}

// ---- status: summary and host tiles ----------------------------------------------------------------

let currentMode = null;


function renderStatus(status) {
  currentMode = status.mode;
  for (const button of document.querySelectorAll(".seg")) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === status.mode));
  }
  const vmByName = new Map(status.vms.map((v) => [v.name, v]));
  const awake = status.hosts.filter((h) => h.state === "on").length;
  const totalW = status.hosts.reduce((sum, h) => sum + (Number.isFinite(h.watts) ? h.watts : 0), 0);
  $("sum-watts").textContent = Fmt.watts(totalW);
  $("sum-hosts").textContent = `${awake} / ${status.hosts.length}`;
  const asleep = status.hosts.filter((h) => h.state === "suspended" || h.state === "off").length;
  $("sum-hosts-sub").textContent = asleep ? `${asleep} asleep` : "";
  $("sum-vms").textContent = String(status.vms.length);
  $("sum-migrations").textContent = String(status.migrations_running);

  const tiles = status.hosts.map((host) => hostTile(host, vmByName));
  $("hosts").replaceChildren(...tiles);
}

function hostTile(host, vmByName) {
  const names = host.vms ?? [];
  const load = host.load;

  const fill = el("span");
  fill.style.width = `${Math.min(100, Math.max(0, load * 100))}%`;
  const chips = names.length
    ? names.map((n) => {
      const vm = vmByName.get(n);
      const rules = vm?.rules?.length ? ` (${vm.rules.join(", ")})` : "";
      return el("span", { class: "vm", dataset: { vm: n }, title: `${n}: load ${Fmt.load(vm?.load)}${rules}` },
        `${n} · ${Fmt.load(vm?.load)}${vm?.rules?.includes("pin") ? " · pinned" : ""}`);
    })
    : [el("span", { class: "muted vm-none" }, "no VMs")];
  return el("article", { class: "tile", dataset: { host: host.name, state: host.state } },
    el("div", { class: "tile-head" },
      el("span", { class: "tile-name" }, host.name),
      el("span", { class: "badges" },
        host.maintenance ? el("span", { class: "badge maint", title: "evacuate, never wake, never target" },
          "maintenance") : null,
        el("span", { class: "badge", dataset: { state: host.state } }, host.state))),
    el("div", { class: "tile-metrics" },
      el("span", { class: "tile-watts", dataset: { watts: host.watts ?? "" } }, Fmt.watts(host.watts)),
      el("span", { class: "tile-load", dataset: { load: load } }, `load ${Fmt.load(load)}`)),
    el("div", { class: `bar${load > 0.9 ? " over" : ""}`, title: "CPU load of the host's VMs (90 % = overload threshold)" }, fill),
    el("div", { class: "vms", dataset: { count: names.length } }, ...chips));
}

// ---- power chart -----------------------------------------------------------------------------------

let chart = null;
let chartHosts = "";

// power: {"t_s": [...], "hosts": {host: [watts | null, ...]}, "total_watts": [...]}
function renderPower(power) {
  const times = power?.t_s ?? [];
  $("power-empty").hidden = times.length > 0;
  if (!times.length || typeof uPlot === "undefined") return;
  const hosts = Object.keys(power.hosts ?? {}).sort();
  const data = [times, power.total_watts, ...hosts.map((h) => power.hosts[h])];
  const key = hosts.join(",");
  if (chart && key === chartHosts) { chart.setData(data); return; }
  if (chart) chart.destroy();
  chartHosts = key;
  const palette = ["#2f6fdb", "#1f9d55", "#d98a00", "#7a5cd6", "#d0413c", "#1a9bb0", "#b0527a", "#6b7a2a"];
  const box = $("power-chart");
  chart = new uPlot({
    width: Math.max(box.clientWidth, 400), height: 260,
    scales: { x: { time: false } },
    legend: { live: false },
    axes: [{ values: (_, ticks) => ticks.map(Fmt.clock), label: "run time", incrs: CLOCK_STEPS_S },
      { values: (_, ticks) => ticks.map((w) => `${Math.round(w)} W`), size: 60 }],
    series: [{ label: "t", value: (_, t) => Fmt.clock(t) },
      { label: "total", stroke: "#1d2430", width: 2, value: (_, w) => Fmt.watts(w), points: { show: false } },
      ...hosts.map((h, i) => ({ label: h, stroke: palette[i % palette.length], width: 1.25,
        value: (_, w) => Fmt.watts(w), spanGaps: true, points: { show: false } }))],
  }, data, box);
}

// ---- migrations, recommendations, refusals, energy --------------------------------------------------

// migrations: [{vm, src, dst, method, start_s, end_s, outcome, downtime_s, detail}], oldest first
function renderMigrations(list, status, power) {
  list = list ?? [];
  $("timeline-empty").hidden = list.length > 0;
  const times = power?.t_s ?? [];
  const now = status.t_s ?? (times.length ? times[times.length - 1] : 0);
  drawTimeline($("timeline"), list, now);
}

function describeAction(a) {
  if (a.kind === "migrate") return `move ${a.vm}: ${a.src} → ${a.dst} (${a.method})`;
  if (a.kind === "suspend") return `suspend ${a.host}`;
  if (a.kind === "wake") return `wake ${a.host}`;
  return `${a.kind} ${a.vm ?? a.host ?? ""}`;
}

// A plan's predicted risk, in words: {postcopy_moves, vm_loss_window_s, precopy_may_not_converge}
function describeRisk(risk) {
  if (!risk) return "–";
  const words = [];
  if (risk.postcopy_moves) {
    words.push(`${risk.postcopy_moves} postcopy move${risk.postcopy_moves > 1 ? "s" : ""}` +
      (Number.isFinite(risk.vm_loss_window_s) ? ` (VM-loss window ${Fmt.seconds(risk.vm_loss_window_s)})` : ""));
  }
  if (risk.precopy_may_not_converge) words.push("precopy may not converge");
  return words.length ? words.join("; ") : "low";
}

// recommendations: [{t_s, actions: [...], prediction: {moves, migration_s, energy_wh_per_hour,
//                    hosts_on_before, hosts_on_after, risk}}], oldest first
// Predicted energy effect in Wh per hour (= watts saved on average); under 0.05 it is no change.
function energyEffect(gain) {
  if (!Number.isFinite(gain)) return "–";
  if (Math.abs(gain) < 0.05) return "no change";
  return `${gain > 0 ? "saves" : "costs"} ${Math.abs(gain).toFixed(1)} Wh/h`;
}

// The manager records the plan of every period: the same plan period after period is one row.
function groupPlans(list) {
  const groups = [];
  for (const plan of list) {
    const key = JSON.stringify((plan.actions ?? []).map(describeAction));
    const last = groups.at(-1);
    if (last && last.key === key) {
      last.count += 1;
      last.plan = plan;
    } else {
      groups.push({ key, first_s: plan.t_s, count: 1, plan });
    }
  }
  return groups;
}

function renderRecommendations(list, status) {
  const recommending = status.mode === "recommend";
  $("recs-title").textContent = recommending ? "Pending recommendations" : "Recommendations not applied";
  $("recs-note").textContent = recommending
    ? "Recommend mode: each period's plan is recorded with the simulator's predicted effect; nothing is applied."
    : "Auto mode: plans are applied as they are made. Below: plans recorded earlier in recommend mode.";
  list = list ?? [];
  $("recs-empty").hidden = list.length > 0;
  const rows = groupPlans(list).slice(-8).reverse().map(({ first_s, count, plan: r }) => {
    const p = r.prediction ?? {};
    const gain = p.energy_wh_per_hour;  // Wh saved per hour = watts saved on average
    const hostsOn = Number.isFinite(p.hosts_on_before) && Number.isFinite(p.hosts_on_after)
      ? `${p.hosts_on_before} → ${p.hosts_on_after}` : "–";
    return el("tr", {},
      el("td", { class: "num", title: `${count} period${count > 1 ? "s" : ""}` },
        count > 1 ? `${Fmt.clock(first_s)}–${Fmt.clock(r.t_s)} ×${count}` : Fmt.clock(r.t_s)),
      el("td", {}, ...(r.actions ?? []).map((a) => el("span", { class: "act", title: a.reason ?? "" },
        describeAction(a)))),
      el("td", { class: `num ${gain >= 0.05 ? "gain" : gain <= -0.05 ? "loss" : ""}` }, energyEffect(gain)),
      el("td", { class: "num" }, hostsOn),
      el("td", { class: "num" }, `${p.moves ?? 0}${Number.isFinite(p.migration_s) ? ` · ${Fmt.seconds(p.migration_s)}` : ""}`),
      el("td", {}, describeRisk(p.risk)));
  });
  $("recs").querySelector("tbody").replaceChildren(...rows);
}

// refusals: {counts: {rule: n}, recent: [{t_s, rule, action, reason}]}
function renderRefusals(answer) {
  const counts = Object.entries(answer?.counts ?? {}).sort((a, b) => b[1] - a[1]);
  const recent = answer?.recent ?? [];
  $("refusals-empty").hidden = counts.length > 0;
  const rows = counts.map(([rule, count]) => {
    const last = recent.filter((r) => r.rule === rule).at(-1);
    return el("tr", { dataset: { rule } },
      el("td", {}, rule),
      el("td", { class: "small" }, last ? `${typeof last.action === "object" ? describeAction(last.action)
        : last.action}: ${last.reason}` : "–"),
      el("td", { class: "num" }, count));
  });
  $("refusals").querySelector("tbody").replaceChildren(...rows);
}

// energy: {energy_wh, all_on_wh, saved_wh, saved_share}
function renderEnergy(energy) {
  if (!energy) { $("sum-saved").textContent = "–"; return; }
  $("sum-saved").textContent = Fmt.energyWh(energy.saved_wh);
  $("sum-saved-sub").textContent = Number.isFinite(energy.all_on_wh) && energy.all_on_wh > 0
    ? `${Fmt.percent(energy.saved_share)} of ${Fmt.energyWh(energy.all_on_wh)} with every host on` : "";
}

// ---- mode switch -----------------------------------------------------------------------------------

let pendingMode = null;

function askMode(mode) {
  if (mode === currentMode) return;
  pendingMode = mode;
  $("mode-confirm-text").textContent = mode === "auto"
    ? "Switch to Auto? The manager will apply its plans: VMs migrate and hosts sleep and wake."
    : "Switch to Recommend? The manager stops acting and only records what it would do.";
  $("mode-confirm").hidden = false;
}

async function confirmMode() {
  const mode = pendingMode;
  $("mode-confirm").hidden = true;
  pendingMode = null;
  if (!mode) return;
  try {
    await call(API.mode, { method: "PUT", body: { mode } });
    await refresh();
  } catch (err) {
    if (err instanceof Unauthorized) { showLogin("The manager no longer accepts this token."); return; }
    $("error-banner").textContent = `Mode not changed: ${err.message}`;
    $("error-banner").hidden = false;
  }
}

// ---- start -----------------------------------------------------------------------------------------

function start() {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", () => showLogin(""));
  for (const button of document.querySelectorAll(".seg")) {
    button.addEventListener("click", () => askMode(button.dataset.mode));
  }
  $("mode-confirm-yes").addEventListener("click", confirmMode);
  window.addEventListener("resize", () => {
    if (chart) chart.setSize({ width: Math.max($("power-chart").clientWidth, 400), height: 260 });
  });
  $("mode-confirm-no").addEventListener("click", () => { $("mode-confirm").hidden = true; pendingMode = null; });
  if (sessionStorage.getItem(TOKEN_KEY)) {
    $("app").hidden = false;
    startPolling();
  } else {
    showLogin("");
  }
}

document.addEventListener("DOMContentLoaded", start);
