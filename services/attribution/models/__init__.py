"""Every attribution table, in one package: Alembic sees them all and no domain owns another's.

Domains read and write these tables through their own repositories; the tables themselves
depend on nothing above ``shared.db``.
"""

from services.attribution.models.analytics import AnalyticsOrderChange
from services.attribution.models.base import Base, RevokedToken, tenant_key
from services.attribution.models.catalog import (
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
from services.attribution.models.credits import Credit, TouchVerdict
from services.attribution.models.events import Event, EventDaily, Interaction, RejectedEvent
from services.attribution.models.experiments import Experiment
from services.attribution.models.integrations import Integration, IntegrationDelivery
from services.attribution.models.orders import (
    HeldOrderPost,
    Order,
    OrderClick,
    OrderLine,
    OrderStatusPost,
    Refund,
)
from services.attribution.models.settings import TenantSettings

__all__ = [
    "AnalyticsOrderChange",
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
    "EventDaily",
    "Experiment",
    "HeldOrderPost",
    "Integration",
    "IntegrationDelivery",
    "Interaction",
    "Order",
    "OrderClick",
    "OrderLine",
    "OrderStatusPost",
    "Refund",
    "RejectedEvent",
    "RevokedToken",
    "SyncState",
    "TenantSettings",
    "TouchVerdict",
    "tenant_key",
]
