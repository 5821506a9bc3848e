"""The demo's content operations: an A/B test of two cuts, replies and DMs, a Q&A week.

Planned from the generated month (pure, seeded) and posted after it, so the dashboard's
experiment, interactions and scorecard views have something to show:

- **An experiment**: two new cuts of the month's most popular video (the hook first, or the
  product first), each shown to its own viewers from day 10 on; cut B's click rate is a
  little higher, so the result reads "B is better with ~97 % chance" while not yet
  significant at 5 %.
- **Replies and DMs**: the creator accounts answer most of the month's comments (most within
  the hour, some a day or more later, some never), and viewers write DMs, most answered.
- **An engagement activity**: a Q&A week campaign (``objective: engagement``,
  ``activity: qa``) on that video from day 20 to day 23, with the extra comments, likes and
  follows it brought; the activities report compares it with the three days before.

Every id derives from the seed and the month's first day, so a rerun posts the same objects
(PUTs replace, events come back as duplicates).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from services.demo.month import Month
from services.demo.post import Api, DemoError
from services.demo.timeline import DAY, HOUR, SECOND, TZ, from_us
from services.demo.wire import iso
from services.demo.world import Content, Request

MINUTE = 60 * SECOND
EXPERIMENT_ID = "exp-hook-cut"
ACTIVITY_CAMPAIGN = "cmp-qa-week"
ACTIVITY_AD = "ad-qa-week"
CUTS = ("vid-cut-a", "vid-cut-b")
VIEWERS_PER_CUT = 3_000
CLICKERS = (120, 150)  # click rates 4.0 % and 5.0 %: p ≈ 0.06, chance to win ≈ 97 %
COMPLETING = 0.35  # of the viewers of a cut or of the Q&A week watch to the end
REPLY_SHARE = 0.65
DMS = 240
EVENT_BATCH = 1_000


@dataclass
class Operations:
    """What the demo posts for content operations, in order."""

    catalog: list[Request] = field(default_factory=list)
    experiment: Request | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def batches(self) -> list[list[dict[str, Any]]]:
        return [self.events[i : i + EVENT_BATCH] for i in range(0, len(self.events), EVENT_BATCH)]


def _viewer(seed: int, tag: str, n: int) -> str:
    return hashlib.sha256(f"clipfunnel-demo-ops:{seed}:{tag}:{n}".encode()).hexdigest()


def _event(event_id: str, kind: str, t_us: int, user: str, **fields: Any) -> dict[str, Any]:
    body = {"event_id": event_id, "type": kind, "occurred_at": iso(t_us), "user_id": user}
    return body | {k: v for k, v in fields.items() if v is not None}


def _reply_delay(rng: random.Random) -> int:
    """Most answers within the hour, some within the day, a few later."""
    roll = rng.random()
    if roll < 0.5:
        return rng.randint(2, 60) * MINUTE
    if roll < 0.85:
        return rng.randint(61, 24 * 60) * MINUTE
    return rng.randint(24 * 60 + 1, 72 * 60) * MINUTE


def _answer(
    rng: random.Random, asked_id: str, kind: str, t_us: int, account: str, last: int
) -> list[dict[str, Any]]:
    """The account's ``kind`` answer to ``asked_id`` (asked at ``t_us``) after a drawn delay;
    none when it would come after ``last``."""
    answered = t_us + _reply_delay(rng)
    if answered > last:
        return []
    return [
        _event(f"{asked_id}-re", kind, answered, account, reply_to=asked_id, account_id=account)
    ]


def _the_video(data: Month) -> Content:
    return next(c for c in data.world.contents if c.kind == "video")


def plan(data: Month) -> Operations:
    """The month's operations, from ``random.Random(seed)`` and the month's dates."""
    rng = random.Random(f"operations:{data.seed}")
    tag = f"{data.seed}-{from_us(data.start_us).astimezone(TZ):%Y%m%d}"
    video = _the_video(data)
    product = next((k.product_id for k in data.world.links if k.content_id == video.id), None)
    ops = Operations()
    start, end = data.start_us, data.end_us
    last = end - MINUTE  # nothing after the month's end (today)

    # --- the experiment: two cuts of the video, each to its own viewers
    exp_start = start + 10 * DAY
    for key, cut in zip(("A: hook first", "B: product first"), CUTS, strict=True):
        body = {
            "kind": "video",
            "account_id": video.account_id,
            "title": f"{video.title} (cut {key})",
            "published_at": iso(exp_start),
            "duration_seconds": video.duration_s,
        }
        ops.catalog.append((f"/v1/contents/{cut}", body))
        if product is not None:
            ops.catalog.append(
                (f"/v1/contents/{cut}/products/{product}", {"placement": "product_card"})
            )
    ops.experiment = (
        f"/v1/experiments/{EXPERIMENT_ID}",
        {
            "name": "Hook first or product first?",
            "hypothesis": "Showing the product in the first second lifts clicks",
            "variants": [
                {"key": "A", "content_ids": [CUTS[0]]},
                {"key": "B", "content_ids": [CUTS[1]]},
            ],
            "metric": "click_rate",
            "starts_at": iso(exp_start),
            "ends_at": iso(end),
        },
    )
    for arm, (cut, clickers) in enumerate(zip(CUTS, CLICKERS, strict=True)):
        clicking = set(rng.sample(range(VIEWERS_PER_CUT), clickers))
        for n in range(VIEWERS_PER_CUT):
            user = _viewer(data.seed, f"cut{arm}", n)
            t = rng.randint(exp_start, last - HOUR)
            prefix = f"ops-{tag}-x{arm}-{n}"
            ops.events.append(_event(f"{prefix}-i", "impression", t, user, content_id=cut))
            ops.events.append(_event(f"{prefix}-v", "view", t + 2 * SECOND, user, content_id=cut))
            if rng.random() < COMPLETING:
                ops.events.append(
                    _event(f"{prefix}-e", "view_complete", t + 40 * SECOND, user, content_id=cut)
                )
            if n in clicking:
                ops.events.append(
                    _event(
                        f"{prefix}-c",
                        "click",
                        t + 20 * SECOND,
                        user,
                        content_id=cut,
                        product_id=product,
                    )
                )

    # --- the Q&A week on the video: the campaign and what it brought
    act_start, act_end = start + 20 * DAY, start + 23 * DAY
    ops.catalog.append(
        (
            f"/v1/campaigns/{ACTIVITY_CAMPAIGN}",
            {
                "name": "Q&A week: ask the formulator",
                "objective": "engagement",
                "activity": "qa",
                "starts_at": iso(act_start),
                "ends_at": iso(act_end),
            },
        )
    )
    ops.catalog.append(
        (
            f"/v1/ads/{ACTIVITY_AD}",
            {
                "campaign_id": ACTIVITY_CAMPAIGN,
                "content_id": video.id,
                "format": "native",
                "name": "Q&A week pinned question",
            },
        )
    )
    asked: list[tuple[str, int, str]] = []  # (comment id, time, content)
    for n in range(900):
        user = _viewer(data.seed, "fan", n)
        t = rng.randint(act_start, min(act_end, last) - HOUR)
        prefix = f"ops-{tag}-q{n}"
        ops.events.append(_event(f"{prefix}-v", "view", t, user, content_id=video.id))
        if rng.random() < COMPLETING:
            ops.events.append(
                _event(f"{prefix}-e", "view_complete", t + 50 * SECOND, user, content_id=video.id)
            )
        roll = rng.random()
        if roll < 0.18:
            ops.events.append(
                _event(f"{prefix}-k", "comment", t + MINUTE, user, content_id=video.id)
            )
            asked.append((f"{prefix}-k", t + MINUTE, video.id))
        elif roll < 0.40:
            ops.events.append(
                _event(f"{prefix}-l", "like", t + 30 * SECOND, user, content_id=video.id)
            )
        if rng.random() < 0.08:
            ops.events.append(
                _event(f"{prefix}-f", "follow", t + 2 * MINUTE, user, content_id=video.id)
            )

    # --- replies to the month's comments (and the Q&A's), DMs and their answers
    account_of = {c.id: c.account_id for c in data.world.contents}
    seen: set[str] = set()
    for event in data.events:
        if event.type == "comment" and event.content_id and event.event_id not in seen:
            seen.add(event.event_id)
            asked.append((event.event_id, event.t_us, event.content_id))
    for comment_id, t, content in asked:
        account = account_of.get(content)
        if account is None or rng.random() > REPLY_SHARE:
            continue
        ops.events.extend(_answer(rng, comment_id, "reply", t, account, last))
    accounts = [a.id for a in data.world.accounts]
    for n in range(DMS):
        user = _viewer(data.seed, "dm", n)
        t = rng.randint(start, last - HOUR)
        account = rng.choice(accounts)
        dm_id = f"ops-{tag}-dm{n}"
        ops.events.append(_event(dm_id, "dm", t, user, account_id=account))
        if rng.random() < 0.7:
            ops.events.extend(_answer(rng, dm_id, "dm_reply", t, account, last))
    ops.events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    return ops


async def post_operations(catalog: Api, attribution: Api, data: Month) -> Operations:
    """Post the month's operations: the catalog objects, a sync, the experiment, the events."""
    ops = plan(data)
    for path, body in ops.catalog:
        await catalog.call("PUT", path, body)
    await attribution.call("POST", "/v1/sync")
    if ops.experiment is not None:
        await attribution.call("PUT", *ops.experiment)
    for batch in ops.batches():
        note = f"operations events {batch[0]['event_id']} … {batch[-1]['event_id']}"
        _, answer = await attribution.call("POST", "/v1/events", {"events": batch}, note=note)
        rejected = answer.get("rejected") or []
        if rejected:
            first = rejected[0]
            raise DemoError(
                f"attribution POST /v1/events [{note}] rejected {len(rejected)} events: "
                f"#{first.get('index')} {first.get('event_id')}: {first.get('errors')}"
            )
    return ops
