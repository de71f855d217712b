"""Every read action the provider calls, each described once (pure: no Airflow, no I/O).

An action is a description, not code: its name, the key it is called for (one user, one
conversation), its request fields (argument name, API name, check, default), its page size
limit and pagination dialect (items key, cursor fields, end rule), the id that dedupes its
items, and the field it adds to a row. The pager (:mod:`~airflow_provider_rtcim.core.pagination`),
the hook's generic calls (:meth:`RtcImHook.iter_action`, :meth:`RtcImHook.batch_action`) and the
operators (their templated arguments, their request, their rows) all work from it; no other
module names an action.

    >>> from airflow_provider_rtcim.core.actions import GET_CONVERSATION_MESSAGES as M
    >>> M.items_key, M.next_cursor_field, M.id_of({"MessageId": 7})
    ('Messages', 'NewCursor', 7)
    >>> M.request_body({"reverse": True})
    {'Reverse': 1}
    >>> M.page_body({"AppId": 1, "ConversationShortId": 9}, cursor=40, limit=20)
    {'AppId': 1, 'ConversationShortId': 9, 'Cursor': 40, 'Limit': 20}

A new read action is one more description here, a thin named hook method and a short operator
module (see ``docs/development.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_rtcim.core.defaults import DEFAULT_VERSION
from airflow_provider_rtcim.core.validation import (
    MAX_LIMIT,
    check_user_id,
    none_if_blank,
    to_bool,
    validate_bool,
    validate_conversation_short_id,
    validate_data_type,
    validate_inbox_type,
)

ItemId = int | str
Check = Callable[[Any, str], Any]


@dataclass(frozen=True)
class Field:
    """One request field of an action.

    :param arg: the Python argument (of the hook's named method and of the operator, where
        it is templated).
    :param api: the request body's field.
    :param check: ``check(value, arg)``: the value as the API takes it, or a ``ValueError``
        naming ``arg`` and the allowed values.
    :param default: the value when the argument is not given; a field whose default is None
        is optional (not sent while None).
    :param parse: for a rendered template only: turns its text into what ``check`` takes
        (``"true"`` -> True, ``""`` -> None). The hook's callers pass real values.
    """

    arg: str
    api: str
    check: Check
    default: Any = None
    parse: Check | None = None

    def value(self, given: Any, *, rendered: bool = False) -> Any:
        """The checked API value of ``given`` (None for an optional field left unset)."""
        if rendered and self.parse is not None:
            given = self.parse(given, self.arg)
        if given is None and self.default is None:
            return None
        return self.check(given, self.arg)


@dataclass(frozen=True)
class Key:
    """What an action is called for: one user or one conversation.

    :param arg: the argument naming it (``participant_user_id``, ``conversation_short_id``).
    :param api: its request field (also the row field the operators add).
    :param label: how messages name it (``user 10001``, ``ConversationShortId 42``).
    :param user: a user id (an int64, or opaque text with ``user_id_type="str"``), else a
        conversation id.
    :param str_api: the ``*Str`` twin carrying a string user id; None when the API has none.
    """

    arg: str
    api: str
    label: str
    user: bool = False
    str_api: str | None = None

    def check(self, value: Any, field: str, user_id_type: str = "int") -> int | str:
        """One key, checked (a ``ValueError`` naming ``field``)."""
        if not self.user:
            return validate_conversation_short_id(value, field)
        if user_id_type == "str" and self.str_api is None:
            raise ValueError(
                f'{field}: user_id_type="str" cannot be used here: the API has no string form of '
                f"{self.api} (only integer user ids)"
            )
        return check_user_id(value, field, user_id_type)

    def body(self, key: int | str) -> dict[str, Any]:
        """The request fields naming ``key`` (a string id goes in the ``*Str`` twin, with 0
        in the numeric field beside it, as the official Go SDK sends it)."""
        if isinstance(key, str) and self.str_api is not None:
            return {self.api: 0, self.str_api: key}
        return {self.api: key}

    def row_field(self, key: int | str) -> str:
        """The row field that carries ``key``."""
        return self.str_api if isinstance(key, str) and self.str_api is not None else self.api

    def describe(self, key: Any) -> str:
        return f"{self.label} {key!r}" if isinstance(key, str) else f"{self.label} {key}"


USER = Key(
    arg="participant_user_id",
    api="ParticipantUserId",
    label="user",
    user=True,
    str_api="ParticipantUserIdStr",
)
CONVERSATION = Key(arg="conversation_short_id", api="ConversationShortId", label="ConversationShortId")


@dataclass(frozen=True, kw_only=True)
class Action:
    """What every read action has: a name, a key, request fields, a version."""

    name: str
    key: Key
    fields: tuple[Field, ...] = ()
    noun: str = "items"
    version: str = DEFAULT_VERSION

    @property
    def key_field(self) -> str:
        """The request field naming what is listed (``ParticipantUserId``, ``ConversationShortId``)."""
        return self.key.api

    @property
    def args(self) -> tuple[str, ...]:
        """The request fields' argument names, in order."""
        return tuple(f.arg for f in self.fields)

    def request_body(
        self, values: Mapping[str, Any] | None = None, *, rendered: bool = False
    ) -> dict[str, Any]:
        """The checked request fields for ``values`` (argument name -> value; a missing one
        takes its default), each checked once. ``rendered``: the values are rendered
        templates (see :attr:`Field.parse`). An unknown argument is a ``TypeError``."""
        values = values or {}
        unknown = set(values) - set(self.args)
        if unknown:
            raise TypeError(f"{self.name} takes no argument {', '.join(sorted(unknown))}")
        body: dict[str, Any] = {}
        for f in self.fields:
            value = f.value(values.get(f.arg, f.default), rendered=rendered)
            if value is not None:
                body[f.api] = value
        return body


