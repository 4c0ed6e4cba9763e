"""The one TOML loader (domain/tomlfile.py) and every configuration loader that reads through it.

Each loader gets the same bad files (binary, not TOML, unreadable) and must give one UserError naming
the file; the field reader names ``section.field``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consolidator.agent.api.config import load_config
from consolidator.domain.errors import UserError
from consolidator.domain.tomlfile import Fields, parse_toml, read_toml, schema_error
from consolidator.experiments.lab.faultspec import load_spec
from consolidator.manager.config import load_cluster_config
from consolidator.power.config import load_power_config
from consolidator.sim.scenario import load_scenario

LOADERS: dict[str, Callable[[Path], Any]] = {
    "scenario": load_scenario,
    "host.toml": load_config,
    "cluster.toml": load_cluster_config,
    "power": load_power_config,
    "fault spec": lambda path: load_spec(str(path)),
}
BAD = {
    "binary": (b"\x7fELF\x02\x01\x01\x00\xff\xfe" * 5, "not UTF-8 text (byte 8)"),
    "not toml": (b"[hosts\nname = = 1\n", "not valid TOML"),
}


@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("loader", list(LOADERS))
def test_every_loader_names_the_file_of_a_bad_document(tmp_path: Path, loader: str, bad: str) -> None:
    path = tmp_path / "in.toml"
    content, message = BAD[bad]
    path.write_bytes(content)
    with pytest.raises(UserError) as caught:
        LOADERS[loader](path)
    assert caught.value.source == str(path) and message in caught.value.message
    assert "\n" not in str(caught.value).split("(", 1)[0]  # one line up to TOML's own detail


def test_unreadable_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read: Is a directory") as caught:
        read_toml(tmp_path)
    assert caught.value.source == str(tmp_path)
    big = tmp_path / "big.toml"
    big.write_text("a = 1\n" * 100)
    with pytest.raises(UserError, match="larger than 10 bytes: not a host.toml"):
        read_toml(big, "a host.toml", max_bytes=10)
    empty = tmp_path / "empty.toml"
    empty.write_text("  \n")
    assert read_toml(empty) == {}
    with pytest.raises(UserError, match="file is empty"):
        read_toml(empty, empty_ok=False)
    assert parse_toml(b"[a]\nb = 2\n", "x") == {"a": {"b": 2}}


def test_field_reader_names_section_and_field() -> None:
    doc = Fields({"seed": 3, "flag": True, "faults": {"cut": -1}, "name": ""}, "f.toml")
    assert doc.number("seed", 1, 0, 10) == 3.0 and doc.get("flag", bool) is True
    cases: list[tuple[Callable[[], object], str, str]] = [
        (lambda: doc.sub("faults").number("cut", 0, 0, 5), "faults.cut", "must be a number in 0..5"),
        (lambda: doc.get("flag", int), "flag", "must be a int"),  # a bool is not a number
        (lambda: doc.text("name", "the lab"), "name", "required for the lab"),
        (lambda: doc.only({"seed", "flag", "faults"}), "name", "unknown key (known: faults, flag, seed)"),
        (lambda: Fields({"x": 1}, "f.toml", "hosts.pm0").sub("x"), "hosts.pm0.x", "must be a dict"),
    ]
    for call, field, message in cases:
        with pytest.raises(UserError) as caught:
            call()
        assert (caught.value.source, caught.value.field) == ("f.toml", field)
        assert message in caught.value.message
        assert str(caught.value).startswith(f"f.toml: {field}: ")


def test_schema_error_formats_the_first_location() -> None:
    errors = [{"loc": ("hosts", "pm1", "agent", "[key]", "url"), "msg": "Value error, bad url"},
              {"loc": ("other",), "msg": "not this one"}]
    err = schema_error(errors, "c.toml", skip=("agent",))
    assert (err.source, err.field, err.message) == ("c.toml", "hosts.pm1.url", "bad url")
    assert schema_error([{"loc": ("vms", 0, "load", 1), "msg": "m"}], "s.toml").field == "vms[0].load[1]"
    assert schema_error([{"loc": (), "msg": "m"}], "s.toml").field is None


def test_fault_spec_cli_bad_file_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text("[faults]\nlink_cut = 99\n")
    done = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "lab", "run", "--faults", str(path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: {path}: faults.link_cut: must be a number in 0..20, not 99"
