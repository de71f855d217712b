"""The emulator's further read actions over real HTTP, signed: BatchGetUser, ListFriend, GetBlackList,
GetParticipantReadIndex and BatchGetBlockParticipants (dialects, errors, string users, faults,
anomalies, the QPS limit, seeded consistency) and their admin endpoints."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from test_emulator_actions import api, error_code, groups, result

from airflow_provider_rtcim.emulator import Emulator

USERS = "BatchGetUser"
FRIENDS = "ListFriend"
BLACKLIST = "GetBlackList"
READ = "GetParticipantReadIndex"
BLOCKS = "BatchGetBlockParticipants"
FAST = {"qps_limit": None, "messages_per_conversation": 8}


def walk(
    emu: Emulator, action: str, items: str, limit: int = 3, **body: Any
) -> tuple[list[dict], list[dict]]:
    """Every page of a NextCursor listing until a negative NextCursor; returns (items, pages)."""
    got: list[dict] = []
    pages: list[dict] = []
    cursor = 0
    for _ in range(1000):
        page = result(emu, action, Cursor=cursor, Limit=limit, **body)
        pages.append(page)
        got += page[items]
        if page["NextCursor"] < 0:
            assert page["HasMore"] is False
            return got, pages
        assert page["HasMore"] is True and page["NextCursor"] > 0
        cursor = page["NextCursor"]
    raise AssertionError(f"{action} did not end")


def admin(emu: Emulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{emu.url}/_emulator{path}", timeout=10, **kwargs)


def bad(emu: Emulator, action: str, body: dict[str, Any]) -> str:
    resp = api(emu, action, {"AppId": emu.app_id, **body})
    assert resp.status_code == 400, resp.text
    return error_code(resp)


def member_ids(emu: Emulator, sid: int) -> list[Any]:
    return [p["ParticipantUserId"] or p["ParticipantUserIdStr"] for p in emu.participants(sid)]


# ----------------------------------------------------------------------------- BatchGetUser
@pytest.mark.rtcim_emulator(**FAST)
def test_batch_get_user_finds_users_and_members_and_lists_the_rest(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    group = groups(emu, kind=2)[0]
    members = [k for k in member_ids(emu, group["ConversationShortId"]) if isinstance(k, int)]
    unknown = [5, 123456789, 10**17]
    ids = [*emu.user_ids, *members, *unknown, emu.user_ids[0]]  # a repeat is answered once
    page = result(emu, USERS, UserIds=ids)
    found = [u["UserId"] for u in page["Users"]]
    assert found == list(dict.fromkeys([*emu.user_ids, *members]))
    assert page["NotFoundUsers"] == unknown
    assert page == emu.batch_users(ids)
    for user in page["Users"]:
        assert {"AppId", "UserId", "NickName", "Portrait", "Ext", "CreateTime", "ModifyTime"} <= set(user)
        assert user["AppId"] == emu.app_id and isinstance(user["Ext"], dict)
        assert 1_600_000_000_000 < user["CreateTime"] <= user["ModifyTime"] < 1_900_000_000_000  # ms
        assert set(user) <= {"AppId", "UserId", "NickName", "Portrait", "Ext", "CreateTime", "ModifyTime"} | {
            "Tags",
            "IsRobot",
        }
    assert any("Tags" in u for u in page["Users"]) and any("IsRobot" in u for u in page["Users"])
    # a one-to-one partner is a registered user too
    other = groups(emu, kind=1)[0]["OtherUserId"]
    assert result(emu, USERS, UserIds=[other])["Users"][0]["UserId"] == other


@pytest.mark.rtcim_emulator(**FAST)
def test_batch_get_user_errors(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    assert bad(emu, USERS, {"UserIds": list(range(1, 52))}) == "InvalidParameter"  # at most 50
    assert bad(emu, USERS, {"UserIds": []}) == "InvalidParameter"
    assert bad(emu, USERS, {"UserIds": ["007"]}) == "InvalidParameter.Unmarshal"  # int64 only: no *Str twin
    assert bad(emu, USERS, {"UserIds": 1000001}) == "InvalidParameter.Unmarshal"
    assert bad(emu, USERS, {}) == "MissingParameter"
    resp = api(emu, USERS, {"AppId": 424242, "UserIds": [1]})
    assert resp.status_code == 400 and error_code(resp) == "InvalidParameter.NotExistAppId"
    assert len(result(emu, USERS, UserIds=list(range(1, 51)))["NotFoundUsers"]) == 50


# ----------------------------------------------------------------------------- ListFriend
@pytest.mark.rtcim_emulator(users=6, **FAST)
def test_list_friend_walk_is_the_ground_truth_and_friendship_is_symmetric(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    listed = 0
    for uid in emu.user_ids:
        got, pages = walk(emu, FRIENDS, "FriendInfos", limit=2, UserId=uid)
        assert got == emu.friends(uid) and got
        assert pages[-1]["NextCursor"] == -1 and all(p["TotalCount"] == 0 for p in pages)
        times = [(f["CreateTime"], f["FriendUserId"]) for f in got]
        assert times == sorted(times)  # the first friend added first
        registered = result(emu, USERS, UserIds=[f["FriendUserId"] for f in got])
        assert registered["NotFoundUsers"] == []
        for f in got:
            assert {"FriendUserId", "Alias", "ApplyTime", "CreateTime", "ModifyTime"} <= set(f)
            assert f["ApplyTime"] <= f["CreateTime"] <= f["ModifyTime"]
            back = {g["FriendUserId"]: g for g in emu.friends(f["FriendUserId"])}
            assert uid in back and back[uid]["CreateTime"] == f["CreateTime"]
        listed += len(got)
    assert listed > 2 * len(emu.user_ids)
    uid = emu.user_ids[0]
    page = result(emu, FRIENDS, UserId=uid, Cursor=0, NeedTotal=True)  # Limit defaults to 20
    assert page["TotalCount"] == len(emu.friends(uid)) and len(page["FriendInfos"]) == min(
        20, page["TotalCount"]
    )
    assert result(emu, FRIENDS, UserId=uid, Cursor=0, Limit=20, InboxType=1)["FriendInfos"] == []


@pytest.mark.rtcim_emulator(users=4, **FAST)
def test_list_friend_errors_and_cursors(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    a, b = emu.user_ids[:2]
    assert bad(emu, FRIENDS, {"UserId": a, "Cursor": 0, "Limit": 21}) == "InvalidParameter"
    assert bad(emu, FRIENDS, {"UserId": a, "Cursor": 0, "Limit": 0}) == "InvalidParameter"
    assert bad(emu, FRIENDS, {"Cursor": 0, "Limit": 5}) == "MissingParameter"
    assert bad(emu, FRIENDS, {"UserId": "1000001", "Cursor": 0}) == "InvalidParameter.Unmarshal"
    assert bad(emu, FRIENDS, {"UserId": a, "Cursor": 0, "NeedTotal": 1}) == "InvalidParameter.Unmarshal"
    assert bad(emu, FRIENDS, {"UserId": a, "Cursor": 12345, "Limit": 2}) == "InvalidParameter"
    first = result(emu, FRIENDS, UserId=a, Cursor=0, Limit=1)
    assert first["HasMore"] is True
    # a cursor is bound to its listing: another user's listing rejects it
    assert bad(emu, FRIENDS, {"UserId": b, "Cursor": first["NextCursor"], "Limit": 1}) == "InvalidParameter"
    # an unknown user (and UserId 0, what a string-id app would have to send) has no friends
    for uid in (0, 424242):
        page = result(emu, FRIENDS, UserId=uid, Cursor=0, Limit=5, NeedTotal=True)
        assert page == {"FriendInfos": [], "HasMore": False, "NextCursor": -1, "TotalCount": 0}


# ----------------------------------------------------------------------------- GetBlackList
@pytest.mark.rtcim_emulator(users=8, **FAST)
def test_get_black_list_newest_first_entries_are_users(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    entries = 0
    with_friend = 0
    for uid in emu.user_ids:
        got, pages = walk(emu, BLACKLIST, "BlackListInfos", limit=1, UserId=uid, NeedTotal=True)
        assert got == emu.blacklist(uid)
        assert all(p["TotalCount"] == len(got) for p in pages)
        created = [(e["CreateTime"], e["BlackListUserId"]) for e in got]
        assert created == sorted(created, reverse=True)  # newest first
        if got:
            ids = [e["BlackListUserId"] for e in got]
            assert result(emu, USERS, UserIds=ids)["NotFoundUsers"] == []
        friends = {f["FriendUserId"]: f for f in emu.friends(uid)}
        for e in got:
            assert e["CreateTime"] <= e["ModifyTime"] and e["BlackListUserId"] != uid
            if "FriendUserInfo" in e:
                with_friend += 1
                assert e["FriendUserInfo"] == friends[e["BlackListUserId"]]
            else:
                assert e["BlackListUserId"] not in friends
        entries += len(got)
    assert entries >= 4 and with_friend >= 1
    a = emu.user_ids[0]
    assert bad(emu, BLACKLIST, {"UserId": a, "Cursor": 0}) == "MissingParameter"  # Limit is required here
    assert bad(emu, BLACKLIST, {"UserId": a, "Cursor": 0, "Limit": 21}) == "InvalidParameter"
    assert bad(emu, BLACKLIST, {"UserId": a, "Cursor": -5, "Limit": 2}) == "InvalidParameter"


# ----------------------------------------------------------------------------- GetParticipantReadIndex
@pytest.mark.rtcim_emulator(string_users=2, **FAST)
def test_read_indexes_are_members_within_the_last_message(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    listed = 0
    for uid in (emu.user_ids[0], "007"):
        for conv in groups(emu, uid=uid)[:15]:
            sid = conv["ConversationShortId"]
            page = result(emu, READ, ConversationShortId=sid)
            assert set(page) == {"ReadIndexes"} and page["ReadIndexes"] == emu.read_indexes(sid)
            members = member_ids(emu, sid)
            last = emu.message_count(sid)
            for item in page["ReadIndexes"]:
                key = item["ParticipantUserId"] or item["ParticipantUserIdStr"]
                assert key in members and 0 < item["ReadIndex"] <= last
                if isinstance(uid, str):
                    assert item["ParticipantUserId"] == 0 and isinstance(item["ParticipantUserIdStr"], str)
            listed += len(page["ReadIndexes"])
    assert listed > 10
    assert result(emu, READ, ConversationShortId=1)["ReadIndexes"] == []  # unknown conversation
    assert bad(emu, READ, {}) == "MissingParameter"
    assert bad(emu, READ, {"ConversationShortId": "x"}) == "InvalidParameter.Unmarshal"


# ----------------------------------------------------------------------------- BatchGetBlockParticipants
@pytest.mark.rtcim_emulator(participants_per_conversation=40, **FAST)
def test_block_participants_mute_list_matches_member_block_times(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    counts = {0: 0, 1: 0}
    for conv in groups(emu, kind=2)[:12]:
        sid = conv["ConversationShortId"]
        members = {p["ParticipantUserId"]: p for p in emu.participants(sid)}
        for action in (0, 1):
            got, _pages = walk(
                emu, BLOCKS, "Participants", limit=2, ConversationShortId=sid, BlockAction=action
            )
            assert got == emu.block_participants(sid, action)
            for p in got:
                member = members[p["ParticipantUserId"]]
                assert p["ParticipantUserIdStr"] == str(p["ParticipantUserId"])
                assert p["AvatarUrl"] == member["AvatarUrl"] and p["Marks"] == member["Marks"]
                assert p["BlockTime"] > p["CreateTime"] >= member["CreateTime"]  # seconds
                if action == 0:
                    assert p["BlockTime"] == member["BlockTime"]
            counts[action] += len(got)
        muted = [k for k, p in members.items() if p["BlockTime"]]
        assert [p["ParticipantUserId"] for p in emu.block_participants(sid)] == muted
    assert counts[0] >= 3 and counts[1] >= 3
    sid = groups(emu, kind=2)[0]["ConversationShortId"]
    default = result(emu, BLOCKS, ConversationShortId=sid, Cursor=0, Limit=20)
    assert default["Participants"] == emu.block_participants(sid, 0)[:20]  # BlockAction 0 by default
    assert bad(emu, BLOCKS, {"ConversationShortId": sid, "Cursor": 0, "Limit": 21}) == "InvalidParameter"
    assert bad(emu, BLOCKS, {"ConversationShortId": sid, "Cursor": 0, "Limit": 5, "BlockAction": 2}) == (
        "InvalidParameter"
    )
    assert bad(emu, BLOCKS, {"ConversationShortId": sid, "Limit": 5}) == "MissingParameter"
    empty = result(emu, BLOCKS, ConversationShortId=1, Cursor=0, Limit=5)
    assert empty == {"Participants": [], "HasMore": False, "NextCursor": -1}


# ----------------------------------------------------------------------------- faults, anomalies, QPS, signatures
@pytest.mark.rtcim_emulator(fault_rate=1.0, fault_kinds="500", max_consecutive_faults=2, **FAST)
def test_every_new_action_is_faulted_then_served(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    uid = emu.user_ids[0]
    sid = groups(emu, kind=2)[0]["ConversationShortId"]
    calls = [
        (USERS, {"UserIds": [uid]}),
        (FRIENDS, {"UserId": uid, "Cursor": 0, "Limit": 5}),
        (BLACKLIST, {"UserId": uid, "Cursor": 0, "Limit": 5}),
        (READ, {"ConversationShortId": sid}),
        (BLOCKS, {"ConversationShortId": sid, "Cursor": 0, "Limit": 5}),
    ]
    for action, body in calls:
        statuses = [api(emu, action, {"AppId": emu.app_id, **body}).status_code for _ in range(3)]
        assert statuses == [500, 500, 200], action
    assert emu.stats["faults_injected"] == {"500": 10}


@pytest.mark.rtcim_emulator(users=6, **FAST)
def test_anomalies_apply_to_the_new_listings(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    uid = max(emu.user_ids, key=lambda u: len(emu.friends(u)))
    emu.configure(anomalies={uid: "stuck_cursor"})
    first = result(emu, FRIENDS, UserId=uid, Cursor=0, Limit=1)
    second = result(emu, FRIENDS, UserId=uid, Cursor=first["NextCursor"], Limit=1)
    assert second["HasMore"] is True and second["NextCursor"] == first["NextCursor"]  # stuck
    emu.configure(anomalies={"*": "negative_cursor"})
    page = result(emu, BLACKLIST, UserId=uid, Cursor=0, Limit=1)
    if len(emu.blacklist(uid)) > 1:
        assert page["HasMore"] is True and page["NextCursor"] == -1
    sid = groups(emu, kind=2)[0]["ConversationShortId"]
    emu.configure(anomalies={sid: "endless_empty"})
    page = result(emu, BLOCKS, ConversationShortId=sid, Cursor=0, Limit=5, BlockAction=1)
    assert page["Participants"] == [] and page["HasMore"] is True and page["NextCursor"] > 0


@pytest.mark.rtcim_emulator(qps_limit=3, messages_per_conversation=2)
def test_qps_limit_and_signatures_cover_the_new_actions(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    body = {"AppId": emu.app_id, "UserIds": [emu.user_ids[0]]}
    statuses = [api(emu, USERS, body).status_code for _ in range(5)]
    assert statuses.count(429) >= 1 and statuses[0] == 200
    resp = requests.post(f"{emu.url}/?Action={FRIENDS}&Version=2020-12-01", json=body, timeout=10)
    assert resp.status_code == 401 and error_code(resp) == "MissingSignature"


# ----------------------------------------------------------------------------- string users, determinism
@pytest.mark.rtcim_emulator(users=0, string_users=3, **FAST)
def test_string_user_app_has_no_profiles_friends_or_blacklists(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    assert emu.user_ids == [] and emu.string_user_ids[:2] == ["007", "123"]
    for action, items in ((FRIENDS, "FriendInfos"), (BLACKLIST, "BlackListInfos")):
        page = result(emu, action, UserId=0, UserIdStr="007", Cursor=0, Limit=5)  # UserIdStr is not a field
        assert page[items] == [] and page["NextCursor"] == -1
    assert bad(emu, USERS, {"UserIds": ["007"]}) == "InvalidParameter.Unmarshal"
    with pytest.raises(ValueError, match="int64 only"):
        emu.friends("007")
    resp = admin(emu, "POST", "/users/007/friends", json={"user_id": "123"})
    assert resp.status_code == 400 and "user id" in resp.json()["error"]
    # string members still have read positions and mute entries, named by ParticipantUserIdStr
    sid = groups(emu, kind=2, uid="007")[0]["ConversationShortId"]
    emu.set_read_index(sid, "007", emu.message_count(sid))
    items = result(emu, READ, ConversationShortId=sid)["ReadIndexes"]
    assert {
        "ParticipantUserId": 0,
        "ParticipantUserIdStr": "007",
        "ReadIndex": emu.message_count(sid),
    } in items


def test_seeded_social_data_is_deterministic() -> None:
    def snapshot(seed: int) -> tuple:
        emu = Emulator(users=5, conversations_per_user=10, seed=seed, messages_per_conversation=6)
        sid = emu.conversation_ids()[3]
        return (
            [emu.friends(u) for u in emu.user_ids],
            [emu.blacklist(u) for u in emu.user_ids],
            emu.batch_users(emu.user_ids),
            emu.read_indexes(sid),
            [emu.block_participants(s, 0) for s in emu.conversation_ids()],
        )

    assert snapshot(3) == snapshot(3)
    assert snapshot(3) != snapshot(4)


# ----------------------------------------------------------------------------- admin API
@pytest.mark.rtcim_emulator(users=3, **FAST)
def test_admin_users_friends_and_blacklist(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    a = emu.user_ids[0]
    resp = admin(emu, "POST", "/users", json={"user_id": 555, "NickName": "新来的 🐣", "Tags": ["beta"]})
    assert resp.status_code == 201 and resp.json()["NickName"] == "新来的 🐣"
    user = result(emu, USERS, UserIds=[555])["Users"][0]
    assert user["NickName"] == "新来的 🐣" and user["Tags"] == ["beta"] and user["UserId"] == 555
    assert admin(emu, "GET", "/users/555").json() == emu.user(555)
    assert admin(emu, "GET", "/users/556").status_code == 404
    seeded = emu.user(a)
    renamed = admin(emu, "POST", "/users", json={"user_id": a, "NickName": "改名了"}).json()
    assert renamed["CreateTime"] == seeded["CreateTime"] and renamed["ModifyTime"] > seeded["ModifyTime"]
    assert result(emu, USERS, UserIds=[a])["Users"] == [renamed]
    assert admin(emu, "POST", "/users", json={"user_id": "007"}).status_code == 400  # int64 only

    before = len(emu.friends(a))
    resp = admin(emu, "POST", f"/users/{a}/friends", json={"user_id": 555, "Alias": "小新"})
    assert resp.status_code == 201 and resp.json()["Alias"] == "小新"
    got, _ = walk(emu, FRIENDS, "FriendInfos", limit=20, UserId=a)
    assert len(got) == before + 1 and got[-1]["FriendUserId"] == 555  # added last
    assert [f["FriendUserId"] for f in result(emu, FRIENDS, UserId=555, Cursor=0)["FriendInfos"]] == [a]
    assert admin(emu, "GET", "/users/555/friends").json()["FriendInfos"][0]["FriendUserId"] == a

    resp = admin(emu, "POST", f"/users/{a}/blacklist", json={"user_id": 555, "BlackListUserExt": {"r": "1"}})
    assert resp.status_code == 201
    first = result(emu, BLACKLIST, UserId=a, Cursor=0, Limit=1)["BlackListInfos"][0]
    assert first["BlackListUserId"] == 555 and first["BlackListUserExt"] == {"r": "1"}  # newest first
    assert first["FriendUserInfo"]["Alias"] == "小新"
    assert admin(emu, "DELETE", f"/users/{a}/blacklist/555").status_code == 200
    assert 555 not in [e["BlackListUserId"] for e in emu.blacklist(a)]
    assert admin(emu, "DELETE", f"/users/{a}/friends/555").status_code == 200
    assert emu.friends(555) == [] and len(emu.friends(a)) == before
    assert admin(emu, "DELETE", f"/users/{a}/friends/555").status_code == 404
    assert admin(emu, "POST", f"/users/{a}/friends", json={"Alias": "x"}).status_code == 400


@pytest.mark.rtcim_emulator(**FAST)
def test_admin_read_indexes_and_blocks(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    sid = groups(emu, kind=2)[0]["ConversationShortId"]
    uid = emu.user_ids[0]
    last = emu.message_count(sid)
    resp = admin(emu, "POST", f"/conversations/{sid}/read_indexes", json={"user_id": uid, "read_index": last})
    assert resp.status_code == 200
    items = {
        i["ParticipantUserId"]: i["ReadIndex"]
        for i in result(emu, READ, ConversationShortId=sid)["ReadIndexes"]
    }
    assert items[uid] == last
    admin(emu, "POST", f"/conversations/{sid}/read_indexes", json={"user_id": uid, "read_index": 0})
    assert uid not in {i["ParticipantUserId"] for i in emu.read_indexes(sid)}  # 0: not listed
    too_far = admin(
        emu, "POST", f"/conversations/{sid}/read_indexes", json={"user_id": uid, "read_index": last + 1}
    )
    assert too_far.status_code == 400
    stranger = admin(emu, "POST", f"/conversations/{sid}/read_indexes", json={"user_id": 5, "read_index": 1})
    assert stranger.status_code == 400
    assert admin(emu, "GET", f"/conversations/{sid}/read_indexes").json()["ReadIndexes"] == emu.read_indexes(
        sid
    )

    entries = {}
    for action in (0, 1):
        resp = admin(
            emu, "POST", f"/conversations/{sid}/blocks", json={"user_id": uid, "block_action": action}
        )
        assert resp.status_code == 201 and resp.json()["ParticipantUserId"] == uid
        got, _ = walk(emu, BLOCKS, "Participants", limit=20, ConversationShortId=sid, BlockAction=action)
        entry = entries[action] = next(p for p in got if p["ParticipantUserId"] == uid)
        assert entry["BlockTime"] > entry["CreateTime"] > 1_700_000_000  # "now", seconds
        listed = admin(emu, "GET", f"/conversations/{sid}/blocks?block_action={action}").json()[
            "Participants"
        ]
        assert listed == got
    member = next(p for p in emu.participants(sid) if p["ParticipantUserId"] == uid)
    assert member["BlockTime"] == entries[0]["BlockTime"]  # muting shows on the member
    assert admin(emu, "DELETE", f"/conversations/{sid}/blocks/{uid}?block_action=mute").status_code == 200
    assert uid not in [p["ParticipantUserId"] for p in emu.block_participants(sid, 0)]
    assert next(p for p in emu.participants(sid) if p["ParticipantUserId"] == uid)["BlockTime"] == 0
    assert admin(emu, "DELETE", f"/conversations/{sid}/blocks/{uid}?block_action=mute").status_code == 404
    outsider = admin(emu, "POST", f"/conversations/{sid}/blocks", json={"user_id": 5, "block_action": 1})
    assert outsider.status_code == 400
    assert admin(emu, "GET", f"/conversations/{sid}/blocks?block_action=7").status_code == 400
