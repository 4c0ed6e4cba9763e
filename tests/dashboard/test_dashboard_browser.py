"""The dashboard in a real headless Chromium, served by a real manager process over real host agents.

Three agent processes (``consolidator agent``, emulated hosts: S3 is a state of the agent, QEMU is
real, TCG here) and the manager's own command (``consolidator manager --config cluster.toml
--listen``). pm0 is the Warehouse with vm0, pm1 and pm2 Server nodes with vm1 and vm2: the paper
policy wants both back on pm0 and pm1, pm2 asleep, but vm2 is pinned (an operator rule). The page is
driven by Debian's chromium through Playwright (nothing is downloaded): without a token it shows no data; signed in,
its tiles equal the /api/status answer it drew; in ``recommend`` mode it lists the plan while the
agents see no migration; its mode switch puts the manager in ``auto`` (checked through the API),
after which the move shows on the timeline, the emptied host sleeps and the pin's refusals are
counted. The last screenshot is docs/images/dashboard.png when ``DASHBOARD_SCREENSHOT`` names that file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploy_guide_blocks import guide_blocks, localize

from consolidator.agent.qemu import launch
from consolidator.experiments.lab.agents import (
    AgentSpec,
    start_agent,
    stop_agent,
    wait_ready,
    write_config,
    write_token,
)

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOSTS = {"pm0": "warehouse", "pm1": "server", "pm2": "server"}
VMS = {"vm0": "pm0", "vm1": "pm1", "vm2": "pm2"}  # vm2 is pinned: the policy wants it home, a rule says no
VM_BODY = {"mem_mib": 128, "vcpus": 1, "cpu_quota": 0.5, "load": 0.2, "dirty_mib_s": 1.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float, every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)


@dataclass
class Cluster:
    root: Path
    manager_url: str
    manager_token: str
    agent_token: str
    agents: dict[str, AgentSpec]
    agent_pids: dict[str, int] = field(default_factory=dict)
    manager: subprocess.Popen[bytes] | None = None

    def api(self, path: str, token: str | None = "", **kwargs: Any) -> httpx.Response:
        token = self.manager_token if token == "" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(kwargs.pop("method", "GET"), f"{self.manager_url}{path}", headers=headers,
                             timeout=10, **kwargs)

    def agent(self, host: str, path: str, **kwargs: Any) -> httpx.Response:
        spec = self.agents[host]
        return httpx.request(kwargs.pop("method", "GET"), f"{spec.base_url}/v1{path}", timeout=120,
                             headers={"Authorization": f"Bearer {self.agent_token}"}, **kwargs)

    def placement(self) -> dict[str, str]:
        """Where the agents say each VM runs (a VM on its way counts on both hosts)."""
        return {vm["name"]: host for host in self.agents for vm in self.agent(host, "/vms").json()
                if vm["state"] == "running"}

    def manager_log(self) -> str:
        path = self.root / "manager.log"
        return path.read_text()[-3000:] if path.exists() else ""


def _cluster_toml(c: Cluster, port: int) -> str:
    lines = ['mode = "recommend"', "period_s = 1.0", f'run_store = "sqlite:///{c.root}/manager.sqlite"',
             f'listen = "127.0.0.1:{port}"', f'api_token_file = "{c.root}/manager.token"', "",
             # host load = the VMs' loads + 0.05 each (as the lab's model mode): under TCG QEMU's own CPU
             # would count as guest load and push the Warehouse towards its 0.9 threshold
             "overhead_per_vm = 0.05", "",
             "[policy]", 'name = "paper"', "args = { hold_s = 3 }", "",
             "[migration]", 'method = "postcopy"', "",
             "[limits]", "min_hold_s = 3", ""]
    for host, role in HOSTS.items():
        lines += [f"[hosts.{host}]", f'role = "{role}"', 'driver = "agent"', f'url = "{c.agents[host].base_url}"',
                  f'token_file = "{c.root}/agent.token"', "cores = 1.0", "mem_mib = 4096", 'sleep = "s3"',
                  "suspend_s = 0.5", "wake_s = 0.5", ""]
    lines += ["[vms.vm2]", "pin = true", ""]
    return "\n".join(lines)


def _create_vm(c: Cluster, vm: str, host: str) -> None:
    """Boot one guest; once more if the first boot fails (under heavy load a TCG guest kernel can fail
    its boot-time timer check, docs/agent.md), with the agent's log in the message if both fail."""
    for attempt in (1, 2):
        answer = c.agent(host, "/vms", method="POST", json={"name": vm, **VM_BODY})
        if answer.status_code == 201:
            return
        log = (c.root / f"{host}.log").read_text()[-2000:]
        assert attempt == 1, f"{vm} on {host}: {answer.status_code} {answer.text}\n{log}"


