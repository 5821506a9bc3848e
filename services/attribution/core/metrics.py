"""Attribution-specific Prometheus metrics."""

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS

EVENTS_RECEIVED = Counter(
    "clipfunnel_events_received_total", "Events received, by type and outcome", ["type", "outcome"]
)
ORDERS_RECEIVED = Counter(
    "clipfunnel_orders_received_total",
    "Order status posts received, by status and outcome",
    ["status", "outcome"],
)
ATTRIBUTION_SECONDS = Histogram(
    "clipfunnel_attribution_seconds",
    "Time to attribute one order under every model",
    buckets=LATENCY_BUCKETS,
)
CATALOG_SYNC_LAG = Gauge(
    "clipfunnel_catalog_sync_lag_seconds",
    "Seconds since the catalog change feed was last read to its end",
    multiprocess_mode="max",
)
SHOP_WEBHOOKS = Counter(
    "clipfunnel_shop_webhooks_total",
    "Shop webhook deliveries, by integration and outcome",
    ["integration", "outcome"],
)
INGEST_BUFFER_WRITTEN = Counter(
    "clipfunnel_ingest_buffer_written_total",
    "Buffered messages written to the database, by kind (events, orders) and outcome",
    ["kind", "outcome"],
)
INGEST_BUFFER_PENDING = Gauge(
    "clipfunnel_ingest_buffer_pending",
    "Messages accepted into the ingest buffer and not yet committed to the database",
    multiprocess_mode="max",
)
