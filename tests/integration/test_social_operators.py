"""Issue 18's five operators over HTTP: users, friends, blacklists, read positions, mute and block lists.

Each is a description in core/actions.py, a named hook method and a short operator module on
the shared base; these tests check what the shared base gives each of them (keys from
arguments or a file, XCom or an atomic file, the summary, checks before any request, the
loop guards) against the emulator's ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_rtcim.emulator import Emulator
from airflow_provider_rtcim.exceptions import RtcImInvalidArgument, RtcImListingFailed
from airflow_provider_rtcim.hooks.rtcim import RtcImHook
from airflow_provider_rtcim.operators.rtcim import (
    RtcImConversationBlockListOperator,
    RtcImConversationParticipantsOperator,
    RtcImConversationReadIndexesOperator,
    RtcImUserBlacklistOperator,
    RtcImUserFriendsOperator,
    RtcImUsersOperator,
)

SMALL = {"users": 4, "conversations_per_user": 10, "messages_per_conversation": 8}


def _read(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _group(emu: Emulator) -> int:
    return next(
        c["ConversationShortId"] for c in emu.conversations(emu.user_ids[0]) if c["ConversationType"] == 2
    )


@pytest.mark.rtcim_emulator(**SMALL)
def test_users_come_in_requests_of_50_and_the_unknown_are_counted_not_rows(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    members = [m["ParticipantUserId"] for sid in emu.conversation_ids() for m in emu.participants(sid)]
    known = list(dict.fromkeys(m for m in members if m))[:60]
    assert len(known) == 60
    ids = [*known, 7, 8]
    summary = RtcImUsersOperator(task_id="u", user_id=ids, output_path=str(tmp_path / "users.jsonl")).execute(
        {}
    )
    assert emu.stats["requests"] == 2  # 62 ids: 50 + 12
    truth = emu.batch_users(known[:50])["Users"] + emu.batch_users([*known[50:], 7, 8])["Users"]
    assert _read(summary["path"]) == truth  # the Users items exactly, nothing added
    assert (summary["count"], summary["users"], summary["not_found"]) == (60, 62, 2)
    # XCom: the same rows
    assert RtcImUsersOperator(task_id="x", user_id=ids).execute({}) == truth
    # the hook's named method tells both lists
    assert RtcImHook().batch_get_users([known[0], 7]) == emu.batch_users([known[0], 7])


@pytest.mark.rtcim_emulator(**SMALL)
def test_users_from_a_members_file_and_friends_and_blacklists_of_them(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    sid = _group(emu)
    members_file = tmp_path / "members.jsonl"
    RtcImConversationParticipantsOperator(
        task_id="m", conversation_short_id=sid, output_path=str(members_file)
    ).execute({})
    uids = [r["ParticipantUserId"] for r in _read(str(members_file))]
    friends = RtcImUserFriendsOperator(task_id="f", users_from=str(members_file), page_size=2).execute({})
    assert friends == [{**f, "UserId": u} for u in uids for f in emu.friends(u)]
    assert friends  # some member has friends
    blacklist = RtcImUserBlacklistOperator(task_id="b", users_from=str(members_file)).execute({})
    assert blacklist == [{**e, "UserId": u} for u in uids for e in emu.blacklist(u)]
    # a users file (UserId), and key_field= naming another field
    users_file = tmp_path / "users.jsonl"
    RtcImUsersOperator(task_id="u", users_from=str(members_file), output_path=str(users_file)).execute({})
    again = RtcImUserFriendsOperator(task_id="f2", users_from=str(users_file), key_range=[0, 2]).execute({})
    assert again == [{**f, "UserId": u} for u in uids[:2] for f in emu.friends(u)]
    friends_file = tmp_path / "friends.jsonl"
    friends_file.write_text("".join(json.dumps(f) + "\n" for f in friends))
    of_friends = RtcImUsersOperator(
        task_id="u2", users_from=str(friends_file), key_field="FriendUserId"
    ).execute({})
    assert [u["UserId"] for u in of_friends] == list(dict.fromkeys(f["FriendUserId"] for f in friends))


@pytest.mark.rtcim_emulator(**SMALL)
def test_read_positions_and_mute_and_block_lists_carry_their_conversation(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    sids = emu.conversation_ids()
    sid = _group(emu)
    member = emu.participants(sid)[0]["ParticipantUserId"]
    emu.set_read_index(sid, member, emu.message_count(sid))
    emu.set_block(sid, member, block_action=1, block_time=2_000_000_000)
    rows = RtcImConversationReadIndexesOperator(task_id="r", conversation_short_id=sids).execute({})
    assert rows == [{**r, "ConversationShortId": s} for s in sids for r in emu.read_indexes(s)]
    assert emu.stats["requests"] == len(sids)  # one request a conversation: no pages
    conversations_file = tmp_path / "conversations.jsonl"
    conversations_file.write_text("".join(json.dumps({"ConversationShortId": s}) + "\n" for s in sids))
    for action, code in (("mute", 0), ("block", 1)):
        summary = RtcImConversationBlockListOperator(
            task_id=f"k_{action}",
            conversations_from=str(conversations_file),
            block_action=action,
            page_size=1,
            output_path=str(tmp_path / f"{action}.jsonl"),
        ).execute({})
        truth = [{**p, "ConversationShortId": s} for s in sids for p in emu.block_participants(s, code)]
        assert _read(summary["path"]) == truth and summary["conversations"] == len(sids)
    assert any(
        r["ParticipantUserId"] == member and r["BlockTime"] == 2_000_000_000 for r in _read(summary["path"])
    )


@pytest.mark.rtcim_emulator(**SMALL)
def test_arguments_are_checked_before_any_request(rtcim_connection: Emulator, tmp_path: Path) -> None:
    emu = rtcim_connection
    sid = _group(emu)
    bad = [
        (
            RtcImConversationBlockListOperator,
            {"conversation_short_id": sid, "block_action": "ban"},
            "block_action",
        ),
        (RtcImUserFriendsOperator, {"user_id": emu.user_ids[0], "page_size": 21}, "page_size"),
        (RtcImUserBlacklistOperator, {"user_id": "alice"}, "user_id"),
        (RtcImUserFriendsOperator, {"user_id": emu.user_ids[0], "inbox_type": -1}, "inbox_type"),
        (RtcImUsersOperator, {"users_from": str(tmp_path / "none.jsonl")}, "users_from"),
    ]
    not_ids = tmp_path / "rows.jsonl"
    not_ids.write_text(json.dumps({"Name": "x"}) + "\n")
    bad.append((RtcImUsersOperator, {"users_from": str(not_ids)}, "has no ParticipantUserId or UserId"))
    for op_class, kwargs, words in bad:
        with pytest.raises(RtcImInvalidArgument, match=words):
            op_class(task_id="t", **kwargs).execute({})
    with pytest.raises(ValueError, match=r"pass user_id \(one id or a list\) or users_from"):
        RtcImUsersOperator(task_id="t")
    assert emu.stats["requests"] == 0


@pytest.mark.rtcim_emulator(**SMALL, string_users=2)
def test_string_user_ids_are_refused_where_the_api_has_no_string_field(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    emu_conn = json.loads(emu.connection_json())
    emu_conn["extra"]["user_id_type"] = "str"
    import os

    os.environ["AIRFLOW_CONN_RTCIM_STR"] = json.dumps(emu_conn)
    try:
        with pytest.raises(
            RtcImInvalidArgument, match=r'user_id: user_id_type="str" cannot be used here: .*UserId'
        ):
            RtcImUserFriendsOperator(task_id="t", user_id="007", rtcim_conn_id="rtcim_str").execute({})
        with pytest.raises(ValueError, match='user_id_type="str" cannot be used here'):
            RtcImHook("rtcim_str").iter_user_blacklist("007")
    finally:
        del os.environ["AIRFLOW_CONN_RTCIM_STR"]
    assert emu.stats["requests"] == 0


@pytest.mark.rtcim_emulator(**SMALL)
@pytest.mark.parametrize("anomaly", ["stuck_cursor", "endless_empty"])
def test_friend_listings_have_the_loop_guards(rtcim_connection: Emulator, anomaly: str) -> None:
    emu = rtcim_connection
    uid = max(emu.user_ids, key=lambda u: len(emu.friends(u)))
    emu.configure(anomalies={uid: anomaly})
    words = {"stuck_cursor": "stuck cursor", "endless_empty": "brought no new item"}[anomaly]
    with pytest.raises(
        RtcImListingFailed, match=rf"PaginationAnomaly: listing user_id={uid} failed: .*{words}"
    ):
        RtcImUserFriendsOperator(task_id="f", user_id=uid, page_size=1, max_pages=300).execute({})
