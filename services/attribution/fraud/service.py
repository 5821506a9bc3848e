"""The fraud report: verdicts counted by rule, and by day, content and ad (pure grouping)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from services.attribution.fraud.schemas import FraudReport, FraudRow, RuleTotal


def fraud_report(verdicts: Sequence[Any], timezone: str) -> FraudReport:
    """``verdicts``: rows with order_id, event_id, reason, mode, touch_at, content_id, ad_id."""
    zone = ZoneInfo(timezone)
    rule_touches: dict[tuple[str, str], set[str]] = defaultdict(set)
    rule_orders: dict[tuple[str, str], set[str]] = defaultdict(set)
    cell_touches: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    cell_orders: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for v in verdicts:
        rule = (v.reason, v.mode)
        rule_touches[rule].add(v.event_id)
        rule_orders[rule].add(v.order_id)
        cell = (v.touch_at.astimezone(zone).date(), v.reason, v.mode, v.content_id, v.ad_id)
        cell_touches[cell].add(v.event_id)
        cell_orders[cell].add(v.order_id)
    by_rule = [
        RuleTotal(
            reason=reason,
            mode=mode,
            touches=len(rule_touches[(reason, mode)]),
            orders=len(rule_orders[(reason, mode)]),
        )
        for reason, mode in sorted(rule_touches)
    ]
    rows = []
    for cell in sorted(cell_touches, key=lambda c: (c[0], c[1], c[2], c[3] or "", c[4] or "")):
        day, reason, mode, content_id, ad_id = cell
        rows.append(
            FraudRow(
                day=day,
                reason=reason,
                mode=mode,
                content_id=content_id,
                ad_id=ad_id,
                touches=len(cell_touches[cell]),
                orders=len(cell_orders[cell]),
            )
        )
    return FraudReport(timezone=timezone, by_rule=by_rule, rows=rows)
