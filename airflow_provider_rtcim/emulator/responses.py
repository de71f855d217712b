"""One handler per API action (moto's ``responses.py``), registered in :data:`ACTIONS`
``{(Action, Version): handler}``.

A handler gets the :class:`~.context.Call` and the parsed JSON body; it validates the
parameters (raising :class:`~.exceptions.ApiError` with the real error code), asks the call for
a fault decision keyed by the action and its key fields, then asks the backend
(:mod:`.models`, public locked methods) for the action's ``Result`` and returns
``call.ok(result)``. Signatures, the QPS limit and unknown actions are handled before
(:mod:`.dispatch`).

Adding an action::

    @action("GetConversationSetting")
    def get_conversation_setting(call: Call, req: dict) -> Reply:
        require(req, "AppId", "ConversationShortId")
        app_id = app_id_of(req)
        ...
        return call.ok(call.backend.conversation_setting(app_id, sid))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_rtcim.emulator.context import Call
from airflow_provider_rtcim.emulator.exceptions import ApiError, unmarshal
from airflow_provider_rtcim.emulator.models import USER_LISTINGS
from airflow_provider_rtcim.emulator.params import (
    app_id_of,
    boolean,
    check_app_exists,
    choice,
    conversation_paging,
    id_list,
    inbox_of,
    integer,
    limit_of,
    require,
    user_of,
)
from airflow_provider_rtcim.emulator.transport import Reply

VERSION = "2020-12-01"
DATA_TYPE_MEANINGS = {0: "most recently active first", 1: "by creation time", 2: "live groups created"}
MAX_LIMIT = 20  # GetUserConversations, GetConversationMessages and the further paged actions
MAX_PARTICIPANT_LIMIT = 100
MAX_BATCH_IDS = 50

Handler = Callable[[Call, dict[str, Any]], Reply]
ACTIONS: dict[tuple[str, str], Handler] = {}


def action(name: str, version: str = VERSION) -> Callable[[Handler], Handler]:
    """Register a handler for ``(name, version)``."""

    def register(fn: Handler) -> Handler:
        ACTIONS[(name, version)] = fn
        return fn

    return register


@action("GetUserConversations")
def get_user_conversations(call: Call, req: dict[str, Any]) -> Reply:
    """A user's conversations (DataType 0/1/2, InboxType), opaque cursors, NextCursor -1 at the end."""
    uid_str = req.get("ParticipantUserIdStr")
    for name in ("AppId", "ParticipantUserId", "Cursor", "Limit"):
        if req.get(name) is None and not (name == "ParticipantUserId" and uid_str):
            raise ApiError(400, "MissingParameter", f"the required parameter {name} is missing")
    app_id = app_id_of(req)
    uid = user_of(req, "ParticipantUserId")
    cursor = integer("Cursor", req["Cursor"])
    limit = limit_of(req, MAX_LIMIT)
    data_type = choice(req, "DataType", DATA_TYPE_MEANINGS)
    inbox = inbox_of(req)
    skip = boolean(req, "SkipMemberCount", False)
    check_app_exists(call.app_ids, app_id)
    fault = call.fault(
        (app_id, uid, cursor, limit, data_type, inbox), {"ConversationInfos": [], "HasMore": False}
    )
    if fault is not None:
        return fault
    options = call.options
    return call.ok(
        call.backend.user_conversations_page(
            uid,
            app_id,
            data_type=data_type,
            inbox_type=inbox,
            cursor=cursor,
            limit=limit,
            skip_member_count=skip,
            anomaly=options.anomaly_for(uid),
            reorder=options.reorder_data_type0,
        )
    )


@action("ScanConversationParticipantList")
def scan_conversation_participant_list(call: Call, req: dict[str, Any]) -> Reply:
    """A conversation's members, by join time; a negative NextCursor (-1) ends the listing."""
    app_id, sid, cursor, limit = conversation_paging(req, MAX_PARTICIPANT_LIMIT)
    reverse = boolean(req, "Reverse", False)
    only_ids = boolean(req, "OnlyUserIds", False)
    online = boolean(req, "ScanOnlineParticipant", False)
    mark = req.get("MarkType")
    if mark is not None and not isinstance(mark, str):
        raise unmarshal("MarkType must be a string")
    mark = mark or None
    check_app_exists(call.app_ids, app_id)
    key = ("ScanConversationParticipantList", app_id, sid, cursor, limit, reverse, only_ids, online, mark)
    fault = call.fault(key, {"Participants": [], "HasMore": False, "NextCursor": -1})
    if fault is not None:
        return fault
    options = call.options
    return call.ok(
        call.backend.participants_page(
            app_id,
            sid,
            cursor=cursor,
            limit=limit,
            reverse=reverse,
            only_ids=only_ids,
            online=online,
            mark=mark,
            anomaly=options.anomaly_for(sid),
            last_page_has_more=options.participants_last_page_has_more,
        )
    )


