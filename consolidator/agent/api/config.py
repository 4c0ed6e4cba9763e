"""The host agent's configuration file (``host.toml``), validated; bad input raises UserError.

Example::

    name = "pm0"
    listen_host = "127.0.0.1"
    port = 8700
    token_file = "/etc/consolidator/token"    # or: token = "..." (at least 16 characters)
    emulated = true                            # lab host: suspend is a state, metered at S3 power
    migration_listen_host = "10.77.0.10"       # where incoming migrations listen
    state_dir = "/var/lib/consolidator/pm0"
    cores = 1.0
    [power]                                    # the paper's host (DESIGN §2) unless set
    idle_watts = 53.0
    migration_ports = [49152, 49407]           # incoming migrations listen in this range
    [migration_peers]                          # the only destinations this host migrates to
    pm1 = "10.77.0.11"
    [migration_tls]                            # optional: QEMU TLS migration (x509 files in dir)
    dir = "/etc/consolidator/migration-pki"
    [driver]                                   # handed to the QEMU driver unchanged
    accel = "auto"
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from consolidator.domain.errors import UserError
from consolidator.domain.tomlfile import read_toml, schema_error
from consolidator.domain.types import PowerProfile, SleepMode
from consolidator.protocol.guards import MIN_TOKEN_CHARS, read_token
from consolidator.protocol.schemas import NAME_PATTERN

MAX_CONFIG_BYTES = 1 << 20
TLS_FILES = ("ca-cert.pem", "server-cert.pem", "server-key.pem", "client-cert.pem", "client-key.pem")


class PowerConfig(BaseModel):
    """Watts and transition times used to meter an emulated host (defaults: the paper's host)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    idle_watts: float = Field(53.0, ge=0, le=100_000)
    max_watts: float = Field(100.0, ge=0, le=100_000)
    suspended_watts: float = Field(7.0, ge=0, le=100_000)
    suspend_s: float = Field(5.0, ge=0, le=600)
    resume_s: float = Field(5.0, ge=0, le=600)

    @model_validator(mode="after")
    def _max_not_below_idle(self) -> PowerConfig:
        if self.max_watts < self.idle_watts:
            raise ValueError(f"max_watts {self.max_watts} is below idle_watts {self.idle_watts}")
        return self

    def profile(self) -> PowerProfile:
        return PowerProfile(
            idle_watts=self.idle_watts,
            max_watts=self.max_watts,
            suspended_watts=self.suspended_watts,
            suspend_s=self.suspend_s,
            resume_s=self.resume_s,
        )


class MigrationTls(BaseModel):
    """QEMU's TLS migration: a folder of x509 files as QEMU's ``tls-creds-x509`` reads them."""

    model_config = ConfigDict(extra="forbid")

    dir: Path

    @field_validator("dir")
    @classmethod
    def _has_the_files(cls, folder: Path) -> Path:
        missing = [name for name in TLS_FILES if not (folder / name).is_file()]
        if missing:
            raise ValueError(f"{folder} lacks {', '.join(missing)} (QEMU's tls-creds-x509 layout)")
        return folder


class AgentConfig(BaseModel):
    """One host agent: identity, endpoint, credentials, power behaviour and driver settings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=NAME_PATTERN)
    listen_host: str = "127.0.0.1"
    port: int = Field(8700, ge=1, le=65535)
    token: str | None = Field(None, min_length=MIN_TOKEN_CHARS)
    token_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    emulated: bool = False
    sleep: SleepMode = Field(SleepMode.S3, description="how a real host sleeps: systemctl suspend, or "
                                                          "systemctl poweroff (woken by its BMC or WoL)")
    migration_listen_host: str = "127.0.0.1"
    state_dir: Path = Path("/var/lib/consolidator/agent")
    cores: float = Field(4.0, gt=0, le=1024)
    mem_mib: int = Field(16384, gt=0)
    max_vm_mem_mib: int = Field(4096, ge=16, le=1 << 20)
    max_vms: int = Field(64, ge=1, le=4096)
    migration_peers: dict[str, str] = Field(default_factory=dict, description="host name -> migration address")
    migration_ports: tuple[int, int] = (49152, 49407)
    migration_tls: MigrationTls | None = None
    power: PowerConfig = Field(default_factory=lambda: PowerConfig.model_validate({}))
    driver: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_token_and_tls_pair(self) -> AgentConfig:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("set exactly one of 'token' and 'token_file'")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set both 'tls_cert' and 'tls_key', or neither")
        low, high = self.migration_ports
        if not 1024 <= low <= high <= 65535:
            raise ValueError(f"migration_ports must be [low, high] within 1024..65535, not {[low, high]}")
        return self

    @field_validator("migration_peers")
    @classmethod
    def _peers_are_names_and_addresses(cls, peers: dict[str, str]) -> dict[str, str]:
        for name, address in peers.items():
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"peer name {name!r} must match {NAME_PATTERN}")
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise ValueError(f"peer {name}: {address!r} is not an IPv4 address") from None
        return peers

    @field_validator("state_dir")
    @classmethod
    def _state_dir_is_a_folder(cls, path: Path) -> Path:
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} exists and is not a directory")
        return path

    def read_token(self, source: str = "config") -> str:
        """The bearer token, read from the config or its token file (stripped of whitespace)."""
        if self.token is not None:
            return self.token
        assert self.token_file is not None
        return read_token(self.token_file, source, "token_file")


def parse_config(data: dict[str, Any], source: str) -> AgentConfig:
    """Validate a parsed TOML document; the first problem becomes a UserError naming its field."""
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise schema_error(exc.errors(), source) from None


def check_tls_files(config: AgentConfig, source: str) -> None:
    """The API's certificate and key must exist and belong together (else uvicorn dies with a traceback)."""
    if config.tls_cert is None or config.tls_key is None:
        return
    for field, path in (("tls_cert", config.tls_cert), ("tls_key", config.tls_key)):
        if not path.is_file():
            raise UserError(f"{path} is not a readable file", source=source, field=field)
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(config.tls_cert, config.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise UserError(f"not a PEM certificate and matching key: {exc}", source=source,
                        field="tls_cert") from exc


def load_config(path: Path) -> AgentConfig:
    """Read and validate ``host.toml``; the token file, if any, is checked too (the TLS files are
    checked by ``check_tls_files`` when the agent starts: they may be installed after the config)."""
    data = read_toml(path, "a host.toml", max_bytes=MAX_CONFIG_BYTES)
    config = parse_config(data, str(path))
    config.read_token(str(path))
    return config
