"""RtcImGetUserConversationsOperator against the emulator over HTTP, and under dag.test().

Object storage is exercised offline through local paths, ``file://`` and ``memory://``.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path
from typing import Any

import fsspec
import pytest
from airflow.sdk import DAG, Asset, ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.io import attach

from airflow_provider_rtcim.core.errors import RtcImError
from airflow_provider_rtcim.core.sink import output_asset_uri, temp_name_for
from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator

Op = RtcImGetUserConversationsOperator

SECRET = "Sup3r-Distinctive-Secret-Do-Not-Leak-7f3a9c"
BIG = 2**62 + 12345  # int64 beyond 2**53: a float would lose it

# Users with exactly 0, 1, 20, 21 and 3000 conversations (page size 20 boundaries).
SIZED = {2000000: 0, 2000001: 1, 2000020: 20, 2000021: 21, 2003000: 3000}


def _conversation(uid: int, n: int) -> dict[str, Any]:
    return {
        "ConversationShortId": BIG + uid * 10_000 + n,
        "ConversationType": 2,
        "CreateTime": 1_700_000_000 + n,
        "Name": f"群聊 {n} 🚀",
        "Ext": {"k": "值"},
        "FutureField": {"nested": [1, 2, 3]},  # unknown to the provider: must be kept
    }


SIZED_DATA = {
    "users": {str(uid): [_conversation(uid, n) for n in range(count)] for uid, count in SIZED.items()}
}


def _rows(emu: Any, users: list[int], data_type: int = 1) -> list[dict[str, Any]]:
    """The expected rows: ground truth in API order, users in input order, plus ParticipantUserId."""
    return [{**c, "ParticipantUserId": uid} for uid in users for c in emu.conversations(uid, data_type)]


def _read(path: str | Path) -> list[dict[str, Any]]:
    raw = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def _run(op: RtcImGetUserConversationsOperator, context: dict[str, Any] | None = None) -> Any:
    return op.execute(context if context is not None else {})


# ---------------------------------------------------------------------------------------
# Construction: no I/O, templating surface, Asset outlets at parse time
# ---------------------------------------------------------------------------------------


def test_module_does_not_import_requests_and_init_does_no_io() -> None:
    import subprocess

    code = (
        "import sys; "
        "from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator as O; "
        "o = O(task_id='t', participant_user_id=1, rtcim_conn_id='does_not_exist'); "
        "assert 'requests' not in sys.modules, 'requests imported'; "
        "assert 'hook' not in o.__dict__; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_template_fields_and_keyword_only() -> None:
    assert set(Op.template_fields) == {
        "participant_user_id",
        "app_id",
        "data_type",
        "inbox_type",
        "skip_member_count",
        "page_size",
        "output_path",
    }
    with pytest.raises(TypeError):
        Op("t", 1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("/data/rtcim/conversations.jsonl.gz", "file:///data/rtcim/conversations.jsonl.gz"),
        ("/data/rtcim/{{ ds }}/conversations.jsonl", "file:///data/rtcim"),
        ("s3://aws_conn@bkt/rtcim/{{ ds }}/part-{{ ti.map_index }}.jsonl.gz", "s3://bkt/rtcim"),
        ("gs://bkt/x.jsonl", "gs://bkt/x.jsonl"),
        ("memory://bkt/a/b.jsonl", "memory://bkt/a/b.jsonl"),
        ("file:///tmp/{{ ds }}.jsonl", "file:///tmp"),
        ("{{ var.value.out }}", None),
        ("s3://{{ var.value.bucket }}/x.jsonl", None),
        ("/{{ ds }}.jsonl", None),
    ],
)
def test_output_asset_uri(path: str, uri: str | None) -> None:
    assert output_asset_uri(path) == uri


def test_asset_outlets_declared_at_parse_time() -> None:
    with DAG("t_outlets", schedule=None):
        static = Op(task_id="static", participant_user_id=1, output_path="/data/x.jsonl")
        templated = Op(task_id="templated", participant_user_id=1, output_path="s3://b/rtcim/{{ ds }}.jsonl")
        explicit = Op(
            task_id="explicit", participant_user_id=1, output_path="/x/{{ ds }}", asset="s3://b/all"
        )
        off = Op(task_id="off", participant_user_id=1, output_path="/data/y.jsonl", asset=False)
        xcom = Op(task_id="xcom", participant_user_id=1)
        mapped = Op.partial(task_id="mapped", output_path="s3://b/m/part-{{ ti.map_index }}.jsonl").expand(
            participant_user_id=[1, 2]
        )
        mapped_asset = Op.partial(task_id="mapped_asset", asset=Asset("s3://b/explicit")).expand(
            participant_user_id=[1], output_path=["/a.jsonl"]
        )
    assert [a.uri for a in static.outlets] == ["file:///data/x.jsonl"]
    assert [a.uri for a in templated.outlets] == ["s3://b/rtcim"]
    assert [a.uri for a in explicit.outlets] == ["s3://b/all"]
    assert off.outlets == [] and xcom.outlets == []
    assert [a.uri for a in mapped.outlets] == ["s3://b/m"]
    assert [a.uri for a in mapped_asset.outlets] == ["s3://b/explicit"]
    with pytest.raises(TypeError, match="partial can only be called on Operator classes"):
        static.partial(task_id="nope")


# ---------------------------------------------------------------------------------------
# Bad input: a clear ValueError naming the argument, before any request
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"participant_user_id": "abc"}, "participant_user_id"),
        ({"participant_user_id": []}, "participant_user_id"),
        ({"participant_user_id": "[]"}, "participant_user_id"),
        ({"participant_user_id": [1000001, "x"]}, r"participant_user_id\[1\]"),
        ({"participant_user_id": 1.5}, "participant_user_id"),
        ({"participant_user_id": True}, "participant_user_id"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": "21"}, "page_size"),
        ({"data_type": 5}, "data_type"),
        ({"inbox_type": -1}, "inbox_type"),
        ({"skip_member_count": "maybe"}, "skip_member_count"),
        ({"app_id": "app"}, "app_id"),
        ({"output_path": ""}, "output_path"),
        ({"output_path": "/tmp/some/dir/"}, "output_path"),
    ],
)
def test_bad_arguments_fail_before_any_request(rtcim_connection: Any, kwargs: dict, field: str) -> None:
    emu = rtcim_connection
    args = {"participant_user_id": emu.user_ids[0], **kwargs}
    with pytest.raises(ValueError, match=field):
        _run(Op(task_id="t", **args))
    assert emu.stats["requests"] == 0


def test_unwritable_output_path_fails_before_any_request(rtcim_connection: Any, tmp_path: Path) -> None:
    emu = rtcim_connection
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for bad in (str(blocker / "sub" / "out.jsonl"), str(tmp_path)):  # under a file; a directory
        with pytest.raises(ValueError, match="output_path"):
            _run(Op(task_id="t", participant_user_id=emu.user_ids[0], output_path=bad))
    assert emu.stats["requests"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_missing_app_id_is_named(rtcim_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = rtcim_emulator
    for name, value in emu.airflow_env(app_id=None).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="app_id"):
        _run(Op(task_id="t", participant_user_id=emu.user_ids[0]))
    assert emu.stats["requests"] == 0
    # the task's own app_id works without the connection's
    rows = _run(Op(task_id="t", participant_user_id=emu.user_ids[0], app_id=str(emu.app_id)))
    assert rows == _rows(emu, [emu.user_ids[0]])


# ---------------------------------------------------------------------------------------
# Listings: sizes at page boundaries, many users, duplicates, outputs
# ---------------------------------------------------------------------------------------


@pytest.mark.rtcim_emulator(data=SIZED_DATA)
def test_page_boundaries_xcom(rtcim_connection: Any) -> None:
    emu = rtcim_connection
    small = [2000000, 2000001, 2000020, 2000021]
    for uid in small:  # one id at a time, numeric strings accepted (templates render strings)
        rows = _run(Op(task_id="t", participant_user_id=str(uid)))
        assert len(rows) == SIZED[uid]
        assert rows == _rows(emu, [uid])
    emu.reset_stats()
    rows = _run(Op(task_id="t", participant_user_id=small, max_workers=3))
    assert rows == _rows(emu, small)
    # 1 page each for 0, 1 and 20 (HasMore false on the last), 2 pages for 21
    assert emu.stats["requests"] == 1 + 1 + 1 + 2
    row = rows[0]
    assert row["ConversationShortId"] == BIG + 2000001 * 10_000 and isinstance(
        row["ConversationShortId"], int
    )
    assert row["FutureField"] == {"nested": [1, 2, 3]} and row["Name"] == "群聊 0 🚀"
    assert list(row)[-1] == "ParticipantUserId" and row["ParticipantUserId"] == 2000001


@pytest.mark.rtcim_emulator(data=SIZED_DATA, qps_limit=None)
def test_thousands_of_conversations_to_gzip_file(rtcim_connection: Any, tmp_path: Path) -> None:
    emu = rtcim_connection
    target = tmp_path / "out" / "big.jsonl.gz"
    summary = _run(
        Op(task_id="t", participant_user_id=[2003000, 2000021], output_path=str(target), max_qps=0)
    )
    expected = _rows(emu, [2003000, 2000021])
    assert summary == {
        "path": str(target),
        "count": 3021,
        "users": 2,
        "pages": 150 + 2,
        "requests": 150 + 2,
        "retries": 0,
    }
    assert _read(target) == expected
    raw = gzip.decompress(target.read_bytes())
    first = raw.split(b"\n", 1)[0].decode("utf-8")
    assert first == json.dumps(expected[0], ensure_ascii=False, separators=(",", ":"))
    assert "群聊" in first and str(BIG + 2003000 * 10_000) in first  # raw UTF-8, exact int64
    assert sorted(p.name for p in target.parent.iterdir()) == ["big.jsonl.gz"]


@pytest.mark.rtcim_emulator(users=30, conversations_per_user=45, seed=7)
def test_many_users_concurrently_match_truth_in_input_order(rtcim_connection: Any, tmp_path: Path) -> None:
    emu = rtcim_connection
    users = list(reversed(emu.user_ids))  # input order, not id order
    target = tmp_path / "many.jsonl"
    summary = _run(Op(task_id="t", participant_user_id=users, output_path=f"file://{target}", max_workers=8))
    expected = _rows(emu, users)
    assert summary["count"] == len(expected) and summary["users"] == 30
    assert summary["requests"] == emu.stats["requests"] >= summary["pages"]
    assert summary["path"] == f"file://{target}"
    assert _read(target) == expected
    first_bytes = target.read_bytes()
    # a rerun writes the very same bytes (deterministic order), and the XCom path agrees
    _run(Op(task_id="t", participant_user_id=users, output_path=str(target), max_workers=5))
    assert target.read_bytes() == first_bytes
    assert _run(Op(task_id="t", participant_user_id=users, max_workers=8)) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["many.jsonl"]


@pytest.mark.rtcim_emulator(users=4, conversations_per_user=90, seed=3)
def test_duplicates_across_pages_are_dropped(rtcim_connection: Any) -> None:
    emu = rtcim_connection
    users = emu.user_ids
    # a page served twice (DataType 1): dedupe restores exactly the truth
    emu.configure(anomalies={users[0]: "repeated_page", users[1]: "repeated_page"})
    rows = _run(Op(task_id="t", participant_user_id=users, max_workers=4))
    assert rows == _rows(emu, users)
    # DataType 0 reorders while paging (and repeats a page): never the same id twice per user
    emu.configure(reorder_data_type0=True)
    rows = _run(Op(task_id="t", participant_user_id=users, data_type=0, max_workers=4))
    for uid in users:
        ids = [r["ConversationShortId"] for r in rows if r["ParticipantUserId"] == uid]
        assert ids and len(ids) == len(set(ids))
        assert set(ids) <= {c["ConversationShortId"] for c in emu.conversations(uid, 0)}


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=45)
def test_xcom_file_and_gzip_outputs_hold_the_same_rows(rtcim_connection: Any, tmp_path: Path) -> None:
    emu = rtcim_connection
    users = emu.user_ids
    xcom = _run(Op(task_id="t", participant_user_id=users, skip_member_count="true", inbox_type="0"))
    plain = _run(
        Op(
            task_id="t",
            participant_user_id=users,
            skip_member_count=True,
            output_path=str(tmp_path / "a.jsonl"),
        )
    )
    gz = _run(
        Op(
            task_id="t",
            participant_user_id=users,
            skip_member_count=True,
            output_path=str(tmp_path / "a.jsonl.gz"),
        )
    )
    assert xcom and all("MemberCount" not in r for r in xcom)
    assert _read(tmp_path / "a.jsonl") == xcom == _read(tmp_path / "a.jsonl.gz")
    assert plain["count"] == gz["count"] == len(xcom)
    assert gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()) == (tmp_path / "a.jsonl").read_bytes()


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=45)
def test_memory_object_storage(rtcim_connection: Any) -> None:
    emu = rtcim_connection
    attach("memory", fs=fsspec.filesystem("memory"))
    path = "memory://rtcim-test/exports/conv.jsonl.gz"
    summary = _run(Op(task_id="t", participant_user_id=emu.user_ids, output_path=path))
    target = ObjectStoragePath(path)
    with target.open("rb") as fh:
        rows = [json.loads(line) for line in gzip.decompress(fh.read()).splitlines()]
    assert rows == _rows(emu, emu.user_ids) and summary["count"] == len(rows)
    assert [p.name for p in target.parent.iterdir()] == ["conv.jsonl.gz"]
    # an ObjectStoragePath works as well as its URL
    _run(Op(task_id="t", participant_user_id=emu.user_ids[0], output_path=ObjectStoragePath(path)))
    with target.open("rb") as fh:
        assert len(gzip.decompress(fh.read()).splitlines()) == len(emu.conversations(emu.user_ids[0]))


@pytest.mark.rtcim_emulator(users=5, conversations_per_user=200, seed=1)
def test_max_xcom_rows_fails_fast_and_says_output_path(rtcim_connection: Any) -> None:
    emu = rtcim_connection
    with pytest.raises(AirflowFailException, match="output_path") as info:
        _run(Op(task_id="t", participant_user_id=emu.user_ids, max_xcom_rows=100, max_workers=2))
    assert "max_xcom_rows=100" in str(info.value)
    total_pages = sum(-(-len(emu.conversations(u)) // 20) for u in emu.user_ids)
    assert emu.stats["requests"] < total_pages  # stopped early, not after the whole listing
    assert len(_run(Op(task_id="t", participant_user_id=emu.user_ids[0], max_xcom_rows=1000))) > 100


# ---------------------------------------------------------------------------------------
# Faults: nothing partial is published; a rerun yields the complete file
# ---------------------------------------------------------------------------------------


@pytest.mark.rtcim_emulator(users=12, conversations_per_user=100, seed=5)
def test_failing_user_publishes_nothing_and_rerun_completes(rtcim_connection: Any, tmp_path: Path) -> None:
    emu = rtcim_connection
    users = emu.user_ids
    bad = users[7]
    target = tmp_path / "out.jsonl.gz"
    target.write_bytes(b"previous good file")  # a failed run must not touch what is there
    emu.configure(anomalies={bad: "stuck_cursor"})
    with pytest.raises(RtcImError) as info:
        _run(Op(task_id="t", participant_user_id=users, output_path=str(target), max_workers=4))
    message = str(info.value)
    assert f"participant_user_id={bad}" in message and "PaginationAnomaly" in message
    assert info.value.code == "PaginationAnomaly"
    assert target.read_bytes() == b"previous good file"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl.gz"]  # no temp leftovers
    emu.configure(anomalies={})
    summary = _run(Op(task_id="t", participant_user_id=users, output_path=str(target), max_workers=4))
    assert _read(target) == _rows(emu, users) and summary["count"] == len(_rows(emu, users))
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl.gz"]


@pytest.mark.rtcim_emulator(users=40, conversations_per_user=5)
def test_bad_app_id_names_user_and_code_and_leaves_no_file(rtcim_connection: Any, tmp_path: Path) -> None:
    emu = rtcim_connection
    target = tmp_path / "x" / "out.jsonl"
    with pytest.raises(RtcImError) as info:
        _run(
            Op(
                task_id="t",
                participant_user_id=emu.user_ids,
                app_id=424242,
                output_path=str(target),
                max_workers=2,
            )
        )
    assert "InvalidParameter.NotExistAppId" in str(info.value)
    assert "participant_user_id=" in str(info.value)
    assert not target.exists() and list(target.parent.iterdir()) == []
    # the queued users were cancelled: not one request per user
    assert emu.stats["requests"] <= 4


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=60, latency=0.03, secret_access_key=SECRET)
def test_progress_is_logged_without_secrets(rtcim_connection: Any, capfd: pytest.CaptureFixture[str]) -> None:
    emu = rtcim_connection
    op = Op(task_id="t", participant_user_id=emu.user_ids, max_workers=1)
    op.progress_interval = 0.01
    rows = _run(op)
    out = "".join(capfd.readouterr())
    assert "Progress:" in out and "requests/s" in out and "conversations/s" in out
    assert f"Listed {len(rows)} conversations of 2 user(s)" in out
    assert SECRET not in out


def test_temp_name_is_hidden_and_not_globbed() -> None:
    name = temp_name_for("conv.jsonl.gz", "abc")
    assert name.startswith(".") and name.endswith(".tmp") and not name.endswith(".gz")


# ---------------------------------------------------------------------------------------
# End to end under dag.test(): templating, dynamic task mapping, assets, no secret leaks
# ---------------------------------------------------------------------------------------


@pytest.mark.dagrun
@pytest.mark.rtcim_emulator(users=4, conversations_per_user=30, seed=11, secret_access_key=SECRET)
def test_dag_templating_mapping_assets_and_no_secret_leak(
    airflow_db: str, rtcim_connection: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from dagrun_helpers import asset_events, rendered_fields, run_dag, task_states, xcom_value

    emu = rtcim_connection
    u = emu.user_ids
    out = tmp_path / "exports"
    with DAG(
        "t_rtcim_operator_e2e",
        schedule=None,
        params={"users": [u[0], u[1]], "page_size": 7},
        render_template_as_native_obj=False,
    ) as dag:
        Op(
            task_id="templated",
            participant_user_id="{{ params.users }}",  # renders to the string "[1000001, 1000002]"
            page_size="{{ params.page_size }}",
            data_type="{{ 1 }}",
            output_path=str(out) + "/{{ ds }}/conversations.jsonl.gz",
        )
        Op.partial(
            task_id="mapped_batches",
            output_path=str(out) + "/mapped/part-{{ ti.map_index }}.jsonl",
        ).expand(participant_user_id=[[u[0], u[1]], [u[2], u[3]]])
        Op.partial(task_id="mapped_xcom").expand(participant_user_id=[u[2], str(u[3])])
        Op(task_id="failing", participant_user_id=u[0], app_id=999, output_path=str(out) + "/failing.jsonl")
    run = run_dag(dag)

    states = task_states(run)
    assert states == {
        ("templated", -1): "success",
        ("mapped_batches", 0): "success",
        ("mapped_batches", 1): "success",
        ("mapped_xcom", 0): "success",
        ("mapped_xcom", 1): "success",
        ("failing", -1): "failed",
    }
    summary = xcom_value(run, "templated")
    day_files = list(out.glob("*/conversations.jsonl.gz"))
    assert len(day_files) == 1 and summary["path"] == str(day_files[0])
    assert _read(day_files[0]) == _rows(emu, [u[0], u[1]])
    assert summary["pages"] == sum(-(-len(emu.conversations(x)) // 7) for x in (u[0], u[1]))
    for i, batch in enumerate([[u[0], u[1]], [u[2], u[3]]]):
        assert _read(out / "mapped" / f"part-{i}.jsonl") == _rows(emu, batch)
    assert xcom_value(run, "mapped_xcom", map_index=0) == _rows(emu, [u[2]])
    assert xcom_value(run, "mapped_xcom", map_index=1) == _rows(emu, [u[3]])
    assert not (out / "failing.jsonl").exists()
    assert sorted(p.name for p in (out / "mapped").iterdir()) == ["part-0.jsonl", "part-1.jsonl"]

    rendered = rendered_fields(run, "templated")
    assert rendered is not None and rendered["page_size"] == "7"
    assert str(u[0]) in str(rendered["participant_user_id"])

    events = asset_events(f"file://{out}")  # the templated path's static prefix
    assert sorted((e["source_task_id"], e["source_map_index"]) for e in events) == [("templated", -1)]
    assert events[0]["extra"] == {"path": summary["path"], "count": summary["count"], "users": 2}
    mapped_events = asset_events(f"file://{out}/mapped")
    assert sorted(e["source_map_index"] for e in mapped_events) == [0, 1]
    assert sum(e["extra"]["count"] for e in mapped_events) == len(_rows(emu, u))

    # the secret is nowhere: rendered fields, XCom values, logs
    captured = capfd.readouterr()
    everything = [captured.out, captured.err]
    for task_id, map_index in states:
        everything.append(json.dumps(rendered_fields(run, task_id, map_index=map_index), default=str))
        everything.append(json.dumps(xcom_value(run, task_id, map_index=map_index), default=str))
    blob = "\n".join(everything)
    assert "NotExistAppId" in blob  # the logs were captured (the failing task's error is there)
    assert SECRET not in blob
    assert os.environ["AIRFLOW_CONN_RTCIM_DEFAULT"].count(SECRET) == 1  # and the secret was in use
