"""Wait until a user's conversation count changes, then sync that user and report.

The sensor is deferrable: while it waits it holds no worker slot; the triggerer polls the API
(``poke_interval`` apart, counting with ``SkipMemberCount``) until the count has moved from the
baseline (the count when the run started, unless ``baseline_count`` is given) by at least
``min_delta``. The sync task then writes that user's conversations to JSON Lines and hands its
summary (``path``, ``count`` ...) to a downstream task through XCom.

Trigger it with ``{"user_id": 1000001}`` as conf, or set the ``rtcim_watch_user_id`` Variable.
Both tasks run in the ``rtcim_api`` pool (one slot, 24 QPS), which bounds the account's 100 QPS
across every RTC IM DAG (see ``rtcim_sync_conversations_mapped.py``).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator
from airflow_provider_rtcim.sensors.rtcim import RtcImConversationCountSensor

RTCIM_CONVERSATIONS = Asset(name="rtcim_user_conversations", uri="rtcim://user-conversations")

USER_ID = "{{ params.user_id or var.value.get('rtcim_watch_user_id', '') }}"
POOL = "rtcim_api"
QPS_PER_POOL_SLOT = 24.0  # 4 slots x 24 = 96 of the API's 100 QPS per account

with DAG(
    dag_id="rtcim_wait_then_sync",
    description="Deferrable wait for a change in a user's conversation count, then sync the user",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"user_id": Param(None, type=["null", "integer"], description="The user to watch.")},
    tags=["rtcim", "example"],
) as dag:
    wait = RtcImConversationCountSensor(
        task_id="wait_for_change",
        participant_user_id=USER_ID,
        direction="any",
        min_delta=1,
        deferrable=True,
        pool=POOL,
        # Deferred, it holds no pool slot (unless the pool has include_deferred), so it carries
        # its own cap: one slot's share. Each poll lists the user's pages once (SkipMemberCount).
        max_qps=QPS_PER_POOL_SLOT,
        poke_interval=60,
        timeout=6 * 60 * 60,  # give up (fail, or skip with soft_fail=True) after 6 hours
    )

    sync = RtcImGetUserConversationsOperator(
        task_id="sync_user",
        participant_user_id=USER_ID,
        output_path=(
            "{{ var.value.get('rtcim_output_base', 'file:///tmp/rtcim').rstrip('/') }}/user_conversations_on_change/"
            "synced_at={{ dag_run.run_after.strftime('%Y%m%dT%H%M%SZ') }}/"
            "user={{ params.user_id or var.value.get('rtcim_watch_user_id', '') }}.jsonl.gz"
        ),
        asset=RTCIM_CONVERSATIONS,
        pool=POOL,
        max_qps=QPS_PER_POOL_SLOT,
    )

    @task
    def report(change: dict[str, int], summary: dict[str, Any]) -> dict[str, Any]:
        """What changed and what was synced, in one XCom value for whatever comes next."""
        result = {**change, "delta": change["count"] - change["baseline_count"], **summary}
        print(
            f"count {change['baseline_count']} -> {change['count']}; "
            f"synced {summary['count']} conversations to {summary['path']}"
        )
        return result

    wait >> sync
    report(wait.output, sync.output)
