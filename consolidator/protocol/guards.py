"""HTTP guards shared by the agent's and the manager's APIs: a bearer-token gate that answers before
the body is read (so a malformed request without the token is a 401, not a 422), a body size cap
(413), and a validation-error answer that names fields but never echoes the input (which may be
huge, or NaN that JSON cannot carry)."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from consolidator.domain.errors import UserError

MIN_TOKEN_CHARS = 16  # a bearer token shorter than this is refused at configuration
MAX_BODY_BYTES = 1 << 20  # every body of these APIs is a few hundred bytes


def read_token(path: Path, source: str, field: str) -> str:
    """A bearer token from its file (stripped); unreadable, not text or short -> UserError naming the field."""
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise UserError(f"cannot read token file {path}: {exc.strerror}", source=source, field=field) from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"token file {path} is not text", source=source, field=field) from exc
    if len(token) < MIN_TOKEN_CHARS:
        raise UserError(f"token in {path} must have at least {MIN_TOKEN_CHARS} characters",
                        source=source, field=field)
    return token


def error(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={"detail": detail})


def token_ok(authorization: bytes, expected: bytes) -> bool:
    scheme, _, given = authorization.partition(b" ")
    # constant-time: a wrong token takes as long to refuse however many characters match
    return hmac.compare_digest(given.strip(), expected) and scheme.lower() == b"bearer"


class BearerGate:
    """ASGI middleware: refuses any request under ``prefixes`` without the token before the body is
    even parsed. The routes' own auth dependency checks the same token (and documents it in the
    OpenAPI schema); this gate makes sure a malformed body without a token is a 401, not a 422."""

    def __init__(self, app: ASGIApp, token: str, prefixes: tuple[str, ...] = ("/v1",)) -> None:
        self._app = app
        self._expected = token.encode()
        self._prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self._prefixes):
            headers = dict(scope["headers"])
            if not token_ok(headers.get(b"authorization", b""), self._expected):
                response = error(401, "missing or wrong bearer token")
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes is a 413, by its Content-Length or as it streams in."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self._limit:
            await error(413, f"request body over {self._limit} bytes")(scope, receive, send)
            return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self._limit:  # an HTTPException: FastAPI's body reader passes it on as a 413
                raise HTTPException(413, f"request body over {self._limit} bytes")
            return message

        await self._app(scope, limited, send)


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 with each error's location, message and type, never its input."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in exc.errors()[:20]]
    return JSONResponse(status_code=422, content={"detail": errors})
