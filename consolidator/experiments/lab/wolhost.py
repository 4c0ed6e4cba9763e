"""The Wake-on-LAN receiver of an emulated lab host: run inside the host's network namespace
(``ip netns exec NS python -m consolidator.experiments.lab.wolhost MAC``), it prints one line
``wake`` for each valid magic packet for MAC on UDP port 9; the fault run then wakes the host."""

from __future__ import annotations

import socket
import sys

from consolidator.power.wol import WOL_PORT, magic_packet


def main(argv: list[str]) -> int:
    expected = magic_packet(argv[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", WOL_PORT))
        print("listening", flush=True)
        while True:
            data = sock.recv(2048)
            if data == expected:
                print("wake", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
