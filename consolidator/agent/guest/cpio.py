"""A minimal writer of "newc" cpio archives, the format Linux unpacks as an initramfs.

Written here (not the cpio tool) so the archive can hold /dev/console without mknod or root.
"""

from __future__ import annotations

import stat

_MAGIC = b"070701"


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


class Archive:
    """Collects entries in memory; ``finish()`` returns the archive bytes."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        name_b = name.encode() + b"\0"
        fields = [self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0]
        header = _MAGIC + b"".join(f"{v:08x}".encode() for v in fields)
        self._ino += 1
        head_pad = b"\0" * _pad4(len(header) + len(name_b))
        self._parts += [header, name_b, head_pad, data, b"\0" * _pad4(len(data))]

    def add_dir(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def add_file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def add_char_device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return b"".join(self._parts)
