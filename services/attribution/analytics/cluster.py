"""The analytic store's schema on a ClickHouse cluster, written from :data:`store.SCHEMA`.

Run it once against any node before the service starts (see ``deploy/clickhouse/README.md``)::

    python -m services.attribution.analytics.cluster [DATABASE [CLUSTER]] > cluster.sql

Each table of the schema becomes a ``<table>_local`` table on every node, its MergeTree engine
replicated within the shard, and a ``Distributed`` table of the schema's name over it that
routes rows by ``(tenant_id, user_id)``: one user's rows, and both copies of a row copied
twice, stay on one shard, where a funnel (per user) and ``FINAL`` (per shard) are correct.
The service's own ``CREATE TABLE IF NOT EXISTS`` then finds the tables and only records the
schema's versions.
"""

from __future__ import annotations

import re
import sys
import textwrap

from services.attribution.analytics.store import SCHEMA, VERSION_TABLE

DEFAULT_NAME = "clipfunnel"
#: How the Distributed tables route rows to shards.
SHARDING_KEY = "cityHash64(tenant_id, user_id)"
#: Tables routed otherwise. Every copy of an order must reach one shard for ``FINAL`` to keep
#: the newest, and its buyer can change between copies: orders go by their id (a funnel
#: groups the rows of every shard by user at the node that asked).
SHARDING_KEYS = {"orders": "cityHash64(tenant_id, order_id)"}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS \{db\}\.(\w+) \(", re.MULTILINE)
_ENGINE = re.compile(r"ENGINE = (\w*MergeTree)\((.*?)\)")


def _statement(text: str) -> str:
    """A statement of the schema as it reads in a file: its first line, the rest dedented."""
    first, _, rest = text.partition("\n")
    return f"{first}\n{textwrap.dedent(rest)}" if rest else first


def _on_cluster(statement: str, database: str, cluster: str) -> str:
    """A ``CREATE TABLE`` of the schema as its shard-local, replicated table on every node
    and the ``Distributed`` table over it."""
    table = _TABLE.search(statement)
    if table is None:
        # A later migration (an ALTER, say) has no cluster form here yet: say so, rather than
        # write a script that would leave the nodes apart.
        raise ValueError(f"no cluster form for the statement {statement.splitlines()[0]!r}")
    name = table.group(1)

    def replicated(engine: re.Match[str]) -> str:
        path = f"'/clickhouse/tables/{{shard}}/{database}/{name}', '{{replica}}'"
        args = f"{path}, {engine.group(2)}" if engine.group(2) else path
        return f"ENGINE = Replicated{engine.group(1)}(\n    {args}\n)"

    local = statement.replace(
        table.group(0), f"CREATE TABLE IF NOT EXISTS {{db}}.{name}_local ON CLUSTER {cluster} ("
    )
    local = _ENGINE.sub(replicated, local).replace("{db}", database)
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {database}.{name} ON CLUSTER {cluster} "
        f"AS {database}.{name}_local\n"
        f"ENGINE = Distributed({cluster}, {database}, {name}_local, "
        f"{SHARDING_KEYS.get(name, SHARDING_KEY)})"
    )
    return f"{local};\n\n{distributed}"


def cluster_sql(database: str = DEFAULT_NAME, cluster: str = DEFAULT_NAME) -> str:
    """The DDL of the whole schema (every version of :data:`store.SCHEMA`) on ``cluster``."""
    for name in (database, cluster):
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a ClickHouse name")
    parts = [
        f"-- ClipFunnel analytic store on the ClickHouse cluster `{cluster}`, database "
        f"`{database}`.\n-- Written from services/attribution/analytics/store.py by\n"
        "-- `python -m services.attribution.analytics.cluster`; run it on any node.",
        f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}",
    ]
    for version, statements in SCHEMA:
        parts.extend(
            f"-- version {version}\n{_on_cluster(_statement(s), database, cluster)}"
            for s in statements
        )
    versions = VERSION_TABLE.replace(
        "{engine}",
        f"ReplicatedMergeTree('/clickhouse/tables/{database}/schema_version', '{{replica}}')",
    )
    parts.append(
        versions.replace("{db}.schema_version ", f"{database}.schema_version ON CLUSTER {cluster} ")
    )
    return parts[0] + "\n\n" + ";\n\n".join(parts[1:]) + ";\n"


def main(argv: list[str]) -> int:
    if len(argv) > 2:
        print("usage: python -m services.attribution.analytics.cluster [DATABASE [CLUSTER]]")
        return 2
    try:
        sys.stdout.write(cluster_sql(*argv))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
