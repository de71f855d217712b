"""Benchmark 6: one task over 200,000 keys, next to 20,000 in the same run.

The engine must run one task over any number of keys in memory and open files bounded by
``max_workers``. Each key here is a user the emulator does not know: one request, one empty
page (the cheapest listing there is), so the run measures the engine's own cost per key.
The keys come from a text file (``participant_user_ids_from``), one id per line, and the rows
go to a JSON Lines file. Each size runs in a fresh subprocess that imports everything first,
then reports seconds per key, peak RSS growth and the most open file descriptors (a psutil
sampler every 5 ms). The 20,000-key run is the baseline: flat means ratios near 1.0.

(Before the engine was bounded, every key got a Future up front: ~7 KB a key, 141 MB for
20,000 users, and 20,000 users under ``ulimit -n 1024`` died of "Too many open files"
against a fast endpoint.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time

from benchmarks.common import PYTHON, PeakSampler, Row, emit, emulator_process, fmt, run_for_json, yes_no

SIZES = tuple(int(x) for x in os.environ.get("RTCIM_BENCH_SCALE_SIZES", "20000,200000").split(","))
WORKERS = 16
BENCH = "6 engine scale, keys/task"
MB = 1024 * 1024


def child(keys: int) -> None:
    from benchmarks.common import setup_airflow_env

    setup_airflow_env()
    import requests  # noqa: F401 - part of the baseline

    import airflow_provider_rtcim.core.client  # noqa: F401
    from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))  # the common default
    with tempfile.TemporaryDirectory(prefix="rtcim-bench-scale-") as out:
        ids = os.path.join(out, "ids.txt")
        with open(ids, "w") as fh:
            for i in range(keys):
                fh.write(f"{9_000_000_000 + i}\n")  # users the emulator does not know: one page each
        op = RtcImGetUserConversationsOperator(
            task_id="bench_scale",
            participant_user_ids_from=ids,
            output_path=os.path.join(out, "out.jsonl"),
            max_workers=WORKERS,
            max_qps=0,
        )
        with PeakSampler() as peak:
            started = time.perf_counter()
            summary = op.execute(context={})
            elapsed = time.perf_counter() - started
    payload = {
        "keys": keys,
        "users": summary["users"],
        "requests": summary["requests"],
        "elapsed": elapsed,
        "growth_mb": peak.growth / MB,
        "fds": peak.fds,
        "baseline_fds": soft,
    }
    print("CHILD-RESULT " + json.dumps(payload), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    results = {}
    with emulator_process("--users", "1", "--conversations", "1", "--qps", "0") as emu:
        env = {**os.environ, "AIRFLOW_CONN_RTCIM_DEFAULT": emu.connection_json()}
        for keys in SIZES:
            argv = [PYTHON, "-m", "benchmarks.bench_scale", "--child", str(keys)]
            results[keys] = run_for_json(argv, "CHILD-RESULT", env=env, timeout=1800, what=f"scale {keys}")
    small, big = results[SIZES[0]], results[SIZES[1]]
    for res in (small, big):
        if res["users"] != res["keys"] or res["requests"] != res["keys"]:
            raise RuntimeError(
                f"{res['keys']} keys: listed {res['users']} users in {res['requests']} requests"
            )
    per_key = {k: r["elapsed"] / r["keys"] * 1e6 for k, r in results.items()}
    growth_ratio = big["growth_mb"] / small["growth_mb"] if small["growth_mb"] > 0 else float("nan")
    # What still grows with the keys is the set of ids seen (to drop duplicates): 16-48 bytes a
    # distinct id in a compact int64 table (resizes included); it was ~7 KB a key before.
    per_key_bytes = (big["growth_mb"] - small["growth_mb"]) * MB / (SIZES[1] - SIZES[0])
    rows = [
        Row(
            BENCH,
            f"time per key, {SIZES[1]:,} keys (us)",
            fmt(per_key[SIZES[1]], 0),
            f"{fmt(per_key[SIZES[0]], 0)} ({SIZES[0]:,} keys)",
            f"{per_key[SIZES[1]] / per_key[SIZES[0]]:.2f}x",
            "<= 1.2x",
            yes_no(per_key[SIZES[1]] <= 1.2 * per_key[SIZES[0]]),
        ),
        Row(
            BENCH,
            f"peak RSS growth, {SIZES[1]:,} keys (MB)",
            fmt(big["growth_mb"], 1),
            f"{fmt(small['growth_mb'], 1)} ({SIZES[0]:,} keys)",
            f"{growth_ratio:.2f}x",
            "-",
            "-",
        ),
        Row(
            BENCH,
            f"peak RSS growth per extra key, {SIZES[0]:,} -> {SIZES[1]:,} keys (bytes)",
            fmt(per_key_bytes, 0),
            "~7,000 (before: a Future per key up front)",
            f"{per_key_bytes / 7000:.3f}x",
            "<= 64 B (only the id set grows)",
            yes_no(per_key_bytes <= 64),
        ),
        Row(
            BENCH,
            f"most open file descriptors, {SIZES[1]:,} keys",
            str(big["fds"]),
            f"{small['fds']} ({SIZES[0]:,} keys)",
            f"{big['fds'] / small['fds']:.2f}x" if small["fds"] else "-",
            f"flat, < 1024 (ulimit -n), ~{WORKERS} workers",
            yes_no(big["fds"] <= small["fds"] + 8 and big["fds"] < 1024),
        ),
    ]
    notes = [
        f"6: one RtcImGetUserConversationsOperator task, keys from a text file, JSONL output, "
        f"max_workers={WORKERS}, max_qps=0, RLIMIT_NOFILE 1024; each key one request for an unknown "
        f"user (one empty page). {SIZES[0]:,} keys: {small['elapsed']:.0f} s; {SIZES[1]:,} keys: "
        f"{big['elapsed']:.0f} s (bounded by the emulator's capacity, benchmark 5)."
    ]
    emit(rows, notes)


if __name__ == "__main__":
    main()
