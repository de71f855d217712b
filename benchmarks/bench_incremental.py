"""Benchmark 8: what an incremental message sync costs next to a full export.

10,000 conversations of 60 messages (3 pages of 20 each), the emulator in its own process
with no latency and no QPS limit, the operator with 32 workers and ``max_qps=0`` (so the
measured seconds are the client's and the emulator's work, not the rate limit). Three runs of
``RtcImConversationMessagesOperator`` on one checkpoint, each to a new file:

1. the first incremental run: a full export (the baseline, 30,000 requests);
2. nothing new: the floor, one request per conversation (10,000);
3. 1% of the conversations with 5 new messages each: still one request each, the new messages
   come on the page the bookmark points at.

Requests are exact; seconds are measured, and also projected at the hook's default cap of
95 QPS, which is what a real account's 100 QPS allows: there, seconds = requests / 95.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from benchmarks.common import Row, emit, emulator_process, fmt, setup_airflow_env, yes_no

CONVERSATIONS = 10_000
MESSAGES = 60
CHANGED = CONVERSATIONS // 100
NEW_EACH = 5
WORKERS = 32
CAP = 95.0
BENCH = "8 incremental"


def _run(ids: list[int], out: str, n: int, emu: Any) -> dict[str, Any]:
    from airflow_provider_rtcim.operators.rtcim import RtcImConversationMessagesOperator

    op = RtcImConversationMessagesOperator(
        task_id="bench_incremental",
        conversation_short_id=ids,
        output_path=os.path.join(out, f"run-{n}.jsonl"),
        checkpoint_path=os.path.join(out, "checkpoint.json"),
        max_workers=WORKERS,
        max_qps=0,
    )
    emu.reset_stats()
    started = time.perf_counter()
    summary = op.execute(context={"run_id": f"bench-{n}"})
    summary["elapsed"] = time.perf_counter() - started
    summary["server_requests"] = int(emu.stats().get("requests", 0))
    return summary


def main() -> None:
    setup_airflow_env()
    with (
        emulator_process(
            "--users",
            "100",
            "--conversations",
            "100",
            "--messages",
            str(MESSAGES),
            "--qps",
            "0",
        ) as emu,  # fmt: skip
        tempfile.TemporaryDirectory(prefix="rtcim-bench-incr-") as out,
    ):
        os.environ["AIRFLOW_CONN_RTCIM_DEFAULT"] = emu.connection_json()
        ids = emu.admin("conversations")["conversation_ids"][:CONVERSATIONS]
        if len(ids) < CONVERSATIONS:
            raise RuntimeError(f"the emulator holds {len(ids)} conversations, {CONVERSATIONS} needed")
        full = _run(ids, out, 1, emu)
        idle = _run(ids, out, 2, emu)
        for sid in ids[:: CONVERSATIONS // CHANGED]:
            emu.admin(f"conversations/{sid}/messages", {"message_count": MESSAGES + NEW_EACH})
        some = _run(ids, out, 3, emu)
        checkpoint_bytes = os.path.getsize(os.path.join(out, "checkpoint.json"))
    if full["count"] != CONVERSATIONS * MESSAGES or idle["count"] != 0 or some["count"] != CHANGED * NEW_EACH:
        raise RuntimeError(f"counts {full['count']}, {idle['count']}, {some['count']}")

    def rows_for(label: str, res: dict[str, Any], target: str, met: bool) -> list[Row]:
        return [
            Row(
                BENCH,
                f"requests, {label}",
                str(res["requests"]),
                f"{full['requests']} (full export)",
                f"{res['requests'] / full['requests']:.2f}x",
                target,
                yes_no(met),
            ),
            Row(
                BENCH,
                f"seconds, {label} (measured, no limit)",
                fmt(res["elapsed"], 1),
                fmt(full["elapsed"], 1),
                f"{res['elapsed'] / full['elapsed']:.2f}x",
                "-",
                "-",
            ),
            Row(
                BENCH,
                f"seconds at {CAP:.0f} QPS, {label} (requests / {CAP:.0f})",
                fmt(res["requests"] / CAP, 0),
                fmt(full["requests"] / CAP, 0),
                f"{res['requests'] / full['requests']:.2f}x",
                "-",
                "-",
            ),
        ]

    rows = [
        *rows_for(
            "nothing new",
            idle,
            f"= {CONVERSATIONS} (one per conversation)",
            idle["requests"] == CONVERSATIONS,
        ),
        *rows_for(
            f"1% changed ({CHANGED} x {NEW_EACH} new)",
            some,
            f"= {CONVERSATIONS}",
            some["requests"] == CONVERSATIONS,
        ),
    ]
    notes = [
        f"8: {CONVERSATIONS:,} conversations x {MESSAGES} messages, emulator in its own process with no "
        f"latency or limit, {WORKERS} workers, max_qps=0. Full export {full['requests']} requests in "
        f"{full['elapsed']:.1f} s; checkpoint {checkpoint_bytes / 1024:.0f} KiB "
        f"({checkpoint_bytes / CONVERSATIONS:.0f} bytes a conversation, no per-message data). The floor "
        "of one request per conversation is the API's: it has no cheaper way to ask whether a "
        "conversation has new messages."
    ]
    emit(rows, notes)


if __name__ == "__main__":
    main()
