"""IPMI meter and wake against a real ipmi_sim BMC on loopback (RMCP+, password user)."""

from __future__ import annotations

import time

import pytest

from consolidator.power.emulators.ipmi_sim import IpmiSimBmc
from consolidator.power.ipmi import IpmiMeter, IpmiWake
from consolidator.power.meters import Credentials, MeterAuthError, MeterError

pytestmark = pytest.mark.services


def test_dcmi_power_reading_follows_the_bmc(bmc: IpmiSimBmc, creds: Credentials) -> None:
    meter = IpmiMeter("127.0.0.1", creds, bmc.port)
    assert meter.read_watts() == 77.0
    bmc.set_watts(123.0)
    assert meter.read_watts() == 123.0  # DCMI reports whole watts


def test_wrong_password_fails_at_once_as_an_auth_error(bmc: IpmiSimBmc) -> None:
    meter = IpmiMeter("127.0.0.1", Credentials("admin", "wrong"), bmc.port)
    start = time.monotonic()
    with pytest.raises(MeterAuthError, match="credentials refused"):
        meter.read_watts()
    assert time.monotonic() - start < 5.0  # refused at once, not after retries
    with pytest.raises(MeterAuthError):
        IpmiMeter("127.0.0.1", Credentials("nobody", bmc.password), bmc.port).read_watts()
    # a refused login leaves nothing behind: the right password works at once afterwards
    assert IpmiMeter("127.0.0.1", Credentials("admin", bmc.password), bmc.port).read_watts() == 77.0


def test_unreachable_bmc_is_a_meter_error_naming_it(creds: Credentials) -> None:
    meter = IpmiMeter("127.0.0.1", creds, 9, timeout_s=3.0)  # nothing answers IPMI on the discard port
    with pytest.raises(MeterError, match=r"127\.0\.0\.1:9.*no answer"):
        meter.read_watts()


def test_chassis_power_on_reaches_the_host(bmc: IpmiSimBmc, creds: Credentials) -> None:
    assert not bmc.powered_on()
    wake = IpmiWake("127.0.0.1", creds, bmc.port)
    assert not wake.powered_on()
    wake.send()
    assert bmc.powered_on() and wake.powered_on()
    assert bmc.chassis_log()[-1] == "set power 1"
