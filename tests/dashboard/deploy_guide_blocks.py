"""The code blocks of docs/deploy.md, for the tests that run them (test_deploy_guide, test_dashboard_browser)."""

from __future__ import annotations

import re
import shlex
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "deploy.md"


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    label: str  # the first `path` named in the paragraph before the block


def guide_blocks() -> list[Block]:
    text = GUIDE.read_text()
    found = []
    for match in re.finditer(r"^( *)```(\w*)\n(.*?)^\1```", text, re.MULTILINE | re.DOTALL):
        before = text[: match.start()].rstrip().rsplit("\n\n", 1)[-1]
        names = re.findall(r"`([^`]+)`", before)
        found.append(Block(match.group(2), textwrap.dedent(match.group(3)), names[0] if names else ""))
    return found


def block(label: str, lang: str) -> Block:
    matches = [b for b in guide_blocks() if b.label == label and b.lang == lang]
    assert len(matches) == 1, f"docs/deploy.md: expected one {lang} block after `{label}`, found {len(matches)}"
    return matches[0]


def commands(sh: str) -> list[list[str]]:
    """A shell block's commands as argv lists (continuation lines joined, comments dropped)."""
    joined = sh.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if shlex.split(line, comments=True)]


def localize(text: str, tmp: Path, replace: tuple[tuple[str, str], ...] = ()) -> str:
    """``replace`` first, then the guide's paths under ``tmp`` and its management address 127.0.0.1."""
    binary = shutil.which("consolidator")
    assert binary is not None, "the consolidator command is not installed (pip install -e .)"
    for old, new in (*replace, ("/usr/local/bin/consolidator", binary), ("/etc/consolidator", f"{tmp}/etc"),
                     ("/var/lib/consolidator", f"{tmp}/var"), ("/var/cache/consolidator", f"{tmp}/cache"),
                     ("10.0.0.10", "127.0.0.1")):
        text = text.replace(old, new)
    return text
