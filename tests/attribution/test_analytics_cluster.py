"""The cluster's ClickHouse schema is written from the service's own ``store.SCHEMA``."""

from __future__ import annotations

import pytest

from services.attribution.analytics import cluster
from services.attribution.analytics.store import SCHEMA


def test_each_table_is_replicated_per_shard_and_distributed_by_user() -> None:
    sql = cluster.cluster_sql("shop", "east")
    assert sql.startswith("-- ClipFunnel analytic store on the ClickHouse cluster `east`")
    assert "CREATE DATABASE IF NOT EXISTS shop ON CLUSTER east;" in sql
    assert "CREATE TABLE IF NOT EXISTS shop.events_local ON CLUSTER east (\n" in sql
    assert (
        "ENGINE = ReplicatedReplacingMergeTree(\n"
        "    '/clickhouse/tables/{shard}/shop/events', '{replica}', seq\n)"
    ) in sql
    assert (
        "CREATE TABLE IF NOT EXISTS shop.events ON CLUSTER east AS shop.events_local\n"
        "ENGINE = Distributed(east, shop, events_local, cityHash64(tenant_id, user_id));"
    ) in sql
    # Every copy of an order on one shard, whoever its buyer is by then.
    assert (
        "CREATE TABLE IF NOT EXISTS shop.orders ON CLUSTER east AS shop.orders_local\n"
        "ENGINE = Distributed(east, shop, orders_local, cityHash64(tenant_id, order_id));"
    ) in sql
    assert "'/clickhouse/tables/{shard}/shop/orders', '{replica}', version\n)" in sql
    assert "shop.schema_version ON CLUSTER east (version UInt32" in sql
    assert "ReplicatedMergeTree('/clickhouse/tables/shop/schema_version', '{replica}')" in sql
    assert "{db}" not in sql
    assert "{engine}" not in sql


def test_the_columns_and_key_are_the_embedded_stores() -> None:
    sql = cluster.cluster_sql()
    created = SCHEMA[0][1][0]
    for line in created.splitlines()[1:]:
        if "ENGINE" not in line:
            assert line.strip() in sql
    assert "ORDER BY (tenant_id, user_id, t, event_id);" in sql


def test_names_are_checked() -> None:
    with pytest.raises(ValueError, match="not a ClickHouse name"):
        cluster.cluster_sql("shop; DROP", "east")
    assert cluster.main(["a", "b", "c"]) == 2