def _teardown(c: Cluster) -> None:
    if c.manager is not None and c.manager.poll() is None:
        c.manager.send_signal(signal.SIGTERM)
        try:
            c.manager.wait(timeout=60)
        except subprocess.TimeoutExpired:
            c.manager.kill()
            c.manager.wait()
    for pid in c.agent_pids.values():
        stop_agent(pid)
    for pidfile in c.root.glob("*/*/qemu.pid"):
        pid = launch.read_pid(launch.VmPaths(pidfile.parent))
        if pid is not None and launch.is_qemu(pid):
            launch.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = launch.why_qemu_cannot_run()
    if reason:
        pytest.skip(reason)
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.d/60-browser.sh installs it)")
    root = Path(f"/tmp/cdash-{os.getpid()}")  # short: QMP unix socket paths must stay under 108 bytes
    shutil.rmtree(root, ignore_errors=True)
    write_token(root / "agent.token")
    write_token(root / "manager.token")
    peers = {h: "127.0.0.1" for h in HOSTS}  # every host may send to every other (migrations over loopback)
    specs = {h: AgentSpec(h, "127.0.0.1", free_port(), root / h, root / "agent.token", suspend_s=0.5,
                          resume_s=0.5, peers={p: a for p, a in peers.items() if p != h}) for h in HOSTS}
    port = free_port()
    c = Cluster(root, f"http://127.0.0.1:{port}", (root / "manager.token").read_text().strip(),
                (root / "agent.token").read_text().strip(), specs)
    try:
        import asyncio

        for host, spec in specs.items():
            # write_config gives the lab's boot time-out (240 s): enough for a TCG boot on a loaded machine
            config = write_config(spec, root / f"{host}.toml")
            c.agent_pids[host] = start_agent(spec, config, root / f"{host}.log")
        for host, spec in specs.items():
            asyncio.run(wait_ready(spec, c.agent_pids[host], timeout_s=60))
        for vm, host in VMS.items():
            _create_vm(c, vm, host)
        config = root / "cluster.toml"
        config.write_text(_cluster_toml(c, port))
        with (root / "manager.log").open("wb") as log:
            c.manager = subprocess.Popen(
                [sys.executable, "-m", "consolidator.cli.main", "manager", "--config", str(config),
                 "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def discovered() -> bool:
            assert c.manager is not None and c.manager.poll() is None, c.manager_log()
            try:
                status = c.api("/api/status").json()
            except httpx.HTTPError:
                return False
            return sorted(v["name"] for v in status.get("vms", [])) == sorted(VMS)

        wait_for("the manager to discover both VMs", discovered, timeout_s=120)
        yield c
    finally:
        _teardown(c)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1360, "height": 1000})
        page = context.new_page()
        page.problems = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: page.problems.append(f"page error: {exc}"))  # type: ignore[attr-defined]
        page.on("console", lambda msg: page.problems.append(msg.text) if msg.type == "error" else None)  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            context.close()


