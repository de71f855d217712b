"""OpenLineage on a real deployment: the ``rtcim_im_export`` runs' COMPLETE events (docs/lineage.md).

The harness configures the OpenLineage provider's file transport (one JSON file per event in
the run folder). For every successful export task of every successful ``rtcim_im_export`` run
(test_1 ran them: the manual run and the scheduled one), exactly one COMPLETE event of job
``rtcim_im_export.<task_id>`` names:

* the IM API read: ``rtcim://127.0.0.1:<proxy port>`` + ``<AppId>/<Action>``;
* the conversations file, as input of the member and message tasks (``conversations_from``);
* the task's output file (namespace ``file``, its absolute path), with ``outputStatistics``
  equal to the task's summary ``count`` and the file's size on disk.

Skipped, with the reason, when the deployment's venv has no OpenLineage provider (it may not
support an older Airflow); ``make e2e``'s venv for the newest Airflow installs it (``[test]``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from harness import wait_for

DAG_ID = "rtcim_im_export"
ACTIONS = {
    "export_conversations": "GetUserConversations",
    "export_members": "ScanConversationParticipantList",
    "export_messages": "GetConversationMessages",
}
PROVIDER = "apache-airflow-providers-openlineage"


@pytest.fixture(scope="module")
def events_prefix(api, deployment) -> str:
    providers = api.get("/providers", params={"limit": 100})["providers"]
    if PROVIDER not in {p["package_name"] for p in providers}:
        pytest.skip(f"{PROVIDER} is not installed in the deployment's venv ({deployment.venv})")
    transport = json.loads(deployment.env()["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert transport["type"] == "file", transport
    return transport["log_file_path"]


def read_events(prefix: str) -> list[dict[str, Any]]:
    folder, stem = os.path.split(prefix)
    return [json.loads(p.read_text("utf-8")) for p in sorted(Path(folder).glob(f"{stem}-*.json"))]


def ids(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def local(url: str) -> str:
    return urlsplit(url).path if url.startswith("file://") else url


@pytest.fixture(scope="module")
def expected(api) -> list[dict[str, Any]]:
    """One entry per successful export task instance of every successful run: its summary."""
    out = []
    for run in api.dag_runs(DAG_ID):
        if run["state"] != "success":
            continue
        for ti in api.task_instances(DAG_ID, run["dag_run_id"]):
            if ti["task_id"] in ACTIONS and ti["state"] == "success":
                summary = api.xcom(DAG_ID, run["dag_run_id"], ti["task_id"], ti["map_index"])
                out.append({"run_id": run["dag_run_id"], "task_id": ti["task_id"], "summary": summary})
    assert {e["task_id"] for e in out} == set(ACTIONS), f"test_1 ran no complete {DAG_ID}: {out}"
    return out


@pytest.fixture(scope="module")
def complete_events(events_prefix, expected, artifacts) -> list[dict[str, Any]]:
    jobs = {f"{DAG_ID}.{task}" for task in ACTIONS}

    def all_there() -> list[dict[str, Any]] | None:
        got = [
            e for e in read_events(events_prefix) if e["eventType"] == "COMPLETE" and e["job"]["name"] in jobs
        ]
        return got if len(got) >= len(expected) else None

    try:
        return wait_for(all_there, 60, f"a COMPLETE event for each of the {len(expected)} export tasks", 2)
    finally:
        (artifacts / "openlineage-events.jsonl").write_text(
            "".join(json.dumps(e) + "\n" for e in read_events(events_prefix)), "utf-8"
        )


def test_each_export_task_reports_the_api_its_input_file_and_its_output(
    deployment, expected, complete_events
) -> None:
    proxy = urlsplit(deployment.proxy.url)
    api_namespace = f"rtcim://{proxy.hostname}:{proxy.port}"
    app_id = deployment.emulator_info["app_id"]
    conversations = {
        e["run_id"]: local(e["summary"]["path"]) for e in expected if e["task_id"] == "export_conversations"
    }
    problems = []
    for item in expected:
        summary, task_id = item["summary"], item["task_id"]
        path = local(summary["path"])
        mine = [
            e
            for e in complete_events
            if e["job"]["name"] == f"{DAG_ID}.{task_id}" and ("file", path) in ids(e.get("outputs") or [])
        ]
        if len(mine) != 1:
            problems.append(f"{task_id} {path}: {len(mine)} COMPLETE events name it as output")
            continue
        event = mine[0]
        want_inputs = [(api_namespace, f"{app_id}/{ACTIONS[task_id]}")]
        if task_id != "export_conversations":
            want_inputs.append(("file", conversations[item["run_id"]]))
        if ids(event.get("inputs") or []) != want_inputs:
            problems.append(f"{task_id} {path}: inputs {ids(event.get('inputs') or [])} != {want_inputs}")
        [output] = event["outputs"]
        stats = output["outputFacets"]["outputStatistics"]
        if (stats.get("rowCount"), stats.get("size")) != (summary["count"], os.path.getsize(path)):
            problems.append(
                f"{task_id} {path}: outputStatistics {stats} != rows {summary['count']}, "
                f"bytes {os.path.getsize(path)}"
            )
    assert not problems, "\n".join(problems)
    assert len(complete_events) == len(expected), "COMPLETE events for export tasks that did not succeed"


def test_no_secret_is_in_any_openlineage_event(deployment, events_prefix, complete_events) -> None:
    secret = deployment.emulator_info["secret_access_key"]
    signatures = {s.lower() for s in deployment.proxy.signatures}
    assert complete_events and signatures
    for event in read_events(events_prefix):
        text = json.dumps(event).lower()
        assert secret.lower() not in text, (
            f"the secret key is in an OpenLineage event of {event['job']['name']}"
        )
        assert not [s for s in signatures if s in text], f"a request signature is in {event['job']['name']}"
