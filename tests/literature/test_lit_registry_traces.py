"""Policy names and trace loaders: valid input parses, bad input names the file or argument."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from consolidator.domain.errors import UserError
from consolidator.policies.literature.registry import Detector, Selector, parse_policy, policy_names
from consolidator.traces.load import load_csv, load_planetlab_day


@pytest.mark.parametrize(("name", "detector", "selector", "param"), [
    ("thr-mmt-0.8", Detector.THR, Selector.MMT, 0.8),
    ("LR-MC-1.2", Detector.LR, Selector.MC, 1.2),
    ("mad-rs", Detector.MAD, Selector.RS, 2.5),
    ("iqr-mu-1.5", Detector.IQR, Selector.MU, 1.5),
    ("lrr-mmt-1.2", Detector.LRR, Selector.MMT, 1.2),
])
def test_parse_policy(name: str, detector: Detector, selector: Selector, param: float) -> None:
    policy = parse_policy(name)
    assert (policy.detector, policy.selector, policy.parameter) == (detector, selector, param)


@pytest.mark.parametrize(("name", "message"), [
    ("foo-mmt-0.8", "unknown overload detector 'foo'"),
    ("thr-xyz-0.8", "unknown VM selector 'xyz'"),
    ("thr-mmt-abc", "is not a number"),
    ("thr-mmt-1.5", "out of range"),
    ("iqr-mmt--1", "malformed policy"),
    ("thr", "malformed policy"),
    ("thr-mmt-nan", "out of range"),
])
def test_bad_policy_names(name: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as err:
        parse_policy(name)
    assert err.value.field == "--policy"


def test_baselines_parse() -> None:
    assert parse_policy("DVFS").name == "dvfs" and parse_policy("npa").baseline is not None
    assert parse_policy("thr-mmt-0.8").baseline is None


def test_every_listed_name_parses() -> None:
    assert len(policy_names()) == 24  # 6 detectors x 4 selectors
    for name in policy_names():
        assert parse_policy(name).name == name


def _day(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "day"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_planetlab_loader_takes_files_in_name_order(tmp_path: Path) -> None:
    folder = _day(tmp_path, {"b": "1\n2\n3\n", "a": "4\n5\n6\n"})
    trace = load_planetlab_day(folder, steps=3)
    assert trace.vm_names == ("a", "b")
    np.testing.assert_array_equal(trace.cpu_pct, [[4, 5, 6], [1, 2, 3]])


@pytest.mark.parametrize(("text", "message"), [
    ("1\nx\n3\n", "line 2: 'x' is not an integer"),
    ("1\n2\n101\n", "line 3: CPU 101 % is out of range"),
    ("1\n-1\n3\n", "out of range"),
    ("1\n2\n", "has 2 values, needs 3"),
])
def test_planetlab_loader_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    folder = _day(tmp_path, {"ok": "1\n2\n3\n", "vm7": text})
    with pytest.raises(UserError, match=message) as err:
        load_planetlab_day(folder, steps=3)
    assert err.value.source == str(folder / "vm7")


def test_missing_or_empty_day_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such trace folder"):
        load_planetlab_day(tmp_path / "20990101")
    with pytest.raises(UserError, match="holds no files"):
        load_planetlab_day(_day(tmp_path, {}))


def test_real_day_loads(planetlab_root: Path) -> None:
    trace = load_planetlab_day(planetlab_root / "20110303")
    assert trace.cpu_pct.shape == (1052, 288)


def test_csv_loader(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp,vm,cpu\n0,b,10\n0,a,20\n300,a,30\n300,b,40\n600,a,0\n600,b,5\n")
    trace = load_csv(path)
    assert trace.vm_names == ("a", "b") and trace.interval_s == 300.0
    np.testing.assert_array_equal(trace.cpu_pct, [[20, 30, 0], [10, 40, 5]])


@pytest.mark.parametrize(("text", "message"), [
    ("time,vm,cpu\n0,a,1\n", "missing column"),
    ("timestamp,vm,cpu\n0,a,x\n300,a,1\n600,a,1\n", "line 2: timestamp and cpu must be numbers"),
    ("timestamp,vm,cpu\n0,a,120\n300,a,1\n600,a,1\n", "line 2: cpu 120 out of range"),
    ("timestamp,vm,cpu\n0,a,1\n300,a,1\n900,a,1\n", "equally spaced"),
    ("timestamp,vm,cpu\n0,a,1\n300,a,1\n600,a,1\n0,b,1\n", "lacks values"),
])
def test_csv_loader_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as err:
        load_csv(path)
    assert err.value.source == str(path)


def test_csv_interval_must_be_whole_seconds(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp,vm,cpu\n0,a,1\n0.5,a,1\n1.0,a,1\n")
    with pytest.raises(UserError, match="whole number of seconds"):
        load_csv(path)
