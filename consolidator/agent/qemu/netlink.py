"""A shaped migration link between two network namespaces on this machine (veth + ``tc tbf``).

Used by the QEMU tests and ``consolidator calibrate``: the source QEMU runs in namespace A, the
destination in B, and migration traffic crosses a veth pair limited to ``rate_bytes_per_s`` each way.
Needs root. ``close()`` (or leaving the ``with`` block) deletes both namespaces and with them the link.
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass

from consolidator.agent.hypervisor import DriverError

log = logging.getLogger(__name__)


def _ip(*args: str) -> None:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise DriverError("the 'ip' tool is missing: install iproute2") from exc
    if done.returncode != 0:
        raise DriverError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _tc(netns: str, *args: str) -> None:
    done = subprocess.run(["ip", "netns", "exec", netns, "tc", *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise DriverError(f"tc {' '.join(args)} in {netns}: {done.stderr.strip()}")


@dataclass(frozen=True, slots=True)
class LinkEnd:
    netns: str
    device: str
    address: str


class ShapedLink:
    """Two namespaces joined by a veth pair shaped to ``rate_bytes_per_s`` in both directions."""

    def __init__(self, rate_bytes_per_s: float = 120e6, tag: str | None = None, subnet: int = 250) -> None:
        if rate_bytes_per_s <= 0:
            raise DriverError("link rate must be positive")
        self.rate_bytes_per_s = rate_bytes_per_s
        tag = tag or f"{os.getpid() % 100000}"
        octet = int(tag) % 250 if tag.isdigit() else 1
        self.a = LinkEnd(f"cns{tag}a", "veth0", f"10.{subnet}.{octet}.1")
        self.b = LinkEnd(f"cns{tag}b", "veth0", f"10.{subnet}.{octet}.2")
        self._up = False

    def open(self) -> ShapedLink:
        self.close()  # leftovers of an earlier run with the same tag
        try:
            for end in (self.a, self.b):
                _ip("netns", "add", end.netns)
                _ip("-n", end.netns, "link", "set", "lo", "up")
            _ip("link", "add", f"{self.a.netns}x", "type", "veth", "peer", "name", f"{self.b.netns}x")
            for end in (self.a, self.b):
                _ip("link", "set", f"{end.netns}x", "netns", end.netns)
                _ip("-n", end.netns, "link", "set", f"{end.netns}x", "name", end.device)
                _ip("-n", end.netns, "addr", "add", f"{end.address}/30", "dev", end.device)
                _ip("-n", end.netns, "link", "set", end.device, "up")
                self._shape(end)
            self._up = True
        except DriverError:
            self.close()
            raise
        log.info("shaped link %s <-> %s at %.0f B/s", self.a.address, self.b.address, self.rate_bytes_per_s)
        return self

    def _shape(self, end: LinkEnd) -> None:
        rate_bit = int(self.rate_bytes_per_s * 8)
        # burst: a few timer ticks' worth, so tbf can keep the rate with HZ=250 kernels
        burst = max(64 * 1024, int(self.rate_bytes_per_s / 100))
        _tc(end.netns, "qdisc", "replace", "dev", end.device, "root", "tbf", "rate", f"{rate_bit}bit",
            "burst", str(burst), "latency", "20ms")

    def close(self) -> None:
        for end in (self.a, self.b):
            done = subprocess.run(["ip", "netns", "del", end.netns], capture_output=True, check=False)
            if done.returncode == 0:
                log.info("removed netns %s", end.netns)
        self._up = False

    def __enter__(self) -> ShapedLink:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
