"""Daily sync of a list of users' RTC IM conversations to JSON Lines in object storage.

Copy this file into your DAGs folder and set two Airflow Variables (or leave the defaults):

* ``rtcim_user_ids``: a JSON list of user ids, e.g. ``[1000001, 1000002]``
  (a manual run may pass ``{"user_ids": [...]}`` as its conf instead);
* ``rtcim_output_base``: where the partitions go, any ``ObjectStoragePath`` URL:
  ``file:///data/rtcim`` (default ``file:///tmp/rtcim``), ``s3://aws_default@bucket/rtcim``, ...
  A ``file://`` base only suits a single machine: with Celery or Kubernetes workers, the report
  DAG may run elsewhere, so use object storage (``s3://`` needs
  ``apache-airflow-providers-amazon[s3fs]``, ``gs://`` needs ``apache-airflow-providers-google``).

Each run writes one gzip JSON Lines file,
``{base}/user_conversations/synced_at=YYYYMMDDTHHMMSSZ/conversations.jsonl.gz``: one row per
conversation, the ConversationInfo exactly as the API returned it plus ``ParticipantUserId``.

* The API returns the *current* state, not history, so there is no catchup, and each partition
  says when it was synced. It is keyed on ``dag_run.run_after``, which every run has (manual and
  asset-triggered runs in Airflow 3 may have no logical date, so ``ds`` would be missing); a
  retried task of the same run writes the same path, atomically, so a retry never doubles rows.
* The task publishes the ``rtcim_user_conversations`` Asset with ``{"path", "count", "users"}``
  as the event's extra: ``rtcim_conversations_report.py`` is scheduled on it.
* The account's 100 QPS is shared by every task that calls the API: all the example DAGs run
  their RTC IM tasks in the pool ``rtcim_api`` (4 slots, 24 QPS a slot; see
  ``rtcim_sync_conversations_mapped.py``). This task takes all 4 slots and so the whole budget,
  96 QPS. Create the pool once: ``airflow pools set rtcim_api 4 "RTC IM OpenAPI budget"``.
* Nothing here touches a connection, a Variable or the network at parse time: the Variables are
  read in templates, when the task runs.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, Param

from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator

RTCIM_CONVERSATIONS = Asset(name="rtcim_user_conversations", uri="rtcim://user-conversations")
"""The one Asset every sync DAG of this package publishes (same row schema everywhere)."""

POOL = "rtcim_api"  # 4 slots: the account's budget, shared with the other RTC IM DAGs
QPS_PER_POOL_SLOT = 24.0  # 4 x 24 = 96 of the API's 100 QPS per account

with DAG(
    dag_id="rtcim_sync_conversations",
    description="Sync users' RTC IM conversations to JSON Lines, one partition per run",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,  # the API has no history: a backfilled run would only re-read today's state
    max_active_runs=1,
    render_template_as_native_obj=True,  # participant_user_id renders to a real list of ints
    params={
        "user_ids": Param(
            None,
            type=["null", "array"],
            description="User ids to sync; empty: the rtcim_user_ids Variable.",
        )
    },
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=2)},
    tags=["rtcim", "example"],
) as dag:
    RtcImGetUserConversationsOperator(
        task_id="sync_user_conversations",
        participant_user_id="{{ params.user_ids or var.json.get('rtcim_user_ids', []) }}",
        output_path=(
            "{{ var.value.get('rtcim_output_base', 'file:///tmp/rtcim').rstrip('/') }}/user_conversations/"
            "synced_at={{ dag_run.run_after.strftime('%Y%m%dT%H%M%SZ') }}/conversations.jsonl.gz"
        ),
        asset=RTCIM_CONVERSATIONS,
        data_type=1,  # creation order: the stable order for complete listings
        max_workers=16,  # users fetched concurrently, all under max_qps
        pool=POOL,
        pool_slots=4,  # the whole budget while it runs ...
        max_qps=4 * QPS_PER_POOL_SLOT,  # ... so its request rate is 4 slots' worth
    )
