"""Every catalog table, imported in one place so Alembic sees them all."""

from services.catalog.accounts.models import Account
from services.catalog.ads.models import Ad, AdSpend
from services.catalog.campaigns.models import Campaign
from services.catalog.changes.models import Change
from services.catalog.contents.models import Content, ContentProduct
from services.catalog.core.base import Base, RevokedToken
from services.catalog.products.models import Product
from services.catalog.tracking_links.models import TrackingLink

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
    "TrackingLink",
]
