"""Action descriptions (core/actions.py) and the locked lazy property (core/lazy.py): pure, no network."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from airflow_provider_rtcim.core.actions import (
    ACTIONS,
    BATCH_GET_BLOCK_PARTICIPANTS,
    BATCH_GET_CONVERSATIONS,
    BATCH_GET_USER,
    CONVERSATION,
    GET_BLACK_LIST,
    GET_CONVERSATION_MESSAGES,
    GET_PARTICIPANT_READ_INDEX,
    GET_USER_CONVERSATIONS,
    LIST_FRIEND,
    SCAN_CONVERSATION_PARTICIPANTS,
    USER,
    Key,
    PagedAction,
    action_named,
)
from airflow_provider_rtcim.core.lazy import lazy_lock, locked_cached_property
from airflow_provider_rtcim.core.pagination import Listing, page_problem


def test_every_action_is_named_once_and_found_by_name() -> None:
    assert set(ACTIONS) == {
        "GetUserConversations",
        "ScanConversationParticipantList",
        "GetConversationMessages",
        "BatchGetConversations",
        "BatchGetUser",
        "ListFriend",
        "GetBlackList",
        "GetParticipantReadIndex",
        "BatchGetBlockParticipants",
    }
    for name, action in ACTIONS.items():
        assert action.name == name
        assert action_named(name) is action
        assert action_named(action) is action
    with pytest.raises(
        ValueError,
        match=r"action must be one of BatchGetBlockParticipants, BatchGetConversations, .*got 'ListUsers'",
    ):
        action_named("ListUsers")


def test_request_body_fills_defaults_and_checks_each_field_once() -> None:
    # the defaults are the description's: DataType 1 (the stable order), not the API's 0
    assert GET_USER_CONVERSATIONS.request_body() == {"DataType": 1, "InboxType": 0, "SkipMemberCount": False}
    assert GET_USER_CONVERSATIONS.request_body({"data_type": "0", "skip_member_count": True}) == {
        "DataType": 0,
        "InboxType": 0,
        "SkipMemberCount": True,
    }
    with pytest.raises(ValueError, match=r"data_type must be one of 0 .*got 7"):
        GET_USER_CONVERSATIONS.request_body({"data_type": 7})
    with pytest.raises(TypeError, match="GetUserConversations takes no argument reverse"):
        GET_USER_CONVERSATIONS.request_body({"reverse": True})
    # a real bool for the hook's callers; a rendered template's text for the operators
    with pytest.raises(ValueError, match=r"reverse must be True or False, got 'true'"):
        GET_CONVERSATION_MESSAGES.request_body({"reverse": "true"})
    assert GET_CONVERSATION_MESSAGES.request_body({"reverse": "true"}, rendered=True) == {"Reverse": 1}
    assert BATCH_GET_CONVERSATIONS.request_body() == {"SkipMemberCount": True}


def test_an_optional_field_is_not_sent_while_unset() -> None:
    body = SCAN_CONVERSATION_PARTICIPANTS.request_body({"mark_type": None})
    assert "MarkType" not in body
    assert "MarkType" not in SCAN_CONVERSATION_PARTICIPANTS.request_body({"mark_type": "  "}, rendered=True)
    assert SCAN_CONVERSATION_PARTICIPANTS.request_body({"mark_type": "vip"})["MarkType"] == "vip"
    with pytest.raises(ValueError, match="mark_type must be a non-empty string or None"):
        SCAN_CONVERSATION_PARTICIPANTS.request_body({"mark_type": ""})


def test_keys_check_send_and_land_in_rows() -> None:
    assert USER.check("10001", "participant_user_id") == 10001
    assert USER.check("007", "participant_user_id", "str") == "007"
    assert USER.body(10001) == {"ParticipantUserId": 10001}
    assert USER.body("007") == {"ParticipantUserId": 0, "ParticipantUserIdStr": "007"}
    assert CONVERSATION.check("42", "conversation_short_id") == 42
    with pytest.raises(ValueError, match="conversation_short_id must be a positive integer"):
        CONVERSATION.check(0, "conversation_short_id")
    no_twin = Key(arg="user_id", api="UserId", label="user", user=True)
    with pytest.raises(
        ValueError, match=r'user_id: user_id_type="str" cannot be used here: .*no string form of UserId'
    ):
        no_twin.check("alice", "user_id", "str")
    # the conversations operator's rows always say whom they were listed for; members keep their own
    assert GET_USER_CONVERSATIONS.add_key({"ParticipantUserId": 5}, 7) == {"ParticipantUserId": 7}
    assert GET_USER_CONVERSATIONS.add_key({}, "007") == {"ParticipantUserIdStr": "007"}
    assert SCAN_CONVERSATION_PARTICIPANTS.add_key({"ConversationShortId": 9}, 8) == {"ConversationShortId": 9}
    assert GET_CONVERSATION_MESSAGES.add_key({}, 8) == {"ConversationShortId": 8}


def test_the_page_size_limit_is_the_descriptions() -> None:
    assert all(a.max_page_size == 20 for a in ACTIONS.values() if isinstance(a, PagedAction))
    assert BATCH_GET_CONVERSATIONS.max_keys == 20
    assert (BATCH_GET_USER.max_keys, BATCH_GET_USER.keys_api, BATCH_GET_USER.missing_key) == (
        50,
        "UserIds",
        "NotFoundUsers",
    )


def test_the_further_actions_describe_their_dialects() -> None:
    for action in (LIST_FRIEND, GET_BLACK_LIST, BATCH_GET_BLOCK_PARTICIPANTS):
        assert action.negative_cursor_ends and action.paginated
    assert BATCH_GET_BLOCK_PARTICIPANTS.request_body() == {"BlockAction": 0}
    assert BATCH_GET_BLOCK_PARTICIPANTS.request_body({"block_action": " Block "}, rendered=True) == {
        "BlockAction": 1
    }
    for bad in ("ban", True, 2, None):
        with pytest.raises(ValueError, match=r'block_action must be "mute" .* or "block"'):
            BATCH_GET_BLOCK_PARTICIPANTS.request_body({"block_action": bad})
    # one page, no cursor, no page size: the body is the key and AppId only
    assert not GET_PARTICIPANT_READ_INDEX.paginated
    assert GET_PARTICIPANT_READ_INDEX.page_body({"ConversationShortId": 9}, cursor=0, limit=20) == {
        "ConversationShortId": 9
    }
    assert LIST_FRIEND.add_key({"FriendUserId": 3}, 7) == {"FriendUserId": 3, "UserId": 7}
    with pytest.raises(ValueError, match='user_id_type="str" cannot be used here'):
        LIST_FRIEND.key.check("007", "user_id", "str")


def test_a_one_page_action_needs_no_has_more_and_dedupes() -> None:
    pages = {
        0: {
            "ReadIndexes": [
                {"ParticipantUserId": 1, "ReadIndex": 3},
                {"ParticipantUserId": 1, "ReadIndex": 3},
            ]
        }
    }
    sent: list[int] = []

    def fetch(cursor: int) -> dict[str, Any]:
        sent.append(cursor)
        return pages[cursor]

    listing = Listing(fetch, spec=GET_PARTICIPANT_READ_INDEX)
    assert list(listing) == [{"ParticipantUserId": 1, "ReadIndex": 3}]
    assert (sent, listing.pages, listing.duplicates) == ([0], 1, 1)
    assert (
        page_problem({"ReadIndexes": {}}, "ReadIndexes", paginated=False) == "ReadIndexes is dict, not a list"
    )


class _Built:
    def __init__(self) -> None:
        self.calls = 0

    @locked_cached_property
    def value(self) -> int:
        self.calls += 1
        time.sleep(0.01)  # widen the race: every thread arrives while the first one builds
        return self.calls


def test_a_locked_cached_property_is_built_once_under_a_race_and_again_once_forgotten() -> None:
    obj = _Built()
    seen: list[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(obj.value)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [1] * 8 and obj.calls == 1
    with lazy_lock(obj):
        del obj.value
    assert obj.value == 2
    assert isinstance(_Built.value, locked_cached_property)
