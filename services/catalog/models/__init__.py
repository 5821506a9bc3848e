"""Every catalog table, in one package: Alembic sees them all and no domain owns another's."""

from services.catalog.models.accounts import Account
from services.catalog.models.ads import Ad, AdSpend
from services.catalog.models.base import Base, RevokedToken, TenantEntity
from services.catalog.models.campaigns import Campaign
from services.catalog.models.changes import Change
from services.catalog.models.contents import Content, ContentProduct
from services.catalog.models.products import Product
from services.catalog.models.tracking_links import TrackingLink

__all__ = [
    "Account",
    "Ad",
    "AdSpend",
    "Base",
    "Campaign",
    "Change",
    "Content",
    "ContentProduct",
    "Product",
    "RevokedToken",
    "TenantEntity",
    "TrackingLink",
]
