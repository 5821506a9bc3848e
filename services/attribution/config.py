"""Attribution service settings (env prefix ATTRIBUTION_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AttributionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ATTRIBUTION_", extra="ignore")

    catalog_url: str = Field(
        default="http://127.0.0.1:8001",
        validation_alias=AliasChoices("ATTRIBUTION_CATALOG_URL", "catalog_url"),
    )
    public_url: str = Field(
        default="http://127.0.0.1:8002",
        validation_alias=AliasChoices("ATTRIBUTION_PUBLIC_URL", "public_url"),
    )
    sync_interval_seconds: float = Field(
        default=2.0, description="How often the background task pulls the catalog change feed"
    )
    sync_max_backoff_seconds: float = 60.0
    sync_enabled: bool = True
    max_batch_events: int = 1000
    max_body_bytes: int = 1024 * 1024
    max_future_seconds: int = 300
    max_report_days: int = Field(default=400, description="Longest report or funnel range")
    report_timeout_seconds: float = Field(
        default=30.0, description="Time bound of one report or funnel query (503); 0: none"
    )
    signature_tolerance_seconds: int = 300
    analytics: Literal["clickhouse", "sql"] = Field(
        default="clickhouse",
        description="Where funnels and data-driven paths are read: the ClickHouse analytic "
        "store, or the attribution database itself",
    )
    analytics_path: Path | None = Field(
        default=None, description="Embedded analytic store's data (default: <var_dir>/analytics)"
    )
    clickhouse_url: str | None = Field(
        default=None,
        description="A ClickHouse server instead of the embedded store (clickhouse-connect DSN)",
    )
    clickhouse_database: str = "clipfunnel"
    ingest_buffer: str | None = Field(
        default=None,
        description="NATS JetStream URL (nats://host:4222): POST /v1/events and /v1/orders "
        "answer 202 once the broker holds the batch, and a writer commits it to the database",
    )
    ingest_stream: str = Field(
        default="CLIPFUNNEL_INGEST",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The JetStream stream of the ingest buffer",
    )
    ingest_writer: bool = Field(
        default=True,
        description="Run the buffer's writer inside the service (else run "
        "`clipfunnel serve ingest-worker` beside it)",
    )

    def default_db_name(self) -> str:
        return "attribution.db"
