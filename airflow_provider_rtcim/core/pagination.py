"""Cursor pagination with anomaly guards: no listing can loop forever or end silently short.

Every paginated read action is walked from its :class:`~airflow_provider_rtcim.core.actions.PagedAction`
description (items key, cursor fields, end rule, id fields); nothing here names an action.
The cursor is opaque: start at 0 (or at a saved bookmark), send back exactly the next cursor
the last page returned, stop when ``HasMore`` is false (or, for an action whose
``negative_cursor_ends``, when the next cursor is negative). This module never computes a
cursor. It stops with a ``PaginationAnomaly`` error when a page says ``HasMore`` but its next
cursor is missing, not an integer, negative (unless that ends the action), equal to the cursor
just sent, or one already sent (a cycle), and when a listing needs more than ``max_pages``
pages. An empty page with ``HasMore`` and a new cursor is legal and the walk goes on, but
:class:`Listing` stops after ``max_pages_without_new_items`` (default 100) pages in a row
that bring no new id (empty or all duplicates) while still saying ``HasMore``. A page without
a boolean ``HasMore`` is malformed (``MalformedResponse``), never the end of the listing: a
fetcher that retries should check pages with :func:`page_problem` so such a page is fetched
again.

Pure logic: ``fetch_page(cursor) -> Result`` is any callable (the hook passes one that makes
a signed call; tests pass a fake).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from airflow_provider_rtcim.core.actions import PagedAction
from airflow_provider_rtcim.core.defaults import DEFAULT_MAX_PAGES, DEFAULT_MAX_PAGES_WITHOUT_NEW_ITEMS
from airflow_provider_rtcim.core.errors import CODE_BAD_RESPONSE, CODE_PAGINATION, RtcImError
from airflow_provider_rtcim.core.keys import SeenKeys

FetchPage = Callable[[int], Mapping[str, Any]]


def page_problem(result: Any, items_key: str, *, paginated: bool = True) -> str | None:
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
    if not paginated:
        return None  # one page, no HasMore: its item list is all there is to check
    if "HasMore" not in result:
        return "HasMore is missing"
    has_more = result["HasMore"]
    if not isinstance(has_more, bool):
        return f"HasMore={has_more!r}, not a bool"
    return None


def _fail(error_class: type[RtcImError], message: str, code: str, action: str | None) -> RtcImError:
    return error_class(message, code=code, action=action)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def iter_pages(
    fetch_page: FetchPage,
    *,
    spec: PagedAction,
    start_cursor: int = 0,
    max_pages: int = DEFAULT_MAX_PAGES,
    what: str = "listing",
    error_class: type[RtcImError] = RtcImError,
    on_next_cursor: Callable[[int | None], None] | None = None,
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Yield ``(page_number, result)`` for every page, 1-based, lazily.

    :param fetch_page: called with the cursor to send, returns that page's ``Result``.
    :param spec: the action's description (items key, cursor field, end rule).
    :param start_cursor: the first cursor (0 for the beginning, or a saved bookmark).
    :param max_pages: the most pages this listing may take; needing more is an error.
    :param what: names the listing in error messages (e.g. ``"user 10001's conversations"``).
    :param error_class: the exception type to raise (the hook passes ``RtcImApiError``).
    :param on_next_cursor: called with each page's next cursor as returned (None when absent),
        before the page is yielded: the resume point once the listing is complete.
    """
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
        raise ValueError(f"max_pages must be an integer >= 1, got {max_pages!r}")
    action = spec.name
    field = spec.next_cursor_field
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
        problem = page_problem(result, spec.items_key, paginated=spec.paginated)
        if problem:
            raise _fail(
                error_class,
                f"{what}: page {page_no} (cursor {cursor}) is malformed: {problem}; stopping "
                "rather than ending the listing short",
                CODE_BAD_RESPONSE,
                action,
            )
        next_cursor = result.get(field)
        if on_next_cursor is not None:
            on_next_cursor(next_cursor if _is_int(next_cursor) else None)
        ended_by_cursor = spec.negative_cursor_ends and _is_int(next_cursor) and next_cursor < 0
        has_more = spec.paginated and result["HasMore"] and not ended_by_cursor
        yield page_no, result
        if not has_more:
            return
        where = f"{what}: page {page_no} (cursor {cursor}) says HasMore"
        if not _is_int(next_cursor):
            raise _fail(
                error_class,
                f"{where} but its {field} is {next_cursor!r}, not an integer; stopping rather "
                "than guessing where the next page starts",
                CODE_PAGINATION,
                action,
            )
        if next_cursor < 0:
            raise _fail(
                error_class,
                f"{where} with a negative {field} {next_cursor}; stopping rather than looping",
                CODE_PAGINATION,
                action,
            )
        if next_cursor == cursor:
            raise _fail(
                error_class,
                f"{where} but {field} {next_cursor} equals the cursor just sent (stuck cursor); "
                "stopping rather than looping forever",
                CODE_PAGINATION,
                action,
            )
        if next_cursor in sent:
            raise _fail(
                error_class,
                f"{where} but {field} {next_cursor} was already sent earlier in this listing "
                "(cursor cycle); stopping rather than looping forever",
                CODE_PAGINATION,
                action,
            )
        cursor = next_cursor


