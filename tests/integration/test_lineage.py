"""OpenLineage: what the operators report (docs/lineage.md), for runs against the emulator over HTTP.

Each test runs an operator for real and checks ``get_openlineage_facets_on_complete``: the IM
API input (``rtcim://<host:port>`` + ``<AppId>/<Action>``), the ``*_from`` file input, and the
output file with its ``outputStatistics`` (rows written, bytes stored), named as OpenLineage's
naming spec says. The last test runs the package with the OpenLineage provider blocked.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath
from s3_server import S3Store, connection_json

from airflow_provider_rtcim.emulator import Emulator
from airflow_provider_rtcim.exceptions import RtcImListingFailed
from airflow_provider_rtcim.operators.lineage import api_dataset_id, file_dataset_id, operator_lineage
from airflow_provider_rtcim.operators.rtcim import (
    RtcImConversationBlockListOperator,
    RtcImConversationMessagesOperator,
    RtcImConversationParticipantsOperator,
    RtcImConversationReadIndexesOperator,
    RtcImGetUserConversationsOperator,
    RtcImListingOperator,
    RtcImUserBlacklistOperator,
    RtcImUserFriendsOperator,
    RtcImUsersOperator,
)

EMU = {"users": 3, "conversations_per_user": 4, "participants_per_conversation": 6, "seed": 5}


def _lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def _ids(datasets: list[Any]) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def _api(emu: Emulator, action: str) -> tuple[str, str]:
    host_port = emu.url.split("://", 1)[1].rstrip("/")
    return f"rtcim://{host_port}", f"{emu.app_id}/{action}"


def _extract(op: Any, state: str) -> Any:
    """What the OpenLineage provider's listener gets for ``op`` ending in ``state``: its
    extractor manager calls the operator."""
    from airflow.providers.openlineage.extractors import ExtractorManager
    from airflow.utils.state import TaskInstanceState

    return ExtractorManager().extract_metadata(
        dagrun=types.SimpleNamespace(run_id="manual__1"),
        task=op,
        task_instance_state=TaskInstanceState[state],
        task_instance=None,
    )


def _stats(dataset: Any) -> tuple[int | None, int | None]:
    facet = dataset.outputFacets["outputStatistics"]
    return facet.rowCount, facet.size


# ---------------------------------------------------------------------------------------
# naming
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/data/rtcim/x.jsonl", ("file", "/data/rtcim/x.jsonl")),
        ("file:///data/rtcim/x.jsonl", ("file", "/data/rtcim/x.jsonl")),
        ("file://localhost/data/x.jsonl", ("file", "/data/x.jsonl")),
        ("file://nas-01/data/x.jsonl", ("file://nas-01", "/data/x.jsonl")),
        ("s3://my-bucket/rtcim/2026-12-06/x.jsonl.gz", ("s3://my-bucket", "rtcim/2026-12-06/x.jsonl.gz")),
        ("s3://aws_tos@my-bucket/rtcim/x.jsonl.gz", ("s3://my-bucket", "rtcim/x.jsonl.gz")),
        ("gs://bkt/a/b.jsonl", ("gs://bkt", "a/b.jsonl")),
        ("gcs://bkt/a/b.jsonl", ("gs://bkt", "a/b.jsonl")),
        ("memory://scratch/x.jsonl", ("memory://scratch", "x.jsonl")),
        (Path("/data/p.jsonl"), ("file", "/data/p.jsonl")),
        (ObjectStoragePath("s3://conn@bkt/k/x.jsonl"), ("s3://bkt", "k/x.jsonl")),
    ],
)
def test_files_are_named_as_the_openlineage_spec_says(path: Any, expected: tuple[str, str]) -> None:
    assert file_dataset_id(path) == expected


@pytest.mark.parametrize(
    ("endpoint", "namespace"),
    [
        ("https://rtc.volcengineapi.com", "rtcim://rtc.volcengineapi.com"),
        ("https://RTC.volcengineapi.com:443/", "rtcim://rtc.volcengineapi.com"),
        ("http://127.0.0.1:8080", "rtcim://127.0.0.1:8080"),
        ("http://user:s3cret@proxy.local:80/rtc", "rtcim://proxy.local"),
        ("https://open-ap-singapore-1.volcengineapi.com", "rtcim://open-ap-singapore-1.volcengineapi.com"),
    ],
)
def test_the_api_is_named_by_its_host_and_app_and_action(endpoint: str, namespace: str) -> None:
    assert api_dataset_id(endpoint, 100001, "GetUserConversations") == (
        namespace,
        "100001/GetUserConversations",
    )


# ---------------------------------------------------------------------------------------
# operators
# ---------------------------------------------------------------------------------------


@pytest.mark.rtcim_emulator(**EMU)
def test_a_file_run_reports_the_api_read_and_the_file_with_its_rows_and_bytes(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    target = tmp_path / "out" / "conversations.jsonl"
    op = RtcImGetUserConversationsOperator(
        task_id="c", participant_user_id=emu.user_ids, output_path=str(target)
    )
    summary = op.execute({})
    lineage = op.get_openlineage_facets_on_complete(None)
    assert _ids(lineage.inputs) == [_api(emu, "GetUserConversations")]
    assert _ids(lineage.outputs) == [("file", str(target))]
    rows = len(_lines(target))
    assert rows == summary["count"] > 0
    assert _stats(lineage.outputs[0]) == (rows, target.stat().st_size)


@pytest.mark.rtcim_emulator(**EMU)
def test_a_run_to_xcom_reports_only_what_it_read(rtcim_connection: Emulator, tmp_path: Path) -> None:
    emu = rtcim_connection
    ids = emu.conversation_ids()[:3]
    op = RtcImConversationParticipantsOperator(task_id="m", conversation_short_id=ids)
    rows = op.execute({})
    assert len(rows) == sum(len(emu.participants(sid)) for sid in ids) > 0
    lineage = op.get_openlineage_facets_on_complete(None)
    assert _ids(lineage.inputs) == [_api(emu, "ScanConversationParticipantList")]
    assert lineage.outputs == []


@pytest.mark.rtcim_emulator(**EMU)
def test_the_from_files_are_inputs_and_a_gzip_output_reports_its_stored_bytes(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    users = tmp_path / "users.txt"
    users.write_text("".join(f"{uid}\n" for uid in emu.user_ids))
    conversations = tmp_path / "conversations.jsonl.gz"
    first = RtcImGetUserConversationsOperator(
        task_id="c", participant_user_ids_from=f"file://{users}", output_path=str(conversations)
    )
    first.execute({})
    lineage = first.get_openlineage_facets_on_complete(None)
    assert _ids(lineage.inputs) == [_api(emu, "GetUserConversations"), ("file", str(users))]

    messages = tmp_path / "messages" / "part-0.jsonl.gz"
    op = RtcImConversationMessagesOperator(
        task_id="msg", conversations_from=f"file://{conversations}", output_path=f"file://{messages}"
    )
    summary = op.execute({})
    lineage = op.get_openlineage_facets_on_complete(None)
    # the file the first task wrote is the second's input: the same (namespace, name)
    assert _ids(first.get_openlineage_facets_on_complete(None).outputs) == [("file", str(conversations))]
    assert _ids(lineage.inputs) == [_api(emu, "GetConversationMessages"), ("file", str(conversations))]
    assert _ids(lineage.outputs) == [("file", str(messages))]
    rows, size = _stats(lineage.outputs[0])
    assert rows == len(_lines(messages)) == summary["count"] > 0
    assert size == messages.stat().st_size < len(gzip.decompress(messages.read_bytes()))


@pytest.mark.rtcim_emulator(**EMU)
def test_users_from_a_members_file_then_read_positions_from_a_conversations_file(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    """Two of issue 18's operators: their ``users_from`` / ``conversations_from`` file is an
    input, named as the file the task before it reported as its output."""
    emu = rtcim_connection
    ids = emu.conversation_ids()[:3]
    members = tmp_path / "members.jsonl.gz"
    RtcImConversationParticipantsOperator(
        task_id="m", conversation_short_id=ids, output_path=str(members)
    ).execute({})

    users = tmp_path / "users.jsonl"
    op = RtcImUsersOperator(task_id="u", users_from=f"file://{members}", output_path=str(users))
    summary = op.execute({})
    lineage = op.get_openlineage_facets_on_complete(None)
    assert _ids(lineage.inputs) == [_api(emu, "BatchGetUser"), ("file", str(members))]
    assert _ids(lineage.outputs) == [("file", str(users))]
    assert _stats(lineage.outputs[0]) == (len(_lines(users)), users.stat().st_size)
    assert summary["count"] > 0

    conversations = tmp_path / "conversations.jsonl"
    conversations.write_text("".join(json.dumps({"ConversationShortId": sid}) + "\n" for sid in ids))
    indexes = tmp_path / "read" / "indexes.jsonl.gz"
    op = RtcImConversationReadIndexesOperator(
        task_id="r", conversations_from=str(conversations), output_path=f"file://{indexes}"
    )
    summary = op.execute({})
    lineage = op.get_openlineage_facets_on_complete(None)
    assert _ids(lineage.inputs) == [_api(emu, "GetParticipantReadIndex"), ("file", str(conversations))]
    assert _ids(lineage.outputs) == [("file", str(indexes))]
    rows, size = _stats(lineage.outputs[0])
    assert rows == len(_lines(indexes)) == summary["count"] > 0
    assert size == indexes.stat().st_size


@pytest.mark.parametrize(
    ("operator", "from_arg", "action"),
    [
        (RtcImGetUserConversationsOperator, "participant_user_ids_from", "GetUserConversations"),
        (RtcImConversationParticipantsOperator, "conversations_from", "ScanConversationParticipantList"),
        (RtcImConversationMessagesOperator, "conversations_from", "GetConversationMessages"),
        (RtcImUsersOperator, "users_from", "BatchGetUser"),
        (RtcImUserFriendsOperator, "users_from", "ListFriend"),
        (RtcImUserBlacklistOperator, "users_from", "GetBlackList"),
        (RtcImConversationReadIndexesOperator, "conversations_from", "GetParticipantReadIndex"),
        (RtcImConversationBlockListOperator, "conversations_from", "BatchGetBlockParticipants"),
    ],
)
@pytest.mark.rtcim_emulator(**EMU)
def test_every_operator_reports_its_key_file_and_its_output(
    rtcim_connection: Emulator,
    s3_store: S3Store,
    operator: type[RtcImListingOperator],
    from_arg: str,
    action: str,
) -> None:
    """Naming, from the key file argument each operator takes (found through its key
    arguments, not a list of names) and a summary's path; no object there, so no size."""
    emu = rtcim_connection
    op = operator(
        task_id="t",
        **{from_arg: s3_store.url("rtcim/keys.jsonl.gz")},
        output_path=s3_store.url("rtcim/{{ ds }}/out.jsonl.gz"),
    )
    assert op.keys_from_field == from_arg
    lineage = operator_lineage(op, {"path": s3_store.url("rtcim/2026-12-06/out.jsonl.gz"), "count": 7})
    bucket = f"s3://{s3_store.bucket}"
    assert _ids(lineage.inputs) == [_api(emu, action), (bucket, "rtcim/keys.jsonl.gz")]
    assert _ids(lineage.outputs) == [(bucket, "rtcim/2026-12-06/out.jsonl.gz")]
    assert _stats(lineage.outputs[0]) == (7, None)


