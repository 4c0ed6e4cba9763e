"""``consolidator manager``: the service with its API server, signal handling and structured logs.

SIGTERM or SIGINT stops planning; running migrations get ``limits.drain_timeout_s`` to finish; the
state is recorded; the process exits 0. Logs are JSON lines on stderr (time, level, logger, message).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from contextlib import nullcontext
from typing import Any

import uvicorn

from consolidator.manager.api import create_app
from consolidator.manager.config import ClusterConfig
from consolidator.manager.service import ManagerService
from consolidator.protocol.guards import read_token

log = logging.getLogger(__name__)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``t`` (ISO 8601 UTC), ``level``, ``logger``, ``msg`` (+ ``exc``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "t": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def structured_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("consolidator").setLevel(level)


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the manager decides how to stop."""

    def capture_signals(self) -> Any:
        return nullcontext()


async def run_manager(cfg: ClusterConfig, source: str, ready: asyncio.Event | None = None) -> int:
    token = read_token(cfg.api_token_file, source, "api_token_file")
    service = ManagerService(cfg)
    await service.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = cfg.listen_address()
    app = create_app(service.telemetry, service, token, cfg.metrics_auth)
    server = _ApiServer(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                       lifespan="off"))
    api = asyncio.create_task(server.serve(), name="manager-api")
    log.info("manager API on http://%s:%d (mode %s)", host, port, service.telemetry.mode)
    if ready is not None:
        ready.set()
    try:
        await service.run(stop)
    finally:
        log.info("stopping: no more plans; waiting for running migrations")
        await service.shutdown()
        server.should_exit = True
        await api
    return 0


def serve(cfg: ClusterConfig, source: str) -> int:
    """Run the manager until SIGTERM/SIGINT; returns the exit status."""
    structured_logging()
    return asyncio.run(run_manager(cfg, source))
