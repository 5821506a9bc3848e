"""Settings shared by both services (pydantic-settings)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")
# A placeholder that production refuses: a real deployment must set CLIPFUNNEL_SECRET.
_UNSET_SECRET = ""


def load_or_create_local_secret(var_dir: Path) -> str:
    """The embedded default: one random secret kept under ./var/, shared by both services."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "secret"
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    # O_EXCL so two services starting together agree on one secret.
    try:
        with path.open("x") as handle:
            handle.write(value)
    except FileExistsError:
        return path.read_text().strip()
    path.chmod(0o600)
    return value


class ServiceSettings(BaseSettings):
    """Fields every service has; each service subclasses with its own env prefix."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    environment: Literal["development", "production", "test"] = Field(
        default="development",
        validation_alias=AliasChoices("CLIPFUNNEL_ENV", "environment"),
    )
    secret: str = Field(
        default=_UNSET_SECRET,
        validation_alias=AliasChoices("CLIPFUNNEL_SECRET", "secret"),
        description="Shared signing secret for tokens (and key material for secrets at rest).",
    )
    var_dir: Path = Field(
        default=DEFAULT_VAR_DIR, validation_alias=AliasChoices("CLIPFUNNEL_VAR_DIR", "var_dir")
    )
    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("CLIPFUNNEL_LOG_LEVEL", "log_level")
    )
    log_json: bool = Field(
        default=True, validation_alias=AliasChoices("CLIPFUNNEL_LOG_JSON", "log_json")
    )
    database_url: str = ""
    db_pool_size: int = 10
    max_page_size: int = 500
    max_body_bytes: int = Field(
        default=1024 * 1024, description="Largest request body of any route (else 413)"
    )
    rate_limit_per_second: float = Field(
        default=200.0,
        ge=0,
        validation_alias=AliasChoices("CLIPFUNNEL_RATE_LIMIT_PER_SECOND", "rate_limit_per_second"),
        description="Per-token sustained rate, reads and writes each; 0 disables",
    )
    rate_limit_burst: int = Field(
        default=400,
        ge=1,
        validation_alias=AliasChoices("CLIPFUNNEL_RATE_LIMIT_BURST", "rate_limit_burst"),
        description="Per-token requests allowed in any window of burst / rate seconds",
    )
    redis_url: str = Field(
        default="",
        validation_alias=AliasChoices("CLIPFUNNEL_REDIS_URL", "redis_url"),
        description="Redis holding the rate limits, shared by every replica "
        "(redis://host:6379/0, rediss:// for TLS); empty keeps them in each process",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "CLIPFUNNEL_REDIS_URL must start with redis://, rediss:// or unix:// "
                f"(got {value.split(':', 1)[0]}:…)"
            )
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> ServiceSettings:
        if not self.secret:
            if self.environment == "production":
                raise ValueError("CLIPFUNNEL_SECRET must be set in production")
            self.secret = load_or_create_local_secret(self.var_dir)
        if len(self.secret) < 16:
            raise ValueError("CLIPFUNNEL_SECRET must be at least 16 characters")
        if not self.database_url:
            self.var_dir.mkdir(parents=True, exist_ok=True)
            self.database_url = f"sqlite+aiosqlite:///{self.var_dir / self.default_db_name()}"
        return self

    def default_db_name(self) -> str:
        return "clipfunnel.db"
