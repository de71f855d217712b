"""Run one RtcImGetUserConversationsOperator sync to a file, in its own process.

Used by ``tests/test_reliability.py`` to SIGKILL a sync mid-run (a real process death, not a
clean exception) and rerun it. The connection comes from ``AIRFLOW_CONN_RTCIM_DEFAULT``;
the job is one JSON argument::

    python sync_to_file.py '{"output_path": "...", "user_ids": [...], "max_workers": 2, "page_size": 10}'

Prints ``STARTED`` once the operator is built (before the first request) and the summary
as JSON on the last line when the sync finishes.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    job = json.loads(sys.argv[1])
    from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator

    op = RtcImGetUserConversationsOperator(
        task_id="sync",
        participant_user_id=job["user_ids"],
        output_path=job["output_path"],
        max_workers=job.get("max_workers", 2),
        page_size=job.get("page_size", 20),
    )
    print("STARTED", flush=True)
    summary = op.execute({})
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
