"""The lab's network: one namespace per host, joined by veth pairs to a bridge in the root namespace.

Layout (``prefix`` = "clab" by default, subnet 10.77.0.0/24)::

    root ns: bridge clab-br 10.77.0.1  ── veth clab-<host> ──  ns clab-<host>: eth0 10.77.0.(10+i)

Each veth is shaped with ``tc tbf`` in both directions (the host's eth0 egress and the bridge port's
egress), so a host sends and receives at most ``link_bytes_per_s`` (GbE ≈ 120 MB/s by default), and
concurrent migrations to or from a host share its link, as on a real NIC. The management node (the
lab runner) reaches the agents over the bridge from the root namespace. Needs root and iproute2.
Every command is an argv list; ``teardown`` removes exactly what ``setup`` made and is idempotent.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from consolidator.domain.errors import UserError

log = logging.getLogger(__name__)

SUBNET = "10.77.0"
FIRST_HOST_OCTET = 10


class LabNetworkError(Exception):
    """An ip/tc command failed; carries the command and its stderr."""


def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise UserError(f"{argv[0]} is missing: install iproute2", field="lab") from exc
    if check and done.returncode != 0:
        raise LabNetworkError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


@dataclass(frozen=True, slots=True)
class LabHostNet:
    host: str
    netns: str
    veth_root: str
    address: str


@dataclass(frozen=True, slots=True)
class LabNetwork:
    """Names and addresses of one lab; ``setup``/``teardown`` make and remove them."""

    hosts: tuple[LabHostNet, ...]
    bridge: str
    link_bytes_per_s: float
    subnet: str = SUBNET  # its /24: the bridge is .1, host i is .(10 + i)

    @classmethod
    def plan(cls, host_names: Sequence[str], link_bytes_per_s: float, prefix: str = "clab",
             subnet: str = SUBNET) -> LabNetwork:
        if len(host_names) > 200:
            raise UserError("at most 200 lab hosts", field="lab.hosts")
        hosts = []
        for i, name in enumerate(host_names):
            veth = f"{prefix}-{name}"
            if len(veth) > 15:  # Linux interface names are at most 15 bytes
                raise UserError(f"host name {name!r} too long for an interface name", field="lab.hosts")
            hosts.append(LabHostNet(name, f"{prefix}-{name}", veth, f"{subnet}.{FIRST_HOST_OCTET + i}"))
        return cls(tuple(hosts), f"{prefix}-br", link_bytes_per_s, subnet)

    def setup(self) -> None:
        self.teardown()  # leftovers of an earlier lab with the same names
        try:
            _run(["ip", "link", "add", self.bridge, "type", "bridge"])
            _run(["ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge])
            _run(["ip", "link", "set", self.bridge, "up"])
            for h in self.hosts:
                self._add_host(h)
        except LabNetworkError:
            self.teardown()
            raise
        log.info("lab network up: %d hosts on %s at %.0f B/s", len(self.hosts), self.bridge,
                 self.link_bytes_per_s)

    def _add_host(self, h: LabHostNet) -> None:
        _run(["ip", "netns", "add", h.netns])
        _run(["ip", "-n", h.netns, "link", "set", "lo", "up"])
        _run(["ip", "link", "add", h.veth_root, "type", "veth", "peer", "name", "eth0", "netns", h.netns])
        _run(["ip", "link", "set", h.veth_root, "master", self.bridge])
        _run(["ip", "link", "set", h.veth_root, "up"])
        _run(["ip", "-n", h.netns, "addr", "add", f"{h.address}/24", "dev", "eth0"])
        _run(["ip", "-n", h.netns, "link", "set", "eth0", "up"])
        self._shape(["ip", "-n", h.netns], "eth0")
        self._shape(["ip"], h.veth_root)

    def _shape(self, ip: list[str], device: str) -> None:
        rate_bit = int(self.link_bytes_per_s * 8)
        # burst of ~10 ms of traffic, so tbf holds the rate on HZ=250 kernels (as consolidator calibrate)
        burst = max(64 * 1024, int(self.link_bytes_per_s / 100))
        netns = ip[2:] if len(ip) > 1 else []
        prefix = ["ip", "netns", "exec", netns[0]] if netns else []
        _run([*prefix, "tc", "qdisc", "replace", "dev", device, "root", "tbf", "rate", f"{rate_bit}bit",
              "burst", str(burst), "latency", "20ms"])

    def reshape(self, link_bytes_per_s: float) -> LabNetwork:
        """Change every host's link rate in place (tests slow a move down); returns the new plan."""
        new = dataclasses.replace(self, link_bytes_per_s=link_bytes_per_s)
        for h in self.hosts:
            new._shape(["ip", "-n", h.netns], "eth0")
            new._shape(["ip"], h.veth_root)
        return new

    def teardown(self) -> list[str]:
        """Delete every namespace, veth and the bridge (qdiscs go with their devices). Idempotent."""
        removed = []
        for h in self.hosts:
            if _run(["ip", "netns", "del", h.netns], check=False).returncode == 0:
                removed.append(f"netns {h.netns}")
            if _run(["ip", "link", "del", h.veth_root], check=False).returncode == 0:
                removed.append(f"veth {h.veth_root}")
        if _run(["ip", "link", "del", self.bridge], check=False).returncode == 0:
            removed.append(f"bridge {self.bridge}")
        return removed

    def address_of(self, host: str) -> str:
        return next(h.address for h in self.hosts if h.host == host)

    def netns_of(self, host: str) -> str:
        return next(h.netns for h in self.hosts if h.host == host)
