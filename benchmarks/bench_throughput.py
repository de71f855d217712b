"""Benchmark 1: many-users sync throughput against the 100 QPS account limit.

The emulator (its own process) adds 50 ms to every request and enforces its sliding-window
100 QPS limit. The product path runs: ``RtcImGetUserConversationsOperator.execute`` writing
JSON Lines, 200 users of 4 pages each, ``max_workers=32``, the hook's default ``max_qps``
(``DEFAULT_MAX_QPS``, read at run time). The baseline is the same operator with
``max_workers=1`` (one user after another) over the same 200 users.

The same run is repeated with ``max_qps=100`` (exactly the server's limit) when the default
differs, and at lower caps when the default draws 429s, to show what stays clear of the
server's window.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from benchmarks.common import Row, emit, emulator_process, fmt, run_sync, setup_airflow_env, yes_no

USERS = 200
CONVERSATIONS = 70  # 63 in inbox 0 (1 in 9 is in inbox 1): 4 pages of 20
PAGE_SIZE = 20
LATENCY = 0.05
SERVER_QPS = 100
WORKERS = 32
SEQUENTIAL_USERS = 200  # the same data as the parallel run: one user after another
BENCH = "1 sync throughput"


def run_operator(emu: Any, users: list[int], *, max_workers: int, max_qps: float | None) -> dict[str, Any]:
    from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator

    return run_sync(
        emu,
        lambda path: RtcImGetUserConversationsOperator(
            task_id="bench_sync",
            participant_user_id=users,
            output_path=path,
            max_workers=max_workers,
            max_qps=max_qps,
            page_size=PAGE_SIZE,
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe-caps", default="99,98,95", help="client caps tried when 429s are drawn")
    args = parser.parse_args()
    setup_airflow_env()
    from airflow_provider_rtcim.hooks.rtcim import DEFAULT_MAX_QPS

    default_qps = float(DEFAULT_MAX_QPS)
    rows: list[Row] = []
    notes: list[str] = []
    with emulator_process(
        "--users",
        str(USERS),
        "--conversations",
        str(CONVERSATIONS),
        "--qps",
        str(SERVER_QPS),
        "--latency",
        str(LATENCY),
    ) as emu:
        os.environ["AIRFLOW_CONN_RTCIM_DEFAULT"] = emu.connection_json()
        users = emu.user_ids[:USERS]
        seq = run_operator(emu, users[:SEQUENTIAL_USERS], max_workers=1, max_qps=None)
        par = run_operator(emu, users, max_workers=WORKERS, max_qps=None)
        # Always show what a cap of exactly the server's limit does; lower caps only when needed.
        caps = [float(SERVER_QPS)] if default_qps != SERVER_QPS else []
        if par["throttled"]:
            caps += [float(c) for c in args.probe_caps.split(",") if c.strip()]
        probes: list[tuple[float, dict[str, Any]]] = []
        for cap in dict.fromkeys(c for c in caps if c != default_qps):
            probes.append((cap, run_operator(emu, users, max_workers=WORKERS, max_qps=cap)))

    expected_pages = USERS * 4
    rows.append(
        Row(
            BENCH,
            f"requests/s, operator {USERS} users x 4 pages, {WORKERS} workers, max_qps {default_qps:g} (default)",
            fmt(par["rate"], 1),
            f"{fmt(seq['rate'], 1)} (max_workers=1, {SEQUENTIAL_USERS} users)",
            f"{par['rate'] / seq['rate']:.1f}x",
            "-",
            "-",
        )
    )
    utilisation = par["rate"] / SERVER_QPS
    rows.append(
        Row(
            BENCH,
            "share of the 100 QPS ceiling used (requests/s / 100)",
            f"{utilisation:.3f}",
            f"{seq['rate'] / SERVER_QPS:.3f} (max_workers=1)",
            "-",
            ">= 0.90",
            yes_no(utilisation >= 0.90),
        )
    )
    rows.append(
        Row(
            BENCH,
            "429s drawn (emulator stats throttled)",
            str(par["throttled"]),
            f"{seq['throttled']} (max_workers=1)",
            "-",
            "0",
            yes_no(par["throttled"] == 0),
        )
    )
    rows.append(
        Row(
            BENCH,
            "pages/s (useful work; requests minus retries)",
            fmt(par["page_rate"], 1),
            fmt(seq["page_rate"], 1),
            f"{par['page_rate'] / seq['page_rate']:.1f}x",
            "-",
            "-",
        )
    )
    for cap, probe in probes:
        rows.append(
            Row(
                BENCH,
                f"probe (why the default is not 100): client max_qps={cap:g}: requests/s | 429s drawn",
                f"{fmt(probe['rate'], 1)} | {probe['throttled']}",
                "-",
                f"{probe['rate'] / SERVER_QPS:.3f} of 100",
                "-",
                "-",
            )
        )
    notes.append(
        f"1: emulator in its own process, {LATENCY * 1000:.0f} ms latency per request, sliding-window "
        f"{SERVER_QPS} QPS limit; {USERS} users x {CONVERSATIONS} conversations ({expected_pages} pages "
        f"expected, {par['pages']} fetched, {par['count']} rows, {par['requests']} requests incl. "
        f"{par['retries']} retries, {par['elapsed']:.2f} s). Rates are requests / wall time of "
        f"op.execute(context={{}}) (JSONL output). Sequential baseline: max_workers=1 on the first "
        f"{SEQUENTIAL_USERS} users ({seq['requests']} requests, {seq['elapsed']:.2f} s), compared per request."
    )
    if par["throttled"] or any(p["throttled"] for _, p in probes):
        notes.append(
            "1: why a cap at the server's limit draws 429s: the client spaces request *starts* 10 ms apart, but the "
            "server counts *arrivals* in any 1-second sliding window; arrival jitter (thread scheduling, "
            "GIL, signature check before the window check) puts 101 arrivals inside one second whenever "
            "request k arrives later after its slot than request k+100. A 429 wastes one slot, which gives the "
            "next window 10 ms of slack, so at saturation it recurs about once per window (hence a default "
            "cap below 100: at cap q, 100 slots span 100/q s). Each 429 is retried, so the sync completes; "
            "the probe rows show what each cap draws."
        )
    emit(rows, notes)


if __name__ == "__main__":
    main()
