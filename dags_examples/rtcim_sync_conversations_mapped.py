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

**Any number of users.** The user ids come from a text file, one id per line, named by the
Variable ``rtcim_user_ids_path`` (any ``ObjectStoragePath`` URL); for small lists the JSON-list
Variable ``rtcim_user_ids`` (or a manual run's conf ``{"user_ids": [...]}``) still works: the
first task then writes the list to a file of the run. Mapped tasks get only the file's
name and a ``[start, stop]`` range of it (never the ids through XCom), and batches grow as needed so the number of
mapped tasks stays within ``[core] max_map_length``. Each task streams its range of the file.

**One Asset event per run.** The mapped tasks declare no Asset (``asset=False``): each would
emit its own event and a consumer would run on fragments. The last task, ``publish``, adds the
batch summaries up and emits one ``rtcim_user_conversations`` event whose extra names every
file of the run (``paths``) and carries the run's total ``count``.

Settings: Variables ``rtcim_user_ids_path`` or ``rtcim_user_ids``, ``rtcim_output_base`` (an
``ObjectStoragePath`` URL, default ``file:///tmp/rtcim``), ``rtcim_batch_size`` (default 50); a
manual run may pass ``{"user_ids": [...], "batch_size": N}`` as conf. Each batch writes
``{base}/user_conversations_mapped/synced_at=.../batch=NNNNN.jsonl.gz``.
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
RUN_DIR = (
    "{{ var.value.get('rtcim_output_base', 'file:///tmp/rtcim').rstrip('/') }}/user_conversations_mapped/"
    "synced_at={{ dag_run.run_after.strftime('%Y%m%dT%H%M%SZ') }}"
)

with DAG(
    dag_id="rtcim_sync_conversations_mapped",
    description="Fan out over batches of users: one mapped task per batch, bounded by a pool",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "user_ids": Param(None, type=["null", "array"], description="Empty: the Variables."),
        "batch_size": Param(None, type=["null", "integer"], minimum=1, description="Users per mapped task."),
    },
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=2)},
    tags=["rtcim", "example"],
) as dag:

    @task
    def make_batches(run_dir: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """One small description per mapped task: the file of user ids and a [start, stop] range."""
        from airflow.sdk import ObjectStoragePath, Variable

        from airflow_provider_rtcim.operators.rtcim import count_distinct_keys, plan_key_ranges

        params = params or {}
        path = None if params.get("user_ids") else Variable.get("rtcim_user_ids_path", default=None)
        if not path:  # a small list: write it to a file of this run, one id per line
            user_ids = params.get("user_ids") or Variable.get(
                "rtcim_user_ids", default=[], deserialize_json=True
            )
            if not user_ids:
                raise ValueError(
                    "no user ids: set the rtcim_user_ids_path (a file) or rtcim_user_ids (a JSON list) "
                    "Variable, or pass conf {'user_ids': [...]}"
                )
            target = ObjectStoragePath(f"{run_dir}/user_ids.txt")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("".join(f"{uid}\n" for uid in user_ids))
            path = str(target)
        batch_size = int(params.get("batch_size") or Variable.get("rtcim_batch_size", default=50))
        total = count_distinct_keys(path, kind="user_ids")
        # at most [core] max_map_length ranges: the batches grow when there are more users
        ranges = plan_key_ranges(total, batch_size=batch_size)
        if not ranges:
            raise ValueError(f"{path} holds no user ids")
        return [{"participant_user_ids_from": path, "key_range": r} for r in ranges]

    synced = RtcImGetUserConversationsOperator.partial(
        task_id="sync_batch",
        pool=POOL,
        max_qps=MAX_QPS_PER_TASK,
        max_workers=8,
        output_path=RUN_DIR + "/batch={{ '%05d' % ti.map_index }}.jsonl.gz",
        asset=False,  # one event per run, from `publish`, not one per mapped task
    ).expand_kwargs(make_batches(RUN_DIR))

    @task(outlets=[RTCIM_CONVERSATIONS])
    def publish(summaries: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
        """Add the batch summaries up and publish the run's one Asset event."""
        from airflow_provider_rtcim.operators.rtcim import combine_summaries

        total = combine_summaries(summaries)
        context["outlet_events"][RTCIM_CONVERSATIONS].extra.update(total)
        print(
            f"synced {total['count']} conversations of {total['users']} users "
            f"in {total['tasks']} batches ({total['requests']} requests, {total['retries']} retries)"
        )
        return total

    publish(synced.output)
