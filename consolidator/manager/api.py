"""The manager's HTTP API (FastAPI): status, mode switch, history for the dashboard, /metrics.

Every route needs ``Authorization: Bearer <token>`` (the file ``api_token_file`` of cluster.toml);
``/metrics`` too when ``metrics_auth = true``, else it is open for Prometheus. Times are run time in
seconds (since the manager's run started; stable across restarts). All bodies are JSON.

    GET  /api/status            {"mode", "hosts": [{"name", "state", "watts", "load", "vms",
                                 "maintenance"}], "vms": [{"name", "host", "load", "rules"}],
                                 "migrations_running", "plans", "t_s"}  (t_s: run time of the latest period)
                                 state: on | suspending | suspended | resuming | failed | unknown
    GET  /api/mode              {"mode", "changes": [{"t_s", "from", "to", "by"}]}
    PUT  /api/mode              body {"mode": "recommend" | "auto"} -> as GET; recorded in the run store
    GET  /api/power?seconds=300 {"t_s": [...], "hosts": {host: [watts | null, ...]}, "total_watts": [...]}
    GET  /api/migrations?limit=100
                                [{"vm", "src", "dst", "method", "start_s", "end_s", "outcome",
                                  "downtime_s", "detail"}]  oldest first; outcome/end_s null while running
    GET  /api/recommendations?limit=50
                                plans not applied (recommend mode), oldest first:
                                [{"t_s", "mode", "applied", "actions": [{"kind": "migrate", "vm", "src",
                                  "dst", "method", "reason"} | {"kind": "suspend" | "wake", "host",
                                  "reason"}], "prediction": {"moves", "migration_s", "energy_wh_per_hour",
                                  "hosts_on_before", "hosts_on_after", "risk": {"postcopy_moves",
                                  "vm_loss_window_s", "precopy_may_not_converge"}}}]
    GET  /api/refusals?limit=100
                                {"counts": {rule: n}, "recent": [{"t_s", "rule", "action", "reason"}]}
                                (action: as in recommendations, e.g. {"kind": "migrate", "vm", ...})
    GET  /api/energy            {"energy_wh", "all_on_wh", "saved_wh", "saved_share"}
    GET  /metrics               Prometheus text format (consolidator.manager.metrics)

The dashboard (consolidator.manager.dashboard) mounts its static page at ``/dashboard/``; the page
holds no data and sends the token on every ``/api`` call.
"""

from __future__ import annotations

import hmac
from typing import Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict

from consolidator.manager.metrics import CONTENT_TYPE_LATEST
from consolidator.manager.mode import ManagerMode
from consolidator.manager.telemetry import Telemetry
from consolidator.protocol.guards import BearerGate, BodyLimit, validation_error


class Controls(Protocol):
    """What the API may change: the mode (the service records the switch)."""

    def set_mode(self, mode: ManagerMode, by: str) -> None: ...


class ModeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: ManagerMode


def bearer_auth(token: str) -> Any:
    """A FastAPI dependency: 401 unless the request carries ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    async def check(request: Request) -> None:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


def create_app(telemetry: Telemetry, controls: Controls, token: str, metrics_auth: bool = False) -> FastAPI:
    auth = bearer_auth(token)
    errors: dict[int | str, dict[str, Any]] = {
        400: {"description": "a body that is not JSON text"}, 401: {"description": "no or wrong bearer token"},
        413: {"description": "a body over 1 MiB"}}
    app = FastAPI(title="consolidator manager", version="1", docs_url=None, redoc_url=None, responses=errors)
    secured = [Depends(auth)]
    # the token before the body (a malformed request without it is a 401), bodies capped, and a
    # 422 that never echoes its input (found by fuzzing, tests/manager/test_manager_fuzz.py)
    app.add_middleware(BearerGate, token=token, prefixes=("/api", "/metrics") if metrics_auth else ("/api",))
    app.add_middleware(BodyLimit)
    app.add_exception_handler(RequestValidationError, validation_error)

    @app.get("/api/status", dependencies=secured)
    async def get_status() -> dict[str, Any]:
        return telemetry.status()

    @app.get("/api/mode", dependencies=secured)
    async def get_mode() -> dict[str, Any]:
        return {"mode": telemetry.mode, "changes": telemetry.mode_changes}

    @app.put("/api/mode", dependencies=secured)
    async def put_mode(body: ModeBody, request: Request) -> dict[str, Any]:
        client = request.client.host if request.client else "unknown"
        controls.set_mode(body.mode, by=f"api {client}")
        return await get_mode()

    @app.get("/api/power", dependencies=secured)
    async def get_power(seconds: float = Query(300.0, gt=0, le=86_400)) -> dict[str, Any]:
        return telemetry.power_series(seconds)

    @app.get("/api/migrations", dependencies=secured)
    async def get_migrations(limit: int = Query(100, ge=1, le=10_000)) -> list[dict[str, Any]]:
        return telemetry.migration_timeline(limit)

    @app.get("/api/recommendations", dependencies=secured)
    async def get_recommendations(limit: int = Query(50, ge=1, le=10_000)) -> list[dict[str, Any]]:
        return telemetry.pending(limit)

    @app.get("/api/refusals", dependencies=secured)
    async def get_refusals(limit: int = Query(100, ge=1, le=10_000)) -> dict[str, Any]:
        return telemetry.refusal_view(limit)

    @app.get("/api/energy", dependencies=secured)
    async def get_energy() -> dict[str, Any]:
        return telemetry.energy()

    @app.get("/metrics", dependencies=secured if metrics_auth else [], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
    async def get_metrics() -> Response:
        return Response(telemetry.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    from consolidator.manager.dashboard import mount_dashboard

    mount_dashboard(app)
    return app
