"""Every attribution table, imported in one place so Alembic sees them all."""

from services.attribution.catalog_sync.models import (
    CatalogAccount,
    CatalogAd,
    CatalogAdSpend,
    CatalogCampaign,
    CatalogContent,
    CatalogContentProduct,
    CatalogProduct,
    CatalogTrackingLink,
    SyncState,
)
from services.attribution.core.base import Base, RevokedToken
from services.attribution.events.models import Event, RejectedEvent
from services.attribution.orders.models import (
    Credit,
    Order,
    OrderClick,
    OrderLine,
    OrderStatusPost,
    Refund,
)
from services.attribution.settings.models import TenantSettings

__all__ = [
    "Base",
    "CatalogAccount",
    "CatalogAd",
    "CatalogAdSpend",
    "CatalogCampaign",
    "CatalogContent",
    "CatalogContentProduct",
    "CatalogProduct",
    "CatalogTrackingLink",
    "Credit",
    "Event",
    "Order",
    "OrderClick",
    "OrderLine",
    "OrderStatusPost",
    "Refund",
    "RejectedEvent",
    "RevokedToken",
    "SyncState",
    "TenantSettings",
]
