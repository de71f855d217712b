"""Paging with opaque cursors, and the pagination anomalies (no HTTP, no data, no lock).

Usage::

    page = opaque_page(codec, scope, cursor, limit, total, anomaly=None)
    items[page.start : page.stop], page.has_more, page.next_cursor   # NextCursor -1 at the end
    indexes, has_more, new_cursor = message_page(codec, scope, cursor, limit, total, False, None)
"""

from __future__ import annotations

from typing import NamedTuple

from airflow_provider_rtcim.emulator.cursors import FLAG_ANOMALY, FLAG_ENDLESS, CursorCodec
from airflow_provider_rtcim.emulator.exceptions import invalid as _invalid


class Page(NamedTuple):
    """A page of an opaque-cursor listing: items ``[start, stop)`` of the ordered list."""

    offset: int  # where the cursor points
    start: int
    stop: int
    has_more: bool
    next_cursor: int
    ended: bool  # the normal last page (no anomaly changed it)
    endless: bool = False


def opaque_page(
    codec: CursorCodec, scope: tuple, cursor: int, limit: int, total: int, anomaly: str | None
) -> Page:
    """Where a page starts and ends, its HasMore and NextCursor, with the pagination anomalies."""
    if cursor == 0:
        offset, page, flag = 0, 0, 0
    else:
        decoded = codec.decode(scope, cursor)
        if decoded is None:
            raise _invalid(f"invalid Cursor {cursor}")
        offset, page, flag = decoded
    if anomaly == "endless_empty" or flag == FLAG_ENDLESS:
        # an empty page, HasMore, a new valid cursor, forever; its cursors are invalid once it is off
        if anomaly != "endless_empty":
            raise _invalid(f"invalid Cursor {cursor}")
        n = codec.counter_of(offset, page) + 1 if flag == FLAG_ENDLESS else 1
        return Page(offset, 0, 0, True, codec.encode_counter(scope, n), False, True)
    if anomaly == "empty_pages" and page >= 1 and flag == 0 and offset < total:
        return Page(offset, offset, offset, True, codec.encode(scope, offset, page + 1, FLAG_ANOMALY), False)
    if anomaly == "repeated_page" and page == 1 and flag == 0:
        start = max(0, offset - limit)
        return Page(offset, start, offset, True, codec.encode(scope, offset, page + 1, FLAG_ANOMALY), False)
    stop = max(offset, min(total, offset + limit))
    has_more = stop < total
    next_cursor = codec.encode(scope, stop, page + 1) if has_more else -1
    ended = not has_more
    if anomaly == "stuck_cursor" and page >= 1:
        has_more, next_cursor, ended = True, cursor, False
    elif anomaly == "negative_cursor" and has_more:
        next_cursor = -1
    return Page(offset, offset, stop, has_more, next_cursor, ended)


def message_page(
    codec: CursorCodec, scope: tuple, cursor: int, limit: int, total: int, reverse: bool, anomaly: str | None
) -> tuple[list[int], bool, int]:
    """GetConversationMessages: the indexes of a page (in response order), HasMore, NewCursor.

    Cursors are message positions (0 = the start, or the newest when ``reverse``); the
    anomalies that need page state hand out opaque cursors above ``total + 1`` instead.
    """
    if cursor < 0:
        raise _invalid(f"invalid Cursor {cursor}: must be >= 0")
    pos, page, flag = cursor, (0 if cursor == 0 else 1), 0
    if cursor > total + 1:
        decoded = codec.decode(scope, cursor)
        if decoded is None or decoded[0] > total + 1:
            raise _invalid(f"invalid Cursor {cursor}: must be between 0 and {total + 1}")
        pos, page, flag = decoded
    if anomaly == "endless_empty" or flag == FLAG_ENDLESS:
        if anomaly != "endless_empty":
            raise _invalid(f"invalid Cursor {cursor}")
        n = codec.counter_of(pos, page) + 1 if flag == FLAG_ENDLESS else 1
        return [], True, codec.encode_counter(scope, n)

    def span(p: int) -> list[int]:
        if reverse:
            top = total if p == 0 else min(p, total)
            return list(range(top, max(0, top - limit), -1))
        first = 1 if p == 0 else p
        return list(range(first, min(total, first + limit - 1) + 1))

    def after(indexes: list[int], p: int) -> tuple[bool, int]:
        if reverse:
            low = indexes[-1] if indexes else 1
            return low > 1, low - 1
        if not indexes:  # at (or past) the end: where the next message will appear
            return False, total + 1
        return indexes[-1] < total, indexes[-1] + 1

    fits = pos < (1 << 22)  # anomaly cursors carry the position in 22 bits
    indexes = span(pos)
    if anomaly == "empty_pages" and fits and page >= 1 and flag == 0 and indexes:
        return [], True, codec.encode(scope, pos, page + 1, FLAG_ANOMALY)
    if anomaly == "repeated_page" and fits and page == 1 and flag == 0:
        if reverse:
            top = total if pos == 0 else min(pos, total)
            previous = list(range(min(total, top + limit), top, -1))
        else:
            first = 1 if pos == 0 else pos
            previous = list(range(max(1, first - limit), first))
        if previous:
            return previous, True, codec.encode(scope, pos, page + 1, FLAG_ANOMALY)
    has_more, new_cursor = after(indexes, pos)
    if anomaly == "repeated_page" and flag == FLAG_ANOMALY and has_more and new_cursor < (1 << 22):
        new_cursor = codec.encode(scope, new_cursor, page + 1, FLAG_ANOMALY)  # repeat only once
    if anomaly == "stuck_cursor" and page >= 1:
        has_more, new_cursor = True, cursor
    elif anomaly == "negative_cursor" and has_more:
        new_cursor = -1
    elif anomaly == "cursor_restart" and not has_more:
        new_cursor = 0
    elif anomaly == "cursor_repeat" and not has_more and indexes:
        new_cursor = indexes[0]
    return indexes, has_more, new_cursor
