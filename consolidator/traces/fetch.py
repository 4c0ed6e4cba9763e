"""The public PlanetLab traces for a user without ``../shared``: download, check, cache.

Sources (``consolidator data planetlab [--mirror URL|DIR]``):

- default: the GitHub repository beloglazov/planetlab-workload-traces as one tar.gz archive;
- ``--mirror URL`` ending in ``.tar.gz``/``.tgz``: such an archive elsewhere;
- ``--mirror URL`` otherwise: a web folder laid out as ``<day>/<file>`` with directory listings
  (``python -m http.server``, nginx ``autoindex``, Apache);
- ``--mirror DIR``: a local folder laid out the same way (e.g. ``../shared/data/planetlab``).

Each day is written to a hidden folder, checked, then renamed to ``<cache>/<day>``: a day in the
cache is whole. The check: the number of files and a SHA-256 over every file's name and SHA-256
(``day_digest``), against ``DAYS``, computed from the copy CloudSim 3.0.3 ships (the same traces).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlparse

from consolidator.domain.errors import UserError

log = logging.getLogger(__name__)

GITHUB_ARCHIVE = "https://codeload.github.com/beloglazov/planetlab-workload-traces/tar.gz/refs/heads/master"
# day -> (files, day_digest) of the traces as CloudSim 3.0.3 ships them
DAYS: dict[str, tuple[int, str]] = {
    "20110303": (1052, "5f7d30672eda6d69e705de29c6909f51766a5e160985573c7306ccdde40cf698"),
    "20110306": (898, "22c08b310712b034aa2366aeacb99f1a799808c6525c1c467b4fe28d31a03064"),
    "20110309": (1061, "3bf25f9591d18edef97bf44adc6caff4b0be8b0efc68e35bf1ac9fd080bd1d55"),
    "20110322": (1516, "2b5fea43c82e1acf44049c54d87c7a0f2b99b8b563411dc191ce75e917b6592e"),
    "20110325": (1078, "6217fa2e891a98509e3e942928f7fcb07f55d1619170eaceb475f5d01ffc5b94"),
    "20110403": (1463, "21f7b7761e1cd36e43e7df8fc3445faf5085911343cdc127bebdd6c69f816731"),
    "20110409": (1358, "040b369083610f8e860a88d3e58ca979c9ff286a28262835fa8a36aba9971c9c"),
    "20110411": (1233, "6bf375f3005511af66be5de351b6634fabb24b81746173071e7de8794264a6ef"),
    "20110412": (1054, "c0d2cd47f21f423e7d5f1fd093274e9a4ac734fb1bb92cf1b35bb627fec6573a"),
    "20110420": (1033, "6f39719600c34b352e96c6bb193576456a3871c8f4ca0e802cefb16f50fa3c45"),
}
# A trace file name (some hold spaces); hidden names and anything that could leave the folder are ignored.
_NAME = re.compile(r"^[^./\\\x00][^/\\\x00]*$")
TIMEOUT_S = 60.0

# progress callback: (what, done, total or None)
Progress = Callable[[str, int, int | None], None]


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/consolidator/planetlab`` (default ``~/.cache/...``): where commands look last."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "consolidator" / "planetlab"


def day_digest(folder: Path) -> tuple[int, str]:
    """(files, SHA-256 over each file's name and SHA-256, in name order) of a day folder."""
    h = hashlib.sha256()
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    for name in names:
        h.update(name.encode() + b"\0" + hashlib.sha256((folder / name).read_bytes()).digest())
    return len(names), h.hexdigest()


def is_complete(folder: Path, day: str) -> bool:
    return folder.is_dir() and day in DAYS and day_digest(folder) == DAYS[day]


@dataclass(frozen=True, slots=True)
class FetchResult:
    day: str
    folder: Path
    files: int
    downloaded: bool  # False: already in the cache, checked


def fetch_planetlab(days: list[str], mirror: str | None, cache: Path | None = None,
                    progress: Progress | None = None) -> list[FetchResult]:
    """Bring ``days`` (names from ``DAYS``) into the cache from ``mirror`` (None: GitHub)."""
    root = cache or cache_root()
    for day in days:
        if day not in DAYS:
            raise UserError(f"unknown day {day!r} (known: {', '.join(DAYS)})", field="--days")
    done = [FetchResult(d, root / d, DAYS[d][0], False) for d in days if is_complete(root / d, d)]
    wanted = [d for d in days if d not in {r.day for r in done}]
    if not wanted:
        return done
    root.mkdir(parents=True, exist_ok=True)
    source = mirror or GITHUB_ARCHIVE
    tell = progress or (lambda what, n, total: None)
    if _is_url(source):
        if urlparse(source).path.endswith((".tar.gz", ".tgz")) or source == GITHUB_ARCHIVE:
            staged = _from_archive(source, wanted, root, tell)
        else:
            staged = _from_web_folder(source.rstrip("/") + "/", wanted, root, tell)
    else:
        staged = _from_folder(Path(source), wanted, root, tell)
    try:
        return done + [_commit(day, folder, root) for day, folder in staged.items()]
    finally:
        for folder in staged.values():
            shutil.rmtree(folder, ignore_errors=True)  # whatever was not committed


def _is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def _staging(root: Path, day: str) -> Path:
    folder = root / f".partial-{day}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _commit(day: str, staged: Path, root: Path) -> FetchResult:
    """Check a staged day and move it into place; a day that does not check out is deleted."""
    got = day_digest(staged)
    if got != DAYS[day]:
        shutil.rmtree(staged, ignore_errors=True)
        raise UserError(f"day {day}: {got[0]} files with digest {got[1][:16]}…, expected {DAYS[day][0]} files "
                        f"with {DAYS[day][1][:16]}… (a different or damaged copy; nothing kept)", field="--mirror")
    final = root / day
    shutil.rmtree(final, ignore_errors=True)
    staged.rename(final)
    return FetchResult(day, final, got[0], True)


def _from_folder(source: Path, days: list[str], root: Path, tell: Progress) -> dict[str, Path]:
    staged: dict[str, Path] = {}
    for day in days:
        src = source / day
        if not src.is_dir():
            raise UserError(f"no folder {day} in the mirror", source=str(source), field="--mirror")
        files = sorted(p for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
        folder = staged[day] = _staging(root, day)
        for i, path in enumerate(files, 1):
            shutil.copyfile(path, folder / path.name)
            tell(f"{day} (copy)", i, len(files))
    return staged


def _from_archive(url: str, days: list[str], root: Path, tell: Progress) -> dict[str, Path]:
    """Stream the archive once, keeping the members ``*/<day>/<file>`` of the wanted days."""
    import httpx

    staged: dict[str, Path] = {}
    buffer = io.BytesIO()
    try:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=True) as client, client.stream("GET", url) as resp:
            resp.raise_for_status()
            total = int(resp.headers["content-length"]) if "content-length" in resp.headers else None
            for chunk in resp.iter_bytes():
                buffer.write(chunk)
                tell("archive", buffer.tell(), total)
    except httpx.HTTPError as exc:
        raise UserError(f"download failed: {exc}", source=url, field="--mirror") from None
    buffer.seek(0)
    try:
        with tarfile.open(fileobj=buffer, mode="r:gz") as tar:
            for member in tar:
                parts = Path(member.name).parts
                if not member.isfile() or len(parts) < 2 or parts[-2] not in days or not _NAME.match(parts[-1]):
                    continue
                day = parts[-2]
                if day not in staged:
                    staged[day] = _staging(root, day)
                data = tar.extractfile(member)
                if data is not None:
                    (staged[day] / parts[-1]).write_bytes(data.read())
    except (tarfile.TarError, OSError) as exc:
        raise UserError(f"not a readable tar.gz archive: {exc}", source=url, field="--mirror") from None
    missing = [d for d in days if d not in staged]
    if missing:
        raise UserError(f"the archive has no folder for {', '.join(missing)}", source=url, field="--mirror")
    return staged


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.extend(value for key, value in attrs if key == "href" and value)


def _listing(client: object, url: str) -> Iterator[str]:
    """Names linked from a directory listing page (relative links only, decoded, without '/')."""
    resp = client.get(url)  # type: ignore[attr-defined]
    resp.raise_for_status()
    parser = _Links()
    parser.feed(resp.text)
    for href in parser.links:
        if "://" in href or href.startswith(("/", "?", "#", "..")):
            continue
        yield unquote(href.rstrip("/"))


def _from_web_folder(base: str, days: list[str], root: Path, tell: Progress) -> dict[str, Path]:
    """A web folder with listings: ``base/<day>/`` lists the files of each day."""
    import httpx

    staged: dict[str, Path] = {}
    try:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=True) as client:
            for day in days:
                day_url = urljoin(base, f"{day}/")
                names = sorted({n for n in _listing(client, day_url) if _NAME.match(n)})
                if not names:
                    raise UserError(f"no trace files listed at {day_url}", source=base, field="--mirror")
                folder = staged[day] = _staging(root, day)
                for i, name in enumerate(names, 1):
                    resp = client.get(urljoin(day_url, quote(name)))
                    resp.raise_for_status()
                    (folder / name).write_bytes(resp.content)
                    tell(day, i, len(names))
    except httpx.HTTPError as exc:
        raise UserError(f"download failed: {exc}", source=base, field="--mirror") from None
    return staged
