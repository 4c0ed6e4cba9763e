"""Model and RAPL meters, addresses and credentials (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from consolidator.domain.errors import UserError
from consolidator.domain.types import PowerProfile, PowerState
from consolidator.power.meters import Credentials, MeterError, ModelMeter, RaplMeter, split_address


@pytest.mark.parametrize(("state", "load", "watts"), [
    (PowerState.ON, 0.0, 53.0),  # paper: idle with C-states
    (PowerState.ON, 0.5, 76.5),  # 53 + 47 * 0.5
    (PowerState.ON, 3.0, 100.0),  # L = min(1, load)
    (PowerState.SUSPENDED, 0.0, 7.0),  # S3
    (PowerState.FAILED, 0.0, 6.0),  # off with AMT
])
def test_model_meter_is_the_paper_model(state: PowerState, load: float, watts: float) -> None:
    assert ModelMeter(PowerProfile(), 4.0, lambda: (state, load)).read_watts() == pytest.approx(watts)


def test_model_meter_with_a_specpower_table() -> None:
    g4 = (86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117)  # DESIGN §6, HP ML110 G4
    profile = PowerProfile(table_watts=g4, full_load_cores=None)
    assert ModelMeter(profile, 2.0, lambda: (PowerState.ON, 1.0)).read_watts() == pytest.approx(102.0)
    assert ModelMeter(profile, 2.0, lambda: (PowerState.ON, 0.1)).read_watts() == pytest.approx(87.7)


def _zone(root: Path, name: str, energy_uj: int, max_uj: int = 2**32) -> Path:
    z = root / name
    z.mkdir(parents=True, exist_ok=True)
    (z / "energy_uj").write_text(f"{energy_uj}\n")
    (z / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return z


def test_rapl_differences_counters_of_every_package(tmp_path: Path) -> None:
    """A powercap tree in a temp folder stands in for /sys/class/powercap (this VM has no RAPL)."""
    p0, p1 = _zone(tmp_path, "intel-rapl:0", 1_000_000), _zone(tmp_path, "intel-rapl:1", 5_000_000)
    _zone(tmp_path, "intel-rapl:0:0", 0)  # a sub-zone (cores) is inside package 0: not added again
    t = [100.0]
    meter = RaplMeter(tmp_path, prime_s=0.5, clock=lambda: t[0], sleep=lambda s: t.__setitem__(0, t[0] + s))
    (p0 / "energy_uj").write_text("1000000")
    first = meter.read_watts()  # primes: reads, sleeps 0.5 s (counters unchanged), reads
    assert first == 0.0
    t[0] += 2.0
    (p0 / "energy_uj").write_text(str(1_000_000 + 60_000_000))  # 60 J in 2 s
    (p1 / "energy_uj").write_text(str(5_000_000 + 20_000_000))  # 20 J in 2 s
    assert meter.read_watts() == pytest.approx(40.0)
    t[0] += 1.0
    (p0 / "energy_uj").write_text(str(10_000_000))  # wrapped at 2**32 uJ
    (p1 / "energy_uj").write_text(str(25_000_000))
    wrapped_j = ((10_000_000 - 61_000_000) % 2**32) / 1e6
    assert meter.read_watts() == pytest.approx(wrapped_j)


def test_rapl_absent_is_a_clear_meter_error(tmp_path: Path) -> None:
    with pytest.raises(MeterError, match="no RAPL here"):
        RaplMeter(tmp_path / "missing")
    with pytest.raises(MeterError, match="no RAPL package zone"):
        RaplMeter(tmp_path)


@pytest.mark.parametrize(("text", "expected"), [
    ("bmc1", ("bmc1", 623)),
    ("127.0.0.1:9623", ("127.0.0.1", 9623)),
    ("[::1]:700", ("::1", 700)),
    ("[fe80::1]", ("fe80::1", 623)),
])
def test_split_address(text: str, expected: tuple[str, int]) -> None:
    assert split_address(text, 623) == expected


@pytest.mark.parametrize("bad", ["host:0", "host:99999", "host:abc", ":623"])
def test_bad_addresses_are_user_errors(bad: str) -> None:
    with pytest.raises(UserError, match="--address"):
        split_address(bad, 623)


def test_credentials_hide_the_password_and_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("hunter2\nignored\n")
    creds = Credentials.from_file("admin", path)
    assert creds.password == "hunter2" and "hunter2" not in repr(creds)
    with pytest.raises(UserError, match="missing"):
        Credentials.from_file("admin", tmp_path / "missing")
