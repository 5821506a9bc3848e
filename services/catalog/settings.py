"""Catalog service settings (env prefix CATALOG_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore")

    public_url: str = Field(
        default="http://127.0.0.1:8002",
        validation_alias=AliasChoices("ATTRIBUTION_PUBLIC_URL", "public_url"),
        description="Base of tracking-link URLs (the attribution service's public address).",
    )

    def default_db_name(self) -> str:
        return "catalog.db"
