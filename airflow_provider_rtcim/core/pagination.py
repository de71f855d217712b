"""Cursor pagination with anomaly guards: no listing can loop forever or end silently short.

The API's cursor is opaque: start at 0, send back exactly the ``NextCursor`` the last page
returned, stop when ``HasMore`` is false. This module never computes a cursor. It stops
with a ``PaginationAnomaly`` error when a page says ``HasMore`` but its ``NextCursor`` is
missing, not an integer, negative, equal to the cursor just sent, or one already sent (a
cycle), and when a listing needs more than ``max_pages`` pages. An empty page with
``HasMore`` and a new cursor is legal and the walk goes on, but :func:`iter_items` stops
after ``max_pages_without_new_items`` (default 100) pages in a row that bring no new id
(empty or all duplicates) while still saying ``HasMore``: an endless run of such pages
with ever-new cursors would otherwise only end at ``max_pages``. A page without a boolean
``HasMore`` is malformed (``MalformedResponse``), never the end of the listing: a fetcher
that retries should check pages with :func:`page_problem` so such a page is fetched again.

Pure logic: ``fetch_page(cursor) -> Result`` is any callable (the hook passes one that makes
a signed call; tests pass a fake).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from airflow_provider_rtcim.core.errors import CODE_BAD_RESPONSE, CODE_PAGINATION, RtcImError
from airflow_provider_rtcim.core.intset import Int64Set

FetchPage = Callable[[int], Mapping[str, Any]]


def page_problem(result: Any, items_key: str = "ConversationInfos") -> str | None:
    """What is wrong with one page's ``Result`` (for a retry decision), or None when well formed.

    Well formed: an object whose ``items_key`` is a list (or absent: an empty page) and whose
    ``HasMore`` is a bool. A missing ``HasMore`` is not read as "no more": that would end a
    listing silently short.
    """
    if not isinstance(result, Mapping):
        return f"the Result is {type(result).__name__}, not an object"
    items = result.get(items_key)
    if items is not None and not isinstance(items, list):
        return f"{items_key} is {type(items).__name__}, not a list"
    if "HasMore" not in result:
        return "HasMore is missing"
    has_more = result["HasMore"]
    if not isinstance(has_more, bool):
        return f"HasMore={has_more!r}, not a bool"
    return None


def _fail(error_class: type[RtcImError], message: str, code: str, action: str | None) -> RtcImError:
    return error_class(message, code=code, action=action)


def iter_pages(
    fetch_page: FetchPage,
    *,
    start_cursor: int = 0,
    max_pages: int = 100_000,
    what: str = "listing",
    items_key: str = "ConversationInfos",
    error_class: type[RtcImError] = RtcImError,
    action: str | None = None,
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Yield ``(page_number, result)`` for every page, 1-based, lazily.

    :param fetch_page: called with the cursor to send, returns that page's ``Result``.
    :param start_cursor: the first cursor (0 for the beginning).
    :param max_pages: the most pages this listing may take; needing more is an error.
    :param what: names the listing in error messages (e.g. ``"user 10001's conversations"``).
    :param items_key: the key of the page's item list (checked to be a list when present).
    :param error_class: the exception type to raise (the hook passes ``RtcImApiError``).
    :param action: the API action, for the error.
    """
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
        raise ValueError(f"max_pages must be an integer >= 1, got {max_pages!r}")
    cursor = start_cursor
    sent: set[int] = set()
    page_no = 0
    while True:
        if page_no >= max_pages:
            raise _fail(
                error_class,
                f"{what}: still HasMore after max_pages={max_pages} pages (next cursor {cursor}); "
                "raise max_pages if the listing is really this long",
                CODE_PAGINATION,
                action,
            )
        page_no += 1
        sent.add(cursor)
        result = fetch_page(cursor)
        problem = page_problem(result, items_key)
        if problem:
            raise _fail(
                error_class,
                f"{what}: page {page_no} (cursor {cursor}) is malformed: {problem}; stopping "
                "rather than ending the listing short",
                CODE_BAD_RESPONSE,
                action,
            )
        has_more = result["HasMore"]
        yield page_no, result
        if not has_more:
            return
        next_cursor = result.get("NextCursor")
        where = f"{what}: page {page_no} (cursor {cursor}) says HasMore"
        if isinstance(next_cursor, bool) or not isinstance(next_cursor, int):
            raise _fail(
                error_class,
                f"{where} but its NextCursor is {next_cursor!r}, not an integer; stopping rather "
                "than guessing where the next page starts",
                CODE_PAGINATION,
                action,
            )
        if next_cursor < 0:
            raise _fail(
                error_class,
                f"{where} with a negative NextCursor {next_cursor}; stopping rather than looping",
                CODE_PAGINATION,
                action,
            )
        if next_cursor == cursor:
            raise _fail(
                error_class,
                f"{where} but NextCursor {next_cursor} equals the cursor just sent (stuck cursor); "
                "stopping rather than looping forever",
                CODE_PAGINATION,
                action,
            )
        if next_cursor in sent:
            raise _fail(
                error_class,
                f"{where} but NextCursor {next_cursor} was already sent earlier in this listing "
                "(cursor cycle); stopping rather than looping forever",
                CODE_PAGINATION,
                action,
            )
        cursor = next_cursor