@pytest.mark.rtcim_emulator(**EMU)
def test_friends_from_an_s3_users_file_report_the_stored_bytes_of_their_s3_output(
    rtcim_connection: Emulator, s3_store: S3Store
) -> None:
    """A real S3 API (moto on loopback): the key file and the output are S3 objects, and the
    output's size is the object's, read from the store."""
    emu = rtcim_connection
    s3_store.put("in/users.jsonl", "".join(json.dumps({"UserId": u}) + "\n" for u in emu.user_ids).encode())
    op = RtcImUserFriendsOperator(
        task_id="f",
        users_from=s3_store.url("in/users.jsonl"),
        output_path=s3_store.url("out/friends.jsonl.gz"),
    )
    summary = op.execute({})
    lineage = op.get_openlineage_facets_on_complete(None)
    bucket = f"s3://{s3_store.bucket}"
    assert _ids(lineage.inputs) == [_api(emu, "ListFriend"), (bucket, "in/users.jsonl")]
    assert _ids(lineage.outputs) == [(bucket, "out/friends.jsonl.gz")]
    stored = s3_store.read("out/friends.jsonl.gz")
    rows = [json.loads(line) for line in gzip.decompress(stored).decode().splitlines()]
    assert _stats(lineage.outputs[0]) == (len(rows), len(stored))
    assert len(rows) == summary["count"] > 0


