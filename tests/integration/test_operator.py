"""RtcImGetUserConversationsOperator against the emulator over HTTP, and under dag.test().

Object storage is exercised offline through local paths, ``file://`` and ``memory://``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
import queue
import re
import sys
import time
import types
from pathlib import Path
from typing import Any

import fsspec
import pytest
from airflow.sdk import DAG, Asset, ObjectStoragePath
from airflow.sdk.io import attach
from fsspec.implementations.memory import MemoryFile, MemoryFileSystem

from airflow_provider_rtcim.compat import AirflowFailException
from airflow_provider_rtcim.core import fanout as fanout_module
from airflow_provider_rtcim.core.errors import RtcImError
from airflow_provider_rtcim.core.sink import output_asset_uri, temp_name_for
from airflow_provider_rtcim.exceptions import RtcImApiError, RtcImInvalidArgument
from airflow_provider_rtcim.hooks.rtcim import RtcImHook
from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator, RtcImListingFailed

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


def _try_number(run: Any, task_id: str) -> int:
    from airflow.models.dagrun import DagRun as DagRunModel
    from airflow.utils.session import create_session

    with create_session() as session:
        fresh = session.get(DagRunModel, run.id)
        assert fresh is not None
        ti = fresh.get_task_instance(task_id, session=session)
        assert ti is not None
        return int(ti.try_number)


def _run(op: RtcImGetUserConversationsOperator, context: dict[str, Any] | None = None) -> Any:
    return op.execute(context if context is not None else {})


class _CloseTimeFile(io.BytesIO):
    """A write handle that reaches the store only at close(), as s3fs and gcsfs do."""

    def __init__(self, fs: _CloseTimeFS, path: str) -> None:
        super().__init__()
        self.fs, self.path, self.finished = fs, path, False

    def close(self) -> None:
        if self.finished:
            return
        self.finished = True
        data = self.getvalue()
        super().close()
        if self.fs.deny:
            raise PermissionError(f"AccessDenied: PutObject on {self.path}")
        self.fs.store[self.path] = MemoryFile(self.fs, self.path, data)


class _CloseTimeFS(MemoryFileSystem):
    """``closetime://``: an in-memory object store whose writes land (or are refused) at close()."""

    protocol = ("closetime",)
    store: dict[str, Any] = {}
    pseudo_dirs: list[str] = [""]

    deny = False  # class-level like the store: every instance fsspec or attach() hands out agrees

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, str) and path.startswith("closetime://"):
            path = path[len("closetime://") :]
        return super()._strip_protocol(path)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "w" in mode:
            return _CloseTimeFile(self, self._strip_protocol(path))
        return super()._open(path, mode, **kwargs)


def _attach_closetime(deny: bool) -> _CloseTimeFS:
    from upath.implementations.memory import MemoryPath
    from upath.registry import register_implementation

    fsspec.register_implementation("closetime", _CloseTimeFS, clobber=True)
    register_implementation("closetime", MemoryPath, clobber=True)
    _CloseTimeFS.store.clear()
    _CloseTimeFS.deny = deny
    fs = _CloseTimeFS()
    attach("closetime", fs=fs)
    return fs


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
        "participant_user_ids_from",
        "key_range",
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


@pytest.mark.parametrize(
    "path", ["out.jsonl", "data/x.jsonl.gz", "./x.jsonl", "~/x.jsonl", "data/{{ ds }}/x.jsonl"]
)
def test_relative_local_output_path_is_refused_at_construction(path: str) -> None:
    # the Asset would be resolved against the DAG processor's cwd, the file the worker's
    with pytest.raises(ValueError, match=r"output_path must be an absolute path or a URL"):
        Op(task_id="t", participant_user_id=1, output_path=path)
    with pytest.raises(ValueError, match=r"output_path must be an absolute path or a URL"):
        Op.partial(task_id="m", output_path=path).expand(participant_user_id=[1])
    # absolute paths, URLs and paths only known after templating are accepted
    for ok in ("/data/x.jsonl", "file:///data/x.jsonl", "s3://b/x.jsonl", "{{ var.value.base }}/x.jsonl"):
        Op(task_id="t", participant_user_id=1, output_path=ok)


