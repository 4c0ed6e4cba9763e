"""Wake-on-LAN: the magic packet (6 x 0xFF, then the MAC 16 times) sent by UDP through ``wakeonlan``."""

from __future__ import annotations

import re

from wakeonlan import create_magic_packet, wake

from consolidator.domain.errors import UserError

WOL_PORT = 9
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-]?)[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")


def check_mac(mac: str) -> str:
    """A MAC address as ``aa:bb:cc:dd:ee:ff`` (``-`` or no separator accepted); else a UserError."""
    if not _MAC.match(mac):
        raise UserError(f"not a MAC address: {mac!r}", field="--mac")
    digits = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def magic_packet(mac: str) -> bytes:
    """The 102-byte magic packet for ``mac``."""
    return bytes(create_magic_packet(check_mac(mac)))


class WolWake:
    """Send a magic packet to ``host`` (a broadcast address on the host's segment) on UDP ``port``.

    Sending cannot tell whether the packet arrived (WoL has no answer): the waker's verification
    does, and a lost packet is retried.
    """

    name = "wol"

    def __init__(self, mac: str, host: str = "255.255.255.255", port: int = WOL_PORT,
                 interface: str | None = None) -> None:
        self.mac = check_mac(mac)
        self.host, self.port, self.interface = host, port, interface

    def send(self) -> None:
        wake(self.mac, host=self.host, port=self.port, interface=self.interface)

    def describe(self) -> str:
        return f"Wake-on-LAN {self.mac} to {self.host}:{self.port}"
