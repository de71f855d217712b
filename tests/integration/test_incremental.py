"""Incremental message sync (issue #11): bookmarks, exactly-once commits, shards, crashes.

Everything runs against the emulator over HTTP on loopback. The ground truth is the
emulator's own ``messages(short_id)``; "exactly once" is checked on the union of every file
the runs published. The crash tests kill a real sync process with SIGKILL at each step of a
run (the step is reached through a stall hook in the test script, then the process is
killed: nothing is timed).
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Asset
from killing import stall_then_kill

from airflow_provider_rtcim.core import checkpoint as ck
from airflow_provider_rtcim.emulator import Emulator
from airflow_provider_rtcim.exceptions import RtcImInvalidArgument
from airflow_provider_rtcim.operators.rtcim import RtcImConversationMessagesOperator as Op
from airflow_provider_rtcim.storage import reshard_checkpoints

TESTS = Path(__file__).resolve().parents[1]
SCRIPT = TESTS / "helpers" / "reliability_scripts" / "incremental_messages.py"

EMU = {"users": 2, "conversations_per_user": 5, "messages_per_conversation": 23, "seed": 11}


def _rows(path: str | Path) -> list[dict[str, Any]]:
    text = Path(str(path).removeprefix("file://")).read_text("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _run(tmp: Path, ids: list[int], n: int | str, *, context: dict | None = None, **kwargs: Any) -> dict:
    kwargs.setdefault("checkpoint_path", str(tmp / "ckpt" / "messages.json"))
    op = Op(
        task_id="messages",
        conversation_short_id=ids,
        output_path=str(tmp / "out" / f"run-{n}.jsonl"),
        max_workers=4,
        **kwargs,
    )
    return op.execute(context if context is not None else {"run_id": f"run-{n}"})


def _truth(emu: Emulator, ids: list[int]) -> list[tuple[int, int]]:
    return [(sid, m["MessageId"]) for sid in ids for m in emu.messages(sid)]


def _taken(paths: list[Path]) -> list[tuple[int, int]]:
    return [(r["ConversationShortId"], r["MessageId"]) for p in paths for r in _rows(p)]


def _assert_exactly_once(emu: Emulator, ids: list[int], paths: list[Path]) -> None:
    taken = _taken(paths)
    doubled = [k for k, n in collections.Counter(taken).items() if n > 1]
    assert not doubled, f"messages written twice: {doubled[:5]}"
    assert sorted(taken) == sorted(_truth(emu, ids))


# ---------------------------------------------------------------------------------------
# the pure parts
# ---------------------------------------------------------------------------------------


def test_shard_function_is_a_stable_hash_of_the_id_alone() -> None:
    ids = [7_000_000_000_000_000_000 + i * 7919 for i in range(2000)]
    # pinned values: a change of the function would silently re-shard every user's checkpoints
    assert [ck.shard_of(i, 8) for i in ids[:8]] == [5, 6, 1, 7, 2, 3, 3, 6]
    assert ck.shard_of(7205759403792793601, 4) == 2
    assert (
        ck.shard_of(12345, 16)
        == int.from_bytes(__import__("hashlib").blake2b(b"12345", digest_size=8).digest(), "big") % 16
    )
    counts = collections.Counter(ck.shard_of(i, 8) for i in ids)
    assert set(counts) == set(range(8)) and min(counts.values()) > 180  # roughly even
    assert all(ck.shard_of(i, 1) == 0 for i in ids[:50])
    with pytest.raises(ValueError, match="shard_count"):
        ck.shard_of(1, 0)
    assert ck.shard_name("messages.json", (2, 8)) == "messages.shard-2-of-8.json"
    assert ck.check_shard(None, None) is None
    with pytest.raises(ValueError, match="both"):
        ck.check_shard(1, None)
    with pytest.raises(ValueError, match=r"0\.\.3"):
        ck.check_shard(4, 4)


def test_checkpoint_round_trips_and_is_one_bookmark_a_line() -> None:
    marks = {2**62 + i: ck.Bookmark(cursor=i + 1, index=i or None) for i in range(5)}
    cp = ck.Checkpoint(app_id=100001, generation=3, bookmarks=marks, run={"run_id": "r"})
    data = ck.dumps(cp)
    assert ck.loads(data, where="x") == cp
    lines = data.decode().splitlines()
    assert sum(1 for line in lines if '"cursor"' in line) == 5
    assert f'"{2**62 + 1}": {{"cursor": 2, "index": 1}}' in data.decode()
    # the size grows with the conversations, not with the messages taken
    more = ck.Checkpoint(app_id=100001, bookmarks={s: ck.Bookmark(10**9, 10**9 - 1) for s in marks})
    assert len(ck.dumps(more)) < len(data) + 5 * 20


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"rows": []}', "not an RTC IM messages checkpoint"),
        (json.dumps({"format": ck.FORMAT, "version": 99}).encode(), "newer provider"),
        (
            json.dumps(
                {"format": ck.FORMAT, "version": 1, "state": "committed", "generation": 1, "app_id": 1}
            ).encode(),
            "bookmarks must be",
        ),
        (
            json.dumps(
                {
                    "format": ck.FORMAT,
                    "version": 1,
                    "state": "committed",
                    "generation": 1,
                    "app_id": 1,
                    "bookmarks": {"12": {"cursor": -3, "index": 1}},
                }
            ).encode(),
            "cursor",
        ),
    ],
)
def test_a_corrupt_or_foreign_checkpoint_is_an_error_naming_the_file(data: bytes, words: str) -> None:
    with pytest.raises(ck.CheckpointError, match=words) as info:
        ck.loads(data, where="s3://b/ckpt.json")
    assert "s3://b/ckpt.json" in str(info.value)


def test_recovery_decisions() -> None:
    c = ck.Checkpoint(app_id=1, generation=4, output={"path": "/a", "bytes": 0, "sha256": "0" * 64})
    p = ck.Checkpoint(
        app_id=1, generation=5, state="pending", output={"path": "/b", "bytes": 1, "sha256": "1" * 64}
    )
    assert ck.recover(c, None, None, where="p").action == "none"
    assert ck.recover(c, p, True, where="p").action == "roll_forward"
    assert ck.recover(c, p, False, where="p").action == "roll_back"
    with pytest.raises(ck.CheckpointError, match="other content"):
        ck.recover(c, p, None, where="p")
    stale = ck.Checkpoint(app_id=1, generation=4, state="pending", output=p.output)
    assert ck.recover(c, stale, True, where="p").action == "stale"
    with pytest.raises(ck.CheckpointError, match="does not follow"):
        ck.recover(None, p, True, where="p")  # the checkpoint was deleted, its pending one was not
    assert ck.recover(None, ck.Checkpoint(**{**p.__dict__, "generation": 1}), True, where="p").action == (
        "roll_forward"
    )


def test_merge_keeps_unlisted_conversations_and_never_moves_an_index_back() -> None:
    base = {1: ck.Bookmark(10, 9), 2: ck.Bookmark(5, 4)}
    merged = ck.merge_bookmarks(base, {2: ck.Bookmark(0, None), 3: ck.Bookmark(1, None)})
    assert merged == {1: ck.Bookmark(10, 9), 2: ck.Bookmark(0, 4), 3: ck.Bookmark(1, None)}


# ---------------------------------------------------------------------------------------
# runs against the emulator
# ---------------------------------------------------------------------------------------


@pytest.mark.rtcim_emulator(**EMU)
def test_each_run_holds_exactly_what_is_new_and_an_idle_run_costs_one_request_per_conversation(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    ids = emu.conversation_ids()
    assert len(ids) == 10
    first = _run(tmp_path, ids, 1)
    assert first["count"] == 230 and first["incremental"] is True
    assert first["conversations_changed"] == 10 and first["checkpoint_generation"] == 1
    assert _taken([tmp_path / "out/run-1.jsonl"]) == _truth(emu, ids)

    added = {ids[0]: emu.add_messages(ids[0], 3), ids[4]: emu.add_messages(ids[4], 30)}
    emu.reset_stats()
    second = _run(tmp_path, ids, 2)
    expected = [(sid, m["MessageId"]) for sid in ids for m in added.get(sid, [])]
    assert _taken([tmp_path / "out/run-2.jsonl"]) == expected
    assert second["count"] == 33 and second["conversations_changed"] == 2
    # one request for each unchanged conversation, one for 3 new, two for 30 new
    assert emu.stats["requests"] == second["requests"] == 8 + 1 + 2

    emu.reset_stats()
    third = _run(tmp_path, ids, 3)
    assert third["count"] == 0 and third["conversations_changed"] == 0
    assert emu.stats["requests"] == third["requests"] == len(ids)  # the floor
    assert (tmp_path / "out/run-3.jsonl").read_bytes() == b""
    _assert_exactly_once(emu, ids, sorted((tmp_path / "out").glob("run-*.jsonl")))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["messages.json"]
    cp = ck.loads((tmp_path / "ckpt/messages.json").read_bytes(), where="x")
    assert cp.generation == 3 and set(cp.bookmarks) == set(ids)
    assert cp.bookmarks[ids[4]].index == 53


@pytest.mark.rtcim_emulator(**EMU)
def test_a_conversation_added_between_runs_starts_from_the_beginning(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    ids = emu.conversation_ids()
    _run(tmp_path, ids, 1)
    new = emu.add_conversation(emu.user_ids[0])["ConversationShortId"]
    emu.add_messages(new, 25)
    emu.add_messages(ids[2], 1)
    second = _run(tmp_path, [*ids, new], 2)
    assert second["count"] == 26 and second["conversations"] == 11
    # a run that lists fewer conversations keeps the others' bookmarks
    emu.add_messages(ids[1], 2)
    third = _run(tmp_path, ids[:3], 3)
    assert third["count"] == 2
    fourth = _run(tmp_path, [*ids, new], 4)
    assert fourth["count"] == 0
    _assert_exactly_once(emu, [*ids, new], sorted((tmp_path / "out").glob("run-*.jsonl")))


@pytest.mark.rtcim_emulator(**EMU)
@pytest.mark.parametrize("anomaly", ["cursor_restart", "cursor_repeat"])
def test_a_cursor_that_restarts_or_repeats_never_doubles_a_message(
    rtcim_connection: Emulator, tmp_path: Path, anomaly: str
) -> None:
    emu = rtcim_connection
    ids = emu.conversation_ids()
    emu.configure(anomalies={"*": anomaly})
    for n in range(1, 5):
        _run(tmp_path, ids, n)
        emu.add_messages(ids[n], 7 * n)
        emu.add_messages(ids[0], 1)
    _run(tmp_path, ids, 5)
    _assert_exactly_once(emu, ids, sorted((tmp_path / "out").glob("run-*.jsonl")))
    cp = ck.loads((tmp_path / "ckpt/messages.json").read_bytes(), where="x")
    if anomaly == "cursor_restart":
        assert all(b.cursor == 0 for b in cp.bookmarks.values())  # the API's cursor, verbatim


@pytest.mark.rtcim_emulator(**EMU)
def test_a_retry_of_a_committed_run_returns_its_summary_and_rewrites_nothing(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    ids = emu.conversation_ids()
    first = _run(tmp_path, ids, 1)
    before = (tmp_path / "out/run-1.jsonl").read_bytes()
    emu.add_messages(ids[0], 5)
    emu.reset_stats()
    again = _run(tmp_path, ids, 1)  # the same run (run_id), cleared and run again
    assert again == first and emu.stats["requests"] == 0
    assert (tmp_path / "out/run-1.jsonl").read_bytes() == before
    # another run must not overwrite the file the checkpoint accounts for
    with pytest.raises(RtcImInvalidArgument, match="another run"):
        _run(tmp_path, ids, 1, context={"run_id": "someone-else"})
    assert _run(tmp_path, ids, 2)["count"] == 5


class _OutletEvents(dict):
    """``context["outlet_events"]``: keyed by the Asset's name and URI, as Airflow's own accessors
    are (an Asset with an extra cannot be hashed on Airflow 3.0 and 3.1)."""

    def __getitem__(self, asset: Any) -> Any:
        return self.setdefault((asset.name, asset.uri), type("E", (), {"extra": {}})())


@pytest.mark.rtcim_emulator(**EMU)
def test_summary_and_asset_extra_say_what_the_incremental_run_did(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    ids = rtcim_connection.conversation_ids()
    asset = Asset("file:///rtcim/messages")
    events = _OutletEvents()
    op = Op(
        task_id="m",
        conversation_short_id=ids,
        output_path=str(tmp_path / "run.jsonl"),
        checkpoint_path=str(tmp_path / "ckpt.json"),
        asset=asset,
    )
    summary = op.execute({"outlet_events": events, "run_id": "r"})
    extra = events[asset].extra
    assert extra["incremental"] is True and extra["checkpoint"].endswith("ckpt.json")
    assert extra["conversations_changed"] == 10 and extra["checkpoint_generation"] == 1
    assert extra["count"] == summary["count"] == 230


def test_incremental_mode_needs_a_file_and_forward_order() -> None:
    with pytest.raises(ValueError, match="needs output_path"):
        Op(task_id="m", conversation_short_id=[1], checkpoint_path="/tmp/c.json")
    with pytest.raises(ValueError, match="reverse=False"):
        Op(
            task_id="m",
            conversation_short_id=[1],
            checkpoint_path="/tmp/c.json",
            output_path="/tmp/o",
            reverse=True,
        )
    with pytest.raises(ValueError, match="absolute"):
        Op(task_id="m", conversation_short_id=[1], checkpoint_path="c.json", output_path="/tmp/o")


@pytest.mark.rtcim_emulator(**EMU)
def test_reverse_rendered_true_is_refused_before_any_request(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    op = Op(
        task_id="m",
        conversation_short_id=rtcim_connection.conversation_ids(),
        output_path=str(tmp_path / "o.jsonl"),
        checkpoint_path=str(tmp_path / "c.json"),
        reverse="{{ params.r }}",
    )
    op.reverse = "true"  # as rendered
    with pytest.raises(RtcImInvalidArgument, match="reverse=False"):
        op.execute({})
    assert rtcim_connection.stats["requests"] == 0


@pytest.mark.rtcim_emulator(**EMU)
@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"format": "airflow-provider-rtcim/messages-checkpoint", "vers', "not valid JSON"),
        (b'{"ConversationShortId": 1}\n', "not an RTC IM messages checkpoint"),
        (None, "belongs to AppId 424242"),
    ],
)
def test_a_corrupt_or_foreign_checkpoint_fails_before_any_request(
    rtcim_connection: Emulator, tmp_path: Path, content: bytes | None, words: str
) -> None:
    path = tmp_path / "ckpt" / "messages.json"
    path.parent.mkdir()
    path.write_bytes(content if content is not None else ck.dumps(ck.Checkpoint(app_id=424242)))
    with pytest.raises(RtcImInvalidArgument, match=words) as info:
        _run(tmp_path, rtcim_connection.conversation_ids(), 1)
    assert str(path) in str(info.value)
    assert rtcim_connection.stats["requests"] == 0
    assert not (tmp_path / "out" / "run-1.jsonl").exists()


@pytest.mark.rtcim_emulator(**{**EMU, "conversations_per_user": 12})
def test_shards_split_the_conversations_each_with_its_own_checkpoint_and_a_new_count_is_resharded(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    ids = emu.conversation_ids()
    outputs: list[Path] = []

    def sync(n: int, count: int) -> list[dict]:
        summaries = []
        for index in range(count):
            op = Op(
                task_id="messages",
                conversation_short_id=ids,
                output_path=str(tmp_path / "out" / f"run-{n}" / f"part-{index}.jsonl"),
                checkpoint_path=str(tmp_path / "ckpt" / "messages.json"),
                shard_index=index,
                shard_count=count,
            )
            summaries.append(op.execute({"run_id": f"run-{n}", "ti": _Ti(index)}))
            outputs.append(tmp_path / "out" / f"run-{n}" / f"part-{index}.jsonl")
        return summaries

    first = sync(1, 3)
    assert sum(s["conversations"] for s in first) == len(ids) == 24
    for index, s in enumerate(first):
        assert s["shard_index"] == index and s["shard_count"] == 3
        assert {r["ConversationShortId"] for r in _rows(s["path"])} == {
            sid for sid in ids if ck.shard_of(sid, 3) == index
        }
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        f"messages.shard-{i}-of-3.json" for i in range(3)
    ]
    emu.add_messages(ids[5], 4)

    # another shard count: every shard refuses before any request and says what to do,
    # including a shard whose file does not exist yet (it would export its share again)
    emu.reset_stats()
    for index in (0, 4):
        op = Op(
            task_id="messages",
            conversation_short_id=ids,
            output_path=str(tmp_path / "out" / "bad.jsonl"),
            checkpoint_path=str(tmp_path / "ckpt" / "messages.json"),
            shard_index=index,
            shard_count=5,
        )
        with pytest.raises(RtcImInvalidArgument, match="shard_count=3") as info:
            op.execute({"run_id": "bad"})
        assert "airflow_provider_rtcim.reshard" in str(info.value)
    assert emu.stats["requests"] == 0

    written = reshard_checkpoints(str(tmp_path / "ckpt" / "messages.json"), 5)
    assert len(written) == 5
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        f"messages.shard-{i}-of-5.json" for i in range(5)
    ]
    emu.reset_stats()
    second = sync(2, 5)
    assert sum(s["count"] for s in second) == 4
    assert emu.stats["requests"] == len(ids)
    _assert_exactly_once(emu, ids, outputs)


class _Ti:
    def __init__(self, map_index: int) -> None:
        self.map_index = map_index


# ---------------------------------------------------------------------------------------
# SIGKILL at every step of a run
# ---------------------------------------------------------------------------------------

STEPS = ["listing", "pending_writing", "pending_written", "published", "commit_writing", "committed"]


def _kill_at(step: str, job: dict[str, Any], env: dict[str, str], log: Path) -> None:
    stall_then_kill([str(SCRIPT), json.dumps(job)], f"STALLED {step}", {**env, "RTCIM_TEST_STALL": step}, log)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("retry", [True, False], ids=["then-retry", "then-next-run"])
@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_every_step_then_more_runs_publish_every_message_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, retry: bool
) -> None:
    with Emulator(**EMU) as emu:
        for name, value in emu.airflow_env().items():
            monkeypatch.setenv(name, value)
        ids = emu.conversation_ids()
        ckpt = str(tmp_path / "ckpt" / "messages.json")
        _run(tmp_path, ids, 1, checkpoint_path=ckpt)
        emu.add_messages(ids[1], 9)
        emu.add_messages(ids[7], 21)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")]),
        }
        job = {
            "conversation_short_id": ids,
            "output_path": str(tmp_path / "out" / "run-2.jsonl"),
            "checkpoint_path": ckpt,
            "run_id": "run-2",
        }
        _kill_at(step, job, env, tmp_path / "killed.log")
        published_by_killed = (tmp_path / "out" / "run-2.jsonl").exists()
        assert published_by_killed == (step in ("published", "commit_writing", "committed"))

        emu.add_messages(ids[3], 2)
        if retry:  # Airflow retries the killed task instance: same run, same output path
            again = _run(tmp_path, ids, 2, checkpoint_path=ckpt)
            assert again["path"].endswith("run-2.jsonl")
        after = _run(tmp_path, ids, 3, checkpoint_path=ckpt)
        emu.add_messages(ids[0], 1)
        _run(tmp_path, ids, 4, checkpoint_path=ckpt)
        files = sorted((tmp_path / "out").glob("run-*.jsonl"))
        _assert_exactly_once(emu, ids, files)
        if not retry and published_by_killed:
            assert after["count"] == 2  # the killed run's file was rolled forward, not re-exported
        # what a killed run leaves is gone once a later run has committed
        leftovers = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
        assert leftovers == ["messages.json"], leftovers
        hidden = [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
        if retry or step not in ("listing", "pending_writing"):
            assert hidden == []  # the retry republished it, or the roll-back removed it
        else:
            # killed before any record named its output: its hidden temporary object stays until
            # that run's output is published (never mistaken for output: hidden and .tmp)
            assert all(n.startswith(".run-2.jsonl.") and n.endswith(".tmp") for n in hidden), hidden
