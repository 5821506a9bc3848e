-- ClipFunnel analytic store on a ClickHouse cluster named `clipfunnel` (see README.md).
-- Replace the database name if ATTRIBUTION_CLICKHOUSE_DATABASE is not `clipfunnel`.

CREATE DATABASE IF NOT EXISTS clipfunnel ON CLUSTER clipfunnel;

-- Each shard's rows, replicated within the shard; same columns and key as the embedded store.
CREATE TABLE IF NOT EXISTS clipfunnel.events_local ON CLUSTER clipfunnel (
    tenant_id String,
    user_id String,
    t DateTime64(6, 'UTC'),
    event_id String,
    type LowCardinality(String),
    content_id Nullable(String),
    product_id Nullable(String),
    ad_id Nullable(String),
    platform Nullable(String),
    seq UInt64
) ENGINE = ReplicatedReplacingMergeTree(
    '/clickhouse/tables/{shard}/clipfunnel/events', '{replica}', seq
)
ORDER BY (tenant_id, user_id, t, event_id);

-- What the service reads and writes: every shard, rows routed by (tenant_id, user_id), so a
-- user's rows (and both copies of a row copied twice) are on one shard.
CREATE TABLE IF NOT EXISTS clipfunnel.events ON CLUSTER clipfunnel AS clipfunnel.events_local
ENGINE = Distributed(clipfunnel, clipfunnel, events_local, cityHash64(tenant_id, user_id));

CREATE TABLE IF NOT EXISTS clipfunnel.schema_version ON CLUSTER clipfunnel (
    version UInt32,
    applied_at DateTime64(6, 'UTC')
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/clipfunnel/schema_version', '{replica}')
ORDER BY version;
