"""The deferrable sensor on a real triggerer: it defers, survives a triggerer restart, and fires
when the emulator's data changes (a conversation added through the admin endpoint).

Two runs wait at once, on two users. Run A fires when A's user gets a conversation, while B
keeps waiting; then the triggerer is stopped with B deferred, B's user gets a conversation, and
a new triggerer picks B's trigger up and fires it.

Airflow 3.0's scheduler fails a deferred task whose trigger fires before the scheduler has
processed the executor's event for the deferral ("finished with state success, but the task
instance's state attribute is queued"), which a loaded machine makes likely when the data
changes within seconds. On 3.0 the tests change the data only once the scheduler has logged
that event.
"""

from __future__ import annotations

import datetime as dt

import pytest
from harness import read_rows, wait_for

DAG_ID = "rtcim_wait_then_sync"
SENSOR = "wait_for_change"


def _ti(api, run_id, task_id):
    return next(t for t in api.task_instances(DAG_ID, run_id) if t["task_id"] == task_id)


def _version(api) -> tuple[int, int]:
    return tuple(int(n) for n in api.get("/version")["version"].split(".")[:2])  # type: ignore[return-value]


def _scheduler_saw_the_deferral(deployment, run_id) -> bool:
    """Airflow 3.0: the scheduler has processed the executor's event of the deferred try."""
    text = (deployment.service_logs / "scheduler.log").read_text(errors="replace")
    return (
        f"Received executor event with state success for task instance TaskInstanceKey(dag_id='{DAG_ID}', "
        f"task_id='{SENSOR}', run_id='{run_id}'"
    ) in text


@pytest.fixture(scope="module")
def waiting_runs(api, deployment):
    users = deployment.emulator_info["user_ids"][1:3]
    api.patch(f"/dags/{DAG_ID}", {"is_paused": False})
    runs = {uid: api.trigger(DAG_ID, {"user_id": uid})["dag_run_id"] for uid in users}
    baseline = {uid: len(deployment.truth(uid)) for uid in users}  # DataType 1, InboxType 0
    for run_id in runs.values():

        def deferred_in_triggerer(run_id=run_id):
            ti = _ti(api, run_id, SENSOR)
            assert ti["state"] in (None, "scheduled", "queued", "running", "deferred"), (
                f"sensor state {ti['state']}"
            )
            return ti if ti["state"] == "deferred" and ti["trigger"] and ti["triggerer_job"] else None

        wait_for(
            deferred_in_triggerer, 180, f"the sensor of {run_id} to be deferred and held by the triggerer", 2
        )
        if _version(api) < (3, 1):
            wait_for(
                lambda run_id=run_id: _scheduler_saw_the_deferral(deployment, run_id),
                120,
                f"the scheduler to process the deferral of {run_id} (Airflow 3.0)",
                1,
            )
    return users, runs, baseline


def _check_fired_run(api, deployment, run_id, uid, baseline, added_sid):
    run = api.wait_run(DAG_ID, run_id, timeout=240)
    states = {t["task_id"]: t["state"] for t in api.task_instances(DAG_ID, run_id)}
    assert run["state"] == "success" and set(states.values()) == {"success"}, states
    change = api.xcom(DAG_ID, run_id, SENSOR)
    assert change["baseline_count"] == baseline and change["count"] == baseline + 1, change
    result = api.xcom(DAG_ID, run_id, "report")
    assert result["delta"] == 1
    rows = read_rows(result["path"])
    want = [{**c, "ParticipantUserId": uid} for c in deployment.truth(uid)]
    assert rows == want
    assert added_sid in {r["ConversationShortId"] for r in rows}, "the added conversation was not synced"


def test_sensor_fires_when_its_users_conversations_change_and_only_then(api, deployment, waiting_runs):
    (uid_a, uid_b), runs, baseline = waiting_runs
    added = deployment.emu(
        "POST", f"/_emulator/users/{uid_a}/conversations", {"Name": "e2e: A's new group", "InboxType": 0}
    )
    _check_fired_run(api, deployment, runs[uid_a], uid_a, baseline[uid_a], added["ConversationShortId"])
    assert _ti(api, runs[uid_b], SENSOR)["state"] == "deferred", "B fired although its user did not change"


def test_deferred_sensor_survives_a_triggerer_restart_and_fires_on_the_new_one(api, deployment, waiting_runs):
    (_, uid_b), runs, baseline = waiting_runs
    before = _ti(api, runs[uid_b], SENSOR)
    assert before["state"] == "deferred"
    old_job = before["triggerer_job"]["id"]

    deployment.stop_process("triggerer")
    assert _ti(api, runs[uid_b], SENSOR)["state"] == "deferred", "the task left deferral with the triggerer"
    added = deployment.emu(
        "POST", f"/_emulator/users/{uid_b}/conversations", {"Name": "e2e: B's new group", "InboxType": 0}
    )
    restarted_at = dt.datetime.now(dt.timezone.utc)
    deployment.start_service("triggerer")  # logs appended to the same triggerer.log
    _check_fired_run(api, deployment, runs[uid_b], uid_b, baseline[uid_b], added["ConversationShortId"])

    if _version(api) >= (3, 1):
        jobs = api.get("/jobs", params={"job_type": "TriggererJob", "limit": 100})["jobs"]
        newer = [j for j in jobs if j["id"] > old_job]
        assert newer and newer[-1]["state"] == "running", f"no new triggerer job after {old_job}: {jobs}"
    else:  # 3.0's GET /jobs lists no triggerer job here: its health shows the new one's heartbeat
        triggerer = deployment.health()["triggerer"]
        beat = dt.datetime.fromisoformat(triggerer["latest_triggerer_heartbeat"])
        assert beat > restarted_at, triggerer
