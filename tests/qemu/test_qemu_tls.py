"""QEMU's TLS migration (``tls-creds-x509``, both ends verify) between two namespaces, real QEMU (TCG):
a postcopy move completes encrypted and intact, on a port of the configured range; a source whose
certificate another CA signed is refused and its guest keeps running where it was (issue 11, item 8)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from qemu_support import Pair

from consolidator.agent.hypervisor import MigrationRequest
from consolidator.agent.qemu import DriverSettings, QemuDriver
from consolidator.domain.types import MigrationMethod, MigrationOutcome
from consolidator.protocol.migration import MigrationOptions
from consolidator.protocol.schemas import VmConfig

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(300)]
PORTS = (50100, 50109)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(name: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
          ips: list[str], usage: ExtendedKeyUsageOID | None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer if issuer is not None else (subject, key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True))
    if ips:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(folder: Path, ips: list[str]) -> Path:
    """QEMU's tls-creds-x509 layout: one CA, a server and a client certificate (the hosts' addresses)."""
    folder.mkdir(parents=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("migration CA", ca_key, None, [], None)
    (folder / "ca-cert.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role, usage in (("server", ExtendedKeyUsageOID.SERVER_AUTH), ("client", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(f"migration {role}", key, (ca.subject, ca_key), ips, usage)
        (folder / f"{role}-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{role}-key.pem").write_bytes(_pem(key))
    return folder


def _drivers(pair: Pair, src_pki: Path, dst_pki: Path) -> tuple[QemuDriver, QemuDriver]:
    def one(base: DriverSettings, pki: Path) -> QemuDriver:
        return QemuDriver(DriverSettings(base.state_dir, netns=base.netns, guest=base.guest, tls_dir=pki,
                                         migration_ports=PORTS))

    return one(pair.src_settings, src_pki), one(pair.dst_settings, dst_pki)


def test_tls_postcopy_completes_and_a_foreign_certificate_is_refused(pair: Pair, tmp_path: Path) -> None:
    ips = [pair.link.a.address, pair.link.b.address]
    pki, foreign = make_pki(tmp_path / "pki", ips), make_pki(tmp_path / "foreign", ips)
    config = VmConfig("tls1", mem_mib=256, load=0.3, dirty_mib_s=40)

    async def main() -> None:
        src, dst = _drivers(pair, pki, pki)
        try:
            await src.create_vm(config)
            uri = await dst.prepare_incoming(config, pair.link.b.address)
            assert PORTS[0] <= int(uri.rsplit(":", 1)[1]) <= PORTS[1]
            params = await dst._vms["tls1"].monitor.execute("query-migrate-parameters")
            assert params["tls-creds"] == "mig-tls-server"
            report = await src.migrate(MigrationRequest("tls1", uri, MigrationMethod.POSTCOPY))
            assert report.outcome is MigrationOutcome.COMPLETED, report.detail
            await dst.wait_incoming("tls1", 60)
            assert await dst.check_pages("tls1") == 0
            await dst.destroy_vm("tls1")
        finally:
            for driver in (src, dst):
                for info in await driver.list_vms():
                    await driver.destroy_vm(info.name)
                await driver.close()
        src, dst = _drivers(pair, foreign, pki)  # the source's certificate: signed by another CA
        try:
            await src.create_vm(config)
            uri = await dst.prepare_incoming(config, pair.link.b.address)
            precopy = MigrationRequest("tls1", uri, MigrationMethod.PRECOPY, MigrationOptions(timeout_s=30))
            report = await src.migrate(precopy)
            assert report.outcome is MigrationOutcome.FAILED, report
            assert [i.name for i in await src.list_vms()] == ["tls1"]
            assert await src.check_pages("tls1") == 0
        finally:
            for driver in (src, dst):
                for info in await driver.list_vms():
                    await driver.destroy_vm(info.name)
                await driver.close()

    asyncio.run(main())
