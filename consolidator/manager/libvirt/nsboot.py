"""Entry point run inside a fresh mount + UTS namespace: bind private folders, then exec libvirtd.

``python -m consolidator.manager.libvirt.nsboot HOSTNAME SRC:DST [SRC:DST ...] -- libvirtd ARGS``

Started by ``daemons.PrivateLibvirtd`` as ``ip netns exec NS unshare --mount --uts --propagation
private python -m ...``: every bind mount stays in this namespace, so two daemons on one machine each
see their own /etc/libvirt, /run/libvirt and /var/lib/libvirt. Arguments are an argv, never a shell
string.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def main(argv: list[str]) -> int:
    if "--" not in argv or len(argv) < 3:
        print("usage: nsboot HOSTNAME SRC:DST ... -- COMMAND ARGS", file=sys.stderr)
        return 2
    cut = argv.index("--")
    hostname, binds, command = argv[0], argv[1:cut], argv[cut + 1:]
    socket.sethostname(hostname)
    for pair in binds:
        src, dst = pair.split(":", 1)
        if os.path.isdir(src):
            os.makedirs(dst, exist_ok=True)
        subprocess.run(["mount", "--bind", src, dst], check=True)
    os.execvp(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