def _api_calls(page: Any, action: Callable[[], None]) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []

    def record(response: Any) -> None:
        if "/api/" in response.url:
            seen.append((response.url, response.status))

    page.on("response", record)
    try:
        action()
        page.wait_for_timeout(2500)  # a refresh period: nothing may arrive in the background either
    finally:
        page.remove_listener("response", record)
    return seen


def test_without_the_token_there_is_no_data(cluster: Cluster, browser: Any) -> None:
    for path in ("/api/status", "/api/power", "/api/migrations", "/api/recommendations", "/api/refusals",
                 "/api/energy", "/api/mode"):
        assert cluster.api(path, token=None).status_code == 401, path
        assert cluster.api(path, token="not-the-token-0123456789").status_code == 401, path
    assert cluster.api("/api/mode", token=None, method="PUT", json={"mode": "auto"}).status_code == 401

    calls = _api_calls(browser, lambda: browser.goto(f"{cluster.manager_url}/"))
    assert browser.url == f"{cluster.manager_url}/dashboard/"
    assert browser.is_visible("#login") and not browser.is_visible("#app")
    assert browser.locator(".tile").count() == 0 and calls == []

    def wrong_token() -> None:
        browser.fill("#token-input", "not-the-token-0123456789")
        browser.click("#login-submit")
        browser.wait_for_selector("#login-error:not([hidden])")

    calls = _api_calls(browser, wrong_token)
    assert browser.text_content("#login-error") == "The manager refused this token."
    assert calls and all(status == 401 for _, status in calls), calls
    assert browser.locator(".tile").count() == 0 and not browser.is_visible("#app")
    assert cluster.api("/api/mode").json()["mode"] == "recommend"
    # the refused call is the only thing the browser complains about
    assert browser.problems and all("401 (Unauthorized)" in p for p in browser.problems), browser.problems
    browser.problems.clear()


def _watts_text(watts: float | None) -> str:
    return "–" if watts is None else f"{round(watts)} W"  # Fmt.watts below 10 kW (JS rounds .5 up)


def test_tiles_show_what_api_status_says(cluster: Cluster, browser: Any) -> None:
    browser.fill("#token-input", cluster.manager_token)
    with browser.expect_response(lambda r: r.url.endswith("/api/status") and r.status == 200) as drawn:
        browser.click("#login-submit")
    status = drawn.value.json()
    browser.wait_for_selector(".tile")
    # the first refresh draws the same answer again a moment later; compare with the one the page drew
    tiles = browser.eval_on_selector_all(".tile", """tiles => tiles.map(t => ({
        name: t.dataset.host, state: t.dataset.state,
        watts: t.querySelector('.tile-watts').textContent,
        vms: [...t.querySelectorAll('.vm')].map(v => v.dataset.vm)}))""")
    fresh = cluster.api("/api/status").json()
    assert [t["name"] for t in tiles] == [h["name"] for h in status["hosts"]] == sorted(HOSTS)
    for tile, host in zip(tiles, status["hosts"], strict=True):
        assert tile["vms"] == list(host["vms"])
        assert tile["state"] in {host["state"], *(h["state"] for h in fresh["hosts"] if h["name"] == host["name"])}
    # the placement the page shows is the agents' (nothing has moved in recommend mode)
    assert {vm: t["name"] for t in tiles for vm in t["vms"]} == VMS == cluster.placement()
    # numbers: the page re-draws every 2 s; hold it still and compare one answer with what it drew
    browser.evaluate("stopPolling()")
    with browser.expect_response(lambda r: r.url.endswith("/api/status") and r.status == 200) as again:
        browser.evaluate("async () => { while (busy) await new Promise(r => setTimeout(r, 50)); await refresh(); }")
    status = again.value.json()
    browser.wait_for_timeout(300)
    shown = browser.eval_on_selector_all(".tile", "ts => ts.map(t => [t.dataset.host, t.dataset.state, "
                                                  "t.querySelector('.tile-watts').textContent, "
                                                  "t.querySelector('.tile-load').textContent])")
    expected = [[h["name"], h["state"], _watts_text(h["watts"]), f"load {round(h['load'] * 100)} %"]
                for h in status["hosts"]]
    assert shown == expected
    total = sum(h["watts"] or 0 for h in status["hosts"])
    assert browser.text_content("#sum-watts") == _watts_text(total)
    assert browser.text_content("#sum-vms") == str(len(status["vms"]))
    assert browser.text_content("#sum-migrations") == str(status["migrations_running"])
    awake = sum(h["state"] == "on" for h in status["hosts"])
    assert browser.text_content("#sum-hosts") == f"{awake} / {len(status['hosts'])}"
    assert browser.get_attribute("#mode-recommend", "aria-pressed") == "true"
    browser.evaluate("startPolling()")


