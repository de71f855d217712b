"""Benchmark 3: memory while the Operator lists 200,000 conversations.

The emulator (its own process, no latency, ``--qps 0``) serves 10 users x 22,500
conversations (20,000 each in inbox 0). Each mode runs in a fresh subprocess that first
imports everything the run needs (Airflow, the provider, ``requests``), then measures its
RSS (the baseline), runs ``op.execute`` with ``max_workers=10`` and ``max_qps=0``, and reports
the peak RSS seen by a sampling thread (every 5 ms) minus that baseline:

* JSON Lines file output (``output_path``): rows spooled per user, then merged;
* XCom output (no ``output_path``, ``max_xcom_rows`` raised): the same rows as one list.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time

from benchmarks.common import (
    PYTHON,
    PeakSampler,
    Row,
    emit,
    emulator_process,
    fmt,
    run_for_json,
    setup_airflow_env,
    yes_no,
)

USERS = 10
CONVERSATIONS = 22_500  # 20,000 in inbox 0
EXPECTED = USERS * 20_000
TARGET_MB = 30.0
BENCH = "3 memory, 200k rows"
MB = 1024 * 1024


def child(mode: str) -> None:
    setup_airflow_env()
    import requests  # noqa: F401 - imported by the hook on first use; part of the baseline

    import airflow_provider_rtcim.core.client  # noqa: F401
    from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator

    users = json.loads(os.environ["RTCIM_BENCH_USERS"])
    with tempfile.TemporaryDirectory(prefix="rtcim-bench-mem-") as out:
        path = os.path.join(out, "conversations.jsonl") if mode == "file" else None
        op = RtcImGetUserConversationsOperator(
            task_id="bench_memory",
            participant_user_id=users,
            output_path=path,
            max_workers=USERS,
            max_qps=0,
            max_xcom_rows=EXPECTED + 1,
        )
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        with PeakSampler() as peak:
            started = time.perf_counter()
            result = op.execute(context={})
            elapsed = time.perf_counter() - started
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if mode == "file":
            count = result["count"]
            size = os.path.getsize(path) if path else 0
        else:
            count = len(result)
            size = 0
        del result
    payload = {
        "mode": mode,
        "baseline_mb": peak.baseline / MB,
        "peak_mb": peak.rss / MB,
        "growth_mb": peak.growth / MB,
        "maxrss_before_mb": maxrss_before / MB,
        "maxrss_after_mb": maxrss_after / MB,
        "count": count,
        "elapsed": elapsed,
        "file_mb": size / MB,
    }
    print("CHILD-RESULT " + json.dumps(payload), flush=True)


def run_child(mode: str, env: dict[str, str]) -> dict:
    argv = [PYTHON, "-m", "benchmarks.bench_memory", "--child", mode]
    return run_for_json(argv, "CHILD-RESULT", env=env, timeout=600, what=f"memory child {mode}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=("file", "xcom"))
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with emulator_process("--users", str(USERS), "--conversations", str(CONVERSATIONS), "--qps", "0") as emu:
        env = {
            **os.environ,
            "AIRFLOW_CONN_RTCIM_DEFAULT": emu.connection_json(),
            "RTCIM_BENCH_USERS": json.dumps(emu.user_ids),
        }
        startup = emu.startup_seconds
        file_mode = run_child("file", env)
        xcom_mode = run_child("xcom", env)
    for res in (file_mode, xcom_mode):
        if res["count"] != EXPECTED:
            raise RuntimeError(f"{res['mode']} mode listed {res['count']} rows, expected {EXPECTED}")
    growth, xgrowth = file_mode["growth_mb"], xcom_mode["growth_mb"]
    rows = [
        Row(
            BENCH,
            "peak RSS growth, Operator -> JSON Lines file (MB)",
            fmt(growth, 1),
            f"{fmt(xgrowth, 1)} (XCom list)",
            f"{growth / xgrowth:.2f}x" if xgrowth > 0 else "-",
            f"< {TARGET_MB:.0f} MB",
            yes_no(growth < TARGET_MB),
        ),
        Row(
            BENCH,
            "rows/s, JSON Lines file | XCom list",
            f"{fmt(EXPECTED / file_mode['elapsed'], 0)} | {fmt(EXPECTED / xcom_mode['elapsed'], 0)}",
            "-",
            "-",
            "-",
            "-",
        ),
    ]
    notes = [
        f"3: {EXPECTED:,} rows (10 users x 20,000, 10,000 pages), emulator in its own process (no latency, "
        f"--qps 0; generated in {startup:.1f} s), max_workers=10, max_qps=0; each mode in a fresh "
        f"subprocess. Baseline RSS after imports (airflow.sdk, provider, requests): file "
        f"{file_mode['baseline_mb']:.0f} MB, XCom {xcom_mode['baseline_mb']:.0f} MB; peak from a 5 ms "
        f"psutil sampler (ru_maxrss after: file {file_mode['maxrss_after_mb']:.0f} MB, XCom "
        f"{xcom_mode['maxrss_after_mb']:.0f} MB). JSONL file {file_mode['file_mb']:.0f} MB; "
        f"{file_mode['elapsed']:.1f} s (file) and {xcom_mode['elapsed']:.1f} s (XCom)."
    ]
    emit(rows, notes)


if __name__ == "__main__":
    main()