def test_relative_output_path_after_templating_fails_before_any_request(
    rtcim_connection: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = rtcim_connection
    monkeypatch.chdir(tmp_path)
    op = Op(task_id="t", participant_user_id=emu.user_ids[0], output_path="{{ var.value.out }}")
    op.output_path = "rendered/out.jsonl"  # what the template rendered to
    with pytest.raises(ValueError, match=r"output_path must be an absolute path or a URL.*rendered/out"):
        _run(op)
    assert emu.stats["requests"] == 0
    assert list(tmp_path.iterdir()) == []


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
    with pytest.raises(ValueError, match=field) as info:
        _run(Op(task_id="t", **args))
    assert emu.stats["requests"] == 0
    if "output_path" not in kwargs:  # request arguments: hopeless, so no task retry is spent on them
        assert isinstance(info.value, AirflowFailException)


def test_unwritable_output_path_fails_before_any_request(rtcim_connection: Any, tmp_path: Path) -> None:
    emu = rtcim_connection
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    # under a regular file (fails for root too, unlike a chmod'ed directory), by path and by
    # file:// URL, one and two levels down; and a directory
    bad_paths = (
        str(blocker / "out.jsonl"),
        str(blocker / "sub" / "out.jsonl"),
        f"file://{blocker}/out.jsonl",
        f"file://{blocker}/sub/out.jsonl",
        str(tmp_path),
    )
    for bad in bad_paths:
        with pytest.raises(ValueError, match=r"output_path .* cannot be written"):
            _run(Op(task_id="t", participant_user_id=emu.user_ids[0], output_path=bad))
    assert emu.stats["requests"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
    assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize(
    "rendered",
    [
        "2026-12-01/conversations.jsonl",  # "{{ ds }}/conversations.jsonl": relative once rendered
        "s3://no-such-provider-bucket/x.jsonl",  # s3:// without the Amazon provider installed
        "nosuchscheme://bucket/x.jsonl",
        "   ",
        "/tmp/rtcim-dir/",
    ],
)
def test_every_unusable_output_path_fails_without_spending_retries(
    rtcim_connection: Any, rendered: str
) -> None:
    """Issue #9 bug 1: the writability probe's failure is an invalid argument like any other.

    Before the fix it raised a plain ValueError, so Airflow spent the task's retries on it
    (614 s under `airflow dags test`)."""
    emu = rtcim_connection
    op = Op(task_id="t", participant_user_id=emu.user_ids[0], output_path="{{ templated }}")
    op.output_path = rendered  # what templating produced
    with pytest.raises(RtcImInvalidArgument, match=r"output_path") as info:
        _run(op)
    assert isinstance(info.value, AirflowFailException) and isinstance(info.value, ValueError)
    assert emu.stats["requests"] == 0


def test_object_store_refusing_writes_at_close_fails_before_any_request(rtcim_connection: Any) -> None:
    # s3fs/gcsfs send nothing until close(): opening the temporary object proves nothing, so
    # the probe writes it empty and closes it. Without that, every user would be listed first.
    emu = rtcim_connection
    fs = _attach_closetime(deny=True)
    with pytest.raises(ValueError, match=r"output_path .* cannot be written: AccessDenied"):
        _run(Op(task_id="t", participant_user_id=emu.user_ids, output_path="closetime://denied/x.jsonl"))
    assert emu.stats["requests"] == 0
    assert not fs.glob("/denied/**")


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=30)
def test_object_store_writing_at_close_gets_a_real_temporary_object_first(rtcim_connection: Any) -> None:
    emu = rtcim_connection
    fs = _attach_closetime(deny=False)
    seen_at_first_request: list[list[str]] = []
    op = Op(task_id="t", participant_user_id=emu.user_ids, output_path="closetime://ok/out/c.jsonl.gz")
    real_iter = op.hook.iter_listing  # every listing of every operator goes through it

    def spying_iter(*args: Any, **kwargs: Any) -> Any:
        if not seen_at_first_request:
            seen_at_first_request.append(sorted(fs.store))
        return real_iter(*args, **kwargs)

    op.hook.iter_listing = spying_iter  # type: ignore[method-assign]
    summary = _run(op)
    # the empty temporary object was in the store before the first request
    (before,) = seen_at_first_request
    assert len(before) == 1 and before[0].startswith("/ok/out/.c.jsonl.gz.") and before[0].endswith(".tmp")
    assert sorted(fs.store) == ["/ok/out/c.jsonl.gz"]  # published, the temporary object renamed
    rows = [json.loads(x) for x in gzip.decompress(fs.cat("/ok/out/c.jsonl.gz")).splitlines()]
    assert rows == _rows(emu, emu.user_ids) and summary["count"] == len(rows)


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
    started, finished = summary.pop("fetch_started_at"), summary.pop("fetch_finished_at")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", started) and started <= finished
    assert summary == {
        "path": str(target),
        "paths": [str(target)],
        "count": 3021,
        "users": 2,
        "user_id_type": "int",
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
    assert isinstance(info.value, AirflowFailException)  # a broken cursor: task retries cannot help
    assert target.read_bytes() == b"previous good file"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl.gz"]  # no temp leftovers
    emu.configure(anomalies={})
    summary = _run(Op(task_id="t", participant_user_id=users, output_path=str(target), max_workers=4))
    assert _read(target) == _rows(emu, users) and summary["count"] == len(_rows(emu, users))
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl.gz"]


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=5)
def test_non_retryable_failure_is_an_airflow_fail_exception(rtcim_connection: Any) -> None:
    emu = rtcim_connection
    uid = emu.user_ids[1]
    with pytest.raises(AirflowFailException) as info:  # the task's retries are skipped
        _run(Op(task_id="t", participant_user_id=uid, app_id=424242))
    err = info.value
    assert isinstance(err, RtcImListingFailed) and isinstance(err, RtcImApiError)
    assert err.code == "InvalidParameter.NotExistAppId" and not err.retryable
    text = str(err)
    assert f"participant_user_id={uid}" in text and "InvalidParameter.NotExistAppId" in text
    assert err.request_id and f"RequestId {err.request_id}" in text
    assert isinstance(err.__cause__, RtcImError) and err.__cause__.code == err.code
    assert emu.stats["requests"] == 1


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=5, max_consecutive_faults=1000)
def test_retryable_failure_after_the_hooks_retries_stays_retryable_for_airflow(rtcim_connection: Any) -> None:
    emu = rtcim_connection
    uid = emu.user_ids[0]
    emu.configure(fault_rate=1.0, fault_kinds=["503"])
    op = Op(task_id="t", participant_user_id=uid)
    op.hook = RtcImHook(max_retries=2, retry_backoff=0.001, retry_backoff_max=0.002)
    with pytest.raises(RtcImApiError) as info:
        _run(op)
    err = info.value
    assert not isinstance(err, AirflowFailException)  # the task's own retries may still help
    assert err.retryable and err.http_status == 503
    assert f"participant_user_id={uid}" in str(err) and err.code in str(err)
    assert emu.stats["requests"] == 3  # the first try and the hook's 2 retries


