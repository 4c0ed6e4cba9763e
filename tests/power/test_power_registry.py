"""The one registration of meters and wake methods: the CLI, the configuration file and the listing read it."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from consolidator.domain.errors import UserError
from consolidator.domain.registry import describe
from consolidator.power import registry
from consolidator.power.config import KEYS, load_power_config
from consolidator.power.wake import RetryPolicy
from tests.power.test_cli_power import _one_error_line, in_process


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "power.toml"
    path.write_text(body)
    return path


def test_one_verify_timeout_for_the_cli_the_file_and_the_policy(tmp_path: Path) -> None:
    from consolidator.cli.power_cmd import power_wake

    default = registry.RETRY_DEFAULTS["verify_timeout_s"]
    assert RetryPolicy().verify_timeout_s == default == 90.0
    cfg = load_power_config(_config(tmp_path, "[hosts.pm1]\nwake = ['wol']\nmac = '52:54:00:12:34:56'\n"))
    assert cfg.controller.wakers["pm1"].policy == RetryPolicy()
    cli_default = power_wake.__defaults__[power_wake.__code__.co_varnames.index("verify_timeout_s") - 1]  # type: ignore[index]
    assert cli_default == default


def test_the_file_accepts_exactly_the_registered_keys() -> None:
    for entry in registry.WAKERS:
        assert {p.name for p in entry.params} <= KEYS
    assert {"bmc", "password_file", "timeout_s", "insecure", "verify_timeout_s", "meter", "wake"} <= KEYS
    assert "cpu_load" not in KEYS  # a model node is metered from the load the manager polls


@pytest.mark.parametrize(("table", "command"), [(registry.METERS, "meters"), (registry.WAKERS, "wakers")])
def test_listing_reads_the_table(table: registry.Table, command: str, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[type-arg]
    done = in_process(capsys, "power", command, "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["name"] for r in rows][:len(table)] == table.names()
    assert rows[:len(table)] == json.loads(json.dumps(describe(table)))
    if command == "wakers":
        assert rows[-1]["params"]["verify_timeout_s"]["default"] == 90.0


def test_the_same_mistake_names_the_option_or_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = functools.partial(in_process, capsys)
    done = cli("power", "wake", "--method", "amt", "--address", "127.0.0.1:16992")
    assert done.returncode == 2
    assert _one_error_line(done) == "error: --password-file: required for the amt wake method"
    with pytest.raises(UserError) as caught:
        load_power_config(_config(tmp_path, "[hosts.pm1]\nwake = ['amt']\namt = '127.0.0.1'\n"))
    assert (caught.value.field, caught.value.message) == ("hosts.pm1.password_file",
                                                          "required for the amt wake method")
    done = cli("power", "read", "--meter", "model", "--cores", "0", "--cpu-load", "1")
    assert done.returncode == 2 and "--cores: 0 out of range" in _one_error_line(done)
    with pytest.raises(UserError, match=r"unknown meter 'solar' \(known: model, rapl, ipmi, redfish\)") as caught:
        load_power_config(_config(tmp_path, "[hosts.pm1]\nmeter = 'solar'\n"))
    assert caught.value.field == "hosts.pm1.meter"
    with pytest.raises(UserError, match="must be true or false") as caught:
        load_power_config(_config(tmp_path, "[hosts.pm1]\nmeter = 'redfish'\nbmc = 'h'\ninsecure = 'yes'\n"
                                             "password_file = '/nonexistent'\n"))
    assert caught.value.field == "hosts.pm1.insecure"


def test_model_meter_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    done = in_process(capsys, "power", "read", "--meter", "model", "--cores", "4", "--cpu-load", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["watts"] == pytest.approx(53 + 47 * 0.5)


def test_listing_loads_no_meter_library() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys, consolidator.cli.main as m; "
                          "print(sorted(k for k in ('numpy', 'sushy', 'httpx', 'wakeonlan') if k in sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_docs_show_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "power.md").read_text()
    for command in ("meters", "wakers"):
        done = in_process(capsys, "power", command)
        assert done.returncode == 0 and f"$ consolidator power {command}\n{done.stdout}" in doc
