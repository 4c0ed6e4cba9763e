"""Redfish meter and wake against a real sushy-emulator on loopback (basic auth, fake driver).

The emulator has no power resource of its own: our launcher adds Chassis/{id}/Power (see
consolidator/power/emulators/redfish_power.py); everything else is sushy-tools' code.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import sushy

from consolidator.power.emulators.sushy import SushyEmulator
from consolidator.power.meters import Credentials, MeterAuthError, MeterError
from consolidator.power.redfish import RedfishMeter, RedfishWake, redfish_url
from consolidator.power.wake import HostWaker, RetryPolicy, in_thread

pytestmark = pytest.mark.services


def test_power_reading(redfish: SushyEmulator, creds: Credentials) -> None:
    meter = RedfishMeter(redfish.url, creds)
    assert meter.read_watts() == 91.5
    redfish.set_watts(140.25)
    assert meter.read_watts() == 140.25


def test_the_emulator_still_demands_authentication(redfish: SushyEmulator) -> None:
    r = httpx.get(f"{redfish.url}/redfish/v1/Chassis", timeout=5)
    assert r.status_code == 401
    with pytest.raises(MeterAuthError, match="credentials refused"):
        RedfishMeter(redfish.url, Credentials("admin", "nope")).read_watts()


def test_unreachable_service_is_a_meter_error(creds: Credentials) -> None:
    with pytest.raises(MeterError, match="no answer"):
        RedfishMeter("127.0.0.1:9", creds, timeout_s=1.0).read_watts()


def test_reset_on_is_retried_until_the_system_reports_on(redfish: SushyEmulator, creds: Credentials) -> None:
    wake = RedfishWake(redfish.url, creds)
    waker = HostWaker("host0", [wake], in_thread(wake.powered_on),
                      RetryPolicy(attempts_per_method=2, verify_timeout_s=20.0, verify_poll_s=0.3))
    result = asyncio.run(waker.wake())
    assert result.ok and result.method == "redfish"
    assert redfish.power_state() == "On"


def test_address_forms() -> None:
    assert redfish_url("bmc.example") == "https://bmc.example:443"
    assert redfish_url("127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert redfish_url("https://10.0.0.1:8443/") == "https://10.0.0.1:8443"


def test_a_dead_bmc_falls_back_to_redfish(redfish: SushyEmulator, creds: Credentials) -> None:
    """IPMI's peer is down (nothing on the port): after its attempts the waker falls back to Redfish."""
    from consolidator.power.ipmi import IpmiWake

    off = RedfishWake(redfish.url, creds)
    off._svc.call("off", lambda root: root.get_system_collection().get_members()[0]
                  .reset_system(sushy.ResetType.FORCE_OFF))
    deadline = time.monotonic() + 20
    while redfish.power_state() != "Off" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert redfish.power_state() == "Off"
    wake = RedfishWake(redfish.url, creds)
    dead = IpmiWake("127.0.0.1", creds, 9, timeout_s=1.0)
    waker = HostWaker("host0", [dead, wake], in_thread(wake.powered_on),
                      RetryPolicy(attempts_per_method=2, backoff_s=0.05, verify_timeout_s=20.0, verify_poll_s=0.3))
    result = asyncio.run(waker.wake())
    assert result.ok and [(a.method, a.ok) for a in result.attempts] == [
        ("ipmi", False), ("ipmi", False), ("redfish", True)]
    assert "no answer" in (result.attempts[0].error or "")
    assert redfish.power_state() == "On"
