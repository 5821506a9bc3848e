"""A tenant's fraud rules: each rule's threshold and mode (the credit domain applies them).

``flag`` credits a touch that breaks the rule but marks it; ``reject`` keeps it from
earning credit. The defaults flag, so turning the rules on never changes credits silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["flag", "reject"]
Reason = Literal["click_injection", "click_flood", "rate_cap", "duplicate_click_id"]
REASONS: tuple[Reason, ...] = ("click_injection", "click_flood", "rate_cap", "duplicate_click_id")


@dataclass(frozen=True, slots=True)
class FraudRules:
    click_injection: Mode = "flag"
    min_click_to_order_seconds: int = 10
    click_flood: Mode = "flag"
    max_clicks_per_user_hour: int = 20
    max_clicks_per_order: int = 10
    rate_cap: Mode = "flag"
    max_events_per_user_minute: int = 120
    duplicate_click_id: Mode = "flag"

    def mode(self, reason: Reason) -> Mode:
        mode: Mode = getattr(self, reason)
        return mode

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any] | None) -> FraudRules:
        known = {k: v for k, v in (stored or {}).items() if k in cls.__slots__}
        return cls(**known)


DEFAULT_FRAUD_RULES = FraudRules()
