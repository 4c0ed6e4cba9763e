"""Run one host agent: load host.toml, build the QEMU driver, serve the API with uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from consolidator.agent.api.app import create_app
from consolidator.agent.api.config import AgentConfig, check_tls_files, load_config
from consolidator.agent.host import HostAgent
from consolidator.agent.hypervisor import Hypervisor
from consolidator.domain.errors import UserError

log = logging.getLogger(__name__)


def build_driver(config: AgentConfig, source: str) -> Hypervisor:
    """The QEMU driver of ``consolidator.agent.qemu``, configured by the ``[driver]`` table."""
    try:
        from consolidator.agent.qemu import driver_from_config
    except ImportError as exc:
        raise UserError(f"the QEMU driver is not available: {exc}", source=source, field="driver") from exc
    tls_dir = config.migration_tls.dir if config.migration_tls is not None else None
    try:
        return driver_from_config(config.driver, state_dir=config.state_dir,
                                  migration_ports=config.migration_ports, tls_dir=tls_dir)
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc), source=source, field="driver") from exc
    except OSError as exc:
        raise UserError(f"cannot create {config.state_dir}: {exc.strerror}", source=source,
                        field="state_dir") from exc


def serve(config_path: Path) -> None:
    """Serve until interrupted. QEMU processes keep running when the agent stops; a new agent adopts them."""
    config = load_config(config_path)
    check_tls_files(config, str(config_path))
    agent = HostAgent(config, build_driver(config, str(config_path)))
    app = create_app(agent, config.read_token(str(config_path)))
    log.info("agent %s on %s:%d (tls: %s, emulated: %s)", config.name, config.listen_host, config.port,
             config.tls_cert is not None, config.emulated)
    uvicorn.run(
        app, host=config.listen_host, port=config.port, log_level="warning",
        ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
        ssl_keyfile=str(config.tls_key) if config.tls_key else None,
        timeout_graceful_shutdown=2,  # open event long-polls must not hold a stopping agent for long
    )
