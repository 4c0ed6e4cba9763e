"""cluster.toml: the resolved configuration, and one line naming file and field for each mistake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from consolidator.domain.errors import UserError
from consolidator.domain.types import Role
from consolidator.manager.config import AgentHost, load_cluster_config

TOKEN = "manager-test-token-0123456789"

GOOD = """
run_store = "{d}/run.sqlite"
api_token_file = "{d}/tok"
mode = "auto"
[policy]
name = "paper"
args = {{ hold_s = 5 }}
[limits]
reserve_hosts = 1
[hosts.pm0]
role = "warehouse"
driver = "agent"
url = "http://127.0.0.1:8700"
token_file = "{d}/tok"
[hosts.pm1]
driver = "agent"
url = "https://10.0.0.2:8700"
token_file = "{d}/tok"
tls_ca = "{d}/tok"
sleep = "off"
[hosts.pm1.power]
meter = "model"
wake = ["wol"]
mac = "52:54:00:12:34:56"
[vms.db1]
pin = true
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "tok").write_text(TOKEN + "\n")
    (tmp_path / "c.toml").write_text(GOOD.format(d=tmp_path))
    return tmp_path


def test_resolved_config_fills_defaults(folder: Path) -> None:
    cfg = load_cluster_config(folder / "c.toml")
    pm1 = cfg.hosts["pm1"]
    assert isinstance(pm1, AgentHost)
    assert (pm1.sleep, pm1.suspend_s, pm1.wake_s) == ("off", 20.0, 60.0)  # power-off wakes in 60 s
    assert (cfg.hosts["pm0"].wake_s, cfg.limits.reserve_hosts, cfg.vms["db1"].pin) == (5.0, 1, True)
    specs = {s.name: s for s in cfg.host_specs()}
    assert specs["pm0"].role is Role.WAREHOUSE
    assert specs["pm1"].power.resume_s == 60.0 and specs["pm1"].power.suspended_watts == 6.0


def test_check_prints_resolved_json(folder: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "manager", "--config",
                          str(folder / "c.toml"), "--check"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["mode"] == "auto" and data["hosts"]["pm1"]["wake_s"] == 60.0
    assert TOKEN not in out.stdout  # paths to secrets, never the secrets


BAD = [
    ('sleep = "off"', 'sleep = "s4"', "hosts.pm1.sleep"),
    ('driver = "agent"\nurl = "http://127.0.0.1:8700"', 'driver = "xen"\nurl = "x"', "hosts.pm0"),
    ('url = "https://10.0.0.2:8700"', 'url = "ftp://x"', "hosts.pm1.url"),
    ('wake = ["wol"]', 'wake = ["wol", "smoke"]', "hosts.pm1.power.wake"),
    ('mac = "52:54:00:12:34:56"', 'mac = "zz"', "hosts.pm1.power.mac"),
    ("pin = true", "pin = 3", "vms.db1.pin"),
    ('name = "paper"', 'name = "magic"', "policy"),
    ("hold_s = 5", "hold = 5", "policy.hold"),
    ("reserve_hosts = 1", "reserve_hosts = -1", "limits.reserve_hosts"),
    ("reserve_hosts = 1", "reserve_hosts = 1\nsurprise = 2", "limits.surprise"),
    ('mode = "auto"', 'mode = "yolo"', "mode"),
    ("[hosts.pm1]", "[hosts.PM1]", "hosts.PM1"),
    ('tls_ca = "{d}/tok"', 'tls_ca = "{d}/nope"', "hosts.pm1.tls_ca"),
    ('api_token_file = "{d}/tok"', 'api_token_file = "{d}/nope"', "api_token_file"),
]


@pytest.mark.parametrize(("old", "new", "field"), BAD, ids=[b[2] + ":" + b[1][:12] for b in BAD])
def test_each_mistake_names_file_and_field(folder: Path, old: str, new: str, field: str) -> None:
    text = GOOD.format(d=folder)
    old, new = old.format(d=folder), new.format(d=folder)
    assert old in text
    (folder / "bad.toml").write_text(text.replace(old, new, 1))
    with pytest.raises(UserError) as info:
        load_cluster_config(folder / "bad.toml")
    assert info.value.source == str(folder / "bad.toml")
    assert info.value.field == field


def test_cli_bad_file_is_one_line_exit_2(folder: Path) -> None:
    (folder / "bad.toml").write_text(GOOD.format(d=folder).replace('sleep = "off"', 'sleep = 1'))
    out = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "manager", "--config",
                          str(folder / "bad.toml"), "--check"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "bad.toml: hosts.pm1.sleep" in out.stderr


def test_lab_cluster_toml_is_valid_and_names_the_labs_agents(tmp_path: Path) -> None:
    from consolidator.domain.types import HostSpec, PowerProfile
    from consolidator.experiments.lab.cluster_file import write_cluster_config
    from consolidator.experiments.lab.lab import LabState

    (tmp_path / "token").write_text(TOKEN)
    state = LabState(str(tmp_path), "clab", 120e6, ["pm0", "pm1"], {}, {}, {}, agent_port=8800)
    specs = [HostSpec("pm0", Role.WAREHOUSE, cores=1.0, mem_mib=4096, power=PowerProfile(resume_s=1.25)),
             HostSpec("pm1", Role.SERVER, cores=1.0, mem_mib=4096)]
    path = write_cluster_config(state, specs, period_s=0.25, policy={"name": "paper", "args": {"hold_s": 5}},
                                vms={"vm3": {"pin": True}})
    cfg = load_cluster_config(path)
    pm0, pm1 = cfg.hosts["pm0"], cfg.hosts["pm1"]
    assert isinstance(pm0, AgentHost) and isinstance(pm1, AgentHost)
    assert (pm0.url, pm1.url) == ("http://127.0.0.1:8800", "http://127.0.0.1:8801")
    assert (pm0.role, pm0.wake_s, cfg.period_s, cfg.mode) == (Role.WAREHOUSE, 1.25, 0.25, "auto")
    assert cfg.policy.args == {"hold_s": 5} and cfg.vms["vm3"].pin
