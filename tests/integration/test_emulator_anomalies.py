"""Pagination anomalies and faults on the conversation actions, over signed HTTP."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from test_emulator_actions import BATCH, MESSAGES, PARTICIPANTS, api, error_code, groups, result

from airflow_provider_rtcim.emulator import ALL_ANOMALY_KINDS, ANOMALY_KINDS, MESSAGE_ANOMALY_KINDS, Emulator

SIZED = {"participants_per_conversation": 25, "messages_per_conversation": 25, "qps_limit": None}


def naive(
    emu: Emulator, action: str, sid: int, n: int, limit: int = 10, cursor: int = 0, **extra: Any
) -> list[dict]:
    """Up to ``n`` pages following the cursor blindly while HasMore."""
    field = "NewCursor" if action == MESSAGES else "NextCursor"
    pages = []
    for _ in range(n):
        page = result(emu, action, ConversationShortId=sid, Cursor=cursor, Limit=limit, **extra)
        pages.append({"sent": cursor, **page})
        if not page["HasMore"]:
            break
        cursor = page[field]
    return pages


def items(page: dict) -> list[int]:
    if "Messages" in page:
        return [m["IndexInConversation"] for m in page["Messages"]]
    return [p["ParticipantUserId"] for p in page["Participants"]]


def truth(emu: Emulator, action: str, sid: int) -> list[int]:
    if action == MESSAGES:
        return [m["IndexInConversation"] for m in emu.messages(sid)]
    return [p["ParticipantUserId"] for p in emu.participants(sid)]


def test_anomaly_kinds_are_exported() -> None:
    assert ANOMALY_KINDS == (
        "stuck_cursor",
        "negative_cursor",
        "empty_pages",
        "repeated_page",
        "endless_empty",
    )
    assert MESSAGE_ANOMALY_KINDS == ("cursor_restart", "cursor_repeat")
    assert ALL_ANOMALY_KINDS == ANOMALY_KINDS + MESSAGE_ANOMALY_KINDS


@pytest.mark.parametrize("action", [PARTICIPANTS, MESSAGES])
def test_stuck_cursor(action: str) -> None:
    with Emulator(**SIZED) as emu:
        sid = groups(emu, kind=2)[0]["ConversationShortId"]
        emu.configure(anomalies={sid: "stuck_cursor"})
        field = "NewCursor" if action == MESSAGES else "NextCursor"
        pages = naive(emu, action, sid, 6)
        assert len(pages) == 6 and all(p["HasMore"] for p in pages)
        assert all(p[field] == p["sent"] for p in pages[1:]) and pages[1]["sent"] != 0
        assert items(pages[2]) == items(pages[1])
        other = groups(emu, kind=2)[1]["ConversationShortId"]  # keyed by conversation: others are fine
        assert len(naive(emu, action, other, 10)) == 3


@pytest.mark.parametrize("action", [PARTICIPANTS, MESSAGES])
def test_negative_cursor(action: str) -> None:
    with Emulator(anomalies={"*": "negative_cursor"}, **SIZED) as emu:
        sid = groups(emu, kind=2)[0]["ConversationShortId"]
        first = result(emu, action, ConversationShortId=sid, Cursor=0, Limit=10)
        field = "NewCursor" if action == MESSAGES else "NextCursor"
        assert first["HasMore"] is True and first[field] == -1 and len(items(first)) == 10
        resp = api(emu, action, {"AppId": emu.app_id, "ConversationShortId": sid, "Cursor": -1, "Limit": 10})
        assert resp.status_code == 400 and error_code(resp) == "InvalidParameter"


@pytest.mark.parametrize("action", [PARTICIPANTS, MESSAGES])
@pytest.mark.parametrize("reverse", [False, True])
def test_empty_pages_listing_stays_complete(action: str, reverse: bool) -> None:
    with Emulator(anomalies={"*": "empty_pages"}, **SIZED) as emu:
        sid = groups(emu, kind=2)[0]["ConversationShortId"]
        extra = {"Reverse": int(reverse) if action == MESSAGES else reverse}
        pages = naive(emu, action, sid, 50, limit=4, **extra)
        empties = [p for p in pages if not items(p)]
        assert empties and all(p["HasMore"] for p in empties)
        assert items(pages[0]) and not items(pages[1])
        expected = truth(emu, action, sid)
        assert [i for p in pages for i in items(p)] == (expected[::-1] if reverse else expected)
        if action == MESSAGES:
            assert pages[-1]["NewCursor"] == (0 if reverse else 26)


@pytest.mark.parametrize("action", [PARTICIPANTS, MESSAGES])
def test_repeated_page_then_continues(action: str) -> None:
    with Emulator(anomalies={"*": "repeated_page"}, **SIZED) as emu:
        sid = groups(emu, kind=2)[0]["ConversationShortId"]
        pages = naive(emu, action, sid, 50, limit=4)
        assert items(pages[1]) == items(pages[0]) and pages[1]["HasMore"]
        collected = [i for p in pages for i in items(p)]
        expected = truth(emu, action, sid)
        assert len(collected) == len(expected) + 4  # page 1 once more, then the rest exactly once
        assert list(dict.fromkeys(collected)) == expected


@pytest.mark.parametrize("action", [PARTICIPANTS, MESSAGES])
def test_endless_empty(action: str) -> None:
    with Emulator(**SIZED) as emu:
        sid = groups(emu, kind=2)[0]["ConversationShortId"]
        emu.configure(anomalies={sid: "endless_empty"})
        pages = naive(emu, action, sid, 30)
        assert len(pages) == 30 and all(p["HasMore"] and not items(p) for p in pages)
        field = "NewCursor" if action == MESSAGES else "NextCursor"
        cursors = [p[field] for p in pages]
        assert len(set(cursors)) == 30 and all(c > 0 for c in cursors)
        emu.configure(anomalies={})  # its cursors are invalid once it is off
        resp = api(
            emu, action, {"AppId": emu.app_id, "ConversationShortId": sid, "Cursor": cursors[3], "Limit": 10}
        )
        assert resp.status_code == 400 and error_code(resp) == "InvalidParameter"


def test_cursor_restart_starts_a_resumed_listing_again() -> None:
    with Emulator(**SIZED) as emu:
        sid = groups(emu, kind=2)[0]["ConversationShortId"]
        emu.configure(anomalies={sid: "cursor_restart"})
        pages = naive(emu, MESSAGES, sid, 10)
        assert [i for p in pages for i in items(p)] == list(range(1, 26))
        assert pages[-1]["HasMore"] is False and pages[-1]["NewCursor"] == 0
        emu.add_message(sid)
        resumed = naive(emu, MESSAGES, sid, 10, cursor=pages[-1]["NewCursor"])
        assert [i for p in resumed for i in items(p)] == list(range(1, 27))  # from the beginning again


def test_cursor_repeat_repeats_the_last_page() -> None:
    with Emulator(anomalies={"*": "cursor_repeat"}, **SIZED) as emu:
        sid = groups(emu, kind=2)[0]["ConversationShortId"]
        pages = naive(emu, MESSAGES, sid, 10)
        assert items(pages[-1]) == [21, 22, 23, 24, 25] and pages[-1]["NewCursor"] == 21
        emu.add_messages(sid, 2)
        resumed = naive(emu, MESSAGES, sid, 10, cursor=pages[-1]["NewCursor"])
        assert [i for p in resumed for i in items(p)] == [21, 22, 23, 24, 25, 26, 27]
        # participants have no such dialect: the message-only kinds leave them alone
        got = naive(emu, PARTICIPANTS, sid, 10)
        assert [i for p in got for i in items(p)] == truth(emu, PARTICIPANTS, sid)


def test_anomaly_keys_name_users_conversations_and_string_users() -> None:
    with Emulator(string_users=2, **SIZED) as emu:
        sid = groups(emu, kind=2)[0]["ConversationShortId"]
        emu.configure(
            anomalies={str(sid): "stuck_cursor", "str:007": "negative_cursor", "alice": "empty_pages"}
        )
        assert emu.anomalies == {sid: "stuck_cursor", "007": "negative_cursor", "alice": "empty_pages"}
        assert emu.config["anomalies"] == {
            str(sid): "stuck_cursor",
            "str:007": "negative_cursor",
            "str:alice": "empty_pages",
        }
        body = {"ParticipantUserIdStr": "007", "Cursor": 0, "Limit": 5, "DataType": 1}
        page = result(emu, "GetUserConversations", **body)
        assert page["HasMore"] is True and page["NextCursor"] == -1
        # "007" the string user is not the int 7, nor the int user whose anomaly is unset
        page = result(emu, "GetUserConversations", ParticipantUserId=emu.user_ids[0], Cursor=0, Limit=5)
        assert page["NextCursor"] > 0
        with pytest.raises(ValueError, match="anomalies"):
            emu.configure(anomalies={"*": "cursor_reset"})
        with pytest.raises(ValueError, match="anomalies"):
            emu.configure(anomalies={1.5: "stuck_cursor"})


# ----------------------------------------------------------------------------- faults
def bodies(emu: Emulator) -> dict[str, dict[str, Any]]:
    sid = groups(emu, kind=2)[0]["ConversationShortId"]
    return {
        PARTICIPANTS: {"AppId": emu.app_id, "ConversationShortId": sid, "Cursor": 0, "Limit": 5},
        MESSAGES: {"AppId": emu.app_id, "ConversationShortId": sid, "Cursor": 0, "Limit": 5},
        BATCH: {"AppId": emu.app_id, "ConversationShortId": [sid]},
    }


@pytest.mark.parametrize("action", [PARTICIPANTS, MESSAGES, BATCH])
@pytest.mark.parametrize(
    ("kind", "status", "code"), [("503", 503, "ServiceUnavailableTemp"), ("error200", 200, "InternalError")]
)
def test_status_faults_on_each_action(action: str, kind: str, status: int, code: str) -> None:
    with Emulator(fault_rate=1.0, fault_kinds=[kind], qps_limit=None) as emu, requests.Session() as s:
        body = bodies(emu)[action]
        for _ in range(3):
            resp = api(emu, action, body, session=s)
            assert resp.status_code == status and error_code(resp) == code
        resp = api(emu, action, body, session=s)
        assert resp.status_code == 200 and "Error" not in resp.json()["ResponseMetadata"]
        assert emu.stats["faults_injected"] == {kind: 3}


@pytest.mark.parametrize("action", [PARTICIPANTS, MESSAGES, BATCH])
@pytest.mark.parametrize(
    ("kind", "exc"),
    [("reset", requests.exceptions.ConnectionError), ("truncate", requests.exceptions.ChunkedEncodingError)],
)
def test_transport_faults_on_each_action(action: str, kind: str, exc: type[Exception]) -> None:
    with Emulator(fault_rate=1.0, fault_kinds=[kind], max_consecutive_faults=1, qps_limit=None) as emu:
        body = bodies(emu)[action]
        with requests.Session() as s, pytest.raises(exc):
            api(emu, action, body, session=s).json()
        with requests.Session() as s:
            assert api(emu, action, body, session=s).status_code == 200


def test_fault_decisions_are_per_action_and_deterministic() -> None:
    def outcomes(emu: Emulator) -> list[int]:
        seen = []
        for action, body in bodies(emu).items():
            for limit in (3, 4, 5, 6):
                if "Limit" in body:
                    sent = dict(body, Limit=limit)
                else:  # another id list, another key
                    sent = dict(body, ConversationShortId=[*body["ConversationShortId"], limit])
                seen.append(api(emu, action, sent).status_code)
        return seen

    options = {"fault_rate": 0.5, "fault_kinds": "500", "fault_seed": 5, "qps_limit": None}
    with Emulator(**options) as a, Emulator(**options) as b:
        first = outcomes(a)
        assert first == outcomes(b)
        assert set(first) == {200, 500}
    with Emulator(fault_rate=1.0, fault_kinds="500", qps_limit=None) as emu:
        for _ in range(3):
            assert set(outcomes(emu)) == {500}
        assert set(outcomes(emu)) == {200}  # the 4th try of every key goes through