def iter_items(
    fetch_page: FetchPage,
    *,
    start_cursor: int = 0,
    max_pages: int = 100_000,
    what: str = "listing",
    items_key: str = "ConversationInfos",
    id_key: str = "ConversationShortId",
    error_class: type[RtcImError] = RtcImError,
    action: str | None = None,
    on_duplicate: Callable[[Any, int], None] | None = None,
    max_pages_without_new_items: int = 100,
) -> Iterator[dict[str, Any]]:
    """Yield every item of every page, each ``id_key`` once (later duplicates are skipped).

    Items are yielded as the API returned them (unknown fields kept). An item without an
    integer ``id_key`` is an error: it could not be deduplicated. ``on_duplicate(id, page)``
    is called for each skipped duplicate.

    :param max_pages_without_new_items: after this many pages in a row that bring no new
        id (empty or only duplicates) and still say ``HasMore``, stop with a
        ``PaginationAnomaly`` naming ``what``, the pages and the cursors (an endless run of
        empty pages must not look like a hang). A last page (``HasMore`` false) ends the
        listing normally, however many empty pages came before it.
    """
    if (
        isinstance(max_pages_without_new_items, bool)
        or not isinstance(max_pages_without_new_items, int)
        or max_pages_without_new_items < 1
    ):
        raise ValueError(
            f"max_pages_without_new_items must be an integer >= 1, got {max_pages_without_new_items!r}"
        )
    seen = Int64Set()  # the one thing that grows with the listing: ~16-32 bytes an id
    last_sent: list[int] = [start_cursor]

    def fetch(cursor: int) -> Mapping[str, Any]:
        last_sent[0] = cursor
        return fetch_page(cursor)

    barren = 0  # pages in a row without a new id
    for page_no, result in iter_pages(
        fetch,
        start_cursor=start_cursor,
        max_pages=max_pages,
        what=what,
        items_key=items_key,
        error_class=error_class,
        action=action,
    ):
        new_items = 0
        for item in result.get(items_key) or ():
            item_id = item.get(id_key) if isinstance(item, Mapping) else None
            if isinstance(item_id, bool) or not isinstance(item_id, int):
                raise _fail(
                    error_class,
                    f"{what}: page {page_no} has an item without an integer {id_key}: "
                    f"{type(item).__name__} with {id_key}={item_id!r}",
                    CODE_BAD_RESPONSE,
                    action,
                )
            if not seen.add(item_id):
                if on_duplicate is not None:
                    on_duplicate(item_id, page_no)
                continue
            new_items += 1
            yield item  # type: ignore[misc]
        barren = 0 if new_items else barren + 1
        if barren >= max_pages_without_new_items and result["HasMore"]:
            raise _fail(
                error_class,
                f"{what}: {barren} pages in a row (pages {page_no - barren + 1}-{page_no}) brought "
                f"no new item but still say HasMore (last cursor sent {last_sent[0]}, NextCursor "
                f"{result.get('NextCursor')!r}); stopping rather than paging on without end. "
                "Raise max_pages_without_new_items if such a run is really expected",
                CODE_PAGINATION,
                action,
            )
