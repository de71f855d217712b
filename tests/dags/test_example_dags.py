"""The example DAGs are product: each parses cleanly and runs end to end against the emulator.

Every DAG in ``dags_examples/`` is loaded from its file (as users copy it), run with
``dag.test()`` against a live emulator over HTTP, and its output is checked against the
emulator's own data.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from dagrun_helpers import asset_events, run_dag, task_states, xcom_value

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags_examples"
EXPECTED_DAGS = {
    "rtcim_sync_conversations",
    "rtcim_sync_conversations_mapped",
    "rtcim_wait_then_sync",
    "rtcim_conversations_report",
    "rtcim_im_export",
}


def _bag():
    from airflow_compat import dagbag_class

    return dagbag_class()(dag_folder=str(DAGS_FOLDER), collect_dags=True)


@pytest.fixture(scope="module")
def bag(airflow_db):
    return _bag()


def _read_rows(path: str) -> list[dict[str, Any]]:
    local = path.removeprefix("file://")
    opener = gzip.open if local.endswith(".gz") else open
    with opener(local, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _truth(emu, user_ids) -> list[tuple[int, int]]:
    return [(uid, c["ConversationShortId"]) for uid in user_ids for c in emu.conversations(uid)]


def test_every_example_parses_without_touching_a_connection_variable_or_the_network(
    airflow_db, monkeypatch, rtcim_connection
):
    """Parse in a DagBag with connection and Variable look-ups made to explode."""
    from airflow.sdk import Variable

    from airflow_provider_rtcim.compat import BaseHook

    def forbidden(*args, **kwargs):
        raise AssertionError("a DAG file touched a connection or a Variable at parse time")

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(forbidden))
    monkeypatch.setattr(Variable, "get", staticmethod(forbidden))
    parsed = _bag()
    assert parsed.import_errors == {}
    assert set(parsed.dag_ids) == EXPECTED_DAGS
    assert rtcim_connection.stats["requests"] == 0
    for dag_id in parsed.dag_ids:
        dag = parsed.get_dag(dag_id)
        assert not dag.catchup, f"{dag_id}: the API has no history, catchup must be off"
        assert "rtcim" in dag.tags


def test_every_api_task_runs_in_the_pool_within_its_share_of_the_budget(bag):
    """The account's 100 QPS holds whatever runs at once: each task's cap <= its slots x 24 QPS."""
    from airflow_provider_rtcim.operators.rtcim import RtcImListingOperator
    from airflow_provider_rtcim.sensors.rtcim import RtcImConversationCountSensor

    def subclasses(cls: type) -> set[type]:
        return {sub for direct in cls.__subclasses__() for sub in {direct, *subclasses(direct)}}

    api_classes = {c.__name__ for c in subclasses(RtcImListingOperator)} | {
        RtcImConversationCountSensor.__name__
    }
    checked = []
    for dag_id in sorted(bag.dag_ids):
        for task in bag.get_dag(dag_id).tasks:
            if task.operator_name not in api_classes:  # MappedOperator names its operator class
                continue
            kwargs = getattr(task, "partial_kwargs", None) or {}
            pool = kwargs.get("pool", getattr(task, "pool", None))
            slots = kwargs.get("pool_slots", getattr(task, "pool_slots", 1))
            max_qps = kwargs.get("max_qps", getattr(task, "max_qps", None))
            assert pool == "rtcim_api", f"{dag_id}.{task.task_id} runs outside the rtcim_api pool"
            assert max_qps is not None and 0 < max_qps <= slots * 24, (dag_id, task.task_id, max_qps, slots)
            checked.append((dag_id, task.task_id))
    # daily sync, mapped batch, the sensor and the sync after it, the IM export's six API steps
    # (conversations, members, messages, users, friends, blacklists)
    assert len(checked) == 10


def test_parsing_the_examples_does_not_import_requests():
    """DAG parsing pays for airflow.sdk only: requests is imported when a task runs.

    requests cannot even be imported while the examples are parsed: with the Amazon provider
    installed (a test dependency), Airflow's own Asset URI handlers would import it, which
    would hide an import of it by this package. Airflow logs that handler as unavailable and
    goes on; an import by the provider or the DAG files fails the parse.
    """
    code = (
        "import sys, runpy, glob\n"
        "class NoRequests:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'requests':\n"
        "            raise ImportError('requests is blocked while the examples are parsed')\n"
        "sys.meta_path.insert(0, NoRequests())\n"
        f"for f in sorted(glob.glob({str(DAGS_FOLDER)!r} + '/*.py')): runpy.run_path(f)\n"
        "print('requests' in sys.modules)\n"
    )
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_daily_sync_writes_exactly_the_emulators_conversations(
    airflow_db, rtcim_connection, monkeypatch, tmp_path, bag
):
    emu = rtcim_connection
    users = emu.user_ids
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_USER_IDS", json.dumps(users))
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_OUTPUT_BASE", f"file://{tmp_path}")

    run = run_dag(bag.get_dag("rtcim_sync_conversations"))

    assert task_states(run) == {("sync_user_conversations", -1): "success"}
    summary = xcom_value(run, "sync_user_conversations")
    path = summary["path"]
    # the partition says when it was synced, from run_after (every run has it)
    assert f"/user_conversations/synced_at={run.run_after.strftime('%Y%m%dT%H%M%SZ')}/" in path
    rows = _read_rows(path)
    assert [(r["ParticipantUserId"], r["ConversationShortId"]) for r in rows] == _truth(emu, users)
    assert summary["count"] == len(rows) and summary["users"] == len(users)
    from airflow.sdk import Asset

    asset_uri = Asset(name="rtcim_user_conversations", uri="rtcim://user-conversations").uri  # normalized
    events = [e for e in asset_events(asset_uri) if e["source_run_id"] == run.run_id]
    assert [e["extra"]["path"] for e in events] == [path]
    assert events[0]["extra"]["count"] == len(rows)
    # and the downstream report DAG reads that file (manual run: the path comes from conf)
    report = run_dag(bag.get_dag("rtcim_conversations_report"), conf={"path": path})
    assert task_states(report) == {("report", -1): "success"}
    result = xcom_value(report, "report")
    assert result["total"] == len(rows)
    assert result["users"] == len(users)
    names = {1: "one-to-one", 2: "group", 100: "live group"}
    expected_types: dict[str, int] = {}
    for r in rows:
        expected_types[names[r["ConversationType"]]] = expected_types.get(names[r["ConversationType"]], 0) + 1
    assert result["by_type"] == expected_types
    # Scheduled on the Asset, the report reads the path from the triggering event's extra:
    # feed the task the event the sync really recorded (dag.test() cannot trigger on assets).
    from types import SimpleNamespace

    report_task = bag.get_dag("rtcim_conversations_report").get_task("report")
    triggered = report_task.python_callable(
        triggering_asset_events={asset_uri: [SimpleNamespace(extra=events[0]["extra"])]},
        params={"path": None},
    )
    assert triggered == result


@pytest.mark.rtcim_emulator(users=7, conversations_per_user=30)
def test_mapped_sync_batches_add_up_to_every_users_conversations(
    airflow_db, rtcim_connection, monkeypatch, tmp_path, bag
):
    emu = rtcim_connection
    users = emu.user_ids
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_USER_IDS", json.dumps(users))
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_OUTPUT_BASE", f"file://{tmp_path}")
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_BATCH_SIZE", "3")
    dag = bag.get_dag("rtcim_sync_conversations_mapped")
    mapped = dag.get_task("sync_batch")
    # the budget arithmetic: pool slots x per-task max_qps stays under the account's 100 QPS
    assert mapped.partial_kwargs["pool"] == "rtcim_api"
    assert mapped.partial_kwargs["max_qps"] == 24

    run = run_dag(dag)

    states = task_states(run)
    assert states[("make_batches", -1)] == "success" and states[("publish", -1)] == "success"
    assert {k: v for k, v in states.items() if k[0] == "sync_batch"} == {
        ("sync_batch", 0): "success",
        ("sync_batch", 1): "success",
        ("sync_batch", 2): "success",
    }
    # only a file and ranges go through XCom, never the ids themselves
    batches = xcom_value(run, "make_batches")
    assert [b["key_range"] for b in batches] == [[0, 3], [3, 6], [6, 7]]
    (ids_file,) = {b["participant_user_ids_from"] for b in batches}
    assert Path(ids_file.removeprefix("file://")).read_text().split() == [str(u) for u in users]
    total = xcom_value(run, "publish")
    got: list[tuple[int, int]] = []
    paths = []
    for i in range(3):
        part = xcom_value(run, "sync_batch", map_index=i)
        assert part["path"].endswith(f"/batch={i:05d}.jsonl.gz")
        paths.append(part["path"])
        got += [(r["ParticipantUserId"], r["ConversationShortId"]) for r in _read_rows(part["path"])]
    assert got == _truth(emu, users)
    assert total["count"] == len(got) and total["users"] == len(users) and total["tasks"] == 3
    assert total["paths"] == paths
    # ONE Asset event for the whole run (from `publish`), naming every file with the run's total
    from airflow.sdk import Asset

    asset_uri = Asset(name="rtcim_user_conversations", uri="rtcim://user-conversations").uri
    events = [e for e in asset_events(asset_uri) if e["source_run_id"] == run.run_id]
    assert [(e["source_task_id"], e["extra"]["count"]) for e in events] == [("publish", len(got))]
    assert events[0]["extra"]["paths"] == paths
    # and the report, scheduled on that Asset, reads all of it
    from types import SimpleNamespace

    report_task = bag.get_dag("rtcim_conversations_report").get_task("report")
    result = report_task.python_callable(
        triggering_asset_events={asset_uri: [SimpleNamespace(extra=events[0]["extra"])]},
        params={"path": None},
    )
    assert result["total"] == len(got) and result["users"] == len(users)


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=30)
def test_mapped_sync_reads_ids_from_a_file_and_stays_within_max_map_length(
    airflow_db, rtcim_connection, monkeypatch, tmp_path, bag
):
    emu = rtcim_connection
    users = emu.user_ids
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{u}\n" for u in [*users, users[0]]))  # a repeat is listed once
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_USER_IDS_PATH", f"file://{ids}")
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_OUTPUT_BASE", f"file://{tmp_path}")
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_BATCH_SIZE", "1")
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")  # 3 batches of 1 would be too many

    run = run_dag(bag.get_dag("rtcim_sync_conversations_mapped"))

    assert xcom_value(run, "make_batches") == [
        {"participant_user_ids_from": f"file://{ids}", "key_range": [0, 2]},
        {"participant_user_ids_from": f"file://{ids}", "key_range": [2, 3]},
    ]
    total = xcom_value(run, "publish")
    got = [(r["ParticipantUserId"], r["ConversationShortId"]) for p in total["paths"] for r in _read_rows(p)]
    assert got == _truth(emu, users) and total["users"] == len(users)


def test_wait_then_sync_fires_after_a_conversation_is_added(
    airflow_db, rtcim_connection, monkeypatch, tmp_path, bag
):
    emu = rtcim_connection
    uid = emu.user_ids[1]
    start = len(emu.conversations(uid))
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_OUTPUT_BASE", f"file://{tmp_path}")
    dag = bag.get_dag("rtcim_wait_then_sync")
    sensor = dag.get_task("wait_for_change")
    assert sensor.deferrable
    sensor.poke_interval = 0.3  # the example waits a minute between polls; a test cannot
    sensor.timeout = 120

    # Add a conversation once the sensor has counted its baseline (its first full listing).
    # How many pages that listing takes: count once the same way, then forget those requests.
    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

    probe = RtcImHook()
    assert probe.count_user_conversations(uid) == start
    pages_for_baseline = probe.stats["pages"]
    probe.close()
    emu.reset_stats()
    stop = threading.Event()

    def add_after_baseline() -> None:
        while not stop.is_set():
            # a 200 is counted once its page was built: the baseline listing is complete
            if emu.stats["by_status"].get(200, 0) >= pages_for_baseline:
                emu.add_conversation(uid, AppId=emu.app_id, InboxType=0, Name="新的会话 🎉")
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=add_after_baseline, daemon=True)
    watcher.start()
    try:
        run = run_dag(dag, conf={"user_id": uid})
    finally:
        stop.set()
        watcher.join(5)

    assert task_states(run) == {
        ("wait_for_change", -1): "success",
        ("sync_user", -1): "success",
        ("report", -1): "success",
    }
    result = xcom_value(run, "report")
    assert result["baseline_count"] == start
    assert result["count"] == start + 1 and result["delta"] == 1
    rows = _read_rows(result["path"])
    assert [r["ConversationShortId"] for r in rows] == [
        c["ConversationShortId"] for c in emu.conversations(uid)
    ]
    assert len(rows) == start + 1 and rows[-1]["Name"] == "新的会话 🎉"


def test_connection_form_served_by_the_api_server_lists_rtcim(airflow_db, monkeypatch):
    """What the connection page asks the API server for: /ui/connections/hook_meta.

    Asked of an app in a fresh process, as in an API server: before 3.2 Airflow builds the form
    once per process, and this test process has long loaded the hooks' real widgets.
    """
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    code = (
        "from airflow.api_fastapi.app import create_app\n"
        "from fastapi.testclient import TestClient\n"
        "with TestClient(create_app()) as client:\n"
        # the token the UI gets when every user is an admin (3.1 asks for it, 3.0 and 3.2+ do not)
        "    token = client.get('/auth/token').json()['access_token']\n"
        "    r = client.get('/ui/connections/hook_meta', headers={'Authorization': f'Bearer {token}'})\n"
        "print('STATUS=%s' % r.status_code)\n"
        "print('BODY=' + r.text)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert "STATUS=200" in lines, out.stdout[-2000:]
    (body,) = [line.removeprefix("BODY=") for line in lines if line.startswith("BODY=")]
    (meta,) = [h for h in json.loads(body) if h["connection_type"] == "rtcim"]
    assert meta["hook_name"] == "RTC IM (Volcengine)"
    assert meta["hook_class_name"] == "airflow_provider_rtcim.hooks.rtcim.RtcImHook"
    std = meta["standard_fields"]
    assert std["login"]["title"] == "Access Key ID"
    assert std["password"]["title"] == "Secret Access Key"
    assert std["host"]["title"] == "Endpoint"
    assert std["port"]["hidden"] and std["url_schema"]["hidden"]
    assert std["login"]["placeholder"] == "AKLT..."
    extra = meta["extra_fields"]
    assert {
        "app_id",
        "region",
        "session_token",
        "endpoint_url",
        "timeout",
        "max_qps",
        "proxies",
        "verify",
    } <= set(extra)
    assert extra["app_id"]["schema"]["type"] == ["integer", "null"]
    assert extra["session_token"]["schema"]["format"] == "password"
    assert extra["region"]["value"] == "cn-north-1"


@pytest.mark.rtcim_emulator(users=4, conversations_per_user=9, participants_per_conversation=25)
def test_im_export_writes_every_conversations_members_and_messages_once_per_run(
    airflow_db, rtcim_connection, monkeypatch, tmp_path, bag
):
    emu = rtcim_connection
    users = emu.user_ids
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_USER_IDS", json.dumps(users))
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_OUTPUT_BASE", f"file://{tmp_path}")
    dag = bag.get_dag("rtcim_im_export")
    plan_task = dag.get_task("plan")
    assert plan_task is not None

    run = run_dag(dag)

    states = task_states(run)
    optional = {("export_friends", -1), ("export_blacklists", -1)}  # skipped by default (checked below)
    assert all(state == "success" for ti, state in states.items() if ti not in optional), states
    conv_summary = xcom_value(run, "export_conversations")
    conv_rows = _read_rows(conv_summary["path"])
    assert [(r["ParticipantUserId"], r["ConversationShortId"]) for r in conv_rows] == _truth(emu, users)
    distinct = list(dict.fromkeys(r["ConversationShortId"] for r in conv_rows))
    batches = xcom_value(run, "plan")
    assert {b["conversations_from"] for b in batches} == {conv_summary["path"]}  # a file and ranges only
    members = xcom_value(run, "publish_members")
    messages = xcom_value(run, "publish_messages")
    got_members = [r for p in members["paths"] for r in _read_rows(p)]
    got_messages = [r for p in messages["paths"] for r in _read_rows(p)]
    assert got_members == [p for sid in distinct for p in emu.participants(sid)]
    from airflow_provider_rtcim.core.checkpoint import shard_of

    shards = range(4)  # MESSAGE_SHARDS: the parts are in map order, each shard's conversations in file order
    by_shard = [sid for i in shards for sid in distinct if shard_of(sid, 4) == i]
    assert got_messages == [m for sid in by_shard for m in emu.messages(sid)]
    assert members["count"] == len(got_members) and messages["count"] == len(got_messages)
    assert members["conversations"] == messages["conversations"] == len(distinct)
    # each step publishes its own Asset exactly once for the run
    from airflow.sdk import Asset

    # the members' profiles: every distinct member once, in the parts' order, 50 ids a request
    member_ids = list(dict.fromkeys(r["ParticipantUserId"] for r in got_members))
    users_summary = xcom_value(run, "export_users")
    got_users = _read_rows(users_summary["path"])
    truth = emu.batch_users(member_ids)
    assert got_users == truth["Users"] and len(got_users) > 0
    assert users_summary["not_found"] == len(truth["NotFoundUsers"])
    assert users_summary["users"] == len(member_ids)
    # friends and blacklists are off by default: skipped, no file, no event
    assert states[("want_friends_and_blacklists", -1)] == "success"
    assert states[("export_friends", -1)] == states[("export_blacklists", -1)] == "skipped"
    assert not (Path(users_summary["path"].removeprefix("file://")).parent / "friends.jsonl.gz").exists()
    for name, uri, source, count in (
        ("rtcim_conversations", "rtcim://im-export/conversations", "export_conversations", len(conv_rows)),
        ("rtcim_members", "rtcim://im-export/members", "publish_members", len(got_members)),
        ("rtcim_messages", "rtcim://im-export/messages", "publish_messages", len(got_messages)),
        ("rtcim_users", "rtcim://im-export/users", "export_users", len(got_users)),
    ):
        events = [e for e in asset_events(Asset(name=name, uri=uri).uri) if e["source_run_id"] == run.run_id]
        assert [(e["source_task_id"], e["extra"]["count"]) for e in events] == [(source, count)], name
    for uri in ("rtcim://im-export/friends", "rtcim://im-export/blacklists"):
        assert not [e for e in asset_events(uri) if e["source_run_id"] == run.run_id]

    # the next run exports only the messages sent since (the checkpoints live under the base)
    assert sorted(p.name for p in (tmp_path / "im_export" / "checkpoints").iterdir()) == [
        f"messages.shard-{i}-of-4.json" for i in shards
    ]
    added = [m for sid in distinct[:3] for m in emu.add_messages(sid, 2)]
    second = run_dag(dag, run_after=run.run_after + dt.timedelta(days=1))
    second_states = task_states(second)
    assert all(state == "success" for ti, state in second_states.items() if ti not in optional)
    assert {second_states[ti] for ti in optional} == {"skipped"}
    again = xcom_value(second, "publish_messages")
    new_rows = [r for p in again["paths"] for r in _read_rows(p)]
    assert sorted(r["MessageId"] for r in new_rows) == sorted(m["MessageId"] for m in added)
    assert again["count"] == 6 and not set(again["paths"]) & set(messages["paths"])


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=4, participants_per_conversation=6)
def test_im_export_exports_friends_and_blacklists_when_the_run_asks(
    airflow_db, rtcim_connection, monkeypatch, tmp_path, bag
):
    emu = rtcim_connection
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_USER_IDS", json.dumps(emu.user_ids))
    monkeypatch.setenv("AIRFLOW_VAR_RTCIM_OUTPUT_BASE", f"file://{tmp_path}")
    dag = bag.get_dag("rtcim_im_export")

    run = run_dag(dag, conf={"export_friends_and_blacklists": True})

    states = task_states(run)
    assert all(state == "success" for state in states.values()), states
    members = xcom_value(run, "publish_members")
    member_ids = list(dict.fromkeys(r["ParticipantUserId"] for p in members["paths"] for r in _read_rows(p)))
    friends = xcom_value(run, "export_friends")
    blacklists = xcom_value(run, "export_blacklists")
    want_friends = [{**f, "UserId": u} for u in member_ids for f in emu.friends(u)]
    want_black = [{**b, "UserId": u} for u in member_ids for b in emu.blacklist(u)]
    assert want_friends and want_black  # the seeded data has both, so the comparison means something
    assert _read_rows(friends["path"]) == want_friends
    assert _read_rows(blacklists["path"]) == want_black
    assert friends["users"] == blacklists["users"] == len(member_ids)
    from airflow.sdk import Asset

    for uri, source, count in (
        ("rtcim://im-export/friends", "export_friends", len(want_friends)),
        ("rtcim://im-export/blacklists", "export_blacklists", len(want_black)),
    ):
        events = [e for e in asset_events(Asset(name=uri, uri=uri).uri) if e["source_run_id"] == run.run_id]
        assert [(e["source_task_id"], e["extra"]["count"]) for e in events] == [(source, count)], uri
