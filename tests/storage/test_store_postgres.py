"""The run store on a real PostgreSQL server (private cluster started by the session fixture)."""

from __future__ import annotations

import socket
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from storage_restart import check_kill_and_resume  # tests/storage/storage_restart.py

from consolidator.domain.events import HostPowerChanged
from consolidator.domain.samples import HostSample, PowerSample, VmSample
from consolidator.domain.types import PowerState
from consolidator.storage import StoreError, engine, open_store
from consolidator.storage.schema import metadata

pytestmark = pytest.mark.services


def test_round_trip_and_resume(postgres_url: str) -> None:
    with open_store(postgres_url, batch_rows=1000) as store:
        store.write_host_samples([HostSample(float(t), f"pm{t % 3}", 0.25 * (t % 4)) for t in range(2500)])
        store.write_vm_samples([VmSample(1.0, "vm0", "pm0", 0.8, 2e8)])
        store.write_power_samples([PowerSample(1.0, "pm0", "ipmi", 77.0)])
        store.write_event(HostPowerChanged(2.0, "pm1", PowerState.FAILED, "wake failed"))
        store.set_meta("policy", "paper")
        assert store.count("host_samples") == 2500
        assert store.host_average("pm1", 0.0, 11.0) == pytest.approx((0.25 + 0.0 + 0.75 + 0.5) / 4)
    with open_store(postgres_url) as store:
        state = store.resume_state()
        assert state.last_t_s == 2499.0
        assert state.hosts["pm0"] == HostSample(2499.0, "pm0", 0.75)
        assert state.power_states == {"pm1": PowerState.FAILED}
        assert state.meta == {"policy": "paper"}
        assert store.power_window("pm0", 0, 5) == [PowerSample(1.0, "pm0", "ipmi", 77.0)]


def test_a_killed_manager_loses_no_stored_sample_and_resumes(postgres_url: str) -> None:
    check_kill_and_resume(postgres_url)


def test_migrations_create_exactly_the_declared_schema(postgres_url: str) -> None:
    with open_store(postgres_url) as store, store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_wrong_password_names_the_url_without_the_password(postgres_url: str) -> None:
    bad = postgres_url.replace(postgres_url.split(":")[2].split("@")[0], "not-the-password")
    with pytest.raises(StoreError, match="wrong PostgreSQL user or password") as info:
        open_store(bad)
    assert "not-the-password" not in str(info.value) and "127.0.0.1" in str(info.value)


def test_refused_port_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(StoreError, match=rf"127\.0\.0\.1:{port}.*did not answer"):
        open_store(f"postgresql://u:p@127.0.0.1:{port}/db")


def test_a_server_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A listener that accepts TCP but never speaks PostgreSQL: the connect timeout ends the wait."""
    monkeypatch.setattr(engine, "PG_CONNECT_TIMEOUT_S", 1)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with pytest.raises(StoreError, match=rf"127\.0\.0\.1:{port}"):
            open_store(f"postgresql://u:p@127.0.0.1:{port}/db")
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        silent.close()
