"""One handler per API action, registered in :data:`ACTIONS` ``{(Action, Version): handler}``.

A handler gets the emulator, the response metadata and the parsed JSON body; it validates
the parameters (raising :class:`~airflow_provider_rtcim.emulator.transport.ApiError`), asks
the emulator for a fault decision keyed by the action and its key fields, then reads the
data model under the emulator's lock and returns a :class:`Reply`. Signatures, the QPS limit
and unknown actions are handled before (``Emulator._handle_api``).

Adding an action::

    @action("GetConversationSetting")
    def get_conversation_setting(emu, meta, req):
        app_id = app_id_of(emu, req)
        ...
        return emu._ok(meta, {"Setting": ...})
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_rtcim.emulator.cursors import FLAG_ANOMALY, FLAG_ENDLESS, CursorCodec
from airflow_provider_rtcim.emulator.models import DATA_TYPES, UserKey, _hash64
from airflow_provider_rtcim.emulator.transport import ApiError, Reply

if TYPE_CHECKING:
    from airflow_provider_rtcim.emulator.server import Emulator

VERSION = "2020-12-01"
MAX_LIMIT = 20  # GetUserConversations and GetConversationMessages
MAX_PARTICIPANT_LIMIT = 100
MAX_BATCH_IDS = 50

Handler = Callable[["Emulator", dict[str, Any], dict[str, Any]], Reply]
ACTIONS: dict[tuple[str, str], Handler] = {}


def action(name: str, version: str = VERSION) -> Callable[[Handler], Handler]:
    """Register a handler for ``(name, version)``."""

    def register(fn: Handler) -> Handler:
        ACTIONS[(name, version)] = fn
        return fn

    return register


# ----------------------------------------------------------------------------- parameters
def _invalid(message: str) -> ApiError:
    return ApiError(400, "InvalidParameter", message)


def require(req: dict[str, Any], *names: str) -> None:
    for name in names:
        if req.get(name) is None:
            raise ApiError(400, "MissingParameter", f"the required parameter {name} is missing")


def integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "InvalidParameter.Unmarshal", f"{name} must be an integer")
    return value


def optional_int(req: dict[str, Any], name: str, default: int) -> int:
    value = req.get(name)
    return default if value is None else integer(name, value)


def boolean(req: dict[str, Any], name: str, default: bool) -> bool:
    value = req.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, "InvalidParameter.Unmarshal", f"{name} must be true or false")
    return value


def app_id_of(req: dict[str, Any]) -> int:
    app_id = integer("AppId", req["AppId"])
    if not 0 < app_id < 2**31:
        raise ApiError(400, "InvalidParameter.IllegalAppId", f"AppId {app_id} is not a valid AppId")
    return app_id


def check_app_exists(emu: Emulator, app_id: int) -> None:
    if app_id not in emu.app_ids:
        raise ApiError(400, "InvalidParameter.NotExistAppId", f"AppId {app_id} does not exist")


def limit_of(req: dict[str, Any], maximum: int) -> int:
    limit = integer("Limit", req["Limit"])
    if not 1 <= limit <= maximum:
        raise _invalid(f"Limit must be between 1 and {maximum}, got {limit}")
    return limit


# ----------------------------------------------------------------------------- paging
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


# ----------------------------------------------------------------------------- actions
@action("GetUserConversations")
def get_user_conversations(emu: Emulator, meta: dict[str, Any], req: dict[str, Any]) -> Reply:
    """A user's conversations (DataType 0/1/2, InboxType), opaque cursors, NextCursor -1 at the end."""
    uid_str = req.get("ParticipantUserIdStr")
    for name in ("AppId", "ParticipantUserId", "Cursor", "Limit"):
        if req.get(name) is None and not (name == "ParticipantUserId" and uid_str):
            raise ApiError(400, "MissingParameter", f"the required parameter {name} is missing")
    app_id = app_id_of(req)
    uid_int = (
        integer("ParticipantUserId", req["ParticipantUserId"])
        if req.get("ParticipantUserId") is not None
        else None
    )
    if uid_str is not None and not isinstance(uid_str, str):
        raise ApiError(400, "InvalidParameter.Unmarshal", "ParticipantUserIdStr must be a string")
    # ParticipantUserId > 0 names an int user; else ParticipantUserIdStr names a string user, verbatim
    uid: UserKey = uid_int if uid_int is not None and (uid_int > 0 or not uid_str) else uid_str  # type: ignore[assignment]
    cursor = integer("Cursor", req["Cursor"])
    limit = limit_of(req, MAX_LIMIT)
    data_type = optional_int(req, "DataType", 0)
    if data_type not in DATA_TYPES:
        raise _invalid(f"DataType must be 0, 1 or 2, got {data_type}")
    inbox = optional_int(req, "InboxType", 0)
    if inbox < 0:
        raise _invalid(f"InboxType must be >= 0, got {inbox}")
    skip = boolean(req, "SkipMemberCount", False)
    check_app_exists(emu, app_id)
    fault = emu._fault(
        meta, (app_id, uid, cursor, limit, data_type, inbox), {"ConversationInfos": [], "HasMore": False}
    )
    if fault is not None:
        return fault
    scope = (uid, app_id, data_type, inbox)
    with emu._lock:
        anomaly = emu._anomaly_for(uid)
        items = emu._backend.listing(*scope)
        pg = opaque_page(emu._codec, scope, cursor, limit, len(items), anomaly)
        out = [dict(c) for c in items[pg.start : pg.stop]]
        if data_type == 0 and emu.reorder_data_type0 and pg.has_more and not pg.endless:
            _reorder(emu, uid, items, pg.offset + (pg.stop - pg.start))
        emu._count(200, None)
    if skip:
        for c in out:
            c.pop("MemberCount", None)
    result = {"ConversationInfos": out, "HasMore": pg.has_more, "NextCursor": pg.next_cursor}
    return emu._ok(meta, result, counted=True)


