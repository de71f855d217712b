"""A sync task SIGKILLed in the middle of its listing: its retry publishes one exact file.

The emulator is slowed down (``POST /_emulator/config {"latency": ...}``) so that the sync takes
a while; once requests are flowing and the temporary output exists, the task's own process
(titled ``airflow worker -- <task instance id>`` by the supervisor) gets SIGKILL. The task goes
up for retry; the retry (after the DAG's 2-minute retry_delay) writes the final file, exactly
the emulator's data, and removes the killed try's ``.<name>.<token>.tmp``.

Airflow 3.0 marks a task whose process was killed as failed, without its retries (its task
supervisor reports a non-zero exit as ``failed``; 3.1 and later retry it). There the test
clears the failed task instance, as an operator would, and checks the same of that next try.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from harness import read_rows, wait_for

DAG_ID = "rtcim_sync_conversations"
TASK = "sync_user_conversations"


def test_retry_after_sigkill_publishes_an_exact_file_and_no_partial_one(api, deployment):
    user_ids = deployment.emulator_info["user_ids"]
    deployment.emu("POST", "/_emulator/config", {"latency": 1.0})
    try:
        run_id = api.trigger(DAG_ID, {"user_ids": user_ids})["dag_run_id"]
        run = api.dag_run(DAG_ID, run_id)
        stamp = run["run_after"].replace("-", "").replace(":", "")[:15] + "Z"
        folder = deployment.output_dir / "user_conversations" / f"synced_at={stamp}"
        final = folder / "conversations.jsonl.gz"

        def running_ti():
            ti = next((t for t in api.task_instances(DAG_ID, run_id) if t["task_id"] == TASK), None)
            return ti if ti and ti["state"] == "running" else None

        ti = wait_for(running_ti, 180, f"{TASK} of {run_id} to be running", 1)
        assert ti["try_number"] == 1
        proc = wait_for(lambda: deployment.task_process(ti["id"]), 60, "the task's process", 0.5)
        start = deployment.proxy.requests

        def mid_listing():
            temps = list(folder.glob(".conversations.jsonl.gz.*.tmp")) if folder.exists() else []
            return temps if temps and deployment.proxy.requests - start >= 20 else None

        temps = wait_for(mid_listing, 90, "the temporary output and 20 API requests", 0.2)
        assert not final.exists(), "the sync finished before it could be killed: raise the latency"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        deployment.emu("POST", "/_emulator/config", {"latency": 0.0})

    retries_killed_tasks = tuple(int(n) for n in api.get("/version")["version"].split(".")[:2]) >= (3, 1)

    def retried():
        t = next(t for t in api.task_instances(DAG_ID, run_id) if t["task_id"] == TASK)
        if t["state"] == "failed" and t["try_number"] == 1 and not retries_killed_tasks:
            api.post(  # Airflow 3.0: no retry after a kill; clear it as an operator would
                f"/dags/{DAG_ID}/clearTaskInstances",
                {"dag_run_id": run_id, "task_ids": [TASK], "only_failed": True, "dry_run": False},
            )
            return None
        assert t["state"] not in ("success", "failed") or t["try_number"] > 1, f"state {t['state']}"
        return t if t["state"] == "up_for_retry" or t["try_number"] > 1 else None

    wait_for(retried, 120, f"{TASK} to go up for retry after SIGKILL", 1)
    assert not final.exists(), "a killed try published a file"
    assert all(p.exists() for p in temps), "the killed try's temporary output should still be there"

    run = api.wait_run(DAG_ID, run_id, timeout=300)  # the retry_delay is 2 minutes
    ti = next(t for t in api.task_instances(DAG_ID, run_id) if t["task_id"] == TASK)
    assert run["state"] == "success" and ti["state"] == "success" and ti["try_number"] == 2, ti
    want = [{**c, "ParticipantUserId": uid} for uid in user_ids for c in deployment.truth(uid)]
    assert read_rows(f"file://{final}") == want
    assert sorted(p.name for p in Path(folder).iterdir()) == [final.name], "partial files left"
    summary = api.xcom(DAG_ID, run_id, TASK)
    assert summary["count"] == len(want) and summary["path"] == f"file://{final}"
