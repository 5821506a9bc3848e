"""SQLite write transactions of one process queue on the writer gate instead of polling.

The engine here runs with ``busy_timeout=0``: a writer that reached SQLite's lock while
another held it would fail at once with "database is locked", so every test that passes
shows the writers queued in the gate, never in SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import make_engine, make_sessionmaker, reader


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")

    @event.listens_for(engine.sync_engine, "connect")
    def no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute("PRAGMA busy_timeout=0")

    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE log (seq INTEGER PRIMARY KEY, writer INTEGER)"))
    yield engine
    await engine.dispose()


async def test_concurrent_writers_run_one_at_a_time(engine: AsyncEngine) -> None:
    factory = make_sessionmaker(engine)
    inside = 0
    most_inside = 0

    async def writer(n: int) -> None:
        nonlocal inside, most_inside
        async with factory() as session:
            await session.execute(text("INSERT INTO log (writer) VALUES (:n)"), {"n": n})
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.01)  # hold the transaction open across an await
            inside -= 1
            await session.commit()

    tasks = []
    for n in range(12):
        tasks.append(asyncio.create_task(writer(n)))
    await asyncio.gather(*tasks)

    assert most_inside == 1
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT writer FROM log"))).scalars()
        assert sorted(stored) == list(range(12))


async def test_a_rolled_back_or_failed_writer_frees_the_slot(engine: AsyncEngine) -> None:
    factory = make_sessionmaker(engine)
    async with factory() as session:
        await session.execute(text("INSERT INTO log (writer) VALUES (1)"))
        await session.rollback()

    async def failing_request() -> None:
        async with factory() as session:
            await session.execute(text("INSERT INTO log (writer) VALUES (2)"))
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        await failing_request()
    # Both slots were given back: a third writer gets in at once.
    async with asyncio.timeout(5):
        async with factory() as session:
            await session.execute(text("INSERT INTO log (writer) VALUES (3)"))
            await session.commit()
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT writer FROM log"))).scalars()
        assert list(stored) == [3]


async def test_readers_do_not_wait_for_the_writer(engine: AsyncEngine) -> None:
    writers = make_sessionmaker(engine)
    readers = make_sessionmaker(engine, read_only=True)
    async with writers() as session:
        await session.execute(text("INSERT INTO log (writer) VALUES (1)"))
        async with asyncio.timeout(5):  # a guard against a hang, not a speed check
            async with readers() as read:
                count = (await read.execute(text("SELECT count(*) FROM log"))).scalar_one()
            async with reader(engine).connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert count == 0  # WAL: the reader sees the last commit, not the open transaction
        await session.commit()


async def test_further_transactions_on_the_holding_connection_do_not_wait_on_themselves(
    engine: AsyncEngine,
) -> None:
    async with asyncio.timeout(5):
        async with engine.connect() as conn:
            await conn.execute(text("INSERT INTO log (writer) VALUES (1)"))
            await conn.commit()
            await conn.execute(text("INSERT INTO log (writer) VALUES (2)"))
            await conn.commit()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM log"))).scalar_one() == 2
