"""IPMI over LAN (RMCP+, ``lanplus``) through ``ipmitool``: DCMI power reading and chassis power on.

Why ipmitool and not pyghmi: pyghmi shares sessions per BMC address inside the process, and after
one refused password a later correct login to the same BMC waited forever here (pyghmi 1.6 against
ipmi_sim). ipmitool runs in its own process: bounded by a timeout, killable, no shared state.
The password goes through the environment (``-E``), never argv. ``-C 3`` selects cipher suite 3
(without it every call stalls about 10 s against ipmi_sim; DESIGN §7).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess

from consolidator.power.meters import Credentials, MeterAuthError, MeterError

log = logging.getLogger(__name__)

IPMI_PORT = 623
_AUTH = ("RAKP 2 HMAC is invalid", "unauthorized name", "insufficient privilege", "invalid user",
         "Authentication type NONE not supported")
_WATTS = re.compile(r"Instantaneous power reading:\s*([0-9.]+)\s*Watts")


class Ipmitool:
    """Runs ipmitool against one BMC with bounded retries and a hard timeout."""

    def __init__(self, host: str, creds: Credentials, port: int = IPMI_PORT, timeout_s: float = 15.0,
                 retries: int = 2) -> None:
        self.host, self.port, self.creds = host, port, creds
        self.timeout_s, self.retries = timeout_s, retries
        self.where = f"{host}:{port}"

    def run(self, *args: str) -> str:
        """stdout of ``ipmitool … args``; a refused login raises MeterAuthError, other failures MeterError."""
        exe = shutil.which("ipmitool")
        if exe is None:
            raise MeterError("ipmitool is not installed (Debian package ipmitool)")
        argv = [exe, "-v", "-I", "lanplus", "-C", "3", "-N", "1", "-R", str(self.retries),
                "-H", self.host, "-p", str(self.port), "-U", self.creds.username, "-E", *args]
        env = {"IPMI_PASSWORD": self.creds.password, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        what = " ".join(args)
        try:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=self.timeout_s,
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise MeterError(f"IPMI {self.where} {what}: no answer within {self.timeout_s:g} s") from exc
        if done.returncode == 0:
            return done.stdout
        err = done.stderr
        if any(hint in err for hint in _AUTH):
            raise MeterAuthError(f"IPMI {self.where} {what}: credentials refused (wrong user or password)")
        lines = [ln.strip() for ln in err.splitlines() if ln.strip() and "IANA PEN" not in ln]
        last = lines[-1] if lines else f"ipmitool exited {done.returncode}"
        if "Unable to establish" in last:
            last = "no answer (could not open an RMCP+ session)"
        raise MeterError(f"IPMI {self.where} {what}: {last}")


class IpmiMeter:
    """Node power from the BMC's DCMI Get Power Reading (``ipmitool dcmi power reading``)."""

    kind = "ipmi"

    def __init__(self, host: str, creds: Credentials, port: int = IPMI_PORT, timeout_s: float = 15.0) -> None:
        self._tool = Ipmitool(host, creds, port, timeout_s)

    def read_watts(self) -> float:
        out = self._tool.run("dcmi", "power", "reading")
        match = _WATTS.search(out)
        if match is None:
            raise MeterError(f"IPMI {self._tool.where}: no instantaneous power reading in the answer")
        return float(match.group(1))


class IpmiWake:
    """Wake by IPMI Chassis Control: ``chassis power on``."""

    name = "ipmi"

    def __init__(self, host: str, creds: Credentials, port: int = IPMI_PORT, timeout_s: float = 15.0) -> None:
        self._tool = Ipmitool(host, creds, port, timeout_s)

    def send(self) -> None:
        self._tool.run("chassis", "power", "on")

    def powered_on(self) -> bool:
        """The BMC reports chassis power on (a verification when the host has no agent to ask)."""
        return "is on" in self._tool.run("chassis", "power", "status")

    def describe(self) -> str:
        return f"IPMI chassis power on via {self._tool.where}"
