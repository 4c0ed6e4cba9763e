"""Per-host power configuration: ordered wake methods and meters from TOML; mistakes name file and field."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from consolidator.domain.errors import UserError
from consolidator.power.amt import AmtWake
from consolidator.power.config import load_power_config
from consolidator.power.emulators.ipmi_sim import IpmiSimBmc
from consolidator.power.ipmi import IpmiMeter, IpmiWake
from consolidator.power.redfish import RedfishWake
from consolidator.power.wol import WolWake


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pw").write_text("pw\n")
    path = tmp_path / "power.toml"
    path.write_text(text.replace("PWFILE", str(tmp_path / "pw")))
    return path


def test_ordered_methods_and_meters(tmp_path: Path) -> None:
    cfg = load_power_config(_write(tmp_path, """
[defaults]
password_file = "PWFILE"
attempts_per_method = 2

[hosts.pm0]
meter = "model"

[hosts.pm1]
meter = "ipmi"
bmc = "127.0.0.1:6230"
wake = ["wol", "ipmi", "redfish", "amt"]
mac = "52:54:00:12:34:56"
wol_address = "127.0.0.255:9"
amt = "127.0.0.1:16992"
verify_tcp = "127.0.0.1:8700"
"""))
    assert cfg.model_nodes == ["pm0"] and isinstance(cfg.meters["pm1"], IpmiMeter)
    waker = cfg.controller.wakers["pm1"]
    assert [type(m) for m in waker.methods] == [WolWake, IpmiWake, RedfishWake, AmtWake]
    assert waker.policy.attempts_per_method == 2 and waker.verify is not None
    assert "pm0" not in cfg.controller.wakers


@pytest.mark.parametrize(("body", "field", "message"), [
    ("[hosts.pm1]\nwake = ['wol']\n", "hosts.pm1.mac", "required for the wol wake method"),
    ("[hosts.pm1]\nwake = ['carrier-pigeon']\n", "hosts.pm1.wake", "unknown wake method"),
    ("[hosts.pm1]\nmeter = 'ipmi'\n", "hosts.pm1.bmc", "required for the ipmi meter"),
    ("[hosts.pm1]\nmeter = 'ipmi'\nbmc = 'h:x'\npassword_file = 'PWFILE'\n", "hosts.pm1.bmc", "bad port"),
    ("[hosts.pm1]\nwake = ['ipmi']\nbmc = 'h'\n", "hosts.pm1.password_file", "required"),
    ("[hosts.pm1]\nwake = ['ipmi']\nbmc = 'h'\npassword_file = '/nonexistent'\n", "hosts.pm1.password_file",
     "cannot read"),
    ("[hosts.pm1]\nwake = ['wol']\nmac = 'zz'\n", "hosts.pm1.mac", "not a MAC"),
    ("[hosts.pm1]\nattempts_per_method = 'three'\nwake = ['wol']\nmac = '52:54:00:12:34:56'\n",
     "hosts.pm1.attempts_per_method", "must be a number"),
    ("[hosts.pm1]\nbogus = 1\n", "hosts.pm1.bogus", "unknown key"),
    ("[defaults]\n", "hosts", "at least one"),
])
def test_mistakes_name_the_file_and_field(tmp_path: Path, body: str, field: str, message: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(UserError, match=message) as info:
        load_power_config(path)
    assert info.value.source == str(path) and info.value.field == field


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not valid TOML"):
        load_power_config(_write(tmp_path, "[hosts\n"))


@pytest.mark.services
def test_configured_fall_back_from_a_lost_wol_packet_to_ipmi(bmc: IpmiSimBmc, tmp_path: Path) -> None:
    """WoL goes to a port nobody listens on (lost); IPMI on the real BMC then powers the host on."""
    (tmp_path / "bmcpw").write_text(bmc.password + "\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        cfg = load_power_config(_write(tmp_path, f"""
[hosts.pm1]
meter = "ipmi"
bmc = "{bmc.address}"
wake = ["wol", "ipmi"]
mac = "52:54:00:12:34:56"
wol_address = "127.0.0.1:{port}"
password_file = "{tmp_path / 'bmcpw'}"
attempts_per_method = 2
backoff_s = 0.05
verify_timeout_s = 0.5
"""))
        waker = cfg.controller.wakers["pm1"]
        bmc_on = IpmiWake("127.0.0.1", waker.methods[1]._tool.creds, bmc.port)  # type: ignore[attr-defined]

        async def verify() -> bool:
            return await asyncio.to_thread(bmc_on.powered_on)

        waker.verify = verify  # the emulated host "answers" once its BMC has it powered on
        result = asyncio.run(cfg.controller.wake_with_result("pm1"))
    assert result.ok and result.method == "ipmi"
    assert [(a.method, a.ok) for a in result.attempts] == [("wol", False), ("wol", False), ("ipmi", True)]
    assert cfg.meters["pm1"].read_watts() == 77.0
