"""cluster.toml with ``driver = "libvirt"``: the table parses, the engine is built from it, and a
mistake is one line naming file and field."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from consolidator.domain.errors import UserError
from consolidator.domain.types import MigrationMethod
from consolidator.manager.client import AgentError
from consolidator.manager.config import LibvirtHost, load_cluster_config
from consolidator.manager.engine import make_engine
from consolidator.protocol.migration import DEFAULT_OPTIONS

libvirt = pytest.importorskip("libvirt", reason="the libvirt-python binding is not installed (40-libvirt.sh)")

from consolidator.manager.libvirt.engine import LibvirtEngine  # noqa: E402

CLUSTER = """
run_store = "{d}/run.sqlite"
api_token_file = "{d}/tok"
[hosts.pm0]
role = "warehouse"
driver = "libvirt"
uri = "qemu+tls://pm0.example/system"
migrate_uri = "tcp://10.0.1.10"
suspend_command = ["/usr/local/sbin/suspend-host", "pm0"]
[hosts.pm1]
driver = "libvirt"
uri = "qemu+ssh://root@pm1.example/system?keyfile=/etc/consolidator/id_ed25519"
peer_uri = "qemu+tls://pm1.example/system"
migration_tls = true
{extra}
"""


def _write(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "tok").write_text("manager-test-token-0123456789")
    path = tmp_path / "cluster.toml"
    path.write_text(CLUSTER.format(d=tmp_path, extra=extra))
    return path


def test_libvirt_hosts_parse_and_build_engines(tmp_path: Path) -> None:
    cfg = load_cluster_config(_write(tmp_path))
    pm0, pm1 = cfg.hosts["pm0"], cfg.hosts["pm1"]
    assert isinstance(pm0, LibvirtHost) and isinstance(pm1, LibvirtHost)
    e0, e1 = make_engine("pm0", pm0, cfg.leash()), make_engine("pm1", pm1, cfg.leash())
    assert isinstance(e0, LibvirtEngine) and isinstance(e1, LibvirtEngine)
    assert e0.settings.suspend_command == ("/usr/local/sbin/suspend-host", "pm0")
    assert e0.peer_uri == "qemu+tls://pm0.example/system" and e0.settings.migrate_uri == "tcp://10.0.1.10"
    assert e1.peer_uri == "qemu+tls://pm1.example/system" and e1.settings.migration.tls
    assert not e1.link.is_open()  # nothing connects before the manager runs


@pytest.mark.parametrize(("extra", "field"), [
    ('migrate_uri = "10.0.1.11"', "migrate_uri"),
    ('suspend_command = "systemctl suspend"', "suspend_command"),  # a shell string is not an argv
    ('url = "http://x:8700"', "url"),
    ('[migration]\nnetworks = ["10.0.9.0/24"]', "hosts.pm0.migrate_uri"),  # pm0's migrate_uri is off the leash
])
def test_bad_libvirt_field_is_named(tmp_path: Path, extra: str, field: str) -> None:
    with pytest.raises(UserError) as info:
        load_cluster_config(_write(tmp_path, extra))
    assert "cluster.toml" in str(info.value) and field in str(info.value)


def test_leash_refuses_before_any_connection(tmp_path: Path) -> None:
    """pm1 has no migrate_uri: its data would go to its peer URI's host, a name, which a leash with
    networks refuses (unit level: the refusal comes before either engine connects; with libvirtd:
    tests/libvirt/test_libvirt_migration.py::test_leash_refuses_before_libvirt_connects)."""
    cfg = load_cluster_config(_write(tmp_path, '[migration]\nnetworks = ["10.0.1.0/24"]\n'))
    e0, e1 = (make_engine(h, cfg.hosts[h], cfg.leash()) for h in ("pm0", "pm1"))
    assert isinstance(e0, LibvirtEngine) and isinstance(e1, LibvirtEngine)
    with pytest.raises(AgentError) as info:
        asyncio.run(e0.migrate_to("vm0", e1, MigrationMethod.POSTCOPY, DEFAULT_OPTIONS))
    assert info.value.status == 403
    assert "'pm1.example' is not an IP address of the migration networks" in info.value.detail
    assert not e0.link.is_open() and not e1.link.is_open()  # nothing connected