class Listing(Iterator[dict[str, Any]]):
    """Every item of every page of one listing, each id once, lazily.

    Items are yielded as the API returned them (unknown fields kept). An item without an id
    (see :attr:`PagedAction.id_keys`) is an error: it could not be deduplicated.
    ``on_duplicate(id, page)`` is called for each skipped duplicate; ``after_position``
    resumes after a position (``spec.position_key``), dropping items not past it, so a cursor
    that restarts or repeats cannot double an item; ``max_pages_without_new_items`` bounds a
    run of pages that bring no new item but still say ``HasMore`` (a ``PaginationAnomaly``),
    while a last page ends the listing normally however many empty pages came before it.

    Besides the items it tells, once exhausted, where a later listing should resume:

    * ``resume_cursor``: the last page's next cursor when it is a valid cursor (>= 0), else
      the last cursor sent (re-reading the last page is safe: its items are dropped by
      position or id), so a bookmark never points before data already taken;
    * ``last_position``: the largest ``position_key`` value taken (or given as
      ``after_position``), None when the action has no position;
    * ``pages``, ``duplicates`` and ``skipped`` (items dropped as not past ``after_position``).
    """

    def __init__(
        self,
        fetch_page: FetchPage,
        *,
        spec: PagedAction,
        start_cursor: int = 0,
        after_position: int | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        what: str = "listing",
        error_class: type[RtcImError] = RtcImError,
        on_duplicate: Callable[[Any, int], None] | None = None,
        max_pages_without_new_items: int = DEFAULT_MAX_PAGES_WITHOUT_NEW_ITEMS,
    ) -> None:
        if (
            isinstance(max_pages_without_new_items, bool)
            or not isinstance(max_pages_without_new_items, int)
            or max_pages_without_new_items < 1
        ):
            raise ValueError(
                f"max_pages_without_new_items must be an integer >= 1, got {max_pages_without_new_items!r}"
            )
        if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
            raise ValueError(f"max_pages must be an integer >= 1, got {max_pages!r}")
        if after_position is not None and spec.position_key is None:
            raise ValueError(f"{spec.name} items have no position: after_position cannot be used")
        self.spec = spec
        self.start_cursor = start_cursor
        self.resume_cursor: int = start_cursor
        self.last_position: int | None = after_position
        self.pages = 0
        self.duplicates = 0
        self.skipped = 0
        self._fetch_page = fetch_page
        self._max_pages = max_pages
        self._what = what
        self._error_class = error_class
        self._on_duplicate = on_duplicate
        self._barren_limit = max_pages_without_new_items
        self._gen: Iterator[dict[str, Any]] | None = None

    def __iter__(self) -> Listing:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._gen is None:
            self._gen = self._walk()
        return next(self._gen)

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()  # type: ignore[attr-defined]

    def _walk(self) -> Iterator[dict[str, Any]]:
        spec, what, error_class = self.spec, self._what, self._error_class
        action, id_key, position_key = spec.name, spec.id_key, spec.position_key
        seen = SeenKeys()  # the one thing that grows with the listing: ~16-32 bytes an int id
        after = self.last_position
        sent = [self.start_cursor]
        returned: list[int | None] = [None]

        def fetch(cursor: int) -> Mapping[str, Any]:
            sent[0] = cursor
            return self._fetch_page(cursor)

        def remember(next_cursor: int | None) -> None:
            returned[0] = next_cursor

        id_of, items_key, seen_add = spec.id_of, spec.items_key, seen.add  # bound once: per item below
        barren = 0  # pages in a row without a new item
        for page_no, result in iter_pages(
            fetch,
            spec=spec,
            start_cursor=self.start_cursor,
            max_pages=self._max_pages,
            what=what,
            error_class=error_class,
            on_next_cursor=remember,
        ):
            self.pages = page_no
            new_items = 0
            for item in result.get(items_key) or ():
                item_id = id_of(item)
                if item_id is None:
                    shown = item.get(id_key) if isinstance(item, Mapping) else None
                    wanted = (
                        f"an integer {id_key}"
                        if len(spec.id_keys) == 1
                        else "an id (" + " or ".join(spec.id_keys) + ")"
                    )
                    raise _fail(
                        error_class,
                        f"{what}: page {page_no} has an item without {wanted}: "
                        f"{type(item).__name__} with {id_key}={shown!r}",
                        CODE_BAD_RESPONSE,
                        action,
                    )
                if position_key is not None:
                    position = item.get(position_key)
                    if not _is_int(position):
                        raise _fail(
                            error_class,
                            f"{what}: page {page_no} has an item ({id_key} {item_id}) without an "
                            f"integer {position_key}: {position!r}",
                            CODE_BAD_RESPONSE,
                            action,
                        )
                    if after is not None and position <= after:
                        self.skipped += 1  # already taken by an earlier listing
                        continue
                if not seen_add(item_id):
                    self.duplicates += 1
                    if self._on_duplicate is not None:
                        self._on_duplicate(item_id, page_no)
                    continue
                if position_key is not None:
                    self.last_position = max(self.last_position or position, position)
                new_items += 1
                yield item  # type: ignore[misc]
            barren = 0 if new_items else barren + 1
            if barren >= self._barren_limit and result.get("HasMore"):
                raise _fail(
                    error_class,
                    f"{what}: {barren} pages in a row (pages {page_no - barren + 1}-{page_no}) brought "
                    f"no new item but still say HasMore (last cursor sent {sent[0]}, "
                    f"{spec.next_cursor_field} {result.get(spec.next_cursor_field)!r}); stopping rather "
                    "than paging on without end. Raise max_pages_without_new_items if such a run is "
                    "really expected",
                    CODE_PAGINATION,
                    action,
                )
        nxt = returned[0]
        self.resume_cursor = nxt if nxt is not None and nxt >= 0 else sent[0]


class BatchItems(Iterator[dict[str, Any]]):
    """The items of one request of a batch action, iterated like a :class:`Listing`.

    ``missing`` holds the keys the action said it did not find (its ``missing_key``).
    """

    pages = 1
    duplicates = 0
    skipped = 0
    last_position = None

    def __init__(self, items: list[dict[str, Any]], missing: list[Any]) -> None:
        self._items = iter(items)
        self.missing = missing

    def __iter__(self) -> BatchItems:
        return self

    def __next__(self) -> dict[str, Any]:
        return next(self._items)

    def close(self) -> None:
        pass
