"""Interaction events (reply, dm, dm_reply) and GET /v1/reports/interactions.

The report over random comments, replies and dms must equal a brute-force recount of the
posted events (quantiles from numpy), on SQLite and PostgreSQL; replies that arrive before
their comment, or name another tenant's, are kept and listed as unmatched.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from services.attribution.events.validation import validate_event
from tests.attribution.order_setup import Shop, at, clock_fixture, iso, make_shop, touch
from tests.conftest import auth, new_tenant

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The services' clock: three days after the first comment, half a minute past the minute
#: so that comments (posted on whole minutes) are never within seconds of the 24 h line.
NOW = at(days=3, seconds=30)
FROM, TO = at(), at(days=3)
CHECK_NOW = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)


def check(event: dict[str, Any]) -> list[str]:
    return validate_event(event, now=CHECK_NOW).errors


def base(**fields: Any) -> dict[str, Any]:
    return {
        "event_id": "ev1",
        "type": "reply",
        "occurred_at": "2024-06-01T11:00:00Z",
        "user_id": "creator",
    } | fields


# --- validation -------------------------------------------------------------------------------


def test_interactions_need_their_conversation_fields_and_no_content() -> None:
    assert check(base(reply_to="c1", account_id="acc1")) == []
    assert check(base(type="dm", account_id="acc1")) == []
    assert check(base(type="dm_reply", reply_to="d1")) == []
    assert check(base(type="dm_reply", reply_to="d1", account_id="acc1")) == []
    assert check(base(account_id="acc1")) == ["`reply_to` is required for type `reply`"]
    assert check(base(reply_to="c1")) == ["`account_id` is required for type `reply`"]
    assert check(base(type="dm")) == ["`account_id` is required for type `dm`"]
    assert check(base(type="dm", account_id="a", reply_to="x")) == [
        "`reply_to` is not taken by type `dm` (a dm starts a conversation)"
    ]
    assert check(base(type="dm_reply")) == ["`reply_to` is required for type `dm_reply`"]


def test_other_types_refuse_the_conversation_fields_and_bad_ids_are_named() -> None:
    comment = base(type="comment", content_id="v1", reply_to="c0")
    assert check(comment) == ["`reply_to` is only taken by the types reply, dm and dm_reply"]
    errors = check(base(reply_to="a b", account_id=7))
    assert errors[0].startswith("`reply_to` must be 1–128 characters")
    assert errors[1] == "`account_id` must be a string (got number 7)"


# --- the report against a recount ---------------------------------------------------------------


clock = clock_fixture(NOW)


@pytest.fixture
async def shop(catalog, attribution, tenant, admin_token) -> Shop:
    h = auth(admin_token)
    for path, body in [
        ("/v1/accounts/acc2", {"platform": "kuaishou", "handle": "@two"}),
        ("/v1/contents/v3", {"kind": "video", "account_id": "acc2", "title": "Two"}),
    ]:
        assert (await catalog.put(path, json=body, headers=h)).status_code == 201
    shop = await make_shop(catalog, attribution, tenant, admin_token)
    response = await attribution.put("/v1/settings", json={"timezone": "Asia/Shanghai"}, headers=h)
    assert response.status_code == 200, response.text
    return shop


def minute(rng: random.Random, low_hours: float, high_hours: float) -> dt.datetime:
    return at(minutes=rng.randint(int(low_hours * 60), int(high_hours * 60)))


def creator_answer(
    kind: str, when: dt.datetime, event_id: str, reply_to: str, **fields: str
) -> dict[str, Any]:
    """The creator's ``kind`` (reply or dm_reply) to ``reply_to`` with ``fields``, at ``when``
    but a minute before :data:`NOW` at the latest."""
    latest = min(when, NOW - dt.timedelta(minutes=1))
    answer = touch(kind, latest, user="creator", content=None, event_id=event_id)
    return answer | {"reply_to": reply_to, **fields}


def random_conversations(seed: int) -> list[dict[str, Any]]:
    """Comments on v1, v2 (acc1), v3 (acc2) and an uncatalogued v9, some outside the range;
    0–2 replies each after 0–40 h; dms to both accounts, some answered."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(rng.randint(30, 70)):
        content = rng.choice(["v1", "v2", "v3", "v9"])
        when = minute(rng, -6, 71.5)
        comment = touch("comment", when, user=f"u{n}", content=content, event_id=f"s{seed}c{n}")
        events.append(comment)
        for k in range(rng.choice([0, 0, 1, 1, 2])):
            reply = when + dt.timedelta(minutes=rng.randint(0, 40 * 60))
            account = "acc2" if content == "v3" else "acc1"
            reply_id = f"s{seed}c{n}r{k}"
            events.append(
                creator_answer("reply", reply, reply_id, comment["event_id"], account_id=account)
            )
    for n in range(rng.randint(5, 25)):
        when = minute(rng, -6, 71.5)
        dm_id = f"s{seed}d{n}"
        account = rng.choice(["acc1", "acc2"])
        dm = touch("dm", when, user=f"u{n}", content=None, event_id=dm_id)
        events.append(dm | {"account_id": account})
        if rng.random() < 0.6:
            answer = when + dt.timedelta(minutes=rng.randint(0, 30 * 60))
            events.append(creator_answer("dm_reply", answer, f"{dm_id}r", dm_id))
    rng.shuffle(events)
    return events


