"""The shared vocabulary: how the kinds of event relate."""

from __future__ import annotations

from shared import vocabulary as v


def test_touch_and_watch_types_are_event_types() -> None:
    assert v.TOUCH_TYPES == v.CLICK_TYPES | v.VIEW_TYPES
    assert not v.CLICK_TYPES & v.VIEW_TYPES
    assert v.TOUCH_TYPES <= v.EVENT_TYPES
    assert v.WATCH_TYPES <= v.VIEW_TYPES
    assert "impression" not in v.TOUCH_TYPES  # an impression alone earns no credit