@dataclass(frozen=True, kw_only=True)
class PagedAction(Action):
    """A paginated read action: its pagination dialect and its items.

    :param items_key: the ``Result`` key of the page's item list.
    :param id_keys: the item fields that identify an item, in order of preference: the first
        that holds a non-zero int (or a non-empty string) is the item's id, used to drop
        duplicates (string user ids carry ``0`` in the numeric field and the id in ``*Str``).
    :param cursor_field: the request field of the cursor; None: the action answers in one
        page, with no cursor and no ``HasMore`` (``GetParticipantReadIndex``).
    :param next_cursor_field: the ``Result`` field of the next page's cursor.
    :param limit_field: the request field of the page size (None: the action takes none).
    :param max_page_size: the largest page size the action takes (``page_size`` is checked
        against it).
    :param negative_cursor_ends: a negative next cursor means "no more data" whatever
        ``HasMore`` says (``ScanConversationParticipantList``); otherwise a negative cursor
        with ``HasMore`` is a pagination anomaly.
    :param position_key: an item field that grows along the listing (a message's
        ``IndexInConversation``); a listing resumed from a bookmark drops every item not past
        the last position already taken, so a cursor that restarts or repeats doubles nothing.
    :param key_in_row: how the operators add the key to a row: ``"set"`` (always written:
        the row's own field says something else) or ``"default"`` (only when the item lacks it).
    """

    items_key: str
    id_keys: tuple[str, ...]
    cursor_field: str | None = "Cursor"
    next_cursor_field: str = "NextCursor"
    limit_field: str | None = "Limit"
    max_page_size: int = MAX_LIMIT
    negative_cursor_ends: bool = False
    position_key: str | None = None
    key_in_row: str = "default"

    @property
    def id_key(self) -> str:
        """The main id field (named in error messages)."""
        return self.id_keys[0]

    @property
    def paginated(self) -> bool:
        """False for an action that answers in one page (no cursor, no ``HasMore``)."""
        return self.cursor_field is not None

    def id_of(self, item: Any) -> ItemId | None:
        """The item's id (see ``id_keys``), or None when it has none."""
        if type(item) is not dict and not isinstance(item, Mapping):
            return None
        for key in self.id_keys:
            value = item.get(key)
            if type(value) is int:  # the usual case, first: a bool is not an int here
                if value:
                    return value
                continue
            if (isinstance(value, int) and not isinstance(value, bool) and value != 0) or (
                isinstance(value, str) and value and key.endswith("Str")
            ):
                return value
        return None

    def page_body(self, base: Mapping[str, Any], *, cursor: int, limit: int | None = None) -> dict[str, Any]:
        """The request body of one page: ``base`` with this action's cursor (and page size)."""
        body = dict(base)
        if self.cursor_field is not None:
            body[self.cursor_field] = cursor
        if limit is not None and self.limit_field is not None:
            body[self.limit_field] = limit
        return body

    def add_key(self, row: dict[str, Any], key: int | str) -> dict[str, Any]:
        """``row`` carrying the key it was listed for (see ``key_in_row``)."""
        field = self.key.row_field(key)
        if self.key_in_row == "set" or field not in row:
            row[field] = key
        return row


