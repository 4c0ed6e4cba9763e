"""An emulated BMC on loopback: OpenIPMI's ``ipmi_sim`` with a password user, chassis control and DCMI power.

This is real IPMI 2.0 (RMCP+, lanplus) on the wire. The emulated host's power state is a file the
chassis-control script keeps; its watts are a file our ``dcmi_power.c`` plugin serves through
DCMI Get Power Reading. Used by the tests and by a lab that wants a BMC per emulated host.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from consolidator.power.emulators.process import EmulatedBmc

log = logging.getLogger(__name__)

PLUGIN_SOURCE = Path(__file__).with_name("dcmi_power.c")

# ipmi_sim runs "<script> STATE_DIR 0x20 get power" / "... set power 1"; state lives in files.
CHASSIS_SCRIPT = r"""#!/bin/sh
dir=$1; shift; shift
op=$1; shift
case "$op" in
get)
    for parm in "$@"; do
        case "$parm" in
        power) printf 'power:%s\n' "$(cat "$dir/power" 2>/dev/null || echo 0)" ;;
        boot) echo "boot:none" ;;
        esac
    done ;;
set)
    while [ $# -ge 2 ]; do
        echo "set $1 $2" >> "$dir/chassis.log"
        case "$1" in
        power) printf '%s' "$2" > "$dir/power" ;;
        reset) printf '1' > "$dir/power" ;;
        shutdown) printf '0' > "$dir/power" ;;
        esac
        shift 2
    done ;;
esac
exit 0
"""

EMU = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
"""


class IpmiSimUnavailable(RuntimeError):
    """ipmi_sim, gcc or the OpenIPMI headers are missing (scripts/setup.d/30-services.sh installs them)."""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_plugin(out_dir: Path) -> Path:
    """Compile dcmi_power.c into a shared object for ipmi_sim's ``loadlib``."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None or not Path("/usr/include/OpenIPMI/mcserv.h").exists():
        raise IpmiSimUnavailable("gcc and libopenipmi-dev are needed to build the DCMI power plugin")
    so = out_dir / "dcmi_power.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-o", str(so), str(PLUGIN_SOURCE)],
                   check=True, capture_output=True, timeout=120)
    return so


class IpmiSimBmc(EmulatedBmc):
    """One ipmi_sim process: user ``username``/``password`` (admin), lanplus on 127.0.0.1:``port``."""

    def __init__(self, username: str = "admin", password: str = "secret", watts: float | None = 60.0) -> None:
        if shutil.which("ipmi_sim") is None:
            raise IpmiSimUnavailable("ipmi_sim not found (Debian package openipmi)")
        self.port = _free_udp_port()
        super().__init__(username, password, "consolidator-bmc-", watts)
        self.set_power(False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_power(self, on: bool) -> None:
        (self.dir / "power").write_text("1" if on else "0")

    def powered_on(self) -> bool:
        """The emulated host's power as the BMC last set it (the 'host answers' check in tests)."""
        return (self.dir / "power").read_text().strip() == "1"

    def chassis_log(self) -> list[str]:
        path = self.dir / "chassis.log"
        return path.read_text().splitlines() if path.exists() else []

    def _write_config(self) -> Path:
        script = self.dir / "chassis_control.sh"
        script.write_text(CHASSIS_SCRIPT)
        script.chmod(0o700)
        plugin = build_plugin(self.dir)
        auths = "md5"  # no "none"/"straight": every session authenticates
        conf = self.dir / "lan.conf"
        conf.write_text(f"""name "consolidator-bmc"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {self.port}
    priv_limit admin
    allowed_auths_callback {auths}
    allowed_auths_user {auths}
    allowed_auths_operator {auths}
    allowed_auths_admin {auths}
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "{script} {self.dir} 0x20"
  user 2 true "{self.username}" "{self.password}" admin 10 {auths}
loadlib "{plugin}" "{self.dir / 'watts'}"
""")
        (self.dir / "sim.emu").write_text(EMU)
        return conf

    def start(self, timeout_s: float = 10.0) -> IpmiSimBmc:
        """Start ipmi_sim and wait until it answers an authenticated Get Device ID."""
        conf = self._write_config()
        argv = ["ipmi_sim", "-c", str(conf), "-f", str(self.dir / "sim.emu"), "-n", "-s", str(self.dir / "state")]
        return self._launch(argv, "ipmi_sim.log", f"ipmi_sim on {self.address}", timeout_s)

    def _answers(self) -> bool:
        argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-N", "1", "-R", "1", "-H", "127.0.0.1",
                "-p", str(self.port), "-U", self.username, "-E", "mc", "info"]
        env = {"IPMI_PASSWORD": self.password, "PATH": "/usr/bin:/bin"}
        done = subprocess.run(argv, env=env, capture_output=True, timeout=10, check=False)
        return done.returncode == 0

    def freeze(self, frozen: bool) -> None:
        """An unreachable BMC (SIGSTOP: it answers nothing, as behind a firewall), or back (SIGCONT)."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)
