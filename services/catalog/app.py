"""The catalog service: accounts, contents, products, links, campaigns, ads, spend, links."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.catalog.accounts.router import router as accounts_router
from services.catalog.ads.router import router as ads_router
from services.catalog.ads.router import spend as spend_router
from services.catalog.campaigns.router import router as campaigns_router
from services.catalog.changes.router import router as changes_router
from services.catalog.contents.router import links as links_router
from services.catalog.contents.router import router as contents_router
from services.catalog.models import RevokedToken
from services.catalog.products.router import router as products_router
from services.catalog.settings import CatalogSettings
from services.catalog.tracking_links.router import router as tracking_links_router
from shared.app import build_app
from shared.migrate import MigrationSpec

MIGRATIONS = MigrationSpec(
    service="catalog",
    script_location=Path(__file__).parent / "migrations",
    version_table="alembic_version_catalog",
)


def create_app(settings: CatalogSettings | None = None, *, configure_logs: bool = True) -> FastAPI:
    settings = settings or CatalogSettings()
    return build_app(
        title="ClipFunnel catalog",
        description="Creator accounts, videos and live streams, products and the links between "
        "them, campaigns, native ads and their spend, tracking links; and the change feed the "
        "attribution service follows.",
        settings=settings,
        migrations=MIGRATIONS,
        revoked_tokens=RevokedToken,
        routers=[
            accounts_router,
            products_router,
            contents_router,
            links_router,
            campaigns_router,
            ads_router,
            spend_router,
            tracking_links_router,
            changes_router,
        ],
        configure_logs=configure_logs,
    )
