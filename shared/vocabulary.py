"""The words both services and their clients share: platforms, content kinds, event types."""

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
]

PLATFORMS: frozenset[str] = frozenset(get_args(Platform))
EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))
