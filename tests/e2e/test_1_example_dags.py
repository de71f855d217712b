"""Every example DAG, unpaused and triggered through the REST API, runs to success for real.

The consumer (asset-scheduled) DAG is unpaused first, so the syncs' Asset events queue its runs
(events emitted while it is paused queue nothing). Unpausing a ``@daily`` DAG makes the
scheduler create the latest scheduled run as well: those runs are checked like the manual ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness import REPO, read_rows, wait_for

CONSUMER = "rtcim_conversations_report"
SPECIAL = {"rtcim_wait_then_sync"}  # needs a data change to fire: test_2_deferrable.py


def expected_rows(deployment, user_ids):
    return [{**c, "ParticipantUserId": uid} for uid in user_ids for c in deployment.truth(uid)]


@pytest.fixture(scope="session")
def dags(api):
    def listed():
        got = api.get("/dags", params={"limit": 100})["dags"]
        files = {p.resolve() for p in (REPO / "dags_examples").glob("*.py")}
        seen = {Path(d["fileloc"]).resolve() for d in got}
        return got if files <= seen else None

    return {d["dag_id"]: d for d in wait_for(listed, 120, "every file in dags_examples/ to be parsed", 2)}


@pytest.fixture(scope="session")
def example_runs(api, deployment, dags):
    """Unpause the consumer, then unpause and trigger every other DAG; wait for all their runs."""
    api.patch(f"/dags/{CONSUMER}", {"is_paused": False})
    assert api.get(f"/dags/{CONSUMER}")["is_paused"] is False
    generic = sorted(
        d for d in dags if d not in SPECIAL and api.get(f"/dags/{d}/details")["asset_expression"] is None
    )
    manual = {}
    for dag_id in generic:
        api.patch(f"/dags/{dag_id}", {"is_paused": False})
        manual[dag_id] = api.trigger(dag_id)["dag_run_id"]
    runs = {}
    for dag_id in generic:
        api.wait_run(dag_id, manual[dag_id], timeout=300)

        def all_done(dag_id=dag_id):
            listed = api.dag_runs(dag_id)
            return listed if all(r["state"] in ("success", "failed") for r in listed) else None

        runs[dag_id] = wait_for(all_done, 300, f"every run of {dag_id} to finish", 2)
    return runs


def test_every_file_in_dags_examples_is_parsed_with_no_import_error(api, dags):
    assert api.get("/importErrors")["import_errors"] == []
    files = {p.resolve() for p in (REPO / "dags_examples").glob("*.py")}
    assert {Path(d["fileloc"]).resolve() for d in dags.values()} == files
    assert {"rtcim_sync_conversations", "rtcim_sync_conversations_mapped", CONSUMER} <= set(dags)


# Tasks a DAG skips by default (a param turns them on); they must be skipped, never failed.
SKIPPED_BY_DEFAULT = {"rtcim_im_export": {"export_friends", "export_blacklists"}}


def test_every_example_dag_run_succeeds_with_every_task_successful(api, example_runs):
    failures = {}
    for dag_id, runs in example_runs.items():
        assert any(r["run_type"] == "manual" for r in runs), dag_id
        optional = SKIPPED_BY_DEFAULT.get(dag_id, set())
        for run in runs:
            states = {
                (t["task_id"], t["map_index"]): t["state"]
                for t in api.task_instances(dag_id, run["dag_run_id"])
            }
            wrong = {
                ti: s for ti, s in states.items() if s != ("skipped" if ti[0] in optional else "success")
            }
            if run["state"] != "success" or wrong or not states:
                failures[f"{dag_id} / {run['dag_run_id']} ({run['state']})"] = states
    assert not failures, f"runs with tasks not successful: {json.dumps(failures, indent=1, default=str)}"


def test_daily_sync_files_are_exactly_the_emulators_conversations(api, deployment, example_runs):
    user_ids = deployment.emulator_info["user_ids"]
    want = expected_rows(deployment, user_ids)
    runs = [r for r in example_runs["rtcim_sync_conversations"] if r["state"] == "success"]
    assert runs
    for run in runs:
        summary = api.xcom("rtcim_sync_conversations", run["dag_run_id"], "sync_user_conversations")
        stamp = run["run_after"].replace("-", "").replace(":", "")[:15] + "Z"
        assert summary["path"] == (
            f"file://{deployment.output_dir}/user_conversations/synced_at={stamp}/conversations.jsonl.gz"
        )
        rows = read_rows(summary["path"])
        assert rows == want, f"{summary['path']}: {len(rows)} rows, expected {len(want)}"
        assert summary["count"] == len(want) and summary["users"] == len(user_ids)
        folder = Path(summary["path"].removeprefix("file://")).parent
        assert [p.name for p in folder.iterdir()] == ["conversations.jsonl.gz"], "a temporary file was left"


def test_mapped_sync_runs_batches_in_the_pool_and_they_add_up_to_every_conversation(
    api, deployment, example_runs
):
    dag_id = "rtcim_sync_conversations_mapped"
    user_ids = deployment.emulator_info["user_ids"]
    want = expected_rows(deployment, user_ids)
    runs = [r for r in example_runs[dag_id] if r["state"] == "success"]
    assert runs
    for run in runs:
        tis = api.task_instances(dag_id, run["dag_run_id"])
        batches = sorted((t for t in tis if t["task_id"] == "sync_batch"), key=lambda t: t["map_index"])
        assert len(batches) == 4, "20 users in batches of 5 (Variable rtcim_batch_size)"
        assert {t["pool"] for t in batches} == {"rtcim_api"}
        rows = []
        for ti in batches:
            summary = api.xcom(dag_id, run["dag_run_id"], "sync_batch", ti["map_index"])
            assert summary["path"].endswith(f"/batch={ti['map_index']:05d}.jsonl.gz")
            rows += read_rows(summary["path"])
        assert rows == want, f"the batches hold {len(rows)} rows, the emulator {len(want)}"
