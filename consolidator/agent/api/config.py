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
    [driver]                                   # handed to the QEMU driver unchanged
    accel = "auto"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from consolidator.domain.errors import UserError
from consolidator.domain.types import PowerProfile

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
MIN_TOKEN_CHARS = 16


class PowerConfig(BaseModel):
    """Watts and transition times used to meter an emulated host (defaults: the paper's host)."""

    model_config = ConfigDict(extra="forbid")

    idle_watts: float = Field(53.0, ge=0)
    max_watts: float = Field(100.0, ge=0)
    suspended_watts: float = Field(7.0, ge=0)
    suspend_s: float = Field(5.0, ge=0, le=600)
    resume_s: float = Field(5.0, ge=0, le=600)

    def profile(self) -> PowerProfile:
        return PowerProfile(
            idle_watts=self.idle_watts,
            max_watts=self.max_watts,
            suspended_watts=self.suspended_watts,
            suspend_s=self.suspend_s,
            resume_s=self.resume_s,
        )


class AgentConfig(BaseModel):
    """One host agent: identity, endpoint, credentials, power behaviour and driver settings."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    listen_host: str = "127.0.0.1"
    port: int = Field(8700, ge=1, le=65535)
    token: str | None = Field(None, min_length=MIN_TOKEN_CHARS)
    token_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    emulated: bool = False
    migration_listen_host: str = "127.0.0.1"
    state_dir: Path = Path("/var/lib/consolidator/agent")
    cores: float = Field(4.0, gt=0, le=1024)
    mem_mib: int = Field(16384, gt=0)
    max_vm_mem_mib: int = Field(4096, ge=16, le=1 << 20)
    max_vms: int = Field(64, ge=1, le=4096)
    power: PowerConfig = Field(default_factory=lambda: PowerConfig.model_validate({}))
    driver: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_token_and_tls_pair(self) -> AgentConfig:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("set exactly one of 'token' and 'token_file'")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set both 'tls_cert' and 'tls_key', or neither")
        return self

    def read_token(self, source: str = "config") -> str:
        """The bearer token, read from the config or its token file (stripped of whitespace)."""
        if self.token is not None:
            return self.token
        assert self.token_file is not None
        try:
            token = self.token_file.read_text().strip()
        except OSError as exc:
            raise UserError(f"cannot read token file: {exc.strerror}", source=source,
                            field="token_file") from exc
        if len(token) < MIN_TOKEN_CHARS:
            raise UserError(f"token must have at least {MIN_TOKEN_CHARS} characters",
                            source=str(self.token_file), field="token")
        return token


def parse_config(data: dict[str, Any], source: str) -> AgentConfig:
    """Validate a parsed TOML document; the first problem becomes a UserError naming its field."""
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        raise UserError(message, source=source, field=field) from None


def load_config(path: Path) -> AgentConfig:
    """Read and validate ``host.toml``; the token file, if any, is checked too."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"not valid TOML: {exc}", source=str(path)) from exc
    config = parse_config(data, str(path))
    config.read_token(str(path))
    return config