def _reorder(emu: Emulator, uid: UserKey, items: list[dict[str, Any]], end: int) -> None:
    """Bump up to two not-yet-listed conversations to the front of DataType 0. Holds the lock."""
    rest = items[end:]
    if not rest:
        return
    n = emu._reorder_counts[uid]
    emu._reorder_counts[uid] = n + 1
    picks: list[int] = []
    for i in range(min(2, len(rest))):
        idx = _hash64(emu.seed, "reorder", uid, n, i) % len(rest)
        sid = rest[idx]["ConversationShortId"]
        if sid not in picks:
            picks.append(sid)
    for sid in picks:
        emu._backend.touch(sid)


@action("ScanConversationParticipantList")
def scan_conversation_participant_list(emu: Emulator, meta: dict[str, Any], req: dict[str, Any]) -> Reply:
    """A conversation's members, by join time; a negative NextCursor (-1) ends the listing."""
    require(req, "AppId", "ConversationShortId", "Cursor", "Limit")
    app_id = app_id_of(req)
    sid = integer("ConversationShortId", req["ConversationShortId"])
    cursor = integer("Cursor", req["Cursor"])
    limit = limit_of(req, MAX_PARTICIPANT_LIMIT)
    reverse = boolean(req, "Reverse", False)
    only_ids = boolean(req, "OnlyUserIds", False)
    online = boolean(req, "ScanOnlineParticipant", False)
    mark = req.get("MarkType")
    if mark is not None and not isinstance(mark, str):
        raise ApiError(400, "InvalidParameter.Unmarshal", "MarkType must be a string")
    mark = mark or None
    check_app_exists(emu, app_id)
    key = ("ScanConversationParticipantList", app_id, sid, cursor, limit, reverse, only_ids, online, mark)
    fault = emu._fault(meta, key, {"Participants": [], "HasMore": False, "NextCursor": -1})
    if fault is not None:
        return fault
    online = online or mark is not None
    if online:
        reverse = only_ids = False  # ignored for online scans
    scope = ("participants", app_id, sid, reverse, online, mark)
    backend = emu._backend
    with emu._lock:
        conv = backend.get(sid, app_id)
        if conv is None:
            keys: list[UserKey] = []
        else:
            keys = backend.online_keys(conv, mark) if online else backend.member_keys(conv)
        total = len(keys)
        pg = opaque_page(emu._codec, scope, cursor, limit, total, emu._anomaly_for(sid))
        chosen = (
            [keys[total - 1 - i] for i in range(pg.start, pg.stop)] if reverse else keys[pg.start : pg.stop]
        )
        parts = [backend.render_participant(conv, k, only_ids) for k in chosen]  # type: ignore[arg-type]
        has_more = pg.has_more or (pg.ended and emu.participants_last_page_has_more)
        emu._count(200, None)
    return emu._ok(
        meta, {"Participants": parts, "HasMore": has_more, "NextCursor": pg.next_cursor}, counted=True
    )


