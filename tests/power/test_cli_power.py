"""The stable CLI (`consolidator power read|wake`, `db export`, `bench store`) run as a real process."""

from __future__ import annotations

import functools
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from consolidator.domain.samples import HostSample
from consolidator.power.emulators.ipmi_sim import IpmiSimBmc
from consolidator.power.emulators.sushy import SushyEmulator
from consolidator.storage import open_store


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consolidator.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """The same entry point without a new interpreter (argument errors need no peer; saves ~2 s each)."""
    from consolidator.cli.main import main

    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.mark.services
def test_power_read_ipmi_and_redfish(bmc: IpmiSimBmc, redfish: SushyEmulator, password_file: Path) -> None:
    done = cli("power", "read", "--meter", "ipmi", "--address", bmc.address, "--username", "admin",
               "--password-file", str(password_file), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["watts"] == 77.0
    redfish.set_watts(91.5)
    done = cli("power", "read", "--meter", "redfish", "--address", redfish.url.removeprefix("http://"),
               "--username", "admin", "--password-file", str(password_file), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["watts"] == 91.5


@pytest.mark.services
def test_wrong_credentials_and_unreachable_meters_fail_in_one_line(bmc: IpmiSimBmc, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it\n")
    done = cli("power", "read", "--meter", "ipmi", "--address", bmc.address, "--password-file", str(wrong), "--json")
    assert done.returncode == 1 and "credentials refused" in _one_error_line(done)
    done = cli("power", "read", "--meter", "redfish", "--address", "127.0.0.1:9", "--password-file", str(wrong),
               "--timeout", "2")
    assert done.returncode == 1 and "127.0.0.1:9" in _one_error_line(done)


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    cli = functools.partial(in_process, capsys)
    done = cli("power", "read", "--meter", "ipmi", "--address", "127.0.0.1:1623")
    assert done.returncode == 2 and "--password-file" in _one_error_line(done)
    done = cli("power", "read", "--meter", "ipmi", "--address", "h:notaport", "--password-file", "/etc/hostname")
    assert done.returncode == 2 and "bad port" in _one_error_line(done)
    done = cli("power", "wake", "--method", "wol", "--address", "127.0.0.1:9")
    assert done.returncode == 2 and "--mac" in _one_error_line(done)


@pytest.mark.services
def test_power_wake_ipmi_verifies_and_reports_attempts(bmc: IpmiSimBmc, password_file: Path,
                                                       tmp_path: Path) -> None:
    done = cli("power", "wake", "--method", "ipmi", "--address", bmc.address, "--password-file",
               str(password_file), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["ok"] is True and out["attempts"] == 1 and bmc.powered_on()
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    done = cli("power", "wake", "--method", "ipmi", "--address", bmc.address, "--password-file", str(wrong),
               "--json")
    assert done.returncode == 1 and "credentials refused" in _one_error_line(done)
    out = json.loads(done.stdout)
    assert (out["ok"], out["attempts"], out["method"], out["state"], out["verified"]) == (
        False, 1, None, "failed", True)
    assert "credentials refused" in out["errors"][0]


def test_power_wake_wol_sends_the_packet() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(10)
        port = rx.getsockname()[1]
        done = cli("power", "wake", "--method", "wol", "--mac", "52:54:00:00:00:01",
                   "--address", f"127.0.0.1:{port}", "--json")
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["ok"] is True and out["attempts"] == 1 and out["verified"] is False
        assert rx.recv(200) == b"\xff" * 6 + bytes.fromhex("525400000001") * 16


def test_power_wake_wol_unverified_host_fails_after_attempts() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: refuses connections
        done = cli("power", "wake", "--method", "wol", "--mac", "52:54:00:00:00:01", "--address",
                   "127.0.0.1:9", "--verify-tcp", f"127.0.0.1:{port}", "--verify-timeout", "0.3",
                   "--attempts", "2", "--backoff", "0.1", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["attempts"] == 2 and json.loads(done.stdout)["state"] == "failed"


def test_db_export_and_bad_databases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = functools.partial(in_process, capsys)
    db = tmp_path / "run.sqlite"
    with open_store(db) as store:
        store.write_host_samples([HostSample(float(t), "pm0", 0.5) for t in range(5)])
    done = cli("db", "export", str(db), "--out", str(tmp_path / "csv"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"]["host_samples"] == 5
    assert (tmp_path / "csv" / "host_samples.csv").read_text().count("\n") == 6
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"garbage" * 1000)
    done = cli("db", "export", str(corrupt), "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "corrupt.sqlite" in _one_error_line(done)
    done = cli("db", "info", str(tmp_path / "absent.sqlite"))
    assert done.returncode == 2 and "absent.sqlite: no such database file" in _one_error_line(done)
    done = cli("db", "export", "postgresql://u:secretpw@127.0.0.1:9/db", "--out", str(tmp_path / "y"))
    assert done.returncode == 2 and "127.0.0.1:9" in _one_error_line(done) and "secretpw" not in done.stderr


@pytest.mark.services
def test_bench_store_prints_both_rates() -> None:
    done = cli("bench", "store", "--seconds", "5", "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["sqlite_samples_per_s"] > 0 and figures["postgres_samples_per_s"] > 0
