"""Async HTTP client of one host agent (httpx): typed calls, errors that carry the agent's reason."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from consolidator.protocol.schemas import (
    EventsView,
    HostStatsView,
    IncomingMarksView,
    IncomingView,
    MigrateBody,
    MigrationAccepted,
    PowerView,
    VmBody,
    VmView,
)

log = logging.getLogger(__name__)


class AgentError(Exception):
    """An agent refused a call or could not be reached; ``status`` is None when unreachable."""

    def __init__(self, host: str, what: str, status: int | None, detail: str) -> None:
        self.host = host
        self.status = status
        self.detail = detail
        super().__init__(f"agent {host}: {what}: {status or 'unreachable'}: {detail}")


@dataclass(frozen=True, slots=True)
class AgentEndpoint:
    """Where and how to reach one agent. ``ca_file``: trust this CA for an https URL."""

    host: str
    base_url: str
    token: str
    ca_file: str | None = None


class AgentClient:
    """One agent's API. Every method raises AgentError on a non-2xx answer or a network error."""

    def __init__(self, endpoint: AgentEndpoint, timeout_s: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.host = endpoint.host
        verify: bool | ssl.SSLContext = True
        if endpoint.ca_file is not None:
            verify = ssl.create_default_context(cafile=endpoint.ca_file)
        self._http = httpx.AsyncClient(
            base_url=endpoint.base_url.rstrip("/") + "/v1",
            headers={"Authorization": f"Bearer {endpoint.token}"},
            timeout=timeout_s, verify=verify, transport=transport,
        )

    async def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AgentError(self.host, what, None, str(exc) or type(exc).__name__) from exc
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail"))
            except ValueError:
                detail = response.text[:200]
            raise AgentError(self.host, what, response.status_code, detail)
        return response.json() if response.content else None

    async def list_vms(self) -> list[VmView]:
        return [VmView.model_validate(v) for v in await self._call("GET", "/vms", "list VMs")]

    async def create_vm(self, body: VmBody) -> VmView:
        data = await self._call("POST", "/vms", f"create {body.name}", json=body.model_dump())
        return VmView.model_validate(data)

    async def destroy_vm(self, vm: str, force: bool = False) -> None:
        """``force``: also a postcopy half whose other half is gone (the guest is lost)."""
        await self._call("DELETE", f"/vms/{vm}", f"destroy {vm}", params={"force": "true"} if force else None)

    async def recover_incoming(self, vm: str) -> str:
        """Destination of a paused postcopy: listen again; the URI for the source's resume."""
        data = await self._call("POST", f"/vms/{vm}/incoming/recover", f"recover incoming {vm}")
        return IncomingView.model_validate(data).uri

    async def resume_migration(self, vm: str, dst_uri: str, dst_host: str) -> None:
        """Source of a paused postcopy: resume to the destination's new address (the agent retries)."""
        await self._call("POST", f"/vms/{vm}/migrate/resume", f"resume {vm}",
                         json={"dst_uri": dst_uri, "dst_host": dst_host})

    async def prepare_incoming(self, body: VmBody) -> str:
        data = await self._call("POST", f"/vms/{body.name}/incoming", f"prepare incoming {body.name}",
                                json=body.model_dump())
        return IncomingView.model_validate(data).uri

    async def incoming_marks(self, vm: str, timeout_s: float | None = None) -> IncomingMarksView:
        """Destination side: when ``vm`` resumed here and when its incoming migration completed."""
        kwargs: dict[str, Any] = {} if timeout_s is None else {"timeout": timeout_s}
        data = await self._call("GET", f"/vms/{vm}/incoming", f"incoming marks of {vm}", **kwargs)
        return IncomingMarksView.model_validate(data)

    async def migrate(self, vm: str, body: MigrateBody) -> MigrationAccepted:
        data = await self._call("POST", f"/vms/{vm}/migrate", f"migrate {vm}",
                                json=body.model_dump(mode="json"))
        return MigrationAccepted.model_validate(data)

    async def cancel_migration(self, vm: str) -> None:
        await self._call("POST", f"/vms/{vm}/migrate/cancel", f"cancel migration of {vm}")

    async def set_load(self, vm: str, load: float, dirty_mib_s: float) -> None:
        await self._call("PUT", f"/vms/{vm}/load", f"set load of {vm}",
                         json={"load": load, "dirty_mib_s": dirty_mib_s})

    async def check_pages(self, vm: str) -> int:
        data = await self._call("POST", f"/vms/{vm}/check", f"check {vm}")
        return int(data["bad_pages"])

    async def host_stats(self) -> HostStatsView:
        return HostStatsView.model_validate(await self._call("GET", "/host/stats", "host stats"))

    async def suspend(self) -> PowerView:
        return PowerView.model_validate(await self._call("POST", "/host/suspend", "suspend"))

    async def wake(self) -> PowerView:
        return PowerView.model_validate(await self._call("POST", "/host/wake", "wake"))

    async def events(self, after: int, timeout_s: float = 0.0) -> EventsView:
        data = await self._call("GET", "/events", "events", params={"after": after, "timeout_s": timeout_s},
                                timeout=timeout_s + 10.0)
        return EventsView.model_validate(data)

    async def close(self) -> None:
        await self._http.aclose()
