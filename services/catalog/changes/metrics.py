"""Catalog-specific Prometheus metrics."""

from prometheus_client import Counter

CATALOG_CHANGES = Counter(
    "clipfunnel_catalog_changes_total", "Catalog changes recorded in the feed", ["entity", "op"]
)