def test_recommend_mode_lists_the_plan_and_moves_nothing(cluster: Cluster, browser: Any) -> None:
    rows = wait_for("a recommendation on the page", lambda: browser.locator("#recs tbody tr").count(), 90)
    assert rows >= 1
    pending = cluster.api("/api/recommendations").json()
    assert pending and all(not r["applied"] for r in pending)
    shown = browser.locator("#recs tbody tr").first.locator(".act").all_text_contents()
    newest = pending[-1]["actions"]
    assert len(shown) == len(newest)
    moves = [a for a in (a for r in pending for a in r["actions"]) if a["kind"] == "migrate"]
    assert any(a["vm"] == "vm1" and a["src"] == "pm1" and a["dst"] == "pm0" for a in moves), pending
    assert "move vm1: pm1 → pm0 (postcopy)" in browser.text_content("#recs")
    # recommend mode applies nothing: the agents saw no migration and every host is still awake
    assert cluster.placement() == VMS
    for host in HOSTS:
        events = cluster.agent(host, "/events?after=0&timeout_s=0").json()["events"]
        assert [e for e in events if e["kind"].startswith("migration")] == [], (host, events)
        assert cluster.agent(host, "/host/stats").json()["power_state"] == "on"
    assert "pinned" in browser.text_content('.tile[data-host="pm2"] .vm[data-vm="vm2"]')
    assert browser.problems == []


def test_mode_switch_puts_the_manager_in_auto(cluster: Cluster, browser: Any) -> None:
    browser.click("#mode-auto")
    assert browser.is_visible("#mode-confirm")
    browser.click("#mode-confirm-no")  # cancelling changes nothing
    assert not browser.is_visible("#mode-confirm")
    assert cluster.api("/api/mode").json()["mode"] == "recommend"
    browser.click("#mode-auto")
    with browser.expect_response(lambda r: r.url.endswith("/api/mode") and r.request.method == "PUT") as put:
        browser.click("#mode-confirm-yes")
    assert put.value.status == 200
    mode = cluster.api("/api/mode").json()
    assert mode["mode"] == "auto"
    assert mode["changes"][-1]["to"] == "auto" and mode["changes"][-1]["from"] == "recommend"
    browser.wait_for_selector('#mode-auto[aria-pressed="true"]')
    assert browser.get_attribute("#mode-recommend", "aria-pressed") == "false"


