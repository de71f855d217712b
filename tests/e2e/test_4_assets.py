"""The Asset contract on a real scheduler: one ``rtcim_user_conversations`` event per completed
sync run, and the consumer DAG's runs read all of it.

The event's extra names the run's files (``paths``; a single-file sync also keeps ``path``) and
its total row count (``count``). Every asset-triggered run of ``rtcim_conversations_report``
returns a ``total`` equal to the sum of its triggering events' counts, and every event is
consumed. Runs here are every run of the session so far (test_1 .. test_3).
"""

from __future__ import annotations

import json

import pytest
from harness import read_rows, wait_for

ASSET = "rtcim_user_conversations"
CONSUMER = "rtcim_conversations_report"


def event_paths(event):
    extra = event["extra"] or {}
    return list(extra.get("paths") or ([extra["path"]] if extra.get("path") else []))


@pytest.fixture(scope="module")
def asset(api):
    assets = [a for a in api.get("/assets", params={"limit": 100})["assets"] if a["name"] == ASSET]
    assert len(assets) == 1, assets
    return assets[0]


@pytest.fixture(scope="module")
def events(api, asset):
    def consumed():
        # Airflow 3.3.2: GET /assets/events answers 500 while a run it created has no start_date
        # yet (AssetEventResponse.created_dagruns[].start_date must be a datetime): not yet, then
        got = api.get("/assets/events", params={"asset_id": asset["id"], "limit": 1000}, expect=(200, 500))
        if got is None or "asset_events" not in got:
            return None
        got = got["asset_events"]
        runs = api.dag_runs(CONSUMER)
        if all(e["created_dagruns"] for e in got) and all(r["state"] in ("success", "failed") for r in runs):
            return got
        return None

    return wait_for(consumed, 180, "every asset event to be consumed by a finished report run", 2)


def test_one_asset_event_per_completed_sync_run(api, asset, events):
    producers = sorted({t["dag_id"] for t in asset["producing_tasks"]})
    assert {"rtcim_sync_conversations", "rtcim_sync_conversations_mapped", "rtcim_wait_then_sync"} <= set(
        producers
    )
    problems = {}
    for dag_id in producers:
        for run in api.dag_runs(dag_id):
            mine = [
                e for e in events if e["source_dag_id"] == dag_id and e["source_run_id"] == run["dag_run_id"]
            ]
            want = 1 if run["state"] == "success" else 0
            if len(mine) != want:
                problems[f"{dag_id} / {run['dag_run_id']} ({run['state']})"] = [
                    (e["source_task_id"], e["source_map_index"], e["extra"]) for e in mine
                ]
    assert not problems, (
        "expected exactly one asset event per successful sync run (and none for a failed one), got:\n"
        + json.dumps(problems, indent=1, default=str)
    )


def test_each_event_names_all_of_its_runs_files_and_their_total(events):
    for event in events:
        paths = event_paths(event)
        assert paths, f"event {event['id']} names no file: {event['extra']}"
        rows = sum(len(read_rows(p)) for p in paths)
        assert rows == event["extra"]["count"], (
            f"event {event['id']}: {rows} rows in {paths}, extra {event['extra']}"
        )


def test_consumer_runs_read_every_event_in_full(api, events):
    runs = [r for r in api.dag_runs(CONSUMER) if r["run_type"] == "asset_triggered"]
    assert runs
    consumed = set()
    for run in runs:
        assert run["state"] == "success", run
        q = run["dag_run_id"]
        upstream = api.get(f"/dags/{CONSUMER}/dagRuns/{q}/upstreamAssetEvents")["asset_events"]
        upstream = [e for e in upstream if e["name"] == ASSET]
        consumed |= {e["id"] for e in upstream}
        result = api.xcom(CONSUMER, q, "report")
        assert result["total"] == sum(e["extra"]["count"] for e in upstream), (
            run["dag_run_id"],
            result,
            upstream,
        )
        assert sorted(result["paths"]) == sorted(p for e in upstream for p in event_paths(e))
    assert consumed == {e["id"] for e in events}, "events no report run read"


def test_a_manual_report_run_reads_the_file_it_is_given(api, events):
    event = next(e for e in events if e["source_dag_id"] == "rtcim_sync_conversations")
    path = event_paths(event)[0]
    run_id = api.trigger(CONSUMER, {"path": path})["dag_run_id"]
    assert api.wait_run(CONSUMER, run_id, timeout=180)["state"] == "success"
    assert api.xcom(CONSUMER, run_id, "report")["total"] == event["extra"]["count"]


def test_the_pool_bounds_every_api_task_that_ran(api):
    """rtcim_api has 4 slots: at no moment did running API tasks hold more (start/end times)."""
    spans = []
    for dag in api.get("/dags", params={"limit": 100})["dags"]:
        for run in api.dag_runs(dag["dag_id"]):
            for ti in api.task_instances(dag["dag_id"], run["dag_run_id"]):
                # a deferred sensor holds no slot; its start/end times span its whole wait
                if ti["pool"] == "rtcim_api" and "Sensor" not in ti["operator"] and ti["start_date"]:
                    spans.append((ti["start_date"], ti["end_date"] or "9999", ti["pool_slots"]))
    assert len(spans) >= 6
    points = sorted(
        [(s, slots) for s, _, slots in spans] + [(e, -slots) for _, e, slots in spans],
        key=lambda p: (p[0], p[1]),
    )
    in_use = peak = 0
    for _, delta in points:
        in_use += delta
        peak = max(peak, in_use)
    assert peak <= 4, f"{peak} pool slots in use at once"