def _median_p90(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.percentile(values, 50)), float(np.percentile(values, 90))


def recount(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's figures straight from the events."""
    account_of = {"v1": "acc1", "v2": "acc1", "v3": "acc2"}
    when = {e["event_id"]: dt.datetime.fromisoformat(e["occurred_at"]) for e in events}
    answers: defaultdict[str, list[dt.datetime]] = defaultdict(list)
    for e in events:
        if e["type"] in ("reply", "dm_reply"):
            answers[e["reply_to"]].append(when[e["event_id"]])
    groups: defaultdict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {
            "comments": 0,
            "r1": 0,
            "r24": 0,
            "late": 0,
            "secs": [],
            "dms": 0,
            "dmr": 0,
            "dsecs": [],
        }
    )
    unanswered = []
    for e in events:
        t = when[e["event_id"]]
        if not FROM <= t < TO or e["type"] not in ("comment", "dm"):
            continue
        day = t.astimezone(SHANGHAI).date().isoformat()
        replies = answers.get(e["event_id"], [])
        secs = max(0.0, (min(replies) - t).total_seconds()) if replies else None
        if e["type"] == "comment":
            keys = [("total", ""), ("content", e["content_id"]), ("day", day)]
            if e["content_id"] in account_of:
                keys.append(("account", account_of[e["content_id"]]))
            late = not replies and (NOW - t).total_seconds() > 86400
            if late:
                unanswered.append((t, e["event_id"]))
            for key in keys:
                g = groups[key]
                g["comments"] += 1
                g["late"] += late
                if secs is not None:
                    g["secs"].append(secs)
                    g["r1"] += secs <= 3600
                    g["r24"] += secs <= 86400
        else:
            for key in [("total", ""), ("account", e["account_id"]), ("day", day)]:
                g = groups[key]
                g["dms"] += 1
                if secs is not None:
                    g["dmr"] += 1
                    g["dsecs"].append(secs)
    return {"groups": groups, "unanswered": [i for _, i in sorted(unanswered)]}


def assert_comment_figures(row: dict[str, Any], g: dict[str, Any]) -> None:
    median, p90 = _median_p90(g["secs"])
    n = g["comments"]
    assert row["comments"] == n
    assert row["replied_within_1h"] == g["r1"]
    assert row["replied_within_24h"] == g["r24"]
    assert row["reply_rate_1h"] == (pytest.approx(g["r1"] / n) if n else None)
    assert row["reply_rate_24h"] == (pytest.approx(g["r24"] / n) if n else None)
    assert row["median_reply_seconds"] == (None if median is None else pytest.approx(median))
    assert row["p90_reply_seconds"] == (None if p90 is None else pytest.approx(p90))
    assert row["unanswered_over_24h"] == g["late"]


def assert_dm_figures(row: dict[str, Any], g: dict[str, Any]) -> None:
    median, _ = _median_p90(g["dsecs"])
    assert row["dms"] == g["dms"]
    assert row["dms_replied"] == g["dmr"]
    assert row["dm_reply_rate"] == (pytest.approx(g["dmr"] / g["dms"]) if g["dms"] else None)
    assert row["median_dm_reply_seconds"] == (None if median is None else pytest.approx(median))


