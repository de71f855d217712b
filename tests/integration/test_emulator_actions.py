"""The emulator's conversation actions over real HTTP, signed: participants, messages, details."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from airflow_provider_rtcim.core.signing import sign_request
from airflow_provider_rtcim.emulator import Emulator

PARTICIPANTS = "ScanConversationParticipantList"
MESSAGES = "GetConversationMessages"
BATCH = "BatchGetConversations"
CONVERSATIONS = "GetUserConversations"


def api(emu: Emulator, action: str, body: dict[str, Any], session: Any = None) -> requests.Response:
    raw = json.dumps(body).encode()
    url = f"{emu.url}/?Action={action}&Version=2020-12-01"
    headers = sign_request(
        emu.credentials, method="POST", url=url, headers={"Content-Type": "application/json"}, body=raw
    )
    return (session or requests).post(url, data=raw, headers=headers, timeout=10)


def result(emu: Emulator, action: str, **body: Any) -> dict[str, Any]:
    resp = api(emu, action, {"AppId": emu.app_id, **body})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert "Error" not in data["ResponseMetadata"], data
    assert data["ResponseMetadata"]["Action"] == action
    return data["Result"]


def error_code(resp: requests.Response) -> str:
    return resp.json()["ResponseMetadata"]["Error"]["Code"]


def walk_participants(emu: Emulator, sid: int, limit: int = 3, **extra: Any) -> tuple[list[dict], list[dict]]:
    """Every participant page until a negative NextCursor; returns (participants, pages)."""
    got: list[dict] = []
    pages: list[dict] = []
    cursor = 0
    for _ in range(1000):
        page = result(emu, PARTICIPANTS, ConversationShortId=sid, Cursor=cursor, Limit=limit, **extra)
        pages.append(page)
        got += page["Participants"]
        if page["NextCursor"] < 0:
            return got, pages
        assert page["HasMore"] is True
        cursor = page["NextCursor"]
    raise AssertionError("participant listing did not end")


def walk_messages(
    emu: Emulator, sid: int, limit: int = 5, cursor: int = 0, reverse: int = 0
) -> tuple[list[dict], int, list[dict]]:
    """Every message page until HasMore false; returns (messages, the last NewCursor, pages)."""
    got: list[dict] = []
    pages: list[dict] = []
    for _ in range(100_000):
        page = result(emu, MESSAGES, ConversationShortId=sid, Cursor=cursor, Limit=limit, Reverse=reverse)
        assert "NextCursor" not in page
        pages.append(page)
        got += page["Messages"]
        cursor = page["NewCursor"]
        if not page["HasMore"]:
            return got, cursor, pages
    raise AssertionError("message listing did not end")


def groups(emu: Emulator, kind: int | None = None, uid: int | str | None = None) -> list[dict]:
    uid = emu.user_ids[0] if uid is None else uid
    return [
        c
        for c in emu.conversations(uid) + emu.conversations(uid, inbox_type=1)
        if kind is None or c["ConversationType"] == kind
    ]


# ----------------------------------------------------------------------------- participants
@pytest.mark.rtcim_emulator(qps_limit=None)
def test_participants_walk_matches_ground_truth_both_orders(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    checked = 0
    for conv in groups(emu)[:12]:
        sid = conv["ConversationShortId"]
        for reverse in (False, True):
            got, pages = walk_participants(emu, sid, limit=3, Reverse=reverse)
            assert got == emu.participants(sid, reverse=reverse)
            assert pages[-1]["HasMore"] is False and pages[-1]["NextCursor"] == -1
            assert all(p["NextCursor"] > 0 for p in pages[:-1])
        truth = emu.participants(sid)
        times = [p["CreateTime"] for p in truth]
        assert times == sorted(times)
        assert len(truth) == conv["MemberCount"]
        assert {p["ConversationShortId"] for p in truth} == {sid}
        checked += 1
    assert checked == 12


def test_participant_fields_and_one_to_one_has_two_members(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    one = groups(emu, kind=1)[0]
    members = emu.participants(one["ConversationShortId"])
    assert len(members) == 2 == one["MemberCount"]
    assert {p["ParticipantUserId"] for p in members} == {emu.user_ids[0], one["OtherUserId"]}
    group = groups(emu, kind=2)[0]
    members = emu.participants(group["ConversationShortId"])
    owner = [p for p in members if p["Role"] == 1]
    assert [p["ParticipantUserId"] for p in owner] == [group["OwnerUserId"]]
    fields = {"ConversationShortId", "ParticipantUserId", "ParticipantUserIdStr", "Role", "Operator"}
    fields |= {"OperatorStr", "AvatarUrl", "CreateTime", "BlockTime", "Ext", "Level", "Marks", "Status"}
    for p in members:
        assert fields <= set(p)
        assert p["ParticipantUserIdStr"] == str(p["ParticipantUserId"])
        assert p["OperatorStr"] == str(p["Operator"])
        assert p["Role"] in (0, 1, 2) and p["Status"] == 0 and isinstance(p["Marks"], list)


@pytest.mark.rtcim_emulator(participants_per_conversation=23, qps_limit=None)
def test_only_user_ids_and_limits(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    sid = groups(emu, kind=2)[0]["ConversationShortId"]
    got, pages = walk_participants(emu, sid, limit=100, OnlyUserIds=True)
    assert len(pages) == 1 and len(got) == 23
    assert all(set(p) == {"ConversationShortId", "ParticipantUserId", "ParticipantUserIdStr"} for p in got)
    assert [p["ParticipantUserId"] for p in got] == [p["ParticipantUserId"] for p in emu.participants(sid)]
    body = {"AppId": emu.app_id, "ConversationShortId": sid, "Cursor": 0}
    for limit in (0, 101, -1):
        resp = api(emu, PARTICIPANTS, {**body, "Limit": limit})
        assert resp.status_code == 400 and error_code(resp) == "InvalidParameter", limit
    resp = api(emu, PARTICIPANTS, {**body, "Limit": 5, "Reverse": 1})
    assert resp.status_code == 400 and error_code(resp) == "InvalidParameter.Unmarshal"
    resp = api(emu, PARTICIPANTS, {"AppId": emu.app_id, "Cursor": 0, "Limit": 5})
    assert resp.status_code == 400 and error_code(resp) == "MissingParameter"


@pytest.mark.rtcim_emulator(participants_per_conversation=30, qps_limit=None)
def test_online_scan_and_mark_type(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    live = next(c for c in groups(emu, kind=100) if c["OnlineCount"] > 3)
    sid = live["ConversationShortId"]
    online = emu.online_participants(sid)
    assert len(online) == live["OnlineCount"]
    members = {p["ParticipantUserId"] for p in emu.participants(sid)}
    assert {p["ParticipantUserId"] for p in online} <= members
    # Reverse and OnlyUserIds are ignored for an online scan
    got, _ = walk_participants(emu, sid, limit=2, ScanOnlineParticipant=True, Reverse=True, OnlyUserIds=True)
    assert got == online
    marked = [p for p in online if "vip" in p["Marks"]]
    assert marked and len(marked) < len(online)
    got, _ = walk_participants(emu, sid, limit=2, ScanOnlineParticipant=True, MarkType="vip")
    assert got == marked == emu.online_participants(sid, mark="vip")
    # not a live group: nobody online
    group = groups(emu, kind=2)[0]["ConversationShortId"]
    got, pages = walk_participants(emu, group, ScanOnlineParticipant=True)
    assert got == [] and len(pages) == 1


def test_participants_unknown_conversation_and_last_page_has_more(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    page = result(emu, PARTICIPANTS, ConversationShortId=123, Cursor=0, Limit=20)
    assert page == {"Participants": [], "HasMore": False, "NextCursor": -1}
    sid = groups(emu, kind=2)[0]["ConversationShortId"]
    emu.configure(participants_last_page_has_more=True)
    assert emu.config["participants_last_page_has_more"] is True
    got, pages = walk_participants(emu, sid, limit=2)  # ends on the negative cursor alone
    assert got == emu.participants(sid)
    assert pages[-1]["HasMore"] is True and pages[-1]["NextCursor"] == -1
    assert result(emu, PARTICIPANTS, ConversationShortId=123, Cursor=0, Limit=20)["HasMore"] is True


@pytest.mark.rtcim_emulator(participants_per_conversation=12)
def test_participant_cursors_are_opaque_and_bound(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    a, b = (c["ConversationShortId"] for c in groups(emu, kind=2)[:2])
    cursor = result(emu, PARTICIPANTS, ConversationShortId=a, Cursor=0, Limit=5)["NextCursor"]
    assert cursor > 0 and cursor not in (5, 6)
    body = {"AppId": emu.app_id, "Cursor": cursor, "Limit": 5}
    for bad in ({"ConversationShortId": b}, {"ConversationShortId": a, "Reverse": True}, {"Cursor": 5}):
        resp = api(emu, PARTICIPANTS, {**body, "ConversationShortId": a, **bad})
        assert resp.status_code == 400 and error_code(resp) == "InvalidParameter", bad


# ----------------------------------------------------------------------------- messages
@pytest.mark.rtcim_emulator(messages_per_conversation=23, qps_limit=None)
def test_messages_forward_and_reverse_match_ground_truth(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    for conv in groups(emu)[:6]:
        sid = conv["ConversationShortId"]
        truth = emu.messages(sid)
        assert [m["IndexInConversation"] for m in truth] == list(range(1, 24))
        got, end, pages = walk_messages(emu, sid, limit=5)
        assert got == truth and end == 24 and len(pages) == 5
        assert [p["NewCursor"] for p in pages] == [6, 11, 16, 21, 24]
        back, end, pages = walk_messages(emu, sid, limit=5, reverse=1)
        assert back == emu.messages(sid, reverse=True) == truth[::-1]
        assert end == 0 and [p["NewCursor"] for p in pages] == [18, 13, 8, 3, 0]
        ids = [m["MessageId"] for m in truth]
        assert len(set(ids)) == len(ids) and all(i > 2**53 for i in ids)
        times = [m["CreateTime"] for m in truth]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert all(t > conv["CreateTime"] * 999 for t in times)  # milliseconds
        for m in truth:
            assert m["AppId"] == emu.app_id and m["ConversationShortId"] == sid
            assert m["ConversationType"] == conv["ConversationType"] and m["Status"] == 0
            assert isinstance(json.loads(m["Content"]), dict) and m["MsgType"] in (
                10001,
                10003,
                10004,
                10005,
                10006,
                10012,
            )
            assert m["SenderStr"] == str(m["Sender"]) and isinstance(m["Ext"], dict)


def test_messages_content_is_rich() -> None:
    emu = Emulator(messages_per_conversation=40, users=1, conversations_per_user=10)
    every = [m for sid in emu.conversation_ids() for m in emu.messages(sid)]
    assert any(ord(ch) > 0x1F000 for m in every for ch in m["Content"])
    assert any("\u4e00" <= ch <= "\u9fff" for m in every for ch in json.loads(m["Content"]).get("text", ""))
    refs = [m for m in every if "RefMsgInfo" in m]
    assert refs
    by_id = {m["MessageId"]: m for m in every}
    for m in refs:
        ref = by_id[m["RefMsgInfo"]["ReferencedMessageId"]]
        assert ref["IndexInConversation"] < m["IndexInConversation"]
        assert ref["MsgType"] == m["RefMsgInfo"]["ReferencedMessageType"]


@pytest.mark.rtcim_emulator(messages_per_conversation=7, qps_limit=None)
def test_new_cursor_resumes_with_exactly_the_new_messages(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    conv = groups(emu, kind=2)[0]
    sid = conv["ConversationShortId"]
    _, end, _ = walk_messages(emu, sid, limit=20)
    assert end == 8
    # nothing new: one empty page, the same cursor
    page = result(emu, MESSAGES, ConversationShortId=sid, Cursor=end, Limit=20)
    assert page == {"Messages": [], "HasMore": False, "NewCursor": 8}
    sender = emu.participants(sid)[1]["ParticipantUserId"]
    one = emu.add_message(sid, sender=sender, content={"text": "新消息 🆕"}, Ext={"k": "v"})
    more = emu.add_messages(sid, 4)
    assert one["IndexInConversation"] == 8 and [m["IndexInConversation"] for m in more] == [9, 10, 11, 12]
    assert (
        one["Sender"] == sender
        and json.loads(one["Content"]) == {"text": "新消息 🆕"}
        and one["Ext"] == {"k": "v"}
    )
    assert one["CreateTime"] > emu.messages(sid)[6]["CreateTime"]
    got, end2, _ = walk_messages(emu, sid, limit=3, cursor=end)
    assert got == [one, *more] == emu.messages(sid)[7:]
    assert end2 == 13
    with pytest.raises(KeyError):
        emu.add_message(42)
    with pytest.raises(ValueError, match="not a member"):
        emu.add_message(sid, sender=424242)


@pytest.mark.rtcim_emulator(messages_per_conversation=5)
def test_message_cursor_and_limit_errors(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    sid = groups(emu)[0]["ConversationShortId"]
    base = {"AppId": emu.app_id, "ConversationShortId": sid, "Cursor": 0, "Limit": 5}
    for bad in (
        {"Cursor": -1},
        {"Cursor": 7},
        {"Cursor": 2**40},
        {"Limit": 0},
        {"Limit": 21},
        {"Reverse": 2},
    ):
        resp = api(emu, MESSAGES, {**base, **bad})
        assert resp.status_code == 400 and error_code(resp) == "InvalidParameter", bad
    assert result(emu, MESSAGES, ConversationShortId=sid, Cursor=6, Limit=5)["Messages"] == []
    # an unknown conversation: no messages, NewCursor 0
    unknown = result(emu, MESSAGES, ConversationShortId=99, Cursor=0, Limit=5)
    assert unknown == {"Messages": [], "HasMore": False, "NewCursor": 0}


@pytest.mark.rtcim_emulator(messages_per_conversation=0)
def test_empty_conversation_messages(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    sid = groups(emu)[0]["ConversationShortId"]
    assert result(emu, MESSAGES, ConversationShortId=sid, Cursor=0, Limit=5) == {
        "Messages": [],
        "HasMore": False,
        "NewCursor": 1,
    }
    assert result(emu, MESSAGES, ConversationShortId=sid, Cursor=0, Limit=5, Reverse=1)["NewCursor"] == 0


def test_large_conversation_is_served_lazily() -> None:
    import tracemalloc

    with Emulator(qps_limit=None) as emu:
        sid = groups(emu, kind=2)[0]["ConversationShortId"]
        tracemalloc.start()
        try:
            emu.set_message_count(sid, 100_000)
            with requests.Session() as s:
                cursor = 0
                for _ in range(3):
                    body = {"AppId": emu.app_id, "ConversationShortId": sid, "Cursor": cursor, "Limit": 20}
                    page = api(emu, MESSAGES, body, session=s).json()["Result"]
                    cursor = page["NewCursor"]
                body = {"AppId": emu.app_id, "ConversationShortId": sid, "Cursor": 99_990, "Limit": 20}
                tail = api(emu, MESSAGES, body, session=s).json()["Result"]
                body = {
                    "AppId": emu.app_id,
                    "ConversationShortId": sid,
                    "Cursor": 0,
                    "Limit": 20,
                    "Reverse": 1,
                }
                newest = api(emu, MESSAGES, body, session=s).json()["Result"]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert cursor == 61 and page["HasMore"] is True
        assert [m["IndexInConversation"] for m in tail["Messages"]] == list(range(99_990, 100_001))
        assert tail["HasMore"] is False and tail["NewCursor"] == 100_001
        assert newest["Messages"][0]["IndexInConversation"] == 100_000 and newest["NewCursor"] == 99_980
        assert emu.message_count(sid) == 100_000
        assert emu.data_stats["stored_messages"] == 0  # nothing materialized
        assert peak < 5_000_000  # 100,000 message dicts would take well over 50 MB
        added = emu.add_message(sid)
        assert added["IndexInConversation"] == 100_001 and emu.data_stats["stored_messages"] == 1


# ----------------------------------------------------------------------------- details
def test_batch_get_conversations(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    convs = groups(emu)
    live = [c for c in convs if c["Status"] == 0]
    dissolved = [c for c in convs if c["Status"] == 1]
    ids = [c["ConversationShortId"] for c in live[:5]]
    got = result(emu, BATCH, ConversationShortId=[*ids, 1, ids[0]])["ConversationCoreInfos"]
    expected = [{k: v for k, v in c.items() if k != "MemberCount"} for c in live[:5]]
    assert got == expected == emu.batch_conversations([*ids, 1])  # SkipMemberCount defaults to true
    got = result(emu, BATCH, ConversationShortId=ids, SkipMemberCount=False)["ConversationCoreInfos"]
    assert got == live[:5] and all("MemberCount" in c for c in got)
    assert emu.conversation(ids[0]) == live[0]
    if dissolved:  # dissolved conversations cannot be queried
        sid = dissolved[0]["ConversationShortId"]
        assert result(emu, BATCH, ConversationShortId=[sid])["ConversationCoreInfos"] == []
    base = {"AppId": emu.app_id}
    for bad, code in (
        ({"ConversationShortId": list(range(1, 52))}, "InvalidParameter"),
        ({"ConversationShortId": []}, "InvalidParameter"),
        ({"ConversationShortId": ids[0]}, "InvalidParameter.Unmarshal"),
        ({"ConversationShortId": ["1"]}, "InvalidParameter.Unmarshal"),
        ({}, "MissingParameter"),
        ({"ConversationShortId": ids, "AppId": 7}, "InvalidParameter.NotExistAppId"),
    ):
        resp = api(emu, BATCH, {**base, **bad})
        assert resp.status_code == 400 and error_code(resp) == code, bad
    assert len(result(emu, BATCH, ConversationShortId=list(range(1, 51)))["ConversationCoreInfos"]) == 0


def test_every_action_is_signed_throttled_counted_and_unknown_is_404() -> None:
    with Emulator(qps_limit=1) as emu:
        sid = groups(emu)[0]["ConversationShortId"]
        bodies = {
            PARTICIPANTS: {"ConversationShortId": sid, "Cursor": 0, "Limit": 5},
            MESSAGES: {"ConversationShortId": sid, "Cursor": 0, "Limit": 5},
            BATCH: {"ConversationShortId": [sid]},
        }
        for action, body in bodies.items():
            unsigned = requests.post(f"{emu.url}/?Action={action}&Version=2020-12-01", json=body, timeout=10)
            assert unsigned.status_code == 401 and error_code(unsigned) == "MissingSignature"
        statuses = [api(emu, action, {"AppId": emu.app_id, **b}).status_code for action, b in bodies.items()]
        assert statuses.count(429) >= 1  # one request a second: the window is shared by every action
        resp = api(emu, "GetConversationMembers", {"AppId": emu.app_id})
        assert resp.status_code in (404, 429)
        stats = emu.stats
        assert stats["by_action"][PARTICIPANTS] == 2 and stats["by_action"][BATCH] == 2
        assert stats["by_action"]["GetConversationMembers"] == 1
    with Emulator(qps_limit=None) as emu:
        resp = api(emu, "GetConversationMembers", {"AppId": emu.app_id})
        assert resp.status_code == 404 and error_code(resp) == "InvalidActionOrVersion"
        resp = requests.post(f"{emu.url}/?Action={MESSAGES}&Version=2099-01-01", timeout=10)
        assert resp.status_code in (401, 404)
