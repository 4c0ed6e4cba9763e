"""Where the manager's engines may send a guest: to a host cluster.toml names, at an address of its
migration network, on a port of its migration range (issue 11, item 5: "the same for the manager's engines").

A move that breaks the leash is refused (``AgentError`` status 403) before any migration connection:
an agent target before the source agent is asked to migrate (its prepared incoming QEMU is removed),
a libvirt target before ``virDomainMigrateToURI3``. ``[migration]`` of cluster.toml sets it::

    [migration]
    networks = ["10.0.1.0/24"]         # migration data only to these addresses (empty: any address)
    ports = [49152, 49407]             # and only to these ports (the agents' default migration_ports)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from consolidator.manager.client import AgentError

__all__ = ["DEFAULT_PORTS", "MigrationLeash", "data_address"]

DEFAULT_PORTS = (49152, 49407)  # the host agent's default migration_ports; libvirt's own 49152..49215 fit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def data_address(uri: str) -> tuple[str, int | None]:
    """Host and port of a migration data URI: QEMU's ``tcp:HOST:PORT`` (an agent's incoming) or a
    URL ``tcp://HOST[:PORT]``, ``qemu+tls://HOST/system`` (libvirt). ValueError if it names no host."""
    if "://" in uri:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port
    else:
        scheme, _, rest = uri.partition(":")
        host_text, _, port_text = rest.rpartition(":")
        if scheme not in ("tcp", "rdma") or not port_text.isdigit():
            raise ValueError(f"not a migration address: {uri!r}")
        host, port = host_text.strip("[]"), int(port_text)
    if not host:
        raise ValueError(f"no host in {uri!r}")
    return host, port


@dataclass(frozen=True, slots=True)
class MigrationLeash:
    """The hosts, networks and ports a move may go to; every check raises AgentError 403 naming why."""

    peers: frozenset[str]
    networks: tuple[Network, ...] = ()
    ports: tuple[int, int] = DEFAULT_PORTS

    @classmethod
    def of(cls, peers: Iterable[str], networks: Iterable[str] = (),
           ports: tuple[int, int] = DEFAULT_PORTS) -> MigrationLeash:
        return cls(frozenset(peers), tuple(ipaddress.ip_network(n, strict=False) for n in networks), ports)

    def check_peer(self, src: str, vm: str, dst: str) -> None:
        """``dst`` is a host of the configuration (and not the source)."""
        if dst not in self.peers or dst == src:
            raise AgentError(src, f"migrate {vm}", 403,
                             f"{dst!r} is not a migration peer of {src} (hosts of cluster.toml)")

    def check_uri(self, src: str, vm: str, dst: str, uri: str) -> None:
        """The data connection goes to an address of the migration networks, on a port of the range
        (a URI without a port leaves the port to the destination, e.g. libvirt's migration_port_min..max)."""
        self.check_peer(src, vm, dst)
        self.check_address(src, vm, dst, uri)

    def check_address(self, src: str, vm: str, dst: str, uri: str) -> None:
        """Only the address and port of ``uri`` (cluster.toml's own migrate_uri values at load)."""
        try:
            host, port = data_address(uri)
        except ValueError as exc:
            raise AgentError(src, f"migrate {vm}", 403, f"to {dst}: {exc}") from None
        if self.networks:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                raise AgentError(src, f"migrate {vm}", 403, f"to {dst}: {host!r} is not an IP address of the "
                                 "migration networks (set the host's migrate_uri)") from None
            if not any(address in net for net in self.networks):
                nets = ", ".join(str(n) for n in self.networks)
                raise AgentError(src, f"migrate {vm}", 403, f"to {dst}: {address} is outside the migration "
                                 f"networks ({nets})")
        low, high = self.ports
        if port is not None and not low <= port <= high:
            raise AgentError(src, f"migrate {vm}", 403, f"to {dst}: port {port} is outside the migration "
                             f"ports {low}..{high}")
