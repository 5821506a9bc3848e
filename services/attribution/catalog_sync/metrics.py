"""Metrics of the catalog sync (its lag is in ``services.attribution.core.metrics``)."""

from prometheus_client import Counter

CATALOG_SYNC_SKIPPED = Counter(
    "clipfunnel_catalog_sync_skipped_total",
    "Catalog changes the sync could not apply and moved past (kept in catalog_sync_skipped)",
    ["entity"],
)
