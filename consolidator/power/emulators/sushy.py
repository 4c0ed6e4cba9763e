"""A Redfish BMC on loopback: sushy-emulator (fake driver, basic auth, own state dir) with a power resource.

Starts ``consolidator.power.emulators.redfish_power`` (the stock emulator plus Chassis/Power) in a
subprocess. The system starts powered Off; resets apply after ``reset_delay_s`` (None: the fake
driver's own random 1-11 s).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import bcrypt
import httpx

from consolidator.power.emulators.process import EmulatedBmc

SYSTEM_UUID = "27946b59-9e44-4fa7-8e91-f3527a1ef094"
SYSTEM_NAME = "host0"


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SushyEmulator(EmulatedBmc):
    """One sushy-emulator process on 127.0.0.1:``port`` requiring ``username``/``password``."""

    def __init__(self, username: str = "admin", password: str = "secret", watts: float | None = 70.0,
                 reset_delay_s: int | None = 1) -> None:
        self.port = _free_tcp_port()
        self.reset_delay_s = reset_delay_s
        super().__init__(username, password, "consolidator-redfish-", watts)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        digest = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
        (self.dir / "htpasswd").write_text(f"{self.username}:{digest}\n")
        cfg = self.dir / "emulator.conf"
        systems = [{"uuid": SYSTEM_UUID, "name": SYSTEM_NAME, "power_state": "Off", "external_notifier": False,
                    "nics": [{"mac": "52:54:00:12:34:56", "ip": "127.0.0.2"}]}]
        lines = [
            "SUSHY_EMULATOR_FAKE_DRIVER = True",
            f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}",
            f"SUSHY_EMULATOR_AUTH_FILE = {str(self.dir / 'htpasswd')!r}",
            f"SUSHY_EMULATOR_STATE_DIR = {str(self.dir / 'state')!r}",
            "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'",
            f"SUSHY_EMULATOR_LISTEN_PORT = {self.port}",
            f"CONSOLIDATOR_WATTS_FILE = {str(self.dir / 'watts')!r}",
        ]
        if self.reset_delay_s is not None:
            lines.append(f"CONSOLIDATOR_RESET_DELAY_S = {int(self.reset_delay_s)}")
        cfg.write_text("\n".join(lines) + "\n")
        return cfg

    def start(self, timeout_s: float = 30.0) -> SushyEmulator:
        """Start the emulator and wait until an authenticated GET of the system succeeds."""
        cfg = self._write_config()
        argv = [sys.executable, "-m", "consolidator.power.emulators.redfish_power", "--config", str(cfg)]
        return self._launch(argv, "emulator.log", f"sushy-emulator on {self.url}", timeout_s)

    def _answers(self) -> bool:
        try:
            r = httpx.get(f"{self.url}/redfish/v1/Systems/{SYSTEM_UUID}", auth=(self.username, self.password),
                          timeout=1.0)
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    def power_state(self) -> str:
        """The system's PowerState as the emulator reports it ("On"/"Off")."""
        r = httpx.get(f"{self.url}/redfish/v1/Systems/{SYSTEM_UUID}", auth=(self.username, self.password),
                      timeout=5.0)
        r.raise_for_status()
        return str(r.json()["PowerState"])
