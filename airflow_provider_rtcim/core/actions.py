"""Declarative descriptions of the API's paginated read actions (pure: no Airflow, no I/O).

The IM family's pagination is not uniform: each action names its item list, its cursors and
its end-of-data rule differently. A :class:`PagedAction` says all of that once, and the
pager (:mod:`~airflow_provider_rtcim.core.pagination`), the hook's generic listing method
and the operators' fan-out engine work from it, with no action's names built in.

    >>> from airflow_provider_rtcim.core.actions import GET_CONVERSATION_MESSAGES as M
    >>> M.items_key, M.next_cursor_field, M.id_of({"MessageId": 7})
    ('Messages', 'NewCursor', 7)
    >>> M.page_body({"AppId": 1, "ConversationShortId": 9}, cursor=40, limit=20)
    {'AppId': 1, 'ConversationShortId': 9, 'Cursor': 40, 'Limit': 20}

A new read action is one more description here plus a thin hook method and operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_VERSION = "2020-12-01"

ItemId = int | str


@dataclass(frozen=True)
class PagedAction:
    """Everything the pager needs to know about one paginated read action.

    :param name: the API ``Action``.
    :param items_key: the ``Result`` key of the page's item list.
    :param id_keys: the item fields that identify an item, in order of preference: the first
        that holds a non-zero int (or a non-empty string) is the item's id, used to drop
        duplicates (string user ids carry ``0`` in the numeric field and the id in ``*Str``).
    :param key_field: the request field naming what is listed (one user, one conversation).
    :param noun: what the items are, for messages ("conversations", "members", "messages").
    :param version: the API ``Version``.
    :param cursor_field: the request field of the cursor.
    :param next_cursor_field: the ``Result`` field of the next page's cursor.
    :param limit_field: the request field of the page size.
    :param max_page_size: the largest page size the action takes.
    :param negative_cursor_ends: a negative next cursor means "no more data" whatever
        ``HasMore`` says (``ScanConversationParticipantList``); otherwise a negative cursor
        with ``HasMore`` is a pagination anomaly.
    :param position_key: an item field that grows along the listing (a message's
        ``IndexInConversation``); a listing resumed from a bookmark drops every item not past
        the last position already taken, so a cursor that restarts or repeats doubles nothing.
    """

    name: str
    items_key: str
    id_keys: tuple[str, ...]
    key_field: str
    noun: str
    version: str = DEFAULT_VERSION
    cursor_field: str = "Cursor"
    next_cursor_field: str = "NextCursor"
    limit_field: str = "Limit"
    max_page_size: int = 20
    negative_cursor_ends: bool = False
    position_key: str | None = None

    @property
    def id_key(self) -> str:
        """The main id field (named in error messages)."""
        return self.id_keys[0]

    def id_of(self, item: Any) -> ItemId | None:
        """The item's id (see ``id_keys``), or None when it has none."""
        if not isinstance(item, Mapping):
            return None
        for key in self.id_keys:
            value = item.get(key)
            if isinstance(value, bool):
                continue
            if isinstance(value, int) and value != 0:
                return value
            if isinstance(value, str) and value and key.endswith("Str"):
                return value
        return None

    def page_body(self, base: Mapping[str, Any], *, cursor: int, limit: int | None = None) -> dict[str, Any]:
        """The request body of one page: ``base`` with this action's cursor (and page size)."""
        body = dict(base)
        body[self.cursor_field] = cursor
        if limit is not None:
            body[self.limit_field] = limit
        return body


GET_USER_CONVERSATIONS = PagedAction(
    name="GetUserConversations",
    items_key="ConversationInfos",
    id_keys=("ConversationShortId",),
    key_field="ParticipantUserId",
    noun="conversations",
)
"""A user's conversations: ``NextCursor``, ends when ``HasMore`` is false."""

SCAN_CONVERSATION_PARTICIPANTS = PagedAction(
    name="ScanConversationParticipantList",
    items_key="Participants",
    id_keys=("ParticipantUserId", "ParticipantUserIdStr"),
    key_field="ConversationShortId",
    noun="members",
    negative_cursor_ends=True,
)
"""A conversation's members: ``NextCursor``; a negative one ends the listing whatever ``HasMore`` says."""

GET_CONVERSATION_MESSAGES = PagedAction(
    name="GetConversationMessages",
    items_key="Messages",
    id_keys=("MessageId",),
    key_field="ConversationShortId",
    noun="messages",
    next_cursor_field="NewCursor",
    position_key="IndexInConversation",
)
"""A conversation's messages: ``NewCursor`` (a position in the conversation: a bookmark)."""

BATCH_GET_CONVERSATIONS = "BatchGetConversations"
"""Details of known conversations (not paginated)."""
BATCH_GET_CONVERSATIONS_MAX_IDS = 20
"""Conversation ids per ``BatchGetConversations`` request: a size the API takes safely."""

PAGED_ACTIONS: dict[str, PagedAction] = {
    a.name: a for a in (GET_USER_CONVERSATIONS, SCAN_CONVERSATION_PARTICIPANTS, GET_CONVERSATION_MESSAGES)
}

__all__ = [
    "BATCH_GET_CONVERSATIONS",
    "BATCH_GET_CONVERSATIONS_MAX_IDS",
    "DEFAULT_VERSION",
    "GET_CONVERSATION_MESSAGES",
    "GET_USER_CONVERSATIONS",
    "PAGED_ACTIONS",
    "SCAN_CONVERSATION_PARTICIPANTS",
    "ItemId",
    "PagedAction",
]
