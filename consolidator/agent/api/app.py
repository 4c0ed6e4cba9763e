"""The host agent's HTTP API: bearer-token auth on every route, typed bodies, errors as JSON.

Routes live under ``/v1``. Status codes: 401 no or wrong token (nothing is changed), 413 a body
over MAX_BODY_BYTES, 422 a body or parameter that does not validate (the answer names the field,
never echoes the input), 403 a migration to a destination the configuration does not name, 404
unknown VM, 409 the host's state forbids it (suspended, migrating, exists), 502 the VM driver failed.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from consolidator.agent.api.errors import Conflict, Forbidden, NotFound
from consolidator.agent.host import HostAgent
from consolidator.agent.hypervisor import DriverError
from consolidator.protocol.guards import BearerGate, BodyLimit, error, validation_error
from consolidator.protocol.schemas import (
    NAME_PATTERN,
    CheckView,
    ErrorView,
    EventsView,
    HostStatsView,
    IncomingMarksView,
    IncomingView,
    LoadBody,
    MigrateBody,
    MigrationAccepted,
    PowerView,
    ResumeBody,
    VmBody,
    VmStatsView,
    VmView,
)

VmName = Annotated[str, Path(pattern=NAME_PATTERN, description="VM name")]
_bearer = HTTPBearer(auto_error=False)
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorView} for code in (400, 401, 403, 404, 409, 413, 502)}


class Unauthorized(Exception):
    """No bearer token, or not the agent's."""


def _auth_dependency(token: str):  # type: ignore[no-untyped-def]
    expected = token.encode()

    async def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise Unauthorized()

    return require_token


def _vm_routes(agent: HostAgent) -> APIRouter:
    router = APIRouter(prefix="/vms", tags=["vms"])

    @router.get("", response_model=list[VmView])
    async def list_vms() -> list[VmView]:
        return await agent.list_vms()

    @router.post("", response_model=VmView, status_code=status.HTTP_201_CREATED)
    async def create_vm(body: VmBody) -> VmView:
        return await agent.create_vm(body)

    @router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
    async def destroy_vm(
        name: VmName,
        force: Annotated[bool, Query(description="also an incoming postcopy half (its source is gone)")] = False,
    ) -> None:
        await agent.destroy_vm(name, force)

    @router.post("/{name}/incoming", response_model=IncomingView, status_code=status.HTTP_201_CREATED)
    async def prepare_incoming(name: VmName, body: VmBody) -> IncomingView:
        if body.name != name:
            raise Conflict(f"body names VM {body.name!r}, path names {name!r}")
        return IncomingView(vm=name, uri=await agent.prepare_incoming(body))

    @router.get("/{name}/incoming", response_model=IncomingMarksView)
    async def incoming_marks(name: VmName) -> IncomingMarksView:
        """Destination side: when the incoming VM resumed here and when its migration completed."""
        return await agent.incoming_marks(name)

    @router.post("/{name}/migrate", response_model=MigrationAccepted, status_code=status.HTTP_202_ACCEPTED)
    async def migrate(name: VmName, body: MigrateBody) -> MigrationAccepted:
        return await agent.migrate(name, body)

    @router.post("/{name}/migrate/resume", status_code=status.HTTP_202_ACCEPTED)
    async def resume_migration(name: VmName, body: ResumeBody) -> dict[str, str]:
        """Source of a paused postcopy: resume to the destination's new address (retried with backoff)."""
        await agent.resume_migration(name, body)
        return {"vm": name, "status": "resuming"}

    @router.post("/{name}/incoming/recover", response_model=IncomingView, status_code=status.HTTP_201_CREATED)
    async def recover_incoming(name: VmName) -> IncomingView:
        """Destination of a paused (or hung) postcopy: listen again; the answer's uri goes to resume."""
        return IncomingView(vm=name, uri=await agent.recover_incoming(name))

    @router.post("/{name}/migrate/cancel", status_code=status.HTTP_202_ACCEPTED)
    async def cancel_migration(name: VmName) -> dict[str, str]:
        await agent.cancel_migration(name)
        return {"vm": name, "status": "cancelling"}

    @router.put("/{name}/load", status_code=status.HTTP_204_NO_CONTENT)
    async def set_load(name: VmName, body: LoadBody) -> None:
        await agent.set_load(name, body)

    @router.get("/{name}/stats", response_model=VmStatsView)
    async def vm_stats(name: VmName) -> VmStatsView:
        return await agent.vm_stats(name)

    @router.post("/{name}/check", response_model=CheckView)
    async def check_pages(name: VmName) -> CheckView:
        return CheckView(vm=name, bad_pages=await agent.check_pages(name))

    return router


def _host_routes(agent: HostAgent) -> APIRouter:
    router = APIRouter(tags=["host"])

    @router.get("/host/stats", response_model=HostStatsView)
    async def host_stats() -> HostStatsView:
        return await agent.host_stats()

    @router.post("/host/suspend", response_model=PowerView, status_code=status.HTTP_202_ACCEPTED)
    async def suspend() -> PowerView:
        return PowerView(host=agent.config.name, power_state=await agent.suspend())

    @router.post("/host/wake", response_model=PowerView, status_code=status.HTTP_202_ACCEPTED)
    async def wake() -> PowerView:
        """Emulated hosts only (409 on a real host, which its power controller wakes)."""
        return PowerView(host=agent.config.name, power_state=await agent.wake())

    @router.get("/events", response_model=EventsView)
    async def events(
        after: Annotated[int, Query(ge=0, description="last seq seen")] = 0,
        timeout_s: Annotated[float, Query(ge=0, le=60, description="long-poll wait")] = 0.0,
    ) -> EventsView:
        found = await agent.events.wait(after, timeout_s) if timeout_s > 0 else agent.events.since(after)
        return EventsView(events=found, next_seq=agent.events.next_seq)

    return router


def create_app(agent: HostAgent, token: str, *, adopt: bool = True) -> FastAPI:
    """The ASGI app of one agent. ``adopt``: take over running QEMU processes at startup."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if adopt:
            await agent.start()
        yield
        await agent.close()

    app = FastAPI(title=f"Consolidator host agent ({agent.config.name})", version="1", lifespan=lifespan)
    auth = [Depends(_auth_dependency(token))]
    app.add_middleware(BearerGate, token=token)
    app.add_middleware(BodyLimit)  # added last: runs first, so even an unauthenticated flood is cut off
    app.include_router(_vm_routes(agent), prefix="/v1", dependencies=auth, responses=_ERRORS)
    app.include_router(_host_routes(agent), prefix="/v1", dependencies=auth, responses=_ERRORS)

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_: Request, __: Unauthorized) -> JSONResponse:
        response = error(401, "missing or wrong bearer token")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    app.add_exception_handler(RequestValidationError, validation_error)

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return error(403, str(exc))

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error(404, str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return error(409, str(exc))

    @app.exception_handler(DriverError)
    async def _driver(_: Request, exc: DriverError) -> JSONResponse:
        return error(502, f"VM driver: {exc}")

    return app
