"""The hook's documented named methods: each a thin wrapper of one generic call.

:class:`RtcImActionMethods` is mixed into :class:`~airflow_provider_rtcim.hooks.rtcim.RtcImHook`:
every method here names one action described in :mod:`~airflow_provider_rtcim.core.actions`
and passes its arguments to :meth:`~RtcImHook.iter_action` or :meth:`~RtcImHook.batch_action`
(which check them once, before any request). A new action's method is one more such wrapper.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.core.actions import (
    BATCH_GET_BLOCK_PARTICIPANTS,
    BATCH_GET_CONVERSATIONS,
    BATCH_GET_USER,
    GET_BLACK_LIST,
    GET_CONVERSATION_MESSAGES,
    GET_PARTICIPANT_READ_INDEX,
    GET_USER_CONVERSATIONS,
    LIST_FRIEND,
    SCAN_CONVERSATION_PARTICIPANTS,
)
from airflow_provider_rtcim.core.defaults import DEFAULT_MAX_PAGES, DEFAULT_PAGE_SIZE
from airflow_provider_rtcim.core.validation import validate_cursor, validate_page_size

if TYPE_CHECKING:
    from airflow_provider_rtcim.core.pagination import Listing

GUC = GET_USER_CONVERSATIONS


class RtcImActionMethods:
    """The named read methods of the hook (see the module docstring)."""

    if TYPE_CHECKING:
        from airflow_provider_rtcim.hooks.rtcim import RtcImHook as _Hook

        iter_action = _Hook.iter_action
        batch_action = _Hook.batch_action
        iter_batches = _Hook.iter_batches
        check_key = _Hook.check_key
        request_base = _Hook.request_base
        fetch_page = _Hook.fetch_page

    def get_user_conversations(
        self,
        participant_user_id: int | str,
        *,
        cursor: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        data_type: int = 1,
        inbox_type: int = 0,
        skip_member_count: bool = False,
        app_id: int | str | None = None,
        user_id_type: str | None = None,
    ) -> dict[str, Any]:
        """One page of ``GetUserConversations``: its ``Result`` (``ConversationInfos``, ``HasMore``,
        ``NextCursor``).

        ``data_type`` defaults to 1 (database, creation order: stable while paging); the
        API's own default 0 (cache, most recently active first) reorders during a listing.
        ``app_id`` defaults to the connection's extra.app_id. ``user_id_type`` (``"int"`` or
        ``"str"``) defaults to the connection's extra.user_id_type (``"int"``): with ``"str"``
        the id is sent verbatim as ``ParticipantUserIdStr`` (``ParticipantUserId`` 0).
        """
        key = self.check_key(GUC, participant_user_id, user_id_type=user_id_type)
        body = self.request_base(
            GUC,
            app_id=app_id,
            data_type=data_type,
            inbox_type=inbox_type,
            skip_member_count=skip_member_count,
        )
        body.update(GUC.key.body(key))
        cursor, limit = validate_cursor(cursor), validate_page_size(limit, "limit", maximum=GUC.max_page_size)
        return self.fetch_page(GUC, GUC.page_body(body, cursor=cursor, limit=limit))

    def iter_user_conversations(
        self,
        participant_user_id: int | str,
        *,
        data_type: int = 1,
        inbox_type: int = 0,
        skip_member_count: bool = False,
        app_id: int | str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
        user_id_type: str | None = None,
    ) -> Listing:
        """Every ``ConversationInfo`` of the user across all pages, lazily, each
        ``ConversationShortId`` once, in API order, unknown fields kept.

        Arguments are checked now (before any request); pages are fetched as you iterate.
        ``NextCursor`` is fed back verbatim. A page with ``HasMore`` whose ``NextCursor`` is
        missing, not an integer, negative, or equal to a cursor already sent, and a listing
        longer than ``max_pages`` pages, raise ``RtcImApiError`` with code
        ``PaginationAnomaly`` naming the user, the cursor and the page. ``data_type``
        defaults to 1 (database, creation order), the stable order for complete listings.
        ``user_id_type``: as for :meth:`get_user_conversations`.
        """
        return self.iter_action(
            GUC,
            participant_user_id,
            app_id=app_id,
            user_id_type=user_id_type,
            page_size=page_size,
            max_pages=max_pages,
            data_type=data_type,
            inbox_type=inbox_type,
            skip_member_count=skip_member_count,
        )

    def count_user_conversations(
        self,
        participant_user_id: int | str,
        *,
        data_type: int = 1,
        inbox_type: int = 0,
        app_id: int | str | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        user_id_type: str | None = None,
    ) -> int:
        """How many distinct conversations the user has (pages with ``SkipMemberCount=True``).

        ``data_type`` defaults to 1 (database, creation order), stable while paging.
        ``user_id_type``: as for :meth:`get_user_conversations`.
        """
        listing = self.iter_user_conversations(
            participant_user_id,
            data_type=data_type,
            inbox_type=inbox_type,
            skip_member_count=True,
            app_id=app_id,
            max_pages=max_pages,
            user_id_type=user_id_type,
        )
        return sum(1 for _ in listing)

    def iter_conversation_participants(
        self,
        conversation_short_id: int | str,
        *,
        app_id: int | str | None = None,
        reverse: bool = False,
        only_user_ids: bool = False,
        scan_online: bool = False,
        mark_type: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Listing:
        """Every member of a conversation (``ScanConversationParticipantList``), lazily, each
        member once (by ``ParticipantUserId``, or ``ParticipantUserIdStr`` for string ids).

        ``reverse``: newest members first. ``only_user_ids``: members carry only their ids.
        ``scan_online`` (live groups): only the online members, optionally only those with
        the mark ``mark_type``. A negative ``NextCursor`` ends the listing whatever
        ``HasMore`` says (the API's documented end of a member listing).
        """
        return self.iter_action(
            SCAN_CONVERSATION_PARTICIPANTS,
            conversation_short_id,
            app_id=app_id,
            page_size=page_size,
            max_pages=max_pages,
            reverse=reverse,
            only_user_ids=only_user_ids,
            scan_online=scan_online,
            mark_type=mark_type,
        )

    def iter_conversation_messages(
        self,
        conversation_short_id: int | str,
        *,
        app_id: int | str | None = None,
        cursor: int = 0,
        after_index: int | None = None,
        reverse: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Listing:
        """Every message of a conversation from ``cursor`` on (``GetConversationMessages``),
        lazily, each ``MessageId`` once, ``NewCursor`` fed back verbatim.

        ``cursor`` 0 is the start (the newest message with ``reverse``). Once exhausted the
        :class:`~airflow_provider_rtcim.core.pagination.Listing` tells ``resume_cursor`` (the
        last page's ``NewCursor``: where the next message will appear, a bookmark) and
        ``last_position`` (the largest ``IndexInConversation`` taken). ``after_index`` drops
        every message whose ``IndexInConversation`` is not past it, so a listing resumed from a
        bookmark doubles nothing even if the cursor restarts or repeats.
        """
        return self.iter_action(
            GET_CONVERSATION_MESSAGES,
            conversation_short_id,
            app_id=app_id,
            page_size=page_size,
            max_pages=max_pages,
            cursor=cursor,
            after_index=after_index,
            reverse=reverse,
        )

    def batch_get_conversations(
        self,
        conversation_short_ids: Sequence[int | str],
        *,
        app_id: int | str | None = None,
        skip_member_count: bool = True,
        batch_size: int = BATCH_GET_CONVERSATIONS.max_keys,
    ) -> list[dict[str, Any]]:
        """Details of known conversations (``BatchGetConversations``), in requests of at most
        ``batch_size`` ids; the ``ConversationCoreInfos`` of every request, in order.

        Ids are checked (and de-duplicated) before the first request. Dissolved or unknown
        conversations are simply absent from the result.
        """
        return self.batch_action(
            BATCH_GET_CONVERSATIONS,
            conversation_short_ids,
            app_id=app_id,
            batch_size=batch_size,
            skip_member_count=skip_member_count,
        )

    # -- users, friends, blacklists, read positions, mute and block lists (int64 user ids only)

    def batch_get_users(
        self,
        user_ids: Sequence[int | str],
        *,
        app_id: int | str | None = None,
        batch_size: int = BATCH_GET_USER.max_keys,
    ) -> dict[str, list[Any]]:
        """User profiles (``BatchGetUser``), in requests of at most ``batch_size`` ids (50):
        ``{"Users": [...], "NotFoundUsers": [...]}`` (ids not registered or deregistered)."""
        out: dict[str, list[Any]] = {"Users": [], "NotFoundUsers": []}
        for batch in self.iter_batches(BATCH_GET_USER, user_ids, app_id=app_id, batch_size=batch_size):
            out["Users"].extend(batch)
            out["NotFoundUsers"].extend(batch.missing)
        return out

    def iter_user_friends(
        self,
        user_id: int | str,
        *,
        inbox_type: int = 0,
        app_id: int | str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Listing:
        """Every friend of a user (``ListFriend``), the first added first, each ``FriendUserId``
        once; a negative ``NextCursor`` ends the listing."""
        return self.iter_action(
            LIST_FRIEND,
            user_id,
            app_id=app_id,
            page_size=page_size,
            max_pages=max_pages,
            inbox_type=inbox_type,
        )

    def iter_user_blacklist(
        self,
        user_id: int | str,
        *,
        inbox_type: int = 0,
        app_id: int | str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Listing:
        """Every blacklist entry of a user (``GetBlackList``), newest first, each
        ``BlackListUserId`` once; a negative ``NextCursor`` ends the listing."""
        return self.iter_action(
            GET_BLACK_LIST,
            user_id,
            app_id=app_id,
            page_size=page_size,
            max_pages=max_pages,
            inbox_type=inbox_type,
        )

    def iter_conversation_read_indexes(
        self, conversation_short_id: int | str, *, app_id: int | str | None = None
    ) -> Listing:
        """How far each member has read (``GetParticipantReadIndex``: one request, no pages);
        a member not listed has read nothing (``ReadIndex`` 0)."""
        return self.iter_action(GET_PARTICIPANT_READ_INDEX, conversation_short_id, app_id=app_id)

    def iter_conversation_block_list(
        self,
        conversation_short_id: int | str,
        *,
        block_action: str = "mute",
        app_id: int | str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Listing:
        """A conversation's muted (``block_action="mute"``) or blocked (``"block"``) members
        (``BatchGetBlockParticipants``), each once; a negative ``NextCursor`` ends the listing."""
        return self.iter_action(
            BATCH_GET_BLOCK_PARTICIPANTS,
            conversation_short_id,
            app_id=app_id,
            page_size=page_size,
            max_pages=max_pages,
            block_action=block_action,
        )
