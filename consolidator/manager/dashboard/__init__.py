"""The manager's web dashboard: static HTML, CSS and JS served at ``/dashboard/``.

The page holds no data. It asks the operator for the manager's API token, keeps it in the tab's
``sessionStorage`` and sends it as a bearer token on every ``/api`` call, so the dashboard sees
exactly what the authenticated API allows and nothing without the token. The files ship as package
data (no CDN, no build step); the chart library, uPlot, is vendored under ``static/vendor/``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.requests import Request
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DASHBOARD_PATH", "STATIC_DIR", "mount_dashboard"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
DASHBOARD_PATH = "/dashboard"

# Only the page's own files: no inline script or style, no other origin, no framing.
_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-cache"),
]


class _SecurityHeaders:
    """Adds the headers above to every answer of the wrapped ASGI app."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _HEADERS
            await send(message)

        await self._app(scope, receive, send_with_headers)


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at ``/dashboard/`` and send ``/`` there. Its API calls go to ``/api/...``.

    The page's files are served without the token, on purpose: a browser cannot put a bearer
    header on a page load, and the files hold no data. Every call that returns data goes through
    the API's routes, which require it.
    """
    app.mount(DASHBOARD_PATH, _SecurityHeaders(StaticFiles(directory=STATIC_DIR, html=True)), name="dashboard")
    # a plain route, not an API route: it only points a browser at the page
    app.add_route("/", _to_dashboard, include_in_schema=False)


async def _to_dashboard(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{DASHBOARD_PATH}/")
