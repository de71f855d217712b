"""The emulator's data model: consistency, string users, data files, mutations, admin and CLI."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
import requests
from emulator_cli import start_cli_emulator, stop_cli_emulator
from test_emulator_actions import (
    CONVERSATIONS,
    MESSAGES,
    PARTICIPANTS,
    groups,
    result,
    walk_messages,
    walk_participants,
)

from airflow_provider_rtcim.core.signing import Credentials, sign_request
from airflow_provider_rtcim.emulator import Emulator


def every_conversation(emu: Emulator, uid: int | str) -> list[dict[str, Any]]:
    return [c for inbox in (0, 1) for c in emu.conversations(uid, inbox_type=inbox)]


def member_key(p: dict[str, Any]) -> int | str:
    return p["ParticipantUserId"] or p["ParticipantUserIdStr"]


def sender_key(m: dict[str, Any]) -> int | str:
    return m["Sender"] or m["SenderStr"]


def walk_conversations(emu: Emulator, limit: int = 7, **who: Any) -> list[int]:
    ids, cursor = [], 0
    for _ in range(100):
        page = result(emu, CONVERSATIONS, Cursor=cursor, Limit=limit, DataType=1, **who)
        ids += [c["ConversationShortId"] for c in page["ConversationInfos"]]
        if not page["HasMore"]:
            return ids
        cursor = page["NextCursor"]
    raise AssertionError("listing did not end")


# ----------------------------------------------------------------------------- generated data
def test_generated_conversations_are_unchanged_but_for_member_counts() -> None:
    """The ids, times, names and every other field of earlier releases (seed 0 and 7)."""
    expected = {
        0: "c428f76acb6c364f331759407a8033c019e580170613055aa61ed6fd79e36085",
        7: "a68da121f8ce941e9c79115602e1169ab7bd338613d00a4076ee41154449af3d",
    }
    for seed, digest in expected.items():
        for options in (
            {},
            {"string_users": 3, "messages_per_conversation": 4, "participants_per_conversation": 9},
        ):
            emu = Emulator(seed=seed, **options)
            rows = [
                {k: v for k, v in c.items() if k not in ("MemberCount", "OnlineCount")}
                for uid in emu.user_ids
                for c in every_conversation(emu, uid)
            ]
            text = json.dumps(rows, sort_keys=True, ensure_ascii=False).encode()
            assert hashlib.sha256(text).hexdigest() == digest, (seed, options)


def test_data_model_is_consistent() -> None:
    emu = Emulator(string_users=4, seed=2)
    users = [*emu.user_ids, *emu.string_user_ids]
    assert len(users) == 7
    seen = 0
    for uid in users:
        for conv in every_conversation(emu, uid):
            sid = conv["ConversationShortId"]
            members = [member_key(p) for p in emu.participants(sid)]
            assert uid in members
            assert len(members) == len(set(members)) == conv["MemberCount"]
            if conv["ConversationType"] == 1:
                assert len(members) == 2
                other = conv["OtherUserId"] or conv["OtherUserIdStr"]
                assert set(members) == {uid, other}
            for name in ("CreatorUserId", "OwnerUserId"):
                assert (conv[name] or conv[f"{name}Str"]) in members
            if conv["ConversationType"] == 100:
                assert 0 <= conv["OnlineCount"] <= conv["MemberCount"]
            assert {sender_key(m) for m in emu.messages(sid)} <= set(members)
            seen += 1
    assert seen == 7 * 45 == len(emu.conversation_ids())


def test_members_and_messages_are_deterministic_per_seed() -> None:
    def sample(seed: int) -> tuple[list, list]:
        emu = Emulator(seed=seed, users=1, conversations_per_user=8)
        ids = emu.conversation_ids()
        return [emu.participants(s) for s in ids], [emu.messages(s) for s in ids]

    assert sample(4) == sample(4)
    assert sample(4) != sample(5)
    emu = Emulator(users=2, conversations_per_user=40)
    counts = [emu.message_count(s) for s in emu.conversation_ids()]
    assert min(counts) == 0 and max(counts) == 12 and len(set(counts)) > 5  # 0..12, varying
    sizes = [len(emu.participants(c["ConversationShortId"])) for c in groups(emu, kind=2)]
    assert min(sizes) >= 3 and max(sizes) <= 12 and len(set(sizes)) > 2
    fixed = Emulator(
        users=1, conversations_per_user=10, messages_per_conversation=3, participants_per_conversation=6
    )
    for sid in fixed.conversation_ids():
        conv = fixed.conversation(sid)
        assert fixed.message_count(sid) == 3
        assert (
            len(fixed.participants(sid)) == (2 if conv["ConversationType"] == 1 else 6) == conv["MemberCount"]
        )
    for bad in (
        {"messages_per_conversation": -1},
        {"participants_per_conversation": "9"},
        {"string_users": -2},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Emulator(**bad)


# ----------------------------------------------------------------------------- string users
def test_string_users_ids_twins_and_requests() -> None:
    with Emulator(string_users=8, qps_limit=None) as emu:
        strings = emu.string_user_ids
        assert strings[:2] == ["007", "123"] and len(set(strings)) == 8
        assert {"用户-王芳", "zoë", "alice", "u_8f3a"} <= set(strings)
        assert all(isinstance(s, str) for s in strings) and "123" not in emu.user_ids
        assert 123 not in emu.user_ids and emu.user_ids == [1_000_001, 1_000_002, 1_000_003]
        convs = every_conversation(emu, "007")
        assert len(convs) == 45 and not set(c["ConversationShortId"] for c in convs) & {
            c["ConversationShortId"] for uid in emu.user_ids for c in every_conversation(emu, uid)
        }
        for conv in convs:
            assert conv["CreatorUserId"] == 0 and conv["OwnerUserId"] == 0
            assert isinstance(conv["CreatorUserIdStr"], str) and isinstance(conv["OwnerUserIdStr"], str)
            if conv["ConversationType"] == 1:
                assert conv["OtherUserId"] == 0 and conv["OtherUserIdStr"] not in ("", "0")
        sid = next(c["ConversationShortId"] for c in convs if c["ConversationType"] == 2)
        parts, _ = walk_participants(emu, sid, limit=4)
        assert parts == emu.participants(sid)
        assert all(p["ParticipantUserId"] == 0 and p["ParticipantUserIdStr"] for p in parts)
        assert all(p["Operator"] == 0 and p["OperatorStr"] for p in parts)
        assert "007" in [p["ParticipantUserIdStr"] for p in parts]
        messages, _, _ = walk_messages(emu, sid)
        assert all(m["Sender"] == 0 and m["SenderStr"] for m in messages)
        # requests: "007" verbatim, the way the Go SDK sends it (ParticipantUserId 0 beside it)
        truth = [c["ConversationShortId"] for c in emu.conversations("007")]
        assert walk_conversations(emu, ParticipantUserId=0, ParticipantUserIdStr="007") == truth
        assert walk_conversations(emu, ParticipantUserIdStr="007") == truth
        for other in (
            {"ParticipantUserIdStr": "7"},
            {"ParticipantUserIdStr": "007 "},
            {"ParticipantUserId": 7},
        ):
            assert walk_conversations(emu, **other) == []
        assert walk_conversations(emu, ParticipantUserIdStr="用户-王芳") == [
            c["ConversationShortId"] for c in emu.conversations("用户-王芳")
        ]
        live = emu.conversations("007", data_type=2)
        assert all(c["CreatorUserIdStr"] == "007" and c["ConversationType"] == 100 for c in live)


DATA = {
    "app_ids": [4242],
    "users": {
        "123": [
            {
                "ConversationShortId": 9_007_199_254_740_993,
                "ConversationType": 2,
                "Name": "共享群 🍻",
                "MemberCount": 6,
            },
            {"ConversationShortId": 9_007_199_254_740_999, "ConversationType": 1, "OtherUserId": 5},
        ],
        "88": [{"ConversationShortId": 9_007_199_254_740_993}],
    },
    "string_users": {
        "123": [{"ConversationShortId": 9_007_199_254_741_001, "ConversationType": 2}],
        "alice": [
            {"ConversationShortId": 9_007_199_254_741_003, "ConversationType": 1, "OtherUserIdStr": "bob"}
        ],
        " alice": [],
    },
    "participants": {
        "9007199254741001": ["bob", {"ParticipantUserIdStr": "007", "Role": 2, "NickName": "管理员"}, 77],
    },
    "messages": {
        "9007199254741001": [
            {"SenderStr": "007", "Content": '{"text":"你好"}'},
            {"SenderStr": "carol", "Content": {"text": "我也来了 🙋"}, "MsgType": 10012},
        ],
        "9007199254740999": [],
    },
}


def test_data_file_sections_and_string_users(tmp_path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(DATA, ensure_ascii=False), encoding="utf-8")
    with Emulator(data=str(path), qps_limit=None) as emu:
        assert emu.user_ids == [123, 88] and emu.string_user_ids == ["123", "alice", " alice"]
        shared = 9_007_199_254_740_993
        assert shared in [c["ConversationShortId"] for c in emu.conversations(88)]
        assert shared in [c["ConversationShortId"] for c in emu.conversations(123)]
        assert emu.conversation_ids().count(shared) == 1
        members = [member_key(p) for p in emu.participants(shared)]
        assert members[:2] == [123, 88] and len(members) == 6 == emu.conversation(shared)["MemberCount"]
        # "123" the string user and 123 the int user are different users
        assert [c["ConversationShortId"] for c in emu.conversations("123")] == [9_007_199_254_741_001]
        assert walk_conversations(emu, ParticipantUserIdStr="123") == [9_007_199_254_741_001]
        assert walk_conversations(emu, ParticipantUserId=123) == [shared, 9_007_199_254_740_999]
        assert emu.conversations(" alice") == [] and len(emu.conversations("alice")) == 1
        one = emu.conversation(9_007_199_254_741_003)
        assert (
            one["CreatorUserId"] == 0
            and one["CreatorUserIdStr"] == "alice"
            and one["OtherUserIdStr"] == "bob"
        )
        assert {member_key(p) for p in emu.participants(9_007_199_254_741_003)} == {"alice", "bob"}
        group = 9_007_199_254_741_001
        parts, _ = walk_participants(emu, group, limit=2)
        assert [member_key(p) for p in parts] == ["bob", "007", 77, "123", "carol"]
        admin = parts[1]
        assert admin["Role"] == 2 and admin["NickName"] == "管理员" and admin["ParticipantUserId"] == 0
        assert parts[2]["ParticipantUserId"] == 77 and parts[2]["ParticipantUserIdStr"] == "77"
        messages, end, _ = walk_messages(emu, group)
        assert [m["IndexInConversation"] for m in messages] == [1, 2] and end == 3
        assert messages[0]["Content"] == '{"text":"你好"}' and messages[0]["SenderStr"] == "007"
        assert (
            json.loads(messages[1]["Content"]) == {"text": "我也来了 🙋"} and messages[1]["MsgType"] == 10012
        )
        assert messages[1]["CreateTime"] > messages[0]["CreateTime"] and messages[0]["MessageId"] > 2**53
        assert emu.messages(9_007_199_254_740_999) == []
    for bad, match in (
        ({**DATA, "participants": {"1": [5]}}, "unknown conversation"),
        ({**DATA, "string_users": ["x"]}, "string_users"),
        ({**DATA, "users": {"abc": []}}, "string_users"),
        ({**DATA, "messages": {"9007199254741001": [5]}}, "message objects"),
    ):
        with pytest.raises(ValueError, match=match):
            Emulator(data=bad)


# ----------------------------------------------------------------------------- mutations
def test_participant_mutations_keep_the_model_consistent() -> None:
    with Emulator(qps_limit=None) as emu:
        a, b = emu.user_ids[:2]
        conv = groups(emu, kind=2, uid=a)[0]
        sid, count = conv["ConversationShortId"], conv["MemberCount"]
        assert sid not in walk_conversations(emu, ParticipantUserId=b)
        added = emu.add_participant(sid, b, Role=2, NickName="新成员 🎉", Marks=["vip"])
        assert added["ParticipantUserId"] == b and added["Role"] == 2 and added["NickName"] == "新成员 🎉"
        assert emu.conversation(sid)["MemberCount"] == count + 1
        parts, _ = walk_participants(emu, sid, limit=3)
        assert parts[-1] == added and parts == emu.participants(sid)
        assert parts[-1]["CreateTime"] >= parts[-2]["CreateTime"]
        assert sid in walk_conversations(emu, ParticipantUserId=b)  # a known user lists it now
        stranger = emu.add_participant(sid, "访客-1")
        assert stranger["ParticipantUserId"] == 0 and "访客-1" not in emu.string_user_ids
        emu.add_message(sid, sender="访客-1", content="hi")
        assert emu.messages(sid)[-1]["SenderStr"] == "访客-1"
        removed = emu.remove_participant(sid, b)
        assert removed["ParticipantUserId"] == b
        assert sid not in walk_conversations(emu, ParticipantUserId=b)
        assert emu.conversation(sid)["MemberCount"] == count + 1  # b left, the guest stays
        with pytest.raises(KeyError):
            emu.remove_participant(sid, b)
        with pytest.raises(KeyError):
            emu.add_participant(1, b)
        # a conversation two users list is one record: the second lister joins it
        shared = emu.add_conversation(b, ConversationShortId=sid)
        assert shared["ConversationShortId"] == sid and emu.conversation_ids().count(sid) == 1
        assert b in [member_key(p) for p in emu.participants(sid)]
        emu.remove_conversation(a, sid)
        assert emu.conversation(sid) is not None  # b still lists it
        emu.remove_conversation(b, sid)
        assert emu.conversation(sid) is None and sid not in emu.conversation_ids()


def test_added_conversation_has_its_members_and_no_messages(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    conv = emu.add_conversation("007", ConversationType=1, OtherUserIdStr="zoë", Name="私聊")
    assert conv["CreatorUserId"] == 0 and conv["CreatorUserIdStr"] == "007" and conv["MemberCount"] == 2
    assert "007" in emu.string_user_ids
    assert [member_key(p) for p in emu.participants(conv["ConversationShortId"])] == ["007", "zoë"]
    assert emu.messages(conv["ConversationShortId"]) == []
    big = emu.add_conversation(emu.user_ids[0], ConversationType=2, MemberCount=250)
    assert len(emu.participants(big["ConversationShortId"])) == 250


# ----------------------------------------------------------------------------- admin endpoints
def test_admin_conversation_endpoints(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    base = emu.url + "/_emulator"
    ids = requests.get(base + "/conversations", timeout=10).json()["conversation_ids"]
    assert ids == emu.conversation_ids() and len(ids) == 135
    sid = groups(emu, kind=2)[0]["ConversationShortId"]
    assert requests.get(f"{base}/conversations/{sid}", timeout=10).json() == emu.conversation(sid)
    assert requests.get(f"{base}/conversations/1", timeout=10).status_code == 404
    listed = requests.get(f"{base}/conversations/{sid}/participants?reverse=1", timeout=10).json()
    assert listed["Participants"] == emu.participants(sid, reverse=True)
    resp = requests.post(
        f"{base}/conversations/{sid}/participants", json={"user_id": "007", "Role": 2}, timeout=10
    )
    assert (
        resp.status_code == 201 and resp.json()["ParticipantUserIdStr"] == "007" and resp.json()["Role"] == 2
    )
    resp = requests.post(f"{base}/conversations/{sid}/participants", json={"user_id": 7}, timeout=10)
    assert resp.status_code == 201 and resp.json()["ParticipantUserId"] == 7
    resp = requests.delete(f"{base}/conversations/{sid}/participants/007", timeout=10)  # the string member
    assert resp.status_code == 200 and resp.json()["ParticipantUserIdStr"] == "007"
    assert (
        requests.delete(f"{base}/conversations/{sid}/participants/7", timeout=10).json()["ParticipantUserId"]
        == 7
    )
    assert requests.delete(f"{base}/conversations/{sid}/participants/7", timeout=10).status_code == 404
    assert requests.post(f"{base}/conversations/{sid}/participants", json={}, timeout=10).status_code == 400
    before = emu.message_count(sid)
    resp = requests.post(f"{base}/conversations/{sid}/messages", json={"content": "来自 HTTP 📮"}, timeout=10)
    assert resp.status_code == 201 and resp.json()["IndexInConversation"] == before + 1
    resp = requests.post(f"{base}/conversations/{sid}/messages", json={"count": 3}, timeout=10)
    assert [m["IndexInConversation"] for m in resp.json()["Messages"]] == [before + 2, before + 3, before + 4]
    got = requests.get(f"{base}/conversations/{sid}/messages", timeout=10).json()["Messages"]
    assert got == emu.messages(sid) and got[before]["Content"] == "来自 HTTP 📮"
    resp = requests.post(f"{base}/conversations/{sid}/messages", json={"message_count": 100_000}, timeout=10)
    assert resp.json()["message_count"] == 100_000 and emu.data_stats["stored_messages"] == 0
    assert requests.post(f"{base}/conversations/1/messages", json={"count": 1}, timeout=10).status_code == 404
    resp = requests.post(f"{base}/conversations/{sid}/messages", json={"sender": 5}, timeout=10)
    assert resp.status_code == 400 and "not a member" in resp.json()["error"]


def test_admin_string_users() -> None:
    with Emulator(string_users=3, data=None) as emu:
        base = emu.url + "/_emulator"
        assert requests.get(base + "/users", timeout=10).json() == {
            "user_ids": emu.user_ids,
            "string_user_ids": ["007", "123", "alice"],
        }
        assert requests.get(base + "/health", timeout=10).json()["string_user_ids"] == emu.string_user_ids
        got = requests.get(base + "/users/007/conversations?data_type=1", timeout=10).json()[
            "ConversationInfos"
        ]
        assert got == emu.conversations("007")
        # "123": no int user 123, a string user "123": the string user; ?kind=int asks for the int
        got = requests.get(base + "/users/123/conversations", timeout=10).json()["ConversationInfos"]
        assert got == emu.conversations("123") and got
        assert (
            requests.get(base + "/users/123/conversations?kind=int", timeout=10).json()["ConversationInfos"]
            == []
        )
        quoted = requests.utils.quote("用户 王", safe="")
        resp = requests.post(f"{base}/users/{quoted}/conversations", json={"Name": "x"}, timeout=10)
        assert resp.status_code == 201 and resp.json()["CreatorUserIdStr"] == "用户 王"
        resp = requests.post(f"{base}/users/1000001/conversations?kind=str", json={"Name": "y"}, timeout=10)
        assert resp.json()["CreatorUserId"] == 0 and "1000001" in emu.string_user_ids
        assert 1_000_001 in emu.user_ids
        assert requests.get(base + "/users/1/conversations?kind=float", timeout=10).status_code == 400


# ----------------------------------------------------------------------------- CLI
def test_cli_new_options_and_ready_file(tmp_path) -> None:
    ready = tmp_path / "ready.json"
    args = ["--port", "0", "--users", "1", "--conversations", "4", "--string-users", "2", "--messages", "3"]
    args += ["--participants", "5", "--participants-last-page-has-more", "--anomaly", "str:007=stuck_cursor"]
    args += ["--qps", "0"]
    proc, info = start_cli_emulator(ready, *args)
    try:
        assert info["user_ids"] == [1_000_001] and info["string_user_ids"] == ["007", "123"]
        config = requests.get(info["url"] + "/_emulator/config", timeout=10).json()
        assert config["participants_last_page_has_more"] is True and config["anomalies"] == {
            "str:007": "stuck_cursor"
        }
        ids = requests.get(info["url"] + "/_emulator/conversations", timeout=10).json()["conversation_ids"]
        assert len(ids) == 12
        creds = Credentials(info["access_key_id"], info["secret_access_key"], region=info["region"])
        for action, limit, key in ((PARTICIPANTS, 100, "Participants"), (MESSAGES, 20, "Messages")):
            raw = json.dumps(
                {"AppId": info["app_id"], "ConversationShortId": ids[0], "Cursor": 0, "Limit": limit}
            )
            url = f"{info['url']}/?Action={action}&Version=2020-12-01"
            headers = sign_request(
                creds, method="POST", url=url, headers={"Content-Type": "application/json"}, body=raw.encode()
            )
            page = requests.post(url, data=raw, headers=headers, timeout=10).json()["Result"]
            assert len(page[key]) in ((2, 5) if key == "Participants" else (3,))
            if key == "Participants":
                assert page["HasMore"] is True and page["NextCursor"] == -1
    finally:
        out, err = stop_cli_emulator(proc)
    assert proc.returncode == 0, err
    assert "string user ids: ['007', '123']" in out


def test_conversation_added_now_looks_like_a_seeded_one(rtcim_emulator: Emulator) -> None:
    """Issue 19: a conversation added with the admin API is a one-to-one with two members and an
    OtherUserId, created "now" like the messages added to it."""
    emu = rtcim_emulator
    uid = emu.user_ids[0]
    before = int(time.time())
    resp = requests.post(f"{emu.url}/_emulator/users/{uid}/conversations", json={}, timeout=10)
    after = int(time.time())
    assert resp.status_code == 201
    conv = resp.json()
    sid, other = conv["ConversationShortId"], conv["OtherUserId"]
    seeded = next(c for c in emu.conversations(uid) if c["ConversationType"] == 1)
    assert conv["ConversationType"] == 1 and conv["MemberCount"] == 2
    assert isinstance(other, int) and other not in (0, uid) and conv["OtherUserIdStr"] == str(other)
    assert set(seeded) - {"Ext", "Status", "Name"} <= set(conv)  # the fields a seeded one-to-one has
    assert conv["ConversationId"] == f"0:1:{min(uid, other)}:{max(uid, other)}"
    assert before <= conv["CreateTime"] <= after + 1 and conv["ModifyTime"] >= conv["CreateTime"]
    assert [member_key(p) for p in emu.participants(sid)] == [uid, other]
    message = emu.add_messages(sid, 1)[0]
    assert conv["CreateTime"] * 1000 <= message["CreateTime"] <= (after + 2) * 1000
    assert emu.batch_users([other])["NotFoundUsers"] == []  # the other user is a user too
    string_conv = emu.add_conversation("007")
    assert string_conv["OtherUserId"] == 0 and string_conv["OtherUserIdStr"].startswith("u_")
    assert [member_key(p) for p in emu.participants(string_conv["ConversationShortId"])] == [
        "007",
        string_conv["OtherUserIdStr"],
    ]
    group = emu.add_conversation(uid, ConversationType=2, Name="新群")
    assert "OtherUserId" not in group and group["ConversationId"] == f"2:{group['ConversationShortId']:x}"