def test_auto_mode_moves_and_the_timeline_and_tiles_show_it(cluster: Cluster, browser: Any, tmp_path: Path) -> None:
    try:
        wait_for("vm1 on pm0 (agents)", lambda: cluster.placement().get("vm1") == "pm0", 180)
    except AssertionError as exc:
        facts = {p: cluster.api(f"/api/{p}").json() for p in ("status", "migrations", "refusals")}
        raise AssertionError(f"{exc}\n{json.dumps(facts)[-3000:]}\n{cluster.manager_log()}") from None
    asleep = {"suspended", "suspending"}
    wait_for("pm1 asleep on the page",
             lambda: browser.get_attribute('.tile[data-host="pm1"]', "data-state") in asleep, 60)
    browser.wait_for_selector('#timeline rect.mig[data-vm="vm1"]')
    timeline = cluster.api("/api/migrations").json()
    move = next(m for m in timeline if m["vm"] == "vm1")
    assert (move["src"], move["dst"], move["method"]) == ("pm1", "pm0", "postcopy")
    title = browser.text_content('#timeline rect.mig[data-vm="vm1"] title')
    assert title.startswith("vm1: pm1 → pm0, postcopy")
    wait_for("pm0's tile listing both VMs", lambda: sorted(browser.eval_on_selector_all(
        '.tile[data-host="pm0"] .vm', "vs => vs.map(v => v.dataset.vm)")) == ["vm0", "vm1"], 30)
    assert cluster.placement() == {"vm0": "pm0", "vm1": "pm0", "vm2": "pm2"}  # the pinned VM stayed
    assert browser.get_attribute('.tile[data-host="pm2"]', "data-state") == "on"
    # with vm1 home, the policy asks for vm2 (one admission ticket per Warehouse node): the pin says no,
    # the refusal is counted and the page says which rule and why
    browser.wait_for_selector('#refusals tr[data-rule="pin"]')
    shown_pins = int(browser.text_content('#refusals tr[data-rule="pin"] td.num'))
    assert 1 <= shown_pins <= cluster.api("/api/refusals").json()["counts"]["pin"]
    assert "pinned to its host" in browser.text_content('#refusals tr[data-rule="pin"]')
    browser.wait_for_timeout(4000)  # a few more power samples after the hosts went to sleep
    assert browser.locator("#power-chart canvas").count() == 1
    assert not browser.is_visible("#error-banner") and browser.problems == []
    shot = Path(os.environ.get("DASHBOARD_SCREENSHOT", str(tmp_path / "dashboard.png")))
    browser.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    print(json.dumps({"screenshot": str(shot), "timeline": timeline}))


def test_the_guides_api_commands_work_against_the_manager(cluster: Cluster) -> None:
    """docs/deploy.md section 8 as an operator types it (bash and curl), against this manager."""
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: scripts/setup.d/61-deploy-checks.sh installs it")
    assert cluster.api("/api/mode", method="PUT", json={"mode": "recommend"}).status_code == 200
    here = (("/etc/consolidator/manager.token", str(cluster.root / "manager.token")),
            ("http://127.0.0.1:8780", cluster.manager_url))
    reads, switch = (b for b in guide_blocks() if b.lang == "sh" and "curl" in b.text)
    token_line = reads.text.splitlines()[0]
    assert token_line.startswith("TOKEN=")
    answers = []
    for script in (reads.text, f"{token_line}\n{switch.text}"):
        done = subprocess.run(["bash", "-euc", localize(script, cluster.root, here)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        text, decoder = done.stdout.strip(), json.JSONDecoder()
        while text:
            value, end = decoder.raw_decode(text)
            answers.append(value)
            text = text[end:].strip()
    recommendations, refusals, mode = answers
    assert isinstance(recommendations, list) and recommendations and "prediction" in recommendations[-1]
    assert refusals["counts"]["pin"] >= 1
    assert mode["mode"] == "auto" == cluster.api("/api/mode").json()["mode"]
    assert [c["to"] for c in mode["changes"][-2:]] == ["recommend", "auto"]


def test_a_host_whose_agent_stops_answering_shows_unknown(cluster: Cluster, browser: Any) -> None:
    stop_agent(cluster.agent_pids.pop("pm2"))  # its QEMU (vm2) keeps running; teardown kills it
    wait_for("pm2 unknown on the page",
             lambda: browser.get_attribute('.tile[data-host="pm2"]', "data-state") == "unknown", 60)
    status = cluster.api("/api/status").json()
    assert next(h for h in status["hosts"] if h["name"] == "pm2")["state"] == "unknown"
    assert browser.text_content('.tile[data-host="pm2"] .badge[data-state]') == "unknown"
    assert not browser.is_visible("#error-banner")  # one host down is not the manager down