@pytest.mark.rtcim_emulator(**EMU)
def test_an_s3_output_is_named_by_bucket_and_key_without_the_connection_id(
    rtcim_connection: Emulator, s3_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Naming only: the dataset is built from the summary's path; the object is not there, so no size.

    The connection points at moto's S3 server on loopback (which has no such bucket): the
    size lookup stays on this machine instead of trying AWS anonymously.
    """
    monkeypatch.setenv("AIRFLOW_CONN_RTCIM_TOS", connection_json(s3_server))
    emu = rtcim_connection
    op = RtcImConversationMessagesOperator(
        task_id="msg",
        conversations_from="s3://rtcim_tos@im-data/rtcim/2026-12-06/conversations.jsonl.gz",
        output_path="s3://rtcim_tos@im-data/rtcim/{{ ds }}/messages.jsonl.gz",
    )
    summary = {"path": "s3://rtcim_tos@im-data/rtcim/2026-12-06/messages.jsonl.gz", "count": 42}
    lineage = operator_lineage(op, summary)
    assert _ids(lineage.inputs) == [
        _api(emu, "GetConversationMessages"),
        ("s3://im-data", "rtcim/2026-12-06/conversations.jsonl.gz"),
    ]
    assert _ids(lineage.outputs) == [("s3://im-data", "rtcim/2026-12-06/messages.jsonl.gz")]
    assert _stats(lineage.outputs[0]) == (42, None)


@pytest.mark.rtcim_emulator(**EMU)
def test_the_retry_of_a_committed_incremental_run_reports_the_committed_file(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    """The retry returns the committed run's summary without writing: lineage still names the file."""
    emu = rtcim_connection
    target = tmp_path / "out" / "run-1.jsonl"

    def run() -> tuple[dict[str, Any], Any]:
        op = RtcImConversationMessagesOperator(
            task_id="messages",
            conversation_short_id=emu.conversation_ids(),
            output_path=str(target),
            checkpoint_path=str(tmp_path / "ckpt" / "messages.json"),
        )
        summary = op.execute({"run_id": "run-1"})
        return summary, op.get_openlineage_facets_on_complete(None)

    first, first_lineage = run()
    emu.reset_stats()
    again, lineage = run()
    assert again == first and emu.stats["requests"] == 0  # the retry path: nothing was listed
    assert _ids(lineage.outputs) == _ids(first_lineage.outputs) == [("file", str(target))]
    assert _stats(lineage.outputs[0]) == (first["count"], target.stat().st_size)


@pytest.mark.rtcim_emulator(**EMU)
def test_a_failed_run_reports_what_it_read_and_no_output(rtcim_connection: Emulator, tmp_path: Path) -> None:
    """The provider asks a failed task the same method (no ..._on_failure): no file was published."""
    emu = rtcim_connection
    ids = emu.conversation_ids()[:3]
    emu.configure(anomalies={ids[1]: "stuck_cursor"})
    emu.add_messages(ids[1], 45)
    target = tmp_path / "out" / "m.jsonl"
    op = RtcImConversationMessagesOperator(task_id="m", conversation_short_id=ids, output_path=str(target))
    with pytest.raises(RtcImListingFailed):
        op.execute({})
    lineage = _extract(op, "FAILED")
    assert _ids(lineage.inputs) == [_api(emu, "GetConversationMessages")]
    assert lineage.outputs == [] and not target.exists()


@pytest.mark.rtcim_emulator(**EMU)
def test_the_openlineage_provider_picks_the_operators_lineage_up(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    """What the provider's listener does on success: its extractor manager calls the operator."""
    emu = rtcim_connection
    target = tmp_path / "c.jsonl"
    op = RtcImGetUserConversationsOperator(
        task_id="c", participant_user_id=emu.user_ids[:1], output_path=str(target)
    )
    op.execute({})
    metadata = _extract(op, "SUCCESS")
    assert _ids(metadata.inputs) == [_api(emu, "GetUserConversations")]
    assert _ids(metadata.outputs) == [("file", str(target))]
    assert _stats(metadata.outputs[0]) == (len(_lines(target)), target.stat().st_size)


# ---------------------------------------------------------------------------------------
# without the provider
# ---------------------------------------------------------------------------------------

_WITHOUT_OPENLINEAGE = textwrap.dedent(
    """
    import importlib.abc, json, sys

    try:
        import importlib_metadata  # noqa: F401 - its finder joins sys.meta_path when imported
    except ImportError:
        pass

    def blocked(name):
        name = (name or "").lower().replace("_", "-").replace(".", "-")
        return name == "openlineage" or name.startswith(
            ("openlineage-", "airflow-providers-openlineage", "apache-airflow-providers-openlineage")
        )

    class Blocker(importlib.abc.MetaPathFinder):
        # as if the provider and the client were not installed: no module ...
        def find_spec(self, name, path=None, target=None):
            if blocked(name):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    # ... and no distribution (Airflow discovers providers through their metadata)
    for finder in sys.meta_path:
        find = getattr(finder, "find_distributions", None)
        if find is not None:
            def filtered(*args, _find=find, **kwargs):
                return [d for d in _find(*args, **kwargs) if not blocked(d.metadata["Name"])]
            setattr(finder, "find_distributions", filtered)
    sys.meta_path.insert(0, Blocker())

    from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator

    op = RtcImGetUserConversationsOperator(
        task_id="c", participant_user_id=json.loads(sys.argv[1]), output_path=sys.argv[2]
    )
    summary = op.execute({})
    try:
        op.get_openlineage_facets_on_complete(None)
    except ImportError as exc:
        lineage = f"ImportError: {exc}"
    else:
        lineage = "reported"
    loaded = sorted(m for m in sys.modules if m.startswith(("openlineage", "airflow.providers.openlineage")))
    print(json.dumps({"count": summary["count"], "lineage": lineage, "loaded": loaded}))
    """
)


@pytest.mark.rtcim_emulator(**EMU)
def test_the_package_imports_and_runs_without_the_openlineage_provider(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    target = tmp_path / "c.jsonl"
    out = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OPENLINEAGE, json.dumps(emu.user_ids), str(target)],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["count"] == len(_lines(target)) > 0
    assert result["loaded"] == []
    assert result["lineage"].startswith("ImportError") and "[openlineage]" in result["lineage"]
