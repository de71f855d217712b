"""The shared read engine's pure core: action descriptions, key sources, the bounded fan-out.

No network here: these are the pieces every operator stands on, tested with fakes so that
each guard can be driven exactly (HTTP tests of the operators are in test_operator.py and
test_im_operators.py).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_rtcim.core.actions import (
    ACTIONS,
    GET_CONVERSATION_MESSAGES,
    GET_USER_CONVERSATIONS,
    SCAN_CONVERSATION_PARTICIPANTS,
    PagedAction,
)
from airflow_provider_rtcim.core.errors import RtcImError
from airflow_provider_rtcim.core.fanout import Cancelled, FanOut, StoppedError
from airflow_provider_rtcim.core.keys import (
    conversation_ids_from_jsonl,
    distinct_keys,
    keys_from_lines,
    parse_key_list,
    parse_key_range,
    plan_key_ranges,
)
from airflow_provider_rtcim.core.pagination import Listing
from airflow_provider_rtcim.core.validation import validate_int_user_id

# ---------------------------------------------------------------------------------------
# descriptions and their pagination dialects
# ---------------------------------------------------------------------------------------


def test_each_action_names_its_own_dialect() -> None:
    assert {name for name, a in ACTIONS.items() if isinstance(a, PagedAction)} == {
        "GetUserConversations",
        "ScanConversationParticipantList",
        "GetConversationMessages",
        "ListFriend",
        "GetBlackList",
        "GetParticipantReadIndex",
        "BatchGetBlockParticipants",
    }
    assert (GET_USER_CONVERSATIONS.items_key, GET_USER_CONVERSATIONS.next_cursor_field) == (
        "ConversationInfos",
        "NextCursor",
    )
    assert SCAN_CONVERSATION_PARTICIPANTS.items_key == "Participants"
    assert SCAN_CONVERSATION_PARTICIPANTS.negative_cursor_ends
    assert GET_CONVERSATION_MESSAGES.next_cursor_field == "NewCursor"
    assert GET_CONVERSATION_MESSAGES.position_key == "IndexInConversation"


def test_participant_ids_fall_back_to_the_string_twin() -> None:
    spec = SCAN_CONVERSATION_PARTICIPANTS
    assert spec.id_of({"ParticipantUserId": 7, "ParticipantUserIdStr": "7"}) == 7
    assert spec.id_of({"ParticipantUserId": 0, "ParticipantUserIdStr": "007"}) == "007"
    assert spec.id_of({"ParticipantUserId": 0, "ParticipantUserIdStr": ""}) is None
    assert spec.id_of({"ParticipantUserId": True}) is None


class Pages:
    """A fake fetcher: cursor -> Result; records the cursors sent."""

    def __init__(self, pages: dict[int, dict[str, Any]]) -> None:
        self.pages, self.sent = pages, []

    def __call__(self, cursor: int) -> dict[str, Any]:
        self.sent.append(cursor)
        return self.pages[cursor]


def _messages(*indexes: int) -> list[dict[str, Any]]:
    return [{"MessageId": 10**18 + i, "IndexInConversation": i} for i in indexes]


def test_messages_follow_new_cursor_and_tell_where_to_resume() -> None:
    fake = Pages(
        {
            0: {"Messages": _messages(1, 2), "HasMore": True, "NewCursor": 3},
            3: {"Messages": _messages(3), "HasMore": False, "NewCursor": 4},
        }
    )
    listing = Listing(fake, spec=GET_CONVERSATION_MESSAGES)
    assert [m["IndexInConversation"] for m in listing] == [1, 2, 3]
    assert fake.sent == [0, 3]
    assert (listing.resume_cursor, listing.last_position, listing.pages) == (4, 3, 2)


@pytest.mark.parametrize(
    ("last_cursor", "resume"),
    [(0, 0), (3, 3), (None, 3), (-1, 3)],
    ids=["restarts-at-0", "repeats-last-page", "missing", "negative"],
)
def test_a_resumed_listing_never_doubles_a_message_whatever_the_cursor(last_cursor: Any, resume: int) -> None:
    """Resume after position 3: a cursor that restarts or repeats brings back old messages,
    which are dropped by IndexInConversation; a missing cursor resumes from the last one sent."""
    pages = {
        0: {"Messages": _messages(1, 2, 3), "HasMore": True, "NewCursor": 3},
        3: {"Messages": _messages(3, 4, 5), "HasMore": False},
    }
    if last_cursor is not None:
        pages[3]["NewCursor"] = last_cursor
    listing = Listing(Pages(pages), spec=GET_CONVERSATION_MESSAGES, after_position=3)
    assert [m["IndexInConversation"] for m in listing] == [4, 5]
    assert listing.skipped == 4 and listing.last_position == 5
    assert listing.resume_cursor == resume


def test_after_position_needs_an_action_with_positions() -> None:
    with pytest.raises(ValueError, match="no position"):
        Listing(Pages({}), spec=GET_USER_CONVERSATIONS, after_position=3)


def test_a_message_without_a_position_is_malformed() -> None:
    fake = Pages({0: {"Messages": [{"MessageId": 5}], "HasMore": False, "NewCursor": 1}})
    with pytest.raises(RtcImError, match="IndexInConversation") as info:
        list(Listing(fake, spec=GET_CONVERSATION_MESSAGES))
    assert info.value.code == "MalformedResponse"


def test_a_negative_next_cursor_ends_a_member_listing_whatever_has_more_says() -> None:
    member = {"ParticipantUserId": 1}
    fake = Pages(
        {
            0: {"Participants": [member], "HasMore": True, "NextCursor": 5},
            5: {"Participants": [{"ParticipantUserId": 2}], "HasMore": True, "NextCursor": -1},
        }
    )
    ids = [p["ParticipantUserId"] for p in Listing(fake, spec=SCAN_CONVERSATION_PARTICIPANTS)]
    assert ids == [1, 2] and fake.sent == [0, 5]
    # for conversations the same page is an anomaly, not an end
    fake2 = Pages({0: {"ConversationInfos": [{"ConversationShortId": 1}], "HasMore": True, "NextCursor": -1}})
    with pytest.raises(RtcImError, match="negative NextCursor") as info:
        list(Listing(fake2, spec=GET_USER_CONVERSATIONS))
    assert info.value.code == "PaginationAnomaly"


def test_stuck_new_cursor_names_the_field() -> None:
    fake = Pages({0: {"Messages": _messages(1), "HasMore": True, "NewCursor": 0}})
    with pytest.raises(RtcImError, match="NewCursor 0 equals the cursor just sent") as info:
        list(Listing(fake, spec=GET_CONVERSATION_MESSAGES))
    assert info.value.code == "PaginationAnomaly"


def test_string_member_ids_are_deduplicated() -> None:
    fake = Pages(
        {
            0: {"Participants": [{"ParticipantUserIdStr": "007"}], "HasMore": True, "NextCursor": 1},
            1: {
                "Participants": [{"ParticipantUserIdStr": "007"}, {"ParticipantUserIdStr": "7"}],
                "HasMore": False,
            },
        }
    )
    listing = Listing(fake, spec=SCAN_CONVERSATION_PARTICIPANTS)
    assert [p["ParticipantUserIdStr"] for p in listing] == ["007", "7"]
    assert listing.duplicates == 1


# ---------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------


def test_key_lists_and_ranges() -> None:
    assert parse_key_list("[1, 2]", field="f", validate=validate_int_user_id) == [1, 2]
    assert parse_key_list("3, 4", field="f", validate=validate_int_user_id) == [3, 4]
    with pytest.raises(ValueError, match=r"f\[1\]"):
        parse_key_list([1, "x"], field="f", validate=validate_int_user_id)
    assert parse_key_range(None) is None
    assert parse_key_range([2, 5]) == (2, 5)
    assert parse_key_range("[2, null]") == (2, None)
    assert parse_key_range({"start": 1, "stop": 2}) == (1, 2)
    for bad in ([5, 2], [-1, 3], [1], "x", [1.5, 2], [True, 3]):
        with pytest.raises(ValueError, match="key_range"):
            parse_key_range(bad)


def test_distinct_keys_slice_the_distinct_keys_in_order() -> None:
    source = [5, 1, 5, 2, 1, 3, 4]
    assert list(distinct_keys(source)) == [5, 1, 2, 3, 4]
    assert list(distinct_keys(source, key_range=(1, 3))) == [1, 2]
    assert list(distinct_keys(source, key_range=(4, None))) == [4]
    assert list(distinct_keys(source, key_range=(9, 12))) == []
    # ranges that cover 0..n take every key exactly once
    ranges = plan_key_ranges(5, batch_size=2)
    assert [k for r in ranges for k in distinct_keys(source, key_range=tuple(r))] == [5, 1, 2, 3, 4]


def test_distinct_keys_stream_and_stop_reading_at_the_range_end() -> None:
    read = []

    def source() -> Iterator[int]:
        for i in range(1_000_000):
            read.append(i)
            yield i

    assert list(distinct_keys(source(), key_range=(10, 13))) == [10, 11, 12]
    assert len(read) == 14  # stops right after the range; never reads the million


def test_plan_key_ranges_fit_the_map_length() -> None:
    assert plan_key_ranges(7, batch_size=3) == [[0, 3], [3, 6], [6, 7]]
    assert plan_key_ranges(0, batch_size=3) == []
    plan = plan_key_ranges(51_201, batch_size=50, max_tasks=1024)
    assert len(plan) <= 1024 and plan[0][0] == 0 and plan[-1][1] == 51_201
    assert all(a[1] == b[0] for a, b in itertools.pairwise(plan))
    with pytest.raises(ValueError, match="batch_size"):
        plan_key_ranges(3, batch_size=0)


def test_key_files() -> None:
    lines = [b"1\n", b"\n", b" 2 \r\n", b"3"]
    assert list(keys_from_lines(lines, source="ids.txt", validate=validate_int_user_id)) == [1, 2, 3]
    with pytest.raises(ValueError, match=r"ids\.txt line 2"):
        list(keys_from_lines([b"1\n", b"x\n"], source="ids.txt", validate=validate_int_user_id))
    rows = [b'{"ConversationShortId": 9007199254740993}\n', b"\n", b'{"ConversationShortId": 5}\n']
    assert list(conversation_ids_from_jsonl(rows, source="c", validate=validate_int_user_id)) == [
        9007199254740993,
        5,
    ]
    with pytest.raises(ValueError, match="c line 1 has no ConversationShortId"):
        list(conversation_ids_from_jsonl([b'{"x": 1}'], source="c", validate=validate_int_user_id))
    with pytest.raises(ValueError, match="c line 1 is not JSON"):
        list(conversation_ids_from_jsonl([b"{"], source="c", validate=validate_int_user_id))


# ---------------------------------------------------------------------------------------
# the fan-out engine
# ---------------------------------------------------------------------------------------


def test_fan_out_hands_results_back_in_key_order_with_bounded_work_in_flight() -> None:
    taken = [0]

    def keys() -> Iterator[int]:
        for i in range(5_000):
            taken[0] += 1
            yield i

    done: list[int] = []
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def work(slot: int, key: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            # keys taken from the iterable but not yet handed on: never more than the window
            assert taken[0] - len(done) <= engine.window
        with lock:
            running[0] -= 1
        return key * 2

    def on_done(slot: int, key: int, result: int) -> None:
        assert result == key * 2
        done.append(slot)

    engine: FanOut[int, int] = FanOut(work=work, on_done=on_done, max_workers=4, window=16)
    taken_before = taken[0]
    assert engine.run(keys()) == 5_000
    assert taken_before == 0 and done == list(range(5_000))
    assert peak[0] <= 4 and engine.peak_in_flight <= 4 and engine.peak_waiting <= 16


def test_a_slow_first_key_holds_at_most_window_results() -> None:
    release = threading.Event()

    def work(slot: int, key: int) -> int:
        if slot == 0:
            release.wait(10)
        return key

    order: list[int] = []
    engine: FanOut[int, int] = FanOut(
        work=work, on_done=lambda s, k, r: order.append(s), max_workers=3, window=8
    )
    timer = threading.Timer(0.3, release.set)
    timer.start()
    engine.run(range(100))
    timer.join()
    assert order == list(range(100)) and engine.peak_waiting <= 8


def test_the_first_failure_stops_everything_and_discards_what_was_not_handed_on() -> None:
    discarded: list[int] = []
    started: list[int] = []
    lock = threading.Lock()

    def work(slot: int, key: int) -> int:
        with lock:
            started.append(key)
        if key == 7:
            raise RuntimeError("key 7 failed")
        engine.check_stop()
        return key

    engine: FanOut[int, int] = FanOut(
        work=work, on_done=lambda s, k, r: None, discard=discarded.append, max_workers=2
    )
    with pytest.raises(RuntimeError, match="key 7 failed"):
        engine.run(range(1_000))
    assert engine.stop.is_set()
    # the failing worker stopped the run itself: each worker finished at most the key in hand
    assert len(started) <= 7 + 1 + 2


def test_a_failing_key_iterator_fails_the_run() -> None:
    def keys() -> Iterator[int]:
        yield 1
        raise ValueError("line 2 of ids.txt is not an id")

    engine: FanOut[int, int] = FanOut(work=lambda s, k: k, on_done=lambda s, k, r: None, max_workers=2)
    with pytest.raises(ValueError, match="line 2"):
        engine.run(keys())


def test_stopping_from_outside_raises_stopped() -> None:
    gate = threading.Event()

    def work(slot: int, key: int) -> int:
        gate.wait(5)
        engine.check_stop()
        return key

    engine: FanOut[int, int] = FanOut(work=work, on_done=lambda s, k, r: None, max_workers=2)
    threading.Timer(0.2, lambda: (engine.stop.set(), gate.set())).start()
    with pytest.raises(StoppedError):
        engine.run(range(50))
    assert isinstance(Cancelled(), Exception)


def test_the_public_plan_key_ranges_caps_batches_at_airflows_max_map_length(monkeypatch) -> None:
    from airflow_provider_rtcim.operators.rtcim import plan_key_ranges as public_plan

    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    assert public_plan(10, batch_size=1) == [[0, 4], [4, 8], [8, 10]]  # what the DAGs get by default
    assert public_plan(10, batch_size=4, max_tasks=10) == [[0, 4], [4, 8], [8, 10]]
    assert public_plan(10, batch_size=1, max_tasks=10) == plan_key_ranges(10, batch_size=1)