async def report(shop: Shop, **params: Any) -> Any:
    query = {"from": iso(FROM), "to": iso(TO)} | params
    return await shop.attribution.get(
        "/v1/reports/interactions", params=query, headers=shop.headers
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_report_equals_a_recount_of_random_conversations(shop: Shop, seed: int) -> None:
    events = random_conversations(seed)
    for i in range(0, len(events), 400):
        await shop.events(*events[i : i + 400])
    response = await report(shop, limit="500")
    assert response.status_code == 200, response.text
    body = response.json()
    expected = recount(events)
    groups = expected["groups"]
    assert body["timezone"] == "Asia/Shanghai"
    assert_comment_figures(body["totals"], groups["total", ""])
    assert_dm_figures(body["totals"], groups["total", ""])
    accounts = {r["account_id"]: r for r in body["accounts"]}
    assert set(accounts) == {k for kind, k in groups if kind == "account"}
    for key, row in accounts.items():
        assert_comment_figures(row, groups["account", key])
        assert_dm_figures(row, groups["account", key])
    contents = {r["content_id"]: r for r in body["contents"]}
    assert set(contents) == {k for kind, k in groups if kind == "content"}
    for key, row in contents.items():
        assert_comment_figures(row, groups["content", key])
        assert row["account_id"] == {"v1": "acc1", "v2": "acc1", "v3": "acc2"}.get(key)
    days = {r["day"]: r for r in body["days"]}
    assert set(days) == {k for kind, k in groups if kind == "day"}
    for key, row in days.items():
        g = groups["day", key]
        assert (row["comments"], row["replied_within_24h"], row["dms"], row["dms_replied"]) == (
            g["comments"],
            g["r24"],
            g["dms"],
            g["dmr"],
        )
    assert [c["event_id"] for c in body["unanswered"]["items"]] == expected["unanswered"]
    assert body["unanswered"]["next_cursor"] is None
    assert body["unmatched_replies"] == []


async def test_filters_narrow_to_one_account_or_content(shop: Shop) -> None:
    events = random_conversations(7)
    await shop.events(*events)
    by_account = (await report(shop, account_id="acc2")).json()
    by_content = (await report(shop, content_id="v1")).json()
    groups = recount(events)["groups"]
    assert [r["account_id"] for r in by_account["accounts"]] == ["acc2"]
    assert_comment_figures(by_account["totals"], groups["account", "acc2"])
    assert_dm_figures(by_account["totals"], groups["account", "acc2"])
    assert {r["content_id"] for r in by_account["contents"]} <= {"v3"}
    assert [r["content_id"] for r in by_content["contents"]] == ["v1"]
    assert_comment_figures(by_content["totals"], groups["content", "v1"])


async def test_unanswered_comments_come_in_pages_oldest_first(shop: Shop) -> None:
    comments = [
        touch("comment", at(hours=h), user=f"u{h}", content="v1", event_id=f"late{h:02d}")
        for h in range(7)
    ]
    answered = touch("comment", at(hours=1), user="ux", content="v2", event_id="answered")
    reply = creator_answer("reply", at(hours=30), "rep1", "answered", account_id="acc1")
    recent = touch("comment", at(days=2, hours=12), content="v1", event_id="recent")
    seen: list[str] = []
    await shop.events(*comments, answered, reply, recent)
    cursor = None
    for _ in range(5):
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = (await report(shop, **params)).json()["unanswered"]
        seen += [item["event_id"] for item in page["items"]]
        assert all(item["age_seconds"] > 86400 for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    bad = await report(shop, cursor="nope")
    assert seen == [f"late{h:02d}" for h in range(7)]
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


async def test_a_reply_before_its_comment_is_kept_unmatched_then_matched(
    shop: Shop, attribution, make_token
) -> None:
    reply = creator_answer("reply", at(hours=2), "early-reply", "late-comment", account_id="acc1")
    comment = touch("comment", at(hours=1), content="v1", event_id="late-comment")
    other = auth(make_token(new_tenant(), "admin"))
    await shop.events(reply)
    before = (await report(shop)).json()
    # Another tenant's reply naming this comment stays theirs, and unmatched.
    foreign = reply | {"event_id": "foreign-reply", "occurred_at": iso(at(minutes=61))}
    answer = await attribution.post("/v1/events", json={"events": [foreign]}, headers=other)
    assert answer.json()["accepted"] == 1
    await shop.events(comment)
    after = (await report(shop)).json()
    theirs = await attribution.get(
        "/v1/reports/interactions", params={"from": iso(FROM), "to": iso(TO)}, headers=other
    )
    assert [u["event_id"] for u in before["unmatched_replies"]] == ["early-reply"]
    assert before["unmatched_replies"][0]["reply_to"] == "late-comment"
    assert before["totals"]["comments"] == 0
    assert after["unmatched_replies"] == []
    assert after["totals"]["replied_within_1h"] == 1
    assert after["totals"]["median_reply_seconds"] == 3600.0
    assert [u["event_id"] for u in theirs.json()["unmatched_replies"]] == ["foreign-reply"]


async def test_csv_tables(shop: Shop) -> None:
    events = random_conversations(4)
    await shop.events(*events)
    body = (await report(shop)).json()
    tables = {t: await report(shop, format="csv", table=t) for t in ("accounts", "days")}
    bad = await report(shop, table="nope")
    rows = list(csv.DictReader(io.StringIO(tables["accounts"].text)))
    assert [r["account_id"] for r in rows] == [a["account_id"] for a in body["accounts"]]
    assert [int(r["comments"]) for r in rows] == [a["comments"] for a in body["accounts"]]
    days = list(csv.DictReader(io.StringIO(tables["days"].text)))
    assert [d["day"] for d in days] == [d["day"] for d in body["days"]]
    assert bad.status_code == 422
    assert "accounts, contents, days, unanswered" in bad.json()["detail"]
