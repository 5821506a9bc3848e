"""Database helpers shared by both services: engines, sessions, types, naming convention."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, MetaData, Numeric, String, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import JSON, TypeDecorator, TypeEngine
from sqlalchemy.util.concurrency import await_only, in_greenlet

from shared.currencies import canonical_money

# Deterministic constraint names, so Alembic autogenerate and the model/migration check agree.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_epoch_us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime: timestamps must carry a timezone")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(value: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=value)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC instant.

    PostgreSQL stores ``timestamptz``; SQLite, which has no timestamp type, stores integer
    microseconds since the epoch, so comparisons and arithmetic stay exact and fast there.
    Naive datetimes are refused rather than guessed.
    """

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: timestamps must carry a timezone")
        if dialect.name == "postgresql":
            return value.astimezone(dt.UTC)
        return to_epoch_us(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC)
        return from_epoch_us(int(value))


class MoneyType(TypeDecorator[Decimal]):
    """Exact decimal money: NUMERIC(18,4) on PostgreSQL, decimal text on SQLite (whose NUMERIC
    is a binary float)."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(18, 4, asdecimal=True))
        return dialect.type_descriptor(String(40))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = canonical_money(Decimal(value))
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return canonical_money(Decimal(value))


class JSONDoc(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB())
        return dialect.type_descriptor(JSON())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def assign(row: object, values: Mapping[str, Any]) -> bool:
    """Give ``row`` the ``values`` if any differs from what it holds; whether one did.

    An upsert bumps ``updated_at`` (and writes the change feed) only when this is true, so an
    identical PUT changes nothing.
    """
    if all(getattr(row, name) == value for name, value in values.items()):
        return False
    for name, value in values.items():
        setattr(row, name, value)
    return True


class RevokedTokenColumns:
    """The columns of each service's ``revoked_tokens`` table, mixed into a model on the
    service's own base (queried through ``shared.revocation``)."""

    __tablename__ = "revoked_tokens"

    # sort_order keeps tenant_id the first column, and so first in the primary key.
    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True, sort_order=-100)
    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def normalise_url(url: str) -> str:
    """Accept plain driver-less URLs and pick the async driver."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
    return url


def sync_url(url: str) -> str:
    """A synchronous URL for the same database (used by tools that are not async)."""
    url = normalise_url(url)
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, open transactions (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; NORMAL is durable across process crashes
    # in WAL mode (only an OS crash can lose the last commits).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA temp_store=MEMORY")
    # A 64 MiB page cache (the default is 2 MiB): inserts touch five B-trees with random keys,
    # and each page read again from the OS costs a system call.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    # Checkpoint every ~40 MiB of WAL instead of ~4 MiB: a page rewritten by many commits in
    # between is copied back once (in a one-off test of 1,000-row insert transactions, a
    # quarter less CPU per row). The benchmark's bulk-insert baseline uses the same setting.
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_CHECKPOINT_PAGES}")
    cursor.close()


SQLITE_CACHE_KIB = 64 * 1024
SQLITE_WAL_CHECKPOINT_PAGES = 10_000
SQLITE_BUSY_TIMEOUT_S = 30.0
READ_ONLY = "clipfunnel_read_only"


class SQLiteWriterGate:
    """One write transaction at a time per engine in this process, first come first served.

    SQLite has a single writer. Without this, concurrent requests of one process each send
    ``BEGIN IMMEDIATE`` on their own connection and the losers poll in SQLite's busy handler,
    which sleeps 1, 2, 5 … 100 ms between tries: the database idles while they sleep, and an
    unlucky request can lose every round (seconds of tail latency). Here they queue on an
    ``asyncio.Lock`` instead and start the moment the previous transaction is back in the
    pool. Writers in other processes still meet in ``busy_timeout``.

    The gate is taken in the ``begin`` event (from inside SQLAlchemy's greenlet, hence
    ``await_only``) and given back when the holder's connection returns to the pool, after
    its COMMIT or ROLLBACK, or when it is invalidated.
    """

    def __init__(self, timeout_s: float = SQLITE_BUSY_TIMEOUT_S) -> None:
        self._lock = asyncio.Lock()
        self._holder: Any = None  # the pool record of the connection holding the gate
        self._timeout_s = timeout_s

    async def _acquire(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._lock.acquire()
        except TimeoutError:
            raise TimeoutError(
                f"no SQLite write slot within {self._timeout_s:g} s (database busy)"
            ) from None

    def enter(self, connection: Any) -> None:
        record = connection.connection._connection_record
        if record is self._holder:
            return  # a further transaction on the connection that holds the gate
        if not in_greenlet():
            return  # a synchronous caller (no event loop to queue on): busy_timeout only
        await_only(self._acquire())
        self._holder = record

    def leave(self, _dbapi_connection: Any, record: Any, *_args: Any) -> None:
        if record is not None and record is self._holder:
            self._holder = None
            self._lock.release()


def _sqlite_begin(gate: SQLiteWriterGate) -> Any:
    def begin(connection: Any) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
        # when another writer got in between (busy_timeout cannot help an upgrade). Taking the
        # write lock up front makes concurrent writers queue instead; SQLite has one writer
        # anyway. Read-only sessions (reports, funnels) begin deferred, so in WAL mode they
        # never wait for, nor hold up, a writer.
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
            return
        gate.enter(connection)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            gate.leave(None, gate._holder)
            raise

    return begin


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    url = normalise_url(url)
    if is_sqlite(url):
        # hide_parameters: an error message never carries event or order values into logs.
        engine = create_async_engine(url, echo=echo, hide_parameters=True)
        gate = SQLiteWriterGate()
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin(gate))
        pool = engine.sync_engine.pool
        event.listen(pool, "checkin", gate.leave)
        event.listen(pool, "invalidate", gate.leave)
        event.listen(pool, "soft_invalidate", gate.leave)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The engine for reads: on SQLite its transactions begin deferred and never queue for the
    write slot."""
    return engine.execution_options(**{READ_ONLY: True})


def make_sessionmaker(
    engine: AsyncEngine, *, read_only: bool = False
) -> async_sessionmaker[AsyncSession]:
    bind = reader(engine) if read_only else engine
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with factory() as session:
        yield session


def insert_for(dialect_name: str) -> Any:
    """The dialect's INSERT construct, which knows ON CONFLICT."""
    if dialect_name == "postgresql":
        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


async def insert_unless_present(
    session: AsyncSession, model: Any, keys: Sequence[str], **values: Any
) -> None:
    """``INSERT … ON CONFLICT (keys) DO NOTHING``: a row already there keeps its first values."""
    statement = insert_for(session.get_bind().dialect.name)(model).values(**values)
    await session.execute(statement.on_conflict_do_nothing(index_elements=list(keys)))
