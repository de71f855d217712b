"""Downstream of the syncs: runs whenever the ``rtcim_user_conversations`` Asset is updated.

Reads every file named in the triggering asset events' ``extra["paths"]`` (or ``extra["path"]``;
streaming, so any size works) and reports conversations by ``ConversationType`` (1 one-to-one, 2 group, 100 live
group) and by user. A manual run reads ``{"path": "<url>"}`` from its conf instead.
This is the pattern for any pipeline that consumes the sync's output. Unpause this DAG
before the syncs run: asset events emitted while a consumer is paused queue no run for it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, Param, task

RTCIM_CONVERSATIONS = Asset(name="rtcim_user_conversations", uri="rtcim://user-conversations")

CONVERSATION_TYPES = {1: "one-to-one", 2: "group", 100: "live group"}

with DAG(
    dag_id="rtcim_conversations_report",
    description="Report on each new sync of users' conversations",
    schedule=[RTCIM_CONVERSATIONS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"path": Param(None, type=["null", "string"], description="A file to report on (manual runs).")},
    tags=["rtcim", "example"],
) as dag:

    @task
    def report(**context: Any) -> dict[str, Any]:
        import gzip
        import io
        import json

        from airflow.sdk import ObjectStoragePath

        paths = [
            path
            for events in context["triggering_asset_events"].values()
            for event in events
            for path in (event.extra or {}).get("paths") or [(event.extra or {}).get("path")]
            if path
        ]
        if not paths and context["params"].get("path"):
            paths = [context["params"]["path"]]
        if not paths:
            raise ValueError("nothing to report on: no asset event with a path, and no conf {'path': ...}")

        by_type: Counter[str] = Counter()
        by_user: Counter[int] = Counter()
        for path in paths:
            target = ObjectStoragePath(path)
            with target.open("rb") as raw:
                stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
                for line in io.TextIOWrapper(stream, encoding="utf-8"):
                    row = json.loads(line)
                    kind = row.get("ConversationType")
                    by_type[CONVERSATION_TYPES.get(kind, f"type {kind}")] += 1
                    by_user[row["ParticipantUserId"]] += 1
        for kind, n in by_type.most_common():
            print(f"{kind:>12}: {n}")
        return {
            "paths": paths,
            "total": sum(by_type.values()),
            "by_type": dict(by_type),
            "users": len(by_user),
        }

    report()
