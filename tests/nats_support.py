"""The real NATS JetStream the ingest-buffer tests publish to (127.0.0.1:4222 by default)."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid

import nats
import pytest

NATS_URL = os.environ.get("CLIPFUNNEL_TEST_NATS_URL", "nats://127.0.0.1:4222")
REQUIRE_NATS = os.environ.get("CLIPFUNNEL_REQUIRE_NATS") == "1"


def require_nats() -> None:
    """Skip (or fail, where CI requires it) unless the broker answers."""
    host, port = NATS_URL.removeprefix("nats://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return
    except OSError:
        pass
    if REQUIRE_NATS:
        pytest.fail(f"NATS JetStream is required but unreachable at {NATS_URL}")
    pytest.skip(f"NATS JetStream not reachable at {NATS_URL}")


def stream_name() -> str:
    """A stream of the test's own, so tests never read each other's messages."""
    return f"CF_TEST_{uuid.uuid4().hex[:12].upper()}"


async def delete_stream(name: str) -> None:
    client = await nats.connect(NATS_URL)
    with contextlib.suppress(Exception):  # never created (the test failed before it connected)
        await client.jetstream().delete_stream(name)
    await client.close()
