"""Benchmark 7: messages, fast up to the rate limit and flat in memory.

Throughput: ``RtcImConversationMessagesOperator.execute`` over 200 conversations of 3 pages
each (60 messages, 20 a page), the emulator in its own process adding 50 ms a request and
enforcing its sliding-window 100 QPS; 32 workers under the hook's default ``max_qps``. The
baseline is the same operator with ``max_workers=1`` over the same conversations. The speed
comes from many conversations at once, as for users: one conversation's pages are sequential
(each needs the previous ``NewCursor``).

Memory: one conversation of 100,000 messages (5,000 pages) to a JSON Lines file, in a fresh
subprocess that imports everything first; peak RSS growth next to the same listing of 10,000
messages (flat: the ratio stays near 1) and next to XCom mode for 100,000 (the rows as a list).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any

from benchmarks.common import (
    PYTHON,
    PeakSampler,
    Row,
    emit,
    emulator_process,
    fmt,
    run_for_json,
    run_sync,
    setup_airflow_env,
    yes_no,
)

CONVERSATIONS = 200
MESSAGES = 60  # 3 pages of 20
LATENCY = 0.05
SERVER_QPS = 100
WORKERS = 32
BIG = 100_000
SMALL = 10_000
BENCH = "7 messages"
MB = 1024 * 1024


def _operator(ids: list[int], path: str | None, **kwargs: Any) -> Any:
    from airflow_provider_rtcim.operators.rtcim import RtcImConversationMessagesOperator

    return RtcImConversationMessagesOperator(
        task_id="bench_messages", conversation_short_id=ids, output_path=path, **kwargs
    )


def child(mode: str, sid: int) -> None:
    setup_airflow_env()
    import requests  # noqa: F401 - part of the baseline

    import airflow_provider_rtcim.core.client  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="rtcim-bench-msg-") as out:
        path = None if mode == "xcom" else os.path.join(out, "messages.jsonl")
        op = _operator([sid], path, max_qps=0, max_xcom_rows=BIG + 1)
        with PeakSampler() as peak:
            started = time.perf_counter()
            result = op.execute(context={})
            elapsed = time.perf_counter() - started
        count = len(result) if mode == "xcom" else result["count"]
        del result
    print("CHILD-RESULT " + json.dumps({"growth_mb": peak.growth / MB, "count": count, "elapsed": elapsed}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    setup_airflow_env()
    with emulator_process(
        "--users", "20", "--conversations", "10", "--messages", str(MESSAGES),
        "--qps", str(SERVER_QPS), "--latency", str(LATENCY),
    ) as emu:  # fmt: skip
        os.environ["AIRFLOW_CONN_RTCIM_DEFAULT"] = emu.connection_json()
        ids = emu.admin("conversations")["conversation_ids"][:CONVERSATIONS]
        if len(ids) < CONVERSATIONS:
            raise RuntimeError(f"the emulator holds {len(ids)} conversations, {CONVERSATIONS} needed")
        seq = run_sync(emu, lambda p: _operator(ids, p, max_workers=1))
        par = run_sync(emu, lambda p: _operator(ids, p, max_workers=WORKERS))
    for res in (seq, par):
        if res["count"] != CONVERSATIONS * MESSAGES or res["pages"] != CONVERSATIONS * 3:
            raise RuntimeError(f"listed {res['count']} messages in {res['pages']} pages")

    with emulator_process("--users", "1", "--conversations", "2", "--qps", "0") as emu:
        env = {**os.environ, "AIRFLOW_CONN_RTCIM_DEFAULT": emu.connection_json()}
        big_sid, small_sid = emu.admin("conversations")["conversation_ids"][:2]
        emu.admin(f"conversations/{big_sid}/messages", {"message_count": BIG})
        emu.admin(f"conversations/{small_sid}/messages", {"message_count": SMALL})
        mem = {
            name: run_for_json(
                [PYTHON, "-m", "benchmarks.bench_messages", "--child", mode, str(sid)],
                "CHILD-RESULT",
                env=env,
                timeout=900,
                what=f"messages memory {name}",
            )
            for name, mode, sid in (
                ("big", "file", big_sid),
                ("small", "file", small_sid),
                ("xcom", "xcom", big_sid),
            )
        }
    for name, want in (("big", BIG), ("small", SMALL), ("xcom", BIG)):
        if mem[name]["count"] != want:
            raise RuntimeError(f"memory {name}: listed {mem[name]['count']} messages, expected {want}")
    share = par["rate"] / SERVER_QPS
    # the one thing that grows with a conversation is the set of MessageIds taken (to drop
    # duplicates): 16-48 bytes an id in a compact int64 table
    per_message = (mem["big"]["growth_mb"] - mem["small"]["growth_mb"]) * MB / (BIG - SMALL)
    big, small, xcom = mem["big"]["growth_mb"], mem["small"]["growth_mb"], mem["xcom"]["growth_mb"]
    rows = [
        Row(
            BENCH,
            f"requests/s, {CONVERSATIONS} conversations x 3 pages, {WORKERS} workers (default max_qps)",
            fmt(par["rate"], 1),
            f"{fmt(seq['rate'], 1)} (max_workers=1)",
            f"{par['rate'] / seq['rate']:.1f}x",
            "-",
            "-",
        ),
        Row(
            BENCH,
            "share of the 100 QPS ceiling used",
            f"{share:.3f}",
            "-",
            "-",
            ">= 0.90",
            yes_no(share >= 0.9),
        ),
        Row(
            BENCH,
            "429s drawn",
            str(par["throttled"]),
            str(seq["throttled"]),
            "-",
            "0",
            yes_no(par["throttled"] == 0),
        ),
        Row(
            BENCH,
            f"peak RSS growth, one conversation of {BIG:,} messages -> JSONL (MB)",
            fmt(big, 1),
            f"{fmt(small, 1)} ({SMALL:,} messages)",
            f"{big / small:.2f}x" if small > 0 else "-",
            "-",
            "-",
        ),
        Row(
            BENCH,
            f"peak RSS growth per extra message, {SMALL:,} -> {BIG:,} (bytes)",
            fmt(per_message, 0),
            "-",
            "-",
            "<= 64 B (only the MessageId set grows)",
            yes_no(per_message <= 64),
        ),
        Row(
            BENCH,
            f"peak RSS growth, {BIG:,} messages: JSONL file vs XCom list (MB)",
            fmt(big, 1),
            f"{fmt(xcom, 1)} (XCom)",
            f"{big / xcom:.2f}x" if xcom > 0 else "-",
            "-",
            "-",
        ),
    ]
    notes = [
        f"7: emulator in its own process, {LATENCY * 1000:.0f} ms latency, {SERVER_QPS} QPS sliding window; "
        f"{CONVERSATIONS} conversations x {MESSAGES} messages: parallel {par['requests']} requests in "
        f"{par['elapsed']:.1f} s ({par['retries']} retries), sequential {seq['elapsed']:.1f} s. Memory: no "
        f"latency, no limit, max_qps=0, fresh subprocess per case ({mem['big']['elapsed']:.1f} s for {BIG:,})."
    ]
    emit(rows, notes)


if __name__ == "__main__":
    main()
