"""ClickHouse, embedded (chdb) or by URL (clickhouse-connect): the same statements on both.

:class:`AnalyticStore` runs SQL text and returns rows decoded from ``JSONCompact``; both
backends take exactly the statements this package builds. The schema is versioned:
:data:`SCHEMA` lists the migrations in order, :meth:`AnalyticStore.migrate` applies those
not yet recorded in the database's ``schema_version`` table.

chdb embeds one ClickHouse per process and per data directory: the process opens it once
(:func:`embedded`) and each service instance keeps its tables in its own database.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

#: Each migration: its version and its statements (``{db}`` is the store's database).
SCHEMA: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            # One row per accepted event. ReplacingMergeTree on the sort key, which holds the
            # event's immutable identity: a row copied twice (a replication retried after a
            # crash) collapses into one; reads use FINAL so none is ever seen twice.
            """CREATE TABLE IF NOT EXISTS {db}.events (
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
            ) ENGINE = ReplacingMergeTree(seq)
            ORDER BY (tenant_id, user_id, t, event_id)""",
        ),
    ),
    (
        2,
        (
            # One row per order as last copied (analytics.order_replication): its state
            # changes, so each copy carries the batch's version and the newest one wins
            # (read with FINAL). ``visible``: the order is an order step (paid, a buyer).
            # ``contents``, ``ads`` and ``touch_platforms`` are aligned, one element per
            # last-touch credit (the platform of its touch event).
            """CREATE TABLE IF NOT EXISTS {db}.orders (
                tenant_id String,
                order_id String,
                buyer_id Nullable(String),
                paid_at Nullable(DateTime64(6, 'UTC')),
                status LowCardinality(String),
                visible UInt8,
                products Array(String),
                contents Array(Nullable(String)),
                ads Array(Nullable(String)),
                touch_platforms Array(Nullable(String)),
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (tenant_id, order_id)""",
        ),
    ),
)

#: Where the applied versions are recorded (``{db}`` and ``{engine}`` to fill in).
VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS {db}.schema_version "
    "(version UInt32, applied_at DateTime64(6, 'UTC')) "
    "ENGINE = {engine} ORDER BY version"
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def quote(value: str | None) -> str:
    """A ClickHouse string literal (or NULL)."""
    if value is None:
        return "NULL"
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_list(values: Sequence[str]) -> str:
    """``(…)`` of string literals, for ``IN``; an empty list matches nothing."""
    return "(" + ", ".join(quote(v) for v in values) + ")" if values else "(NULL)"


def micros(instant: dt.datetime) -> int:
    return (instant - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def clickhouse_time(instant: dt.datetime) -> str:
    """The text of an aware instant as a DateTime64(6, 'UTC') column reads it (four-digit
    years, microseconds)."""
    return instant.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def instant_literal(instant: dt.datetime) -> str:
    """A DateTime64(6, 'UTC') literal of an aware instant, exact to the microsecond."""
    return f"fromUnixTimestamp64Micro(toInt64({micros(instant)}), 'UTC')"


_QUERY_SETTINGS = " SETTINGS output_format_json_quote_64bit_integers = 0"


class AnalyticStore:
    """One ClickHouse database; ``run`` executes a statement text and returns its body."""

    def __init__(self, database: str, run: Callable[[str], bytes]) -> None:
        if not _NAME.match(database):
            raise ValueError(f"analytic database name {database!r} must be a plain identifier")
        self.database = database
        self._run = run
        self._lock = threading.Lock()

    def execute(self, statement: str) -> None:
        with self._lock:
            self._run(statement.replace("{db}", self.database))

    def rows(self, statement: str) -> list[list[Any]]:
        text = statement.replace("{db}", self.database) + _QUERY_SETTINGS + " FORMAT JSONCompact"
        with self._lock:
            body = self._run(text)
        data: list[list[Any]] = orjson.loads(body)["data"]
        return data

    def insert_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows given as dicts (JSON values), in one statement."""
        if not rows:
            return
        body = b"\n".join(orjson.dumps(row) for row in rows).decode()
        self.execute(f"INSERT INTO {{db}}.{table} FORMAT JSONEachRow\n{body}")

    async def arows(self, statement: str) -> list[list[Any]]:
        return await asyncio.to_thread(self.rows, statement)

    def migrate(self) -> list[int]:
        """Apply the schema's migrations not yet recorded; returns the versions applied."""
        self.execute("CREATE DATABASE IF NOT EXISTS {db}")
        self.execute(VERSION_TABLE.replace("{engine}", "MergeTree"))
        done = {int(row[0]) for row in self.rows("SELECT version FROM {db}.schema_version")}
        applied = []
        for version, statements in SCHEMA:
            if version in done:
                continue
            for statement in statements:
                self.execute(statement)
            self.execute(f"INSERT INTO {{db}}.schema_version VALUES ({version}, now64(6, 'UTC'))")
            applied.append(version)
        return applied

    def version(self) -> int:
        rows = self.rows("SELECT max(version) FROM {db}.schema_version")
        return int(rows[0][0]) if rows else 0


_embedded: tuple[Path, Any] | None = None
_embedded_lock = threading.Lock()


def embedded(path: Path, database: str) -> AnalyticStore:
    """The process's embedded ClickHouse (chdb) at ``path``, using ``database``.

    chdb opens one data directory per process: asking for another path is refused.
    """
    global _embedded
    from chdb import session as chdb_session

    resolved = path.resolve()
    with _embedded_lock:
        if _embedded is None:
            resolved.mkdir(parents=True, exist_ok=True)
            # chdb ships no type hints.
            _embedded = (resolved, chdb_session.Session(str(resolved)))  # type: ignore[no-untyped-call]
            # Closed while the interpreter is whole: left to the session's finalizer, the
            # engine is torn down after the modules it calls back into, and the process can
            # end in a segmentation fault instead of its exit status.
            atexit.register(_close_embedded)
        elif _embedded[0] != resolved:
            raise RuntimeError(
                f"this process already embeds the analytic store at {_embedded[0]}; "
                f"it cannot also open {resolved} (one embedded store per process)"
            )
        chdb = _embedded[1]

    def run(statement: str) -> bytes:
        result = chdb.query(statement)
        return bytes(result.bytes() or b"")

    return AnalyticStore(database, run)


def _close_embedded() -> None:
    global _embedded
    with _embedded_lock:
        if _embedded is not None:
            _embedded[1].cleanup()
            _embedded = None


def server(url: str, database: str) -> AnalyticStore:
    """A ClickHouse server (or a cluster's entry point) at ``url``, using ``database``."""
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=url)

    def run(statement: str) -> bytes:
        # The raw body in the format the statement names (JSONCompact for reads).
        return bytes(client.raw_query(statement))

    return AnalyticStore(database, run)