@action("GetConversationMessages")
def get_conversation_messages(call: Call, req: dict[str, Any]) -> Reply:
    """A conversation's messages by IndexInConversation; NewCursor is where the next page starts."""
    app_id, sid, cursor, limit = conversation_paging(req, MAX_LIMIT)
    reverse = choice(req, "Reverse", {0: "forward", 1: "backward"})
    check_app_exists(call.app_ids, app_id)
    key = ("GetConversationMessages", app_id, sid, cursor, limit, reverse)
    fault = call.fault(key, {"Messages": [], "HasMore": False, "NewCursor": 0})
    if fault is not None:
        return fault
    return call.ok(
        call.backend.messages_page(
            app_id, sid, cursor=cursor, limit=limit, reverse=reverse, anomaly=call.anomaly_for(sid)
        )
    )


@action("BatchGetConversations")
def batch_get_conversations(call: Call, req: dict[str, Any]) -> Reply:
    """Details of up to 50 conversations; unknown and dissolved ones are absent. No pagination."""
    require(req, "AppId", "ConversationShortId")
    app_id = app_id_of(req)
    ids = id_list(req, "ConversationShortId", MAX_BATCH_IDS)
    skip = boolean(req, "SkipMemberCount", True)
    check_app_exists(call.app_ids, app_id)
    fault = call.fault(("BatchGetConversations", app_id, tuple(ids), skip), {"ConversationCoreInfos": []})
    if fault is not None:
        return fault
    return call.ok(call.backend.batch_page(app_id, ids, skip))


# ----------------------------------------------------------------------------- further read actions
@action("BatchGetUser")
def batch_get_user(call: Call, req: dict[str, Any]) -> Reply:
    """Profiles of up to 50 int users; unknown ones in NotFoundUsers. No pagination, no ``*Str`` field."""
    require(req, "AppId", "UserIds")
    app_id = app_id_of(req)
    ids = id_list(req, "UserIds", MAX_BATCH_IDS)
    check_app_exists(call.app_ids, app_id)
    fault = call.fault(("BatchGetUser", app_id, tuple(ids)), {"Users": [], "NotFoundUsers": []})
    if fault is not None:
        return fault
    return call.ok(call.backend.users_page(app_id, ids))


def _user_listing(
    call: Call, req: dict[str, Any], action: str, listing: str, limit_default: int | None
) -> Reply:
    """ListFriend / GetBlackList: ``UserId`` (int64 only), ``Cursor``, ``Limit``, ``InboxType``, ``NeedTotal``."""
    require(req, "AppId", "UserId", "Cursor", *(() if limit_default else ("Limit",)))
    app_id = app_id_of(req)
    uid = integer("UserId", req["UserId"])
    cursor = integer("Cursor", req["Cursor"])
    limit = limit_of(req, MAX_LIMIT, limit_default)
    inbox = inbox_of(req)
    need_total = boolean(req, "NeedTotal", False)
    check_app_exists(call.app_ids, app_id)
    field = USER_LISTINGS[listing][1]
    empty = {field: [], "HasMore": False, "NextCursor": -1, "TotalCount": 0}
    fault = call.fault((action, app_id, uid, cursor, limit, inbox, need_total), empty)
    if fault is not None:
        return fault
    return call.ok(
        call.backend.user_listing_page(
            listing,
            uid,
            inbox_type=inbox,
            cursor=cursor,
            limit=limit,
            need_total=need_total,
            anomaly=call.anomaly_for(uid),
        )
    )


@action("ListFriend")
def list_friend(call: Call, req: dict[str, Any]) -> Reply:
    """A user's friends, the first added first (Limit defaults to 20); NextCursor -1 ends the listing."""
    return _user_listing(call, req, "ListFriend", "friends", limit_default=MAX_LIMIT)


@action("GetBlackList")
def get_black_list(call: Call, req: dict[str, Any]) -> Reply:
    """A user's blacklist, newest first (Limit required); NextCursor -1 ends the listing."""
    return _user_listing(call, req, "GetBlackList", "blacklist", limit_default=None)


@action("GetParticipantReadIndex")
def get_participant_read_index(call: Call, req: dict[str, Any]) -> Reply:
    """How far each member has read; members who read nothing are absent (ReadIndex 0). No pagination."""
    require(req, "AppId", "ConversationShortId")
    app_id = app_id_of(req)
    sid = integer("ConversationShortId", req["ConversationShortId"])
    check_app_exists(call.app_ids, app_id)
    fault = call.fault(("GetParticipantReadIndex", app_id, sid), {"ReadIndexes": []})
    if fault is not None:
        return fault
    return call.ok(call.backend.read_index_page(app_id, sid))


@action("BatchGetBlockParticipants")
def batch_get_block_participants(call: Call, req: dict[str, Any]) -> Reply:
    """A conversation's muted (BlockAction 0) or blocked (1) members; NextCursor -1 ends the listing."""
    app_id, sid, cursor, limit = conversation_paging(req, MAX_LIMIT)
    block_action = choice(req, "BlockAction", {0: "mute", 1: "block"})
    check_app_exists(call.app_ids, app_id)
    key = ("BatchGetBlockParticipants", app_id, sid, cursor, limit, block_action)
    fault = call.fault(key, {"Participants": [], "HasMore": False, "NextCursor": -1})
    if fault is not None:
        return fault
    return call.ok(
        call.backend.blocks_page(
            app_id, sid, block_action=block_action, cursor=cursor, limit=limit, anomaly=call.anomaly_for(sid)
        )
    )
