"""The one policy registry: every listed name builds, parameters are typed and validated, the CLI lists it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from consolidator.domain.errors import UserError
from consolidator.policies.registry import ENTRIES, describe, make_policy, policy_names

LITERATURE = ["thr-mmt-0.8", "iqr-mc-1.5", "mad-rs-2.5", "lr-mu-1.2", "lrr-mmt-1.2", "mhod-mmt-0.1"]


def test_every_listed_name_builds_a_policy_with_its_defaults() -> None:
    for name in policy_names():
        policy = make_policy(name)
        assert policy.name == name
        assert callable(policy.plan)
    assert set(LITERATURE) <= set(policy_names())
    assert {"paper", "aware", "ideal", "none"} <= set(policy_names())
    assert len([n for n in policy_names() if n.count("-") == 2]) == 24  # 6 detectors x 4 selectors


def test_literature_names_with_other_parameters_and_keywords() -> None:
    assert make_policy("thr-mmt").name == "thr-mmt-0.8"
    assert make_policy("thr-mmt-0.7").parameter == 0.7  # type: ignore[attr-defined]
    assert make_policy("thr-mmt", threshold=0.6).parameter == 0.6  # type: ignore[attr-defined]
    rs = make_policy("iqr-rs-1.5", seed=9, interval_s=60)
    assert (rs.seed, rs.interval_s) == (9, 60.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "args", "field"), [
    ("thr-mmt-1.5", {}, "--policy"),  # threshold above 1
    ("thr-xyz", {}, "--policy"),
    ("iqr-mmt", {"threshold": 0.5}, "policy.threshold"),  # IQR's parameter is a safety factor
    ("lr-mmt", {"safety": "high"}, "policy.safety"),
    ("thr-rs", {"seed": 1.5}, "policy.seed"),
    ("thr-rs", {"seed": -1}, "policy.seed"),
    ("mad-mmt", {"interval_s": 0}, "policy.interval_s"),
    ("paper", {"hold_s": True}, "policy.hold_s"),
    ("paper", {"colour": 1}, "policy.colour"),
    ("fastest", {}, "policy"),
])
def test_bad_names_and_arguments_name_the_field(name: str, args: dict[str, object], field: str) -> None:
    with pytest.raises(UserError) as err:
        make_policy(name, **args)
    assert err.value.field == field


def test_describe_reads_the_table() -> None:
    rows = describe()
    assert [r["name"] for r in rows] == list(ENTRIES)
    thr = next(r for r in rows if r["name"] == "thr-mmt-0.8")
    assert thr["params"] == {
        "threshold": {"default": 0.8, "type": "float", "min": 0.0, "max": 1.0, "help": "utilisation threshold (0..1)"},
        "seed": {"default": 1, "type": "int", "min": 0, "max": None, "help": "seed of the random VM selection (RS)"},
        "interval_s": {"default": 300.0, "type": "float", "min": 1e-9, "max": None,
                       "help": "planning interval, s (CloudSim's scheduling interval)"},
        "underload_tries": {"default": 0, "type": "int", "min": 0, "max": None,
                            "help": "hosts the underload step tries per round (0: all, as CloudSim)"},
    }
    paper = next(r for r in rows if r["name"] == "paper")
    assert paper["params"]["overload_threshold"]["default"] == 0.9  # type: ignore[index]


def test_cli_lists_the_same_table_as_json() -> None:
    proc = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "policies", "--json"],
                          capture_output=True, text=True, check=True)
    rows = json.loads(proc.stdout)
    assert rows == json.loads(json.dumps(describe()))
    assert all(set(r) == {"name", "params", "summary"} and r["summary"] for r in rows)
    assert "numba" not in subprocess.run(  # listing does not load the compiler
        [sys.executable, "-c", "import sys, consolidator.policies.registry as r; r.describe(); "
                               "print(sorted(m for m in sys.modules if m.startswith('numba')))"],
        capture_output=True, text=True, check=True).stdout.replace("[]", "")


def test_plain_listing_prints_every_policy_with_its_defaults() -> None:
    from typer.testing import CliRunner

    from consolidator.cli.main import app

    out = CliRunner().invoke(app, ["policies"])
    assert out.exit_code == 0, out.output
    assert "parameters: threshold=0.8, seed=1, interval_s=300, underload_tries=0" in out.output
    assert all(name in out.output for name in policy_names())
