"""The words both services and their clients share, each declared once.

Every enumeration is a ``Literal`` (for schemas and type checking) with its set or tuple of
values derived from it (for checks at run time): platforms, content kinds, ad formats,
placements of a product in a content, event types and the kinds of touch among them.
"""

from __future__ import annotations

from typing import Literal, get_args

Platform = Literal[
    "douyin",
    "kuaishou",
    "tiktok",
    "instagram",
    "youtube",
    "wechat_channels",
    "bilibili",
    "xiaohongshu",
    "other",
]
ContentKind = Literal["video", "live"]
AdFormat = Literal["native", "pre_roll", "overlay", "banner"]
#: How a product appears in a content.
Placement = Literal["product_card", "pinned", "cart_link", "mention", "native_ad"]

#: Events that can earn an order credit as a click-through touch.
ClickType = Literal["click"]
#: Events that can earn an order credit as a view-through touch.
ViewType = Literal["view", "view_complete", "live_enter"]
EventType = Literal[
    "impression",
    "view",
    "view_complete",
    "like",
    "comment",
    "share",
    "follow",
    "click",
    "add_to_cart",
    "live_enter",
    "live_exit",
    "reply",
    "dm",
    "dm_reply",
]
#: Engagement activities a campaign with ``objective: engagement`` can run: a Q&A session, a
#: lucky draw, a topic discussion or a challenge.
Activity = Literal["qa", "lucky_draw", "topic", "challenge"]
#: The campaign objective that runs an activity.
ENGAGEMENT_OBJECTIVE = "engagement"
#: Conversations between viewers and the creator account: ``reply`` (the account answers a
#: comment), ``dm`` (a viewer's private message to an account), ``dm_reply`` (the answer).
InteractionType = Literal["reply", "dm", "dm_reply"]

PLATFORMS: frozenset[str] = frozenset(get_args(Platform))
CONTENT_KINDS: tuple[ContentKind, ...] = get_args(ContentKind)
AD_FORMATS: tuple[AdFormat, ...] = get_args(AdFormat)  # in their documented order
PLACEMENTS: tuple[Placement, ...] = get_args(Placement)
EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))
CLICK_TYPES: frozenset[str] = frozenset(get_args(ClickType))
VIEW_TYPES: frozenset[str] = frozenset(get_args(ViewType))
#: Touches: the events that can change an order's attribution.
TOUCH_TYPES: frozenset[str] = CLICK_TYPES | VIEW_TYPES
#: Events whose numeric ``properties.watch_seconds`` the reports sum.
WATCH_TYPES: frozenset[str] = frozenset({"view", "view_complete"})
ACTIVITIES: tuple[Activity, ...] = get_args(Activity)
INTERACTION_TYPES: frozenset[str] = frozenset(get_args(InteractionType))
#: Interaction events that answer another event, named by their ``reply_to``.
REPLY_TYPES: frozenset[str] = frozenset({"reply", "dm_reply"})
