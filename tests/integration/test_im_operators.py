"""Members and messages on the shared engine: hook methods and operators, over HTTP to the emulator.

Every test compares with the emulator's own ground truth (``emu.participants``,
``emu.messages``, ``emu.conversation``), so ids, order and fields are checked exactly.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_rtcim.compat import AirflowFailException
from airflow_provider_rtcim.emulator import Emulator
from airflow_provider_rtcim.exceptions import RtcImApiError, RtcImInvalidArgument, RtcImListingFailed
from airflow_provider_rtcim.hooks.rtcim import RtcImHook
from airflow_provider_rtcim.operators.rtcim import (
    RtcImConversationMessagesOperator,
    RtcImConversationParticipantsOperator,
    RtcImGetUserConversationsOperator,
    combine_summaries,
    count_distinct_keys,
)


def _read(path: str | Path) -> list[dict[str, Any]]:
    raw = Path(str(path).removeprefix("file://")).read_bytes()
    if str(path).endswith(".gz"):
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def _ids(emu: Emulator, n: int | None = None) -> list[int]:
    ids = emu.conversation_ids()
    return ids if n is None else ids[:n]


def _member_ids(rows: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    return [
        (r["ConversationShortId"], r.get("ParticipantUserId") or r.get("ParticipantUserIdStr")) for r in rows
    ]


# ---------------------------------------------------------------------------------------
# hook
# ---------------------------------------------------------------------------------------


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=6, participants_per_conversation=45)
def test_hook_lists_every_member_across_pages_in_both_orders(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    hook = RtcImHook()
    for sid in _ids(emu, 4):
        truth = emu.participants(sid)
        assert list(hook.iter_conversation_participants(sid)) == truth
        assert list(hook.iter_conversation_participants(sid, reverse=True, page_size=7)) == emu.participants(
            sid, reverse=True
        )
        only = list(hook.iter_conversation_participants(sid, only_user_ids=True))
        assert [p["ParticipantUserId"] for p in only] == [p["ParticipantUserId"] for p in truth]
        assert all("Role" not in p for p in only)
    assert hook.stats["pages"] >= 4 * 3  # 45 members at 20 a page: 3 pages each


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=3, participants_per_conversation=30)
def test_a_negative_next_cursor_with_has_more_ends_a_member_listing(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    emu.configure(participants_last_page_has_more=True)  # the SDK's documented end: NextCursor < 0
    sid = _ids(emu)[0]
    hook = RtcImHook()
    assert list(hook.iter_conversation_participants(sid)) == emu.participants(sid)
    assert emu.stats["requests"] == 2  # 30 members, 20 a page: no extra request after the end


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=3, messages_per_conversation=47)
def test_hook_lists_every_message_and_tells_the_bookmark(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    sid = _ids(emu)[0]
    hook = RtcImHook()
    listing = hook.iter_conversation_messages(sid)
    got = list(listing)
    assert got == emu.messages(sid)
    assert [m["IndexInConversation"] for m in got] == list(range(1, 48))
    assert listing.pages == 3 and listing.last_position == 47
    # resuming from the bookmark returns exactly what was sent since
    emu.reset_stats()
    assert list(hook.iter_conversation_messages(sid, cursor=listing.resume_cursor, after_index=47)) == []
    assert emu.stats["requests"] == 1
    added = emu.add_messages(sid, 3)
    again = list(hook.iter_conversation_messages(sid, cursor=listing.resume_cursor, after_index=47))
    assert [m["MessageId"] for m in again] == [m["MessageId"] for m in added]
    newest = list(hook.iter_conversation_messages(sid, reverse=True, page_size=9))
    assert newest == emu.messages(sid, reverse=True)


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=2, messages_per_conversation=25)
@pytest.mark.parametrize("anomaly", ["cursor_restart", "cursor_repeat"])
def test_a_misbehaving_message_cursor_never_doubles_a_message(
    rtcim_connection: Emulator, anomaly: str
) -> None:
    emu = rtcim_connection
    sid = _ids(emu)[0]
    hook = RtcImHook()
    first = hook.iter_conversation_messages(sid)
    taken = list(first)
    emu.configure(anomalies={sid: anomaly})
    emu.add_messages(sid, 2)
    resumed = hook.iter_conversation_messages(
        sid, cursor=first.resume_cursor, after_index=first.last_position
    )
    # even if that first resume_cursor was the good one, a second resume hits the anomaly's cursor
    new = list(resumed)
    emu.add_messages(sid, 1)
    third = list(
        hook.iter_conversation_messages(sid, cursor=resumed.resume_cursor, after_index=resumed.last_position)
    )
    all_ids = [m["MessageId"] for m in taken + new + third]
    assert len(all_ids) == len(set(all_ids)) == 28
    assert all_ids == [m["MessageId"] for m in emu.messages(sid)]


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=10)
def test_batch_get_conversations_splits_requests_and_keeps_fields(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    ids = _ids(emu, 25)
    hook = RtcImHook()
    got = hook.batch_get_conversations([*ids, ids[0]], batch_size=10)
    assert emu.stats["requests"] == 3  # 25 distinct ids, 10 a request
    assert got == emu.batch_conversations(ids)  # known, not dissolved, in request order
    assert 0 < len(got) <= len(ids)
    with_counts = hook.batch_get_conversations(ids[:3], skip_member_count=False)
    assert with_counts == emu.batch_conversations(ids[:3], skip_member_count=False)
    with pytest.raises(ValueError, match="batch_size"):
        hook.batch_get_conversations(ids, batch_size=21)
    with pytest.raises(ValueError, match=r"conversation_short_ids\[1\]"):
        hook.batch_get_conversations([ids[0], "x"])


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=3, participants_per_conversation=25)
@pytest.mark.parametrize(
    ("anomaly", "code"),
    [("stuck_cursor", "PaginationAnomaly"), ("endless_empty", "PaginationAnomaly")],
)
def test_member_and_message_anomalies_stop_with_a_clear_error(
    rtcim_connection: Emulator, anomaly: str, code: str
) -> None:
    emu = rtcim_connection
    sid = _ids(emu)[0]
    emu.configure(anomalies={"*": anomaly})
    emu.add_messages(sid, 45)
    hook = RtcImHook()
    for listing in (hook.iter_conversation_participants(sid), hook.iter_conversation_messages(sid)):
        with pytest.raises(RtcImApiError) as info:
            list(listing)
        assert info.value.code == code and str(sid) in str(info.value)


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=4, participants_per_conversation=25)
def test_faults_on_members_and_messages_are_retried_to_the_exact_result(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    ids = _ids(emu)
    for sid in ids:
        emu.add_messages(sid, 30)
    emu.configure(fault_rate=0.4, fault_kinds=["500", "503", "reset", "truncate", "badjson", "error200"])
    hook = RtcImHook(retry_backoff=0.001, retry_backoff_max=0.002)
    for sid in ids:
        assert list(hook.iter_conversation_participants(sid)) == emu.participants(sid)
        assert list(hook.iter_conversation_messages(sid)) == emu.messages(sid)
    assert emu.stats["faults_total"] > 0 and hook.stats["retries"] == emu.stats["faults_total"]


# ---------------------------------------------------------------------------------------
# operators
# ---------------------------------------------------------------------------------------


@pytest.mark.rtcim_emulator(users=4, conversations_per_user=8, participants_per_conversation=23)
def test_participants_operator_to_xcom_and_to_a_file(rtcim_connection: Emulator, tmp_path: Path) -> None:
    emu = rtcim_connection
    ids = _ids(emu, 6)
    expected = [p for sid in ids for p in emu.participants(sid)]
    rows = RtcImConversationParticipantsOperator(
        task_id="m", conversation_short_id=ids, max_workers=4
    ).execute({})
    assert rows == expected
    target = tmp_path / "members.jsonl.gz"
    summary = RtcImConversationParticipantsOperator(
        task_id="m", conversation_short_id=json.dumps(ids), output_path=str(target)
    ).execute({})
    assert _read(target) == expected
    assert summary["count"] == len(expected) and summary["conversations"] == len(ids)
    assert summary["paths"] == [str(target)] and summary["fetch_started_at"] <= summary["fetch_finished_at"]


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=5, messages_per_conversation=33)
def test_messages_operator_chained_from_a_conversations_file(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    """users -> conversations file -> every distinct conversation's messages, in file order."""
    emu = rtcim_connection
    conv_file = tmp_path / "conversations.jsonl.gz"
    RtcImGetUserConversationsOperator(
        task_id="c", participant_user_id=emu.user_ids, output_path=str(conv_file)
    ).execute({})
    distinct = list(dict.fromkeys(r["ConversationShortId"] for r in _read(conv_file)))
    assert count_distinct_keys(str(conv_file), kind="conversations") == len(distinct)
    target = tmp_path / "messages.jsonl"
    summary = RtcImConversationMessagesOperator(
        task_id="msg", conversations_from=f"file://{conv_file}", output_path=str(target), max_workers=5
    ).execute({})
    rows = _read(target)
    assert rows == [m for sid in distinct for m in emu.messages(sid)]
    assert all(isinstance(r["MessageId"], int) and r["MessageId"] > 2**53 for r in rows)
    assert summary["count"] == len(rows) and summary["conversations"] == len(distinct)
    # two key ranges of the same file add up to the whole, exactly once
    parts = []
    for i, key_range in enumerate(([0, 4], [4, None])):
        out = tmp_path / f"part-{i}.jsonl"
        parts.append(
            RtcImConversationMessagesOperator(
                task_id="msg", conversations_from=str(conv_file), output_path=str(out), key_range=key_range
            ).execute({})
        )
    total = combine_summaries(parts)
    assert [r for p in total["paths"] for r in _read(p)] == rows and total["count"] == len(rows)
    assert total["conversations"] == len(distinct) and total["tasks"] == 2


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=3)
def test_empty_conversations_and_an_empty_range_publish_empty_files(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    sid = _ids(emu)[0]
    emu.set_message_count(sid, 0)
    target = tmp_path / "m.jsonl"
    summary = RtcImConversationMessagesOperator(
        task_id="m", conversation_short_id=sid, output_path=str(target)
    ).execute({})
    assert summary["count"] == 0 and target.read_bytes() == b""
    target2 = tmp_path / "m2.jsonl"
    summary = RtcImConversationMessagesOperator(
        task_id="m", conversation_short_id=_ids(emu), key_range=[50, 60], output_path=str(target2)
    ).execute({})
    assert summary["count"] == 0 and summary["conversations"] == 0 and emu.stats["requests"] == 1


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=3)
def test_im_operator_arguments_are_checked_before_any_request(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    with pytest.raises(ValueError, match=r"conversation_short_id .* or conversations_from"):
        RtcImConversationMessagesOperator(task_id="m")
    with pytest.raises(ValueError, match="not both"):
        RtcImConversationParticipantsOperator(task_id="m", conversation_short_id=1, conversations_from="/x")
    bad = [
        ({"conversation_short_id": "abc"}, r"conversation_short_id"),
        ({"conversation_short_id": [1, 2.5]}, r"conversation_short_id\[1\]"),
        ({"conversation_short_id": 1, "key_range": [3, 1]}, r"key_range"),
        ({"conversation_short_id": 1, "page_size": 21}, r"page_size"),
        ({"conversations_from": str(tmp_path / "missing.jsonl")}, r"conversations_from .* cannot be read"),
    ]
    not_jsonl = tmp_path / "bad.jsonl"
    not_jsonl.write_text('{"ConversationShortId": 5}\n{"Name": "no id"}\n')
    bad.append(({"conversations_from": str(not_jsonl)}, r"line 2 has no ConversationShortId"))
    for kwargs, match in bad:
        with pytest.raises(RtcImInvalidArgument, match=match):
            RtcImConversationMessagesOperator(task_id="m", **kwargs).execute({})
    with pytest.raises(RtcImInvalidArgument, match="reverse"):
        RtcImConversationParticipantsOperator(task_id="m", conversation_short_id=1, reverse="maybe").execute(
            {}
        )
    assert emu.stats["requests"] == 0


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=6)
def test_a_hopeless_failure_names_the_conversation_and_publishes_nothing(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    ids = _ids(emu, 5)
    emu.configure(anomalies={ids[3]: "stuck_cursor"})
    emu.add_messages(ids[3], 45)
    target = tmp_path / "out" / "m.jsonl"
    with pytest.raises(RtcImListingFailed) as info:
        RtcImConversationMessagesOperator(
            task_id="m", conversation_short_id=ids, output_path=str(target), max_workers=2
        ).execute({})
    assert isinstance(info.value, AirflowFailException)
    assert f"conversation_short_id={ids[3]}" in str(info.value) and info.value.code == "PaginationAnomaly"
    assert not (tmp_path / "out").exists()


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=12, participants_per_conversation=25)
def test_the_generic_calls_serve_every_described_action_by_name(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    hook = RtcImHook()
    uid, sid = emu.user_ids[0], _ids(emu, 1)[0]
    # the named methods are wrappers: the generic call by API name gives the same items
    assert list(hook.iter_action("GetUserConversations", uid, page_size=5)) == list(
        hook.iter_user_conversations(uid, page_size=5)
    )
    assert list(hook.iter_action("ScanConversationParticipantList", sid, reverse=True)) == emu.participants(
        sid, reverse=True
    )
    assert list(hook.iter_action("GetConversationMessages", sid)) == emu.messages(sid)
    ids = _ids(emu, 5)
    assert hook.batch_action("BatchGetConversations", ids) == emu.batch_conversations(ids)
    requests = emu.stats["requests"]
    # every value is checked by the description before any request
    with pytest.raises(TypeError, match="GetConversationMessages takes no argument data_type"):
        hook.iter_action("GetConversationMessages", sid, data_type=1)
    with pytest.raises(ValueError, match="page_size must be between 1 and 20"):
        hook.iter_action("GetUserConversations", uid, page_size=21)
    with pytest.raises(ValueError, match="is not paginated: use batch_action"):
        hook.iter_action("BatchGetConversations", sid)
    with pytest.raises(ValueError, match="is paginated: use iter_action"):
        hook.batch_action("GetUserConversations", [uid])
    assert emu.stats["requests"] == requests


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=8)
def test_a_sharded_run_reads_its_key_file_twice_checked_then_streamed(
    rtcim_connection: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_rtcim.operators import engine

    emu = rtcim_connection
    conv_file = tmp_path / "conversations.jsonl"
    conv_file.write_text("".join(json.dumps({"ConversationShortId": s}) + "\n" for s in _ids(emu)))
    opened: list[str] = []
    real_open = engine.open_lines

    def counting_open(value: Any, *, field: str) -> Any:
        opened.append(field)
        return real_open(value, field=field)

    monkeypatch.setattr(engine, "open_lines", counting_open)
    op = RtcImConversationMessagesOperator(
        task_id="m", conversations_from=str(conv_file), shard_index=1, shard_count=3, max_workers=2
    )
    rows = op.execute({})
    assert opened == ["conversations_from", "conversations_from"]  # once to check and count, once to list
    from airflow_provider_rtcim.core.checkpoint import shard_of

    mine = [s for s in _ids(emu) if shard_of(s, 3) == 1]
    assert [r["MessageId"] for r in rows] == [m["MessageId"] for s in mine for m in emu.messages(s)]
