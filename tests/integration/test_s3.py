"""Object storage with a real S3 API: moto's server on loopback (tests/helpers/s3_server.py),
the Amazon provider's ``s3://`` filesystem (s3fs), and the emulator for the IM API.

The atomic writer, checkpoints, chaining from an S3 file, fail-fast on a missing bucket and
refused credentials, and the leftovers of killed tries: the hidden temporary object of a
rename cut between its copy and its delete, and an unfinished multipart upload. The kills
are real SIGKILLs of a process that stalls at the step (nothing is timed).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import s3_server
from killing import stall_then_kill

from airflow_provider_rtcim.compat import AirflowFailException
from airflow_provider_rtcim.emulator import Emulator
from airflow_provider_rtcim.exceptions import RtcImInvalidArgument
from airflow_provider_rtcim.operators.rtcim import (
    RtcImConversationMessagesOperator,
    RtcImConversationParticipantsOperator,
    RtcImGetUserConversationsOperator,
)
from airflow_provider_rtcim.storage import write_atomically

TESTS = Path(__file__).resolve().parents[1]
SCRIPTS = TESTS / "helpers" / "reliability_scripts"
EMU = {"users": 2, "conversations_per_user": 4, "messages_per_conversation": 23, "seed": 5}


def _rows(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


# ---------------------------------------------------------------------------------------
# the atomic writer, chaining, checkpoints
# ---------------------------------------------------------------------------------------


def test_atomic_write_publishes_only_the_final_object(s3_store: s3_server.S3Store) -> None:
    write_atomically(s3_store.url("out/x.jsonl"), b'{"a":1}\n', field="output_path")
    assert s3_store.object_keys() == ["out/x.jsonl"]  # no temporary object left
    assert s3_store.read("out/x.jsonl") == b'{"a":1}\n'
    assert s3_store.uploads() == []


@pytest.mark.rtcim_emulator(**EMU)
def test_conversations_then_members_and_messages_chained_through_s3_files(
    s3_store: s3_server.S3Store, rtcim_connection: Emulator
) -> None:
    users = rtcim_connection.user_ids
    conversations = RtcImGetUserConversationsOperator(
        task_id="conversations", participant_user_id=users, output_path=s3_store.url("c.jsonl.gz")
    ).execute({})
    assert conversations["path"].startswith("s3://")
    assert conversations["count"] > 0
    members = RtcImConversationParticipantsOperator(
        task_id="members",
        conversations_from=conversations["path"],
        output_path=s3_store.url("m.jsonl"),
    ).execute({})
    messages = RtcImConversationMessagesOperator(
        task_id="messages",
        conversations_from=conversations["path"],
        output_path=s3_store.url("msg.jsonl"),
    ).execute({})
    ids = rtcim_connection.conversation_ids()
    got = _rows(s3_store.read("msg.jsonl"))
    assert [(r["ConversationShortId"], r["MessageId"]) for r in got] == [
        (sid, m["MessageId"]) for sid in ids for m in rtcim_connection.messages(sid)
    ]
    assert messages["count"] == len(got)
    assert {r["ConversationShortId"] for r in _rows(s3_store.read("m.jsonl"))} == set(ids)
    assert members["count"] == len(_rows(s3_store.read("m.jsonl")))
    assert s3_store.object_keys() == ["c.jsonl.gz", "m.jsonl", "msg.jsonl"]


@pytest.mark.rtcim_emulator(**EMU)
def test_incremental_checkpoint_on_s3_takes_only_new_messages(
    s3_store: s3_server.S3Store, rtcim_connection: Emulator
) -> None:
    ids = rtcim_connection.conversation_ids()

    def run(n: int) -> dict[str, Any]:
        return RtcImConversationMessagesOperator(
            task_id="messages",
            conversation_short_id=ids,
            output_path=s3_store.url(f"out/run-{n}.jsonl"),
            checkpoint_path=s3_store.url("ckpt/messages.json"),
        ).execute({"run_id": f"run-{n}"})

    first = run(1)
    assert first["count"] == sum(len(rtcim_connection.messages(i)) for i in ids)
    rtcim_connection.add_messages(ids[2], 3)
    second = run(2)
    assert second["count"] == 3 and second["checkpoint_generation"] == 2
    assert {r["ConversationShortId"] for r in _rows(s3_store.read("out/run-2.jsonl"))} == {ids[2]}
    committed = json.loads(s3_store.read("ckpt/messages.json"))
    assert committed["generation"] == 2 and committed["state"] == "committed"
    assert s3_store.object_keys() == ["ckpt/messages.json", "out/run-1.jsonl", "out/run-2.jsonl"]


# ---------------------------------------------------------------------------------------
# fail fast: a missing bucket, refused credentials
# ---------------------------------------------------------------------------------------


def _missing(store: s3_server.S3Store, key: str) -> str:
    return f"s3://{store.conn_id}@no-such-bucket-{uuid.uuid4().hex[:8]}/{key}"


PATH_FIELDS = ["output_path", "checkpoint_path", "conversations_from", "participant_user_ids_from"]


def _task_with(field: str, bad: str, emu: Emulator, output: str, checkpoint: str) -> Any:
    """A task whose ``field`` is ``bad`` and whose other paths are fine."""
    if field == "participant_user_ids_from":
        return RtcImGetUserConversationsOperator(
            task_id="c", participant_user_ids_from=bad, output_path=output
        )
    args: dict[str, Any] = {
        "output_path": output,
        "conversation_short_id": emu.conversation_ids(),
        "checkpoint_path": checkpoint,
    }
    if field == "conversations_from":
        del args["conversation_short_id"]
    args[field] = bad
    return RtcImConversationMessagesOperator(task_id="m", **args)


@pytest.mark.parametrize("field", PATH_FIELDS)
@pytest.mark.rtcim_emulator(**EMU)
def test_a_missing_bucket_fails_at_once_naming_the_argument_and_the_path(
    s3_store: s3_server.S3Store, rtcim_connection: Emulator, field: str
) -> None:
    bad = _missing(s3_store, "some/file.json")
    op = _task_with(field, bad, rtcim_connection, s3_store.url("out/x.jsonl"), s3_store.url("ckpt/m.json"))
    rtcim_connection.reset_stats()
    with pytest.raises(RtcImInvalidArgument) as caught:
        op.execute({"run_id": "r"})
    assert isinstance(caught.value, AirflowFailException)  # no task retries spent on it
    text = str(caught.value)
    assert text.startswith(f"{field} {bad!r} cannot be"), text
    assert "bucket does not exist" in text
    assert rtcim_connection.stats["requests"] == 0  # before any API request
    assert s3_store.object_keys() == []


@pytest.mark.parametrize("field", PATH_FIELDS)
@pytest.mark.rtcim_emulator(**EMU)
def test_refused_credentials_fail_at_once_naming_the_argument_and_the_path(
    s3_auth_server: str,
    rtcim_connection: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    field: str,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BAD_S3", s3_server.connection_json(s3_auth_server, key="AKIDWRONG"))
    bad = "s3://bad_s3@bucket/some/file.json"
    op = _task_with(field, bad, rtcim_connection, str(tmp_path / "out.jsonl"), str(tmp_path / "ckpt.json"))
    with pytest.raises(RtcImInvalidArgument) as caught:
        op.execute({"run_id": "r"})
    text = str(caught.value)
    assert text.startswith(f"{field} {bad!r} cannot be"), text
    assert "access denied" in text and "credentials" in text
    assert rtcim_connection.stats["requests"] == 0
    assert not (tmp_path / "out.jsonl").exists()


def test_a_url_without_a_connection_id_is_told_to_name_one() -> None:
    from airflow_provider_rtcim.storage import explain_storage_error

    text = explain_storage_error(PermissionError("Forbidden"), "s3://my-bucket/a/b.json")
    assert "s3://<conn_id>@my-bucket/a/b.json" in text
    assert "<conn_id>" not in explain_storage_error(PermissionError("Forbidden"), "s3://aws@b/a.json")


# ---------------------------------------------------------------------------------------
# what killed tries leave
# ---------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_an_unfinished_multipart_upload_of_a_killed_try_is_aborted_by_the_retry(
    s3_store: s3_server.S3Store, tmp_path: Path
) -> None:
    target = s3_store.url("out/big.jsonl")
    stall_then_kill([str(SCRIPTS / "s3_upload.py"), target], "UPLOADING", _env(), tmp_path / "killed.log")
    left = s3_store.uploads()
    assert len(left) == 1 and left[0].startswith("out/.big.jsonl.") and left[0].endswith(".tmp")
    other = s3_store.client.create_multipart_upload(Bucket=s3_store.bucket, Key="out/.other.jsonl.abc.tmp")
    write_atomically(target, b"done\n", field="output_path")  # the retry
    assert s3_store.read("out/big.jsonl") == b"done\n"
    assert s3_store.uploads() == ["out/.other.jsonl.abc.tmp"]  # another output's upload is not ours
    assert s3_store.object_keys() == ["out/big.jsonl"]  # the killed try's empty probe object is gone too
    s3_store.client.abort_multipart_upload(
        Bucket=s3_store.bucket, Key="out/.other.jsonl.abc.tmp", UploadId=other["UploadId"]
    )


@pytest.mark.timeout(180)
@pytest.mark.parametrize("retry", [True, False], ids=["then-retry", "then-next-run"])
@pytest.mark.rtcim_emulator(**EMU)
def test_a_rename_killed_between_copy_and_delete_leaves_no_temporary_object(
    s3_store: s3_server.S3Store, rtcim_connection: Emulator, tmp_path: Path, retry: bool
) -> None:
    ids = rtcim_connection.conversation_ids()
    ckpt = s3_store.url("ckpt/messages.json")
    job = {
        "conversation_short_id": ids,
        "output_path": s3_store.url("out/run-1.jsonl"),
        "checkpoint_path": ckpt,
        "run_id": "run-1",
    }
    stall_then_kill(
        [str(SCRIPTS / "incremental_messages.py"), json.dumps(job)],
        "STALLED publish_copied",
        {**_env(), "RTCIM_TEST_STALL": "publish_copied"},
        tmp_path / "killed.log",
    )
    hidden = [k for k in s3_store.object_keys("out/") if k.startswith("out/.run-1.jsonl.")]
    assert len(hidden) == 1, s3_store.object_keys()  # the copy is done, the delete never happened
    assert "out/run-1.jsonl" in s3_store.object_keys()
    run = "run-1" if retry else "run-2"
    summary = RtcImConversationMessagesOperator(
        task_id="messages",
        conversation_short_id=ids,
        output_path=s3_store.url(f"out/{run}.jsonl"),
        checkpoint_path=ckpt,
    ).execute({"run_id": run})
    assert summary["checkpoint_generation"] == (1 if retry else 2)  # the killed run rolled forward
    expected = ["ckpt/messages.json", "out/run-1.jsonl"] + ([] if retry else ["out/run-2.jsonl"])
    assert s3_store.object_keys() == expected
    assert len(_rows(s3_store.read("out/run-1.jsonl"))) == sum(len(rtcim_connection.messages(i)) for i in ids)