@dataclass(frozen=True, kw_only=True)
class BatchAction(Action):
    """A read action that takes many keys at once (no pagination).

    :param items_key: the ``Result`` key of the item list.
    :param max_keys: the most keys one request takes.
    :param keys_field: the request field of the key list (default: the key's own field).
    :param missing_key: the ``Result`` key listing the keys not found (None: not told).
    :param id_keys: the item fields naming the key an item is for (empty: not told).
    """

    items_key: str
    max_keys: int
    keys_field: str | None = None
    missing_key: str | None = None
    id_keys: tuple[str, ...] = ()

    @property
    def keys_api(self) -> str:
        """The request field carrying the list of keys."""
        return self.keys_field or self.key.api


def _parse_bool(value: Any, field: str) -> bool:
    return to_bool(value, field)


def _blank_is_none(value: Any, field: str) -> Any:
    return none_if_blank(value)


def _mark_type(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be a non-empty string or None, got {value!r}")
    return value


def _reverse_flag(value: Any, field: str) -> int:
    """``Reverse`` as ``GetConversationMessages`` takes it: 0 (oldest first) or 1."""
    return 1 if validate_bool(value, field) else 0


def _flag(arg: str, api: str, default: bool = False) -> Field:
    return Field(arg=arg, api=api, check=validate_bool, default=default, parse=_parse_bool)


GET_USER_CONVERSATIONS = PagedAction(
    name="GetUserConversations",
    key=USER,
    noun="conversations",
    fields=(
        # 1, not the API's 0: the database in creation order is the stable order for paging.
        Field(arg="data_type", api="DataType", check=validate_data_type, default=1),
        Field(arg="inbox_type", api="InboxType", check=validate_inbox_type, default=0),
        _flag("skip_member_count", "SkipMemberCount"),
    ),
    items_key="ConversationInfos",
    id_keys=("ConversationShortId",),
    key_in_row="set",
)
"""A user's conversations: ``NextCursor``, ends when ``HasMore`` is false."""

SCAN_CONVERSATION_PARTICIPANTS = PagedAction(
    name="ScanConversationParticipantList",
    key=CONVERSATION,
    noun="members",
    fields=(
        _flag("reverse", "Reverse"),
        _flag("only_user_ids", "OnlyUserIds"),
        _flag("scan_online", "ScanOnlineParticipant"),
        Field(arg="mark_type", api="MarkType", check=_mark_type, parse=_blank_is_none),
    ),
    items_key="Participants",
    id_keys=("ParticipantUserId", "ParticipantUserIdStr"),
    negative_cursor_ends=True,
)
"""A conversation's members: ``NextCursor``; a negative one ends the listing whatever ``HasMore`` says."""

GET_CONVERSATION_MESSAGES = PagedAction(
    name="GetConversationMessages",
    key=CONVERSATION,
    noun="messages",
    fields=(Field(arg="reverse", api="Reverse", check=_reverse_flag, default=False, parse=_parse_bool),),
    items_key="Messages",
    id_keys=("MessageId",),
    next_cursor_field="NewCursor",
    position_key="IndexInConversation",
)
"""A conversation's messages: ``NewCursor`` (a position in the conversation: a bookmark)."""

BATCH_GET_CONVERSATIONS = BatchAction(
    name="BatchGetConversations",
    key=CONVERSATION,
    noun="conversations",
    fields=(_flag("skip_member_count", "SkipMemberCount", default=True),),
    items_key="ConversationCoreInfos",
    max_keys=20,  # a size the API takes safely
)
"""Details of known conversations (not paginated; ``SkipMemberCount`` defaults to true here)."""

# -- users, friends, blacklists, read positions, mute and block lists --------------------

USER_ID = Key(arg="user_id", api="UserId", label="user", user=True)
"""A user named by ``UserId``: these actions have no ``*Str`` twin (int64 user ids only)."""


def _block_action(value: Any, field: str) -> int:
    """``BlockAction``: ``"mute"`` (0, the default) or ``"block"`` (1)."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text in ("mute", 0) and not isinstance(text, bool):
        return 0
    if text in ("block", 1) and not isinstance(text, bool):
        return 1
    raise ValueError(f'{field} must be "mute" (the mute list) or "block" (the block list), got {value!r}')


_INBOX = Field(arg="inbox_type", api="InboxType", check=validate_inbox_type, default=0)

BATCH_GET_USER = BatchAction(
    name="BatchGetUser",
    key=USER_ID,
    noun="users",
    items_key="Users",
    keys_field="UserIds",
    max_keys=50,  # the API's most: a full request is 1% of the account's second
    missing_key="NotFoundUsers",
    id_keys=("UserId",),
)
"""User profiles (not paginated; ids not registered come back in ``NotFoundUsers``)."""

LIST_FRIEND = PagedAction(
    name="ListFriend",
    key=USER_ID,
    noun="friends",
    fields=(_INBOX,),
    items_key="FriendInfos",
    id_keys=("FriendUserId",),
    negative_cursor_ends=True,
    key_in_row="set",
)
"""A user's friends, the first added first: ``NextCursor``; a negative one ends the listing."""

GET_BLACK_LIST = PagedAction(
    name="GetBlackList",
    key=USER_ID,
    noun="blacklist entries",
    fields=(_INBOX,),
    items_key="BlackListInfos",
    id_keys=("BlackListUserId",),
    negative_cursor_ends=True,
    key_in_row="set",
)
"""A user's blacklist, newest first: ``NextCursor``; a negative one ends the listing."""

GET_PARTICIPANT_READ_INDEX = PagedAction(
    name="GetParticipantReadIndex",
    key=CONVERSATION,
    noun="read positions",
    items_key="ReadIndexes",
    id_keys=("ParticipantUserId", "ParticipantUserIdStr"),
    cursor_field=None,
    limit_field=None,
)
"""How far each member has read: one page, no cursor (a member not listed has read nothing)."""

BATCH_GET_BLOCK_PARTICIPANTS = PagedAction(
    name="BatchGetBlockParticipants",
    key=CONVERSATION,
    noun="participants",
    fields=(Field(arg="block_action", api="BlockAction", check=_block_action, default="mute"),),
    items_key="Participants",
    id_keys=("ParticipantUserId", "ParticipantUserIdStr"),
    negative_cursor_ends=True,
)
"""A conversation's muted (``block_action="mute"``) or blocked (``"block"``) members."""

ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        GET_USER_CONVERSATIONS,
        SCAN_CONVERSATION_PARTICIPANTS,
        GET_CONVERSATION_MESSAGES,
        BATCH_GET_CONVERSATIONS,
        BATCH_GET_USER,
        LIST_FRIEND,
        GET_BLACK_LIST,
        GET_PARTICIPANT_READ_INDEX,
        BATCH_GET_BLOCK_PARTICIPANTS,
    )
}
"""Every described action by its API name (the hook's generic calls take a name or a description)."""


def action_named(action: str | Action) -> Action:
    """The description of ``action`` (a description, or an API name in :data:`ACTIONS`)."""
    if isinstance(action, Action):
        return action
    found = ACTIONS.get(action) if isinstance(action, str) else None
    if found is None:
        raise ValueError(f"action must be one of {', '.join(sorted(ACTIONS))}, got {action!r}")
    return found


__all__ = [
    "ACTIONS",
    "BATCH_GET_BLOCK_PARTICIPANTS",
    "BATCH_GET_CONVERSATIONS",
    "BATCH_GET_USER",
    "CONVERSATION",
    "GET_BLACK_LIST",
    "GET_CONVERSATION_MESSAGES",
    "GET_PARTICIPANT_READ_INDEX",
    "GET_USER_CONVERSATIONS",
    "LIST_FRIEND",
    "SCAN_CONVERSATION_PARTICIPANTS",
    "USER",
    "USER_ID",
    "Action",
    "BatchAction",
    "Field",
    "ItemId",
    "Key",
    "PagedAction",
    "action_named",
]
