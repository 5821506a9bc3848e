"""Ids of what viewers and buyers do: random like client-made keys, or dated and sequential.

``RandomIds`` draws hex keys from the month's random source, as SDKs mint UUID-like keys.
``DatedIds`` numbers them under a prefix holding the seed and the month's last day, so the
same month posted twice replays the same ids (duplicates, replays) while another day's month
gets fresh ones instead of colliding with orders already posted under other timestamps.
"""

from __future__ import annotations

import random
from typing import Protocol


class Ids(Protocol):
    def session(self) -> str: ...
    def event(self) -> str: ...
    def click(self) -> str: ...
    def order(self, number: int) -> str: ...


class RandomIds:
    def __init__(self, rng: random.Random) -> None:
        self._bits = rng.getrandbits

    def session(self) -> str:
        return f"{self._bits(64):016x}"

    def event(self) -> str:
        return f"{self._bits(96):024x}"

    def click(self) -> str:
        return f"ck-{self._bits(64):016x}"

    def order(self, number: int) -> str:
        return f"ord-{number:07d}-{self._bits(24):06x}"


class DatedIds:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.sessions = self.events = self.clicks = 0

    def session(self) -> str:
        self.sessions += 1
        return f"{self.prefix}-s{self.sessions:06d}"

    def event(self) -> str:
        self.events += 1
        return f"{self.prefix}-e{self.events:07d}"

    def click(self) -> str:
        self.clicks += 1
        return f"{self.prefix}-k{self.clicks:06d}"

    def order(self, number: int) -> str:
        return f"{self.prefix}-o{number:05d}"