@pytest.mark.rtcim_emulator(users=40, conversations_per_user=5)
@pytest.mark.parametrize("starved", [False, True], ids=["normal", "coordinator-starved"])
def test_bad_app_id_cancels_queued_users_names_user_and_code_and_leaves_nothing(
    rtcim_connection: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, starved: bool
) -> None:
    emu = rtcim_connection
    if starved:
        # The coordinating thread wakes up only when every queued user has run (the worst
        # scheduling it could get under load): only the failing worker's own stop flag can
        # keep the idle workers from starting the 38 queued users.
        # The engine only starts a key when a worker is free, so nothing is queued; still, a
        # coordinator that wakes up late must not let idle workers start more users.
        class SlowQueue(queue.SimpleQueue):
            def get(self, block=True, timeout=None):  # type: ignore[override]
                time.sleep(0.3)
                return super().get(block, timeout)

        monkeypatch.setattr(
            fanout_module, "queue", types.SimpleNamespace(SimpleQueue=SlowQueue, Empty=queue.Empty)
        )
    existing = tmp_path / "existing"
    existing.mkdir()
    target = existing / "day=1" / "part" / "out.jsonl"  # "day=1" and "part" are made by this run
    workers = 2
    with pytest.raises(RtcImError) as info:
        _run(
            Op(
                task_id="t",
                participant_user_id=emu.user_ids,
                app_id=424242,
                output_path=str(target),
                max_workers=workers,
            )
        )
    assert "InvalidParameter.NotExistAppId" in str(info.value)
    assert "participant_user_id=" in str(info.value)
    # no file, no temporary object, and the empty directories this run made are gone again
    assert list(tmp_path.iterdir()) == [existing] and list(existing.iterdir()) == []
    # The failing worker raises the stop flag before it returns and every queued user checks
    # it before its first request, so once a user has failed each worker finishes at most the
    # user it already had in hand; a bad AppId fails on its first request (never retried).
    # Hence at most one request per worker, whatever the thread timing.
    assert emu.stats["requests"] <= workers


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=5)
def test_failed_run_removes_only_the_empty_directories_it_created(
    rtcim_connection: Any, tmp_path: Path
) -> None:
    emu = rtcim_connection
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "keep.txt").write_text("x")
    target = tmp_path / "a" / "b" / "c" / "out.jsonl"
    (tmp_path / "a" / "b").mkdir()  # pre-existing and empty: not this run's to remove
    with pytest.raises(AirflowFailException):
        _run(Op(task_id="t", participant_user_id=emu.user_ids, app_id=424242, output_path=str(target)))
    assert (tmp_path / "a" / "b").is_dir() and not (tmp_path / "a" / "b" / "c").exists()
    assert (tmp_path / "a" / "keep.txt").read_text() == "x"
    # and a successful run keeps what it made
    _run(Op(task_id="t", participant_user_id=emu.user_ids, output_path=str(target)))
    assert _read(target) == _rows(emu, emu.user_ids)


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=5)
def test_publishing_removes_stale_temporary_objects_of_killed_tries(
    rtcim_connection: Any, tmp_path: Path
) -> None:
    emu = rtcim_connection
    target = tmp_path / "x.jsonl"
    stale = tmp_path / temp_name_for("x.jsonl", "abc")  # ".x.jsonl.abc.tmp", from a killed try
    assert stale.name == ".x.jsonl.abc.tmp"
    stale.write_bytes(b'{"partial": ')
    unrelated = {
        "other.txt": "keep",
        temp_name_for("y.jsonl", "abc"): "another target's temporary object",
        "x.jsonl.abc.tmp": "not hidden: not ours",
    }
    for name, text in unrelated.items():
        (tmp_path / name).write_text(text)
    summary = _run(Op(task_id="t", participant_user_id=emu.user_ids, output_path=str(target)))
    assert not stale.exists()
    assert _read(target) == _rows(emu, emu.user_ids) and summary["count"] == len(_rows(emu, emu.user_ids))
    assert {p.name for p in tmp_path.iterdir()} == {"x.jsonl", *unrelated}
    assert all((tmp_path / name).read_text() == text for name, text in unrelated.items())


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
        Op(
            task_id="failing",
            participant_user_id=u[0],
            app_id=999,
            output_path=str(out) + "/failing.jsonl",
            retries=2,  # a bad AppId cannot get better: AirflowFailException skips them
            retry_delay=dt.timedelta(0),
        )
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
    assert _try_number(run, "failing") == 1
    assert sorted(p.name for p in (out / "mapped").iterdir()) == ["part-0.jsonl", "part-1.jsonl"]

    rendered = rendered_fields(run, "templated")
    assert rendered is not None and rendered["page_size"] == "7"
    assert str(u[0]) in str(rendered["participant_user_id"])

    events = asset_events(f"file://{out}")  # the templated path's static prefix
    assert sorted((e["source_task_id"], e["source_map_index"]) for e in events) == [("templated", -1)]
    assert events[0]["extra"] == {
        "path": summary["path"],
        "paths": [summary["path"]],
        "count": summary["count"],
        "users": 2,
        "user_id_type": "int",
        "fetch_started_at": summary["fetch_started_at"],
        "fetch_finished_at": summary["fetch_finished_at"],
    }
    mapped_events = asset_events(f"file://{out}/mapped")
    assert sorted(e["source_map_index"] for e in mapped_events) == [0, 1]
    assert sum(e["extra"]["count"] for e in mapped_events) == len(_rows(emu, u))

    # the secret is nowhere: rendered fields, XCom values, logs
    captured = capfd.readouterr()
    everything = [captured.out, captured.err]
    for task_id, map_index in states:
        everything.append(json.dumps(rendered_fields(run, task_id, map_index=map_index), default=str))
        everything.append(json.dumps(xcom_value(run, task_id, map_index=map_index), default=str))
    # Airflow 3.0's dag.test() prints its in-process supervisor's debug log, which echoes each
    # MaskSecret request (the hook asking Airflow to mask the secret) with the value: Airflow's line.
    blob = "\n".join(
        line for line in "\n".join(everything).splitlines() if "msg=MaskSecret(value=" not in line
    )
    assert "NotExistAppId" in blob  # the logs were captured (the failing task's error is there)
    assert SECRET not in blob
    assert os.environ["AIRFLOW_CONN_RTCIM_DEFAULT"].count(SECRET) == 1  # and the secret was in use
