"""A large sync that fans out over batches of users with dynamic task mapping.

This is how the package scales past one machine: on Airflow's own executors (Celery,
Kubernetes). One mapped task per batch of users; every mapped task runs in the Airflow pool
``rtcim_api`` (create it first, see below) and caps its own request rate at ``max_qps``:

    account budget (the API allows 100 QPS, shared by every AppId of the account; we
    budget 96, keeping 4% headroom for timing jitter and retries)
        = pool slots (tasks running at once)  x  max_qps of each task
        = 4 x 24

However many workers the executor brings, at most 4 batch tasks run at once, each at most
24 requests/s, so the account never goes over 100 QPS. The pool is shared by every RTC IM
task of the example DAGs, each capped at (its ``pool_slots``) x 24 QPS: the daily sync takes all
4 slots at 96 QPS, the wait-then-sync tasks one slot each. Whatever runs at once, the sum stays
within the budget. To leave part of the budget to other clients of the account, lower
``ACCOUNT_QPS_BUDGET``; to change the parallelism, change ``POOL_SLOTS`` *and* the pool:

    airflow pools set rtcim_api 4 "RTC IM OpenAPI: 96 of the account's 100 QPS, 24 QPS per slot"

(a task in a pool that does not exist is never scheduled). Inside one task the users of the
batch are fetched concurrently (``max_workers``) under that task's ``max_qps``.

Settings: Variables ``rtcim_user_ids`` (JSON list), ``rtcim_output_base`` (an
``ObjectStoragePath`` URL, default ``file:///tmp/rtcim``), ``rtcim_batch_size`` (default 50); a
manual run may pass ``{"user_ids": [...], "batch_size": N}`` as conf. Each batch writes
``{base}/user_conversations_mapped/synced_at=.../batch=NNNNN.jsonl.gz``; the last task adds the
batch summaries up.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator

RTCIM_CONVERSATIONS = Asset(name="rtcim_user_conversations", uri="rtcim://user-conversations")

ACCOUNT_QPS_BUDGET = 96.0  # the API allows 100 per account (all AppIds together); keep headroom
POOL = "rtcim_api"
POOL_SLOTS = 4  # keep equal to the pool's slots: `airflow pools set rtcim_api 4 ...`
MAX_QPS_PER_TASK = ACCOUNT_QPS_BUDGET / POOL_SLOTS

with DAG(
    dag_id="rtcim_sync_conversations_mapped",
    description="Fan out over batches of users: one mapped task per batch, bounded by a pool",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "user_ids": Param(None, type=["null", "array"], description="Empty: the rtcim_user_ids Variable."),
        "batch_size": Param(None, type=["null", "integer"], minimum=1, description="Users per mapped task."),
    },
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=2)},
    tags=["rtcim", "example"],
) as dag:

    @task
    def make_batches(params: dict[str, Any] | None = None) -> list[list[int]]:
        """Split the user ids into batches; one mapped sync task per batch."""
        from airflow.sdk import Variable

        params = params or {}
        user_ids = params.get("user_ids") or Variable.get("rtcim_user_ids", default=[], deserialize_json=True)
        batch_size = int(params.get("batch_size") or Variable.get("rtcim_batch_size", default=50))
        if not user_ids:
            raise ValueError("no user ids: set the rtcim_user_ids Variable or pass conf {'user_ids': [...]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return [list(user_ids[i : i + batch_size]) for i in range(0, len(user_ids), batch_size)]

    synced = RtcImGetUserConversationsOperator.partial(
        task_id="sync_batch",
        pool=POOL,
        max_qps=MAX_QPS_PER_TASK,
        max_workers=8,
        output_path=(
            "{{ var.value.get('rtcim_output_base', 'file:///tmp/rtcim').rstrip('/') }}/user_conversations_mapped/"
            "synced_at={{ dag_run.run_after.strftime('%Y%m%dT%H%M%SZ') }}/"
            "batch={{ '%05d' % ti.map_index }}.jsonl.gz"
        ),
        asset=RTCIM_CONVERSATIONS,
    ).expand(participant_user_id=make_batches())

    @task
    def summarize(summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """Add the batch summaries up: one line for the whole run."""
        summaries = list(summaries)
        total = {
            "files": [s["path"] for s in summaries],
            "batches": len(summaries),
            "users": sum(s["users"] for s in summaries),
            "count": sum(s["count"] for s in summaries),
            "requests": sum(s["requests"] for s in summaries),
            "retries": sum(s["retries"] for s in summaries),
        }
        print(
            f"synced {total['count']} conversations of {total['users']} users "
            f"in {total['batches']} batches ({total['requests']} requests, {total['retries']} retries)"
        )
        return total

    summarize(synced.output)
