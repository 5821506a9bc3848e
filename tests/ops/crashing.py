"""What the crash tests share: the killer thread, the retrying client, the buffer's catch-up.

The client of every crash test posts with deterministic ids and posts again, the same body,
whatever it got no answer for (a connection refused or cut off by a kill, or a 503 while the
service restarts) until it gets one; any other answer is final and must be an accepted one.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from services.launcher import Server
from tests.ops.conftest import Launcher

#: SIGKILLs per crash run: a quick 5 under `make test`; `.ci/run` sets CLIPFUNNEL_CRASH_KILLS.
KILLS = int(os.environ.get("CLIPFUNNEL_CRASH_KILLS", "5"))
#: A guard against hangs, far above the 1.5 s (idle machine) to 8 s (busy one) a kill and
#: restart take.
SECONDS_PER_KILL = 20.0
CATCH_UP_SECONDS = 180.0
ANSWER_SECONDS = 60.0


@dataclass
class Retries:
    """What the retrying client went through."""

    posts: int = 0  # requests sent, retries included
    cut_off: int = 0  # posts the kill cut off mid-request (sent, no answer)
    refused: int = 0  # posts refused while the service was down or restarting (or 503)
    retried: int = 0  # posts answered only after one or more retries


class Killer(threading.Thread):
    """SIGKILLs the service ``kills`` times at random moments, restarting it after each.

    With ``others`` (processes beside the service, such as a separate ingest writer), each
    kill takes one of them all at random; ``killed`` counts the kills of each by name.
    """

    def __init__(
        self, service: Server, rng: random.Random, kills: int, others: Sequence[Server] = ()
    ) -> None:
        super().__init__(name="killer", daemon=True)
        self.service = service
        self.targets = [service, *others]
        self.rng = rng
        self.kills = kills
        self.done = 0
        self.killed: Counter[str] = Counter()
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            while self.done < self.kills:
                if self.halt.wait(self.rng.uniform(0.2, 1.0)):
                    return
                target = self.rng.choice(self.targets) if len(self.targets) > 1 else self.service
                target.kill()
                self.done += 1
                self.killed[target.name] += 1
                target.start()
                target.wait_ready()
        except BaseException as exc:
            self.error = exc

    def finished(self) -> bool:
        return self.done == self.kills and not self.is_alive()

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=60)


def started_quietly(
    launcher: Launcher, database_url: str, extra_env: dict[str, str] | None = None
) -> Server:
    """A ready attribution service on this database that logs warnings only (the kills make
    the info lines noise)."""
    env = {"CLIPFUNNEL_LOG_LEVEL": "WARNING", **(extra_env or {})}
    service = launcher.service("attribution", database_url=database_url, extra_env=env)
    service.start()
    service.wait_ready()
    return service


def post_until_answered(
    client: httpx.Client,
    path: str,
    body: Any,
    headers: dict[str, str],
    retries: Retries,
    accepted: Collection[int] = (200,),
) -> httpx.Response:
    """POST ``body`` until the service answers something other than 503; that answer must be
    one of ``accepted``."""
    deadline = time.monotonic() + ANSWER_SECONDS
    retried = False
    while True:
        assert time.monotonic() < deadline, f"{path} went unanswered for {ANSWER_SECONDS:.0f} s"
        retries.posts += 1
        try:
            answer = client.post(path, json=body, headers=headers)
        except httpx.ConnectError:
            answer = None
        except httpx.TransportError:
            retries.cut_off += 1
            retried = True
            continue
        if answer is None or answer.status_code == 503:
            retries.refused += 1
            retried = True
            time.sleep(0.05)
            continue
        assert answer.status_code in accepted, f"{path}: {answer.status_code} {answer.text}"
        retries.retried += retried
        return answer


def post_events(
    client: httpx.Client,
    headers: dict[str, str],
    batch: list[dict[str, object]],
    retries: Retries,
    expected_status: int = 200,
) -> dict[str, object]:
    """Post one batch of events until answered; the answer's body."""
    answer = post_until_answered(
        client, "/v1/events", {"events": batch}, headers, retries, (expected_status,)
    )
    body: dict[str, object] = answer.json()
    return body


def caught_up(client: httpx.Client, headers: dict[str, str]) -> None:
    """Until the buffer's writer has committed everything the broker holds."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    last: object = None
    while True:
        try:
            answer = client.get("/v1/ingest/lag", headers=headers)
            last = answer.json()
            if answer.status_code == 200 and answer.json()["pending"] == 0:
                return
        except httpx.TransportError as exc:
            last = exc
        assert time.monotonic() < deadline, f"the buffer's writer did not catch up: {last}"
        time.sleep(0.1)
