"""Power-area fixtures: real protocol peers on loopback, started once per session.

ipmi_sim (Debian openipmi) with our DCMI power plugin, and sushy-emulator (PyPI sushy-tools, fake
driver, basic auth) with our Chassis/Power resource; scripts/setup.d/30-services.sh installs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consolidator.power.emulators.ipmi_sim import IpmiSimBmc, IpmiSimUnavailable
from consolidator.power.emulators.sushy import SushyEmulator
from consolidator.power.meters import Credentials

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="session")
def bmc_server() -> Iterator[IpmiSimBmc]:
    try:
        bmc = IpmiSimBmc(username="admin", password=PASSWORD, watts=77.0)
    except IpmiSimUnavailable as exc:
        pytest.skip(f"ipmi_sim cannot run here: {exc}")
    bmc.start()
    yield bmc
    bmc.stop()


@pytest.fixture()
def bmc(bmc_server: IpmiSimBmc) -> IpmiSimBmc:
    """The session's BMC with its host powered off and 77 W on the meter."""
    bmc_server.set_power(False)
    bmc_server.set_watts(77.0)
    return bmc_server


@pytest.fixture(scope="session")
def redfish() -> Iterator[SushyEmulator]:
    emu = SushyEmulator(username="admin", password=PASSWORD, watts=91.5, reset_delay_s=1)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture()
def creds() -> Credentials:
    return Credentials("admin", PASSWORD)


@pytest.fixture()
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "pw"
    path.write_text(PASSWORD + "\n")
    return path