@action("GetConversationMessages")
def get_conversation_messages(emu: Emulator, meta: dict[str, Any], req: dict[str, Any]) -> Reply:
    """A conversation's messages by IndexInConversation; NewCursor is where the next page starts."""
    require(req, "AppId", "ConversationShortId", "Cursor", "Limit")
    app_id = app_id_of(req)
    sid = integer("ConversationShortId", req["ConversationShortId"])
    cursor = integer("Cursor", req["Cursor"])
    limit = limit_of(req, MAX_LIMIT)
    reverse = optional_int(req, "Reverse", 0)
    if reverse not in (0, 1):
        raise _invalid(f"Reverse must be 0 or 1, got {reverse}")
    check_app_exists(emu, app_id)
    key = ("GetConversationMessages", app_id, sid, cursor, limit, reverse)
    fault = emu._fault(meta, key, {"Messages": [], "HasMore": False, "NewCursor": 0})
    if fault is not None:
        return fault
    backend = emu._backend
    with emu._lock:
        conv = backend.get(sid, app_id)
        if conv is None:  # unknown conversation: no messages, NewCursor 0 (any cursor >= 0 accepted)
            if cursor < 0:
                raise _invalid(f"invalid Cursor {cursor}: must be >= 0")
            indexes, has_more, new_cursor = [], False, 0
            messages: list[dict[str, Any]] = []
        else:
            scope = ("messages", app_id, sid, reverse)
            indexes, has_more, new_cursor = message_page(
                emu._codec, scope, cursor, limit, conv.message_count, bool(reverse), emu._anomaly_for(sid)
            )
            messages = [backend.message_at(conv, i) for i in indexes]
        emu._count(200, None)
    return emu._ok(meta, {"Messages": messages, "HasMore": has_more, "NewCursor": new_cursor}, counted=True)


@action("BatchGetConversations")
def batch_get_conversations(emu: Emulator, meta: dict[str, Any], req: dict[str, Any]) -> Reply:
    """Details of up to 50 conversations; unknown and dissolved ones are absent. No pagination."""
    require(req, "AppId", "ConversationShortId")
    app_id = app_id_of(req)
    ids = req["ConversationShortId"]
    if not isinstance(ids, list):
        raise ApiError(400, "InvalidParameter.Unmarshal", "ConversationShortId must be an array of integers")
    ids = [integer("ConversationShortId", i) for i in ids]
    if not 1 <= len(ids) <= MAX_BATCH_IDS:
        raise _invalid(f"ConversationShortId must hold 1 to {MAX_BATCH_IDS} ids, got {len(ids)}")
    skip = boolean(req, "SkipMemberCount", True)
    check_app_exists(emu, app_id)
    fault = emu._fault(
        meta, ("BatchGetConversations", app_id, tuple(ids), skip), {"ConversationCoreInfos": []}
    )
    if fault is not None:
        return fault
    with emu._lock:
        infos = emu._backend.batch(ids, app_id, skip)
        emu._count(200, None)
    return emu._ok(meta, {"ConversationCoreInfos": infos}, counted=True)
