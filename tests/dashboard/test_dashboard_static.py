"""The dashboard's files as the manager serves them: paths, headers, no outside resource, package data."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consolidator.manager.dashboard import STATIC_DIR, mount_dashboard

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    mount_dashboard(app)
    return TestClient(app, follow_redirects=False)


def test_root_redirects_to_the_page_and_the_page_carries_its_security_headers(client: TestClient) -> None:
    root = client.get("/")
    assert root.status_code == 307 and root.headers["location"] == "/dashboard/"
    page = client.get("/dashboard/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"


def test_every_file_the_page_names_is_served(client: TestClient) -> None:
    html = (STATIC_DIR / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(refs) >= 6
    for ref in refs:
        answer = client.get(f"/dashboard/{ref}")
        assert answer.status_code == 200, ref
        assert answer.content == (STATIC_DIR / ref).read_bytes()


def test_no_inline_script_or_style_and_no_outside_resource() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, "inline script (the CSP forbids it)"
    assert "<style" not in html and " style=" not in html
    assert re.search(r"\bon[a-z]+=", html) is None, "inline event handler"
    for path in STATIC_DIR.rglob("*"):
        if path.suffix not in {".html", ".js", ".css"} or "vendor" in path.parts:
            continue
        text = path.read_text()
        urls = [u for u in re.findall(r"https?://[^\s\"')]+", text) if u != "http://www.w3.org/2000/svg"]
        assert urls == [], f"{path.name} names outside resources: {urls}"
        markup = re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", text)
        assert markup is None, f"{path.name}: API values must land as text, not markup"


def test_static_files_are_package_data() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["consolidator"]
    package = ROOT / "consolidator"
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            rel = path.relative_to(package).as_posix()
            assert any(fnmatch(rel, p) and rel.count("/") == p.count("/") for p in patterns), rel
