"""Export an IM app's data: users -> their conversations -> members and messages -> the members' profiles.

Copy this file into your DAGs folder. Each step publishes its own Asset once per run:

1. ``export_conversations``: every conversation of the users (Variable ``rtcim_user_ids``, a JSON
   list, or conf ``{"user_ids": [...]}``) to one JSON Lines file; Asset ``rtcim_conversations``.
2. ``plan``: the distinct ``ConversationShortId`` values of that file, cut into ``[start, stop]``
   ranges (at most ``[core] max_map_length`` of them): one small description per mapped task,
   ``{"conversations_from": file, "key_range": [start, stop]}``, never the ids themselves.
3. ``export_members``: one mapped task per range, each reading its range of the conversations
   file (``conversations_from``) and writing one part file.
4. ``export_messages``: **incremental** (see ``docs/incremental.md``): ``MESSAGE_SHARDS`` mapped
   tasks, each owning the conversations whose stable hash falls in its shard and its own
   checkpoint under ``{rtcim_checkpoint_base}/im_export/checkpoints/`` (Variable, default
   ``{rtcim_output_base}``). Each run writes only the messages sent since the last committed run
   (the first run: all of them), exactly once, even across killed and retried tasks. Keep the
   checkpoint base the same every run; to start over, delete the checkpoints. Shards, not
   ranges: a conversation must stay with its bookmark when the conversations file changes.
5. ``publish_members`` / ``publish_messages`` emit one event each (Assets ``rtcim_members``,
   ``rtcim_messages``) naming every part (``paths``) with the run's total ``count``. Mapped tasks
   declare no Asset: a consumer would run on fragments.
6. ``export_users``: the profile of every user seen in the members files (``users_from`` takes
   the list of parts; each user once), 50 ids a request; Asset ``rtcim_users``. Ids the API
   does not know are counted as ``not_found``, never rows.
7. ``export_friends`` / ``export_blacklists``: the friends and blacklists of those users (Assets
   ``rtcim_friends``, ``rtcim_blacklists``), only when the run's param
   ``export_friends_and_blacklists`` is true (off by default: they cost at least one request a
   user each); otherwise ``want_friends_and_blacklists`` skips them.

Every API task runs in the pool ``rtcim_api`` (4 slots x 24 QPS = 96 of the account's 100 QPS;
see ``rtcim_sync_conversations_mapped.py``): ``airflow pools set rtcim_api 4 "RTC IM OpenAPI"``.
Output: ``{rtcim_output_base}/im_export/synced_at=YYYYMMDDTHHMMSSZ/{conversations.jsonl.gz,
members/part=NNNNN.jsonl.gz, messages/shard=NNN.jsonl.gz, users.jsonl.gz, friends.jsonl.gz,
blacklists.jsonl.gz}`` (see ``docs/rows.md`` for every row's fields). Rows are the API's items exactly as
returned (members and messages carry ``ConversationShortId``; conversations also
``ParticipantUserId``, the user they were listed for). Nothing here touches a connection, a
Variable or the network at parse time.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_rtcim.operators.rtcim import (
    RtcImConversationMessagesOperator,
    RtcImConversationParticipantsOperator,
    RtcImGetUserConversationsOperator,
    RtcImUserBlacklistOperator,
    RtcImUserFriendsOperator,
    RtcImUsersOperator,
)

CONVERSATIONS = Asset(name="rtcim_conversations", uri="rtcim://im-export/conversations")
MEMBERS = Asset(name="rtcim_members", uri="rtcim://im-export/members")
MESSAGES = Asset(name="rtcim_messages", uri="rtcim://im-export/messages")
USERS = Asset(name="rtcim_users", uri="rtcim://im-export/users")
FRIENDS = Asset(name="rtcim_friends", uri="rtcim://im-export/friends")
BLACKLISTS = Asset(name="rtcim_blacklists", uri="rtcim://im-export/blacklists")

POOL = "rtcim_api"
QPS_PER_POOL_SLOT = 24.0  # 4 slots x 24 = 96 of the API's 100 QPS per account
CONVERSATIONS_PER_TASK = 200  # per mapped task; grown if needed to fit [core] max_map_length
MESSAGE_SHARDS = 4  # mapped message tasks; changing it later needs `python -m airflow_provider_rtcim.reshard`
CHECKPOINT = (
    "{{ var.value.get('rtcim_checkpoint_base', var.value.get('rtcim_output_base', 'file:///tmp/rtcim'))"
    ".rstrip('/') }}/im_export/checkpoints/messages.json"
)
RUN_DIR = (
    "{{ var.value.get('rtcim_output_base', 'file:///tmp/rtcim').rstrip('/') }}/im_export/"
    "synced_at={{ dag_run.run_after.strftime('%Y%m%dT%H%M%SZ') }}"
)

with DAG(
    dag_id="rtcim_im_export",
    description="Users -> conversations -> members and messages, each step one Asset event per run",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,  # participant_user_id renders to a real list of ints
    params={
        "user_ids": Param(None, type=["null", "array"], description="Empty: the rtcim_user_ids Variable."),
        "export_friends_and_blacklists": Param(
            False,
            type="boolean",
            description="Also export the members' friends and blacklists (at least 2 requests a user).",
        ),
    },
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=2)},
    tags=["rtcim", "example"],
) as dag:
    conversations = RtcImGetUserConversationsOperator(
        task_id="export_conversations",
        participant_user_id="{{ params.user_ids or var.json.get('rtcim_user_ids', []) }}",
        output_path=RUN_DIR + "/conversations.jsonl.gz",
        asset=CONVERSATIONS,
        pool=POOL,
        pool_slots=4,
        max_qps=4 * QPS_PER_POOL_SLOT,
    )

    @task
    def plan(summary: dict[str, Any]) -> list[dict[str, Any]]:
        """One small description per mapped task: the conversations file and a [start, stop] range."""
        from airflow_provider_rtcim.operators.rtcim import count_distinct_keys, plan_key_ranges

        total = count_distinct_keys(summary["path"], kind="conversations")
        # at most [core] max_map_length ranges: the batches grow when there are more conversations
        ranges = plan_key_ranges(total, batch_size=CONVERSATIONS_PER_TASK)
        return [{"conversations_from": summary["path"], "key_range": r} for r in ranges or [[0, 0]]]

    batches = plan(conversations.output)

    members = RtcImConversationParticipantsOperator.partial(
        task_id="export_members",
        output_path=RUN_DIR + "/members/part={{ '%05d' % ti.map_index }}.jsonl.gz",
        asset=False,
        pool=POOL,
        max_qps=QPS_PER_POOL_SLOT,
        max_workers=8,
    ).expand_kwargs(batches)

    messages = RtcImConversationMessagesOperator.partial(
        task_id="export_messages",
        conversations_from="{{ ti.xcom_pull(task_ids='export_conversations')['path'] }}",
        output_path=RUN_DIR + "/messages/shard={{ '%03d' % ti.map_index }}.jsonl.gz",
        checkpoint_path=CHECKPOINT,  # one file per shard is derived from it: messages.shard-I-of-N.json
        shard_count=MESSAGE_SHARDS,
        asset=False,
        pool=POOL,
        max_qps=QPS_PER_POOL_SLOT,
        max_workers=8,
    ).expand(shard_index=list(range(MESSAGE_SHARDS)))
    conversations >> messages

    @task(outlets=[MEMBERS])
    def publish_members(summaries: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
        """One event for the run's members: every part file and the total count."""
        from airflow_provider_rtcim.operators.rtcim import combine_summaries

        total = combine_summaries(summaries)
        context["outlet_events"][MEMBERS].extra.update(total)
        return total

    @task(outlets=[MESSAGES])
    def publish_messages(summaries: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
        """One event for the run's messages: every part file and the total count."""
        from airflow_provider_rtcim.operators.rtcim import combine_summaries

        total = combine_summaries(summaries)
        context["outlet_events"][MESSAGES].extra.update(total)
        return total

    members_total = publish_members(members.output)
    publish_messages(messages.output)

    # every user seen in the members' part files (the list the publish step returns), once each
    MEMBER_PARTS = "{{ ti.xcom_pull(task_ids='publish_members')['paths'] }}"
    users = RtcImUsersOperator(
        task_id="export_users",
        users_from=MEMBER_PARTS,
        output_path=RUN_DIR + "/users.jsonl.gz",
        asset=USERS,
        pool=POOL,
        pool_slots=4,
        max_qps=4 * QPS_PER_POOL_SLOT,
    )
    members_total >> users

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def want_friends_and_blacklists(**context: Any) -> bool:
        """Skip the friends and blacklists unless the run asks for them."""
        return bool(context["params"]["export_friends_and_blacklists"])

    graph = [
        operator(
            task_id=f"export_{name}",
            users_from=MEMBER_PARTS,
            output_path=RUN_DIR + f"/{name}.jsonl.gz",
            asset=asset,
            pool=POOL,
            pool_slots=2,
            max_qps=2 * QPS_PER_POOL_SLOT,
        )
        for name, operator, asset in (
            ("friends", RtcImUserFriendsOperator, FRIENDS),
            ("blacklists", RtcImUserBlacklistOperator, BLACKLISTS),
        )
    ]
    users >> want_friends_and_blacklists() >> graph
