"""``consolidator data planetlab``: download from a mirror on loopback, check, cache; commands find the cache.

The mirror is a real HTTP server (the standard library's, in a thread) on 127.0.0.1 serving the
shared traces folder, or a tar.gz of one day made by the test.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from consolidator.traces.fetch import DAYS, day_digest

GOLDEN = {g["day"] + g["policy"]: g for g in json.loads((Path(__file__).parent / "golden_cloudsim.json").read_text())}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _cli(args: list[str], cwd: Path, cache_home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CONSOLIDATOR_PLANETLAB"}
    env["XDG_CACHE_HOME"] = str(cache_home)
    return subprocess.run([sys.executable, "-m", "consolidator.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.slow
def test_download_from_a_web_folder_then_commands_find_the_cache(planetlab_root: Path, serve: object,
                                                                  tmp_path: Path) -> None:
    url = serve(planetlab_root)  # type: ignore[operator]
    cache_home = tmp_path / "xdg"
    work = tmp_path / "clone"  # a clone without ../shared beside it
    work.mkdir()
    first = _cli(["data", "planetlab", "--mirror", url, "--days", "20110306"], work, cache_home)
    assert first.returncode == 0, first.stderr
    folder = cache_home / "consolidator" / "planetlab" / "20110306"
    assert "898 files  downloaded, checked" in first.stdout and day_digest(folder) == DAYS["20110306"]
    again = _cli(["data", "planetlab", "--mirror", url, "--days", "20110306"], work, cache_home)
    assert "cached, checked" in again.stdout
    run = _cli(["planetlab", "--day", "20110306", "--policy", "thr-mmt-0.8", "--profile", "cloudsim", "--json"],
               work, cache_home)
    assert run.returncode == 0, run.stderr
    got, want = json.loads(run.stdout), GOLDEN["20110306thr-mmt-0.8"]
    assert (got["energy_kwh"], got["migrations"]) == (want["energy_kwh"], want["migrations"])


def test_a_damaged_copy_is_refused_and_nothing_is_kept(planetlab_root: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(planetlab_root / "20110306", mirror / "20110306")
    victim = sorted((mirror / "20110306").iterdir())[10]
    victim.write_text(victim.read_text().replace("0", "1", 1))
    done = _cli(["data", "planetlab", "--mirror", str(mirror), "--days", "20110306"], tmp_path, tmp_path / "xdg")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "20110306" in lines[0] and "Traceback" not in done.stderr
    cache = tmp_path / "xdg" / "consolidator" / "planetlab"
    assert not list(cache.iterdir())  # neither the day nor its staging folder


def test_download_a_tar_gz_archive(planetlab_root: Path, serve: object, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    with tarfile.open(site / "traces.tar.gz", "w:gz") as tar:  # laid out as GitHub's archive
        tar.add(planetlab_root / "20110306", arcname="planetlab-workload-traces-master/20110306")
    url = serve(site)  # type: ignore[operator]
    done = _cli(["data", "planetlab", "--mirror", f"{url}/traces.tar.gz", "--days", "20110306", "--cache",
                 str(tmp_path / "c")], tmp_path, tmp_path / "xdg")
    assert done.returncode == 0, done.stderr
    assert day_digest(tmp_path / "c" / "20110306") == DAYS["20110306"]
    missing = _cli(["data", "planetlab", "--mirror", f"{url}/traces.tar.gz", "--days", "20110303", "--cache",
                    str(tmp_path / "c")], tmp_path, tmp_path / "xdg")
    assert missing.returncode == 2 and "20110303" in missing.stderr


def test_unknown_day_and_unreachable_mirror_are_one_line_errors(tmp_path: Path) -> None:
    bad_day = _cli(["data", "planetlab", "--days", "19990101", "--cache", str(tmp_path)], tmp_path, tmp_path)
    assert bad_day.returncode == 2 and "--days" in bad_day.stderr
    # a port on loopback nobody listens on (the server is made and closed at once)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    port = server.server_address[1]
    server.server_close()
    down = _cli(["data", "planetlab", "--mirror", f"http://127.0.0.1:{port}/", "--days", "20110303", "--cache",
                 str(tmp_path)], tmp_path, tmp_path)
    assert down.returncode == 2 and len(down.stderr.strip().splitlines()) == 1, down.stderr
