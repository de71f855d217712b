"""Benchmark 5: the emulator's own capacity, so that it is never benchmark 1's bottleneck.

The emulator runs in its own process with no latency and no QPS limit; this process sends
signed ``GetUserConversations`` requests (full 20-row pages, signatures checked by the
emulator) from N threads, each on its own keep-alive ``http.client`` connection with
headers signed before the clock starts, for a fixed duration. Reported: successful
requests/s, as a ratio to the 100 QPS benchmark 1 needs.
"""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from benchmarks.common import Row, emit, emulator_process, fmt, yes_no

THREADS = 8
DURATION = 6.0
USERS = 200
CONVERSATIONS = 70
NEEDED_QPS = 100.0
TARGET_RATIO = 2.0
BENCH = "5 emulator capacity"


def main() -> None:
    from airflow_provider_rtcim.core.client import encode_body
    from airflow_provider_rtcim.core.signing import sign_request

    with emulator_process("--users", str(USERS), "--conversations", str(CONVERSATIONS), "--qps", "0") as emu:
        url = f"{emu.url}/?Action=GetUserConversations&Version=2020-12-01"
        parts = urlsplit(url)
        target = f"{parts.path or '/'}?{parts.query}"
        creds = emu.credentials()
        requests_: list[tuple[bytes, dict[str, str]]] = []
        for uid in emu.user_ids[:50]:
            body = encode_body(
                {"AppId": emu.app_id, "ParticipantUserId": uid, "Cursor": 0, "Limit": 20, "DataType": 1}
            )
            headers = sign_request(
                creds, method="POST", url=url, headers={"Content-Type": "application/json"}, body=body
            )
            requests_.append((body, headers))

        counts = [0] * THREADS
        errors = [0] * THREADS
        start = threading.Barrier(THREADS + 1)
        stop_at = [0.0]

        def worker(i: int) -> None:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            start.wait()
            n = 0
            while time.perf_counter() < stop_at[0]:
                body, headers = requests_[(i + n) % len(requests_)]
                conn.request("POST", target, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    counts[i] += 1
                else:
                    errors[i] += 1
                n += 1
            conn.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
        for t in threads:
            t.start()
        stop_at[0] = time.perf_counter() + DURATION
        began = time.perf_counter()
        start.wait()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        server: dict[str, Any] = emu.stats()

    rate = sum(counts) / elapsed
    ratio = rate / NEEDED_QPS
    rows = [
        Row(
            BENCH,
            f"emulator requests/s (no latency, no limit, {THREADS} client threads)",
            fmt(rate, 0),
            f"{NEEDED_QPS:.0f} (QPS benchmark 1 needs)",
            f"{ratio:.1f}x",
            f">= {TARGET_RATIO:.0f}x",
            yes_no(ratio >= TARGET_RATIO and sum(errors) == 0),
        )
    ]
    notes = [
        f"5: {DURATION:.0f} s of signed 20-row page requests from {THREADS} threads (keep-alive http.client, "
        f"pre-signed) in this process; emulator in its own process; {sum(counts)} OK, {sum(errors)} errors, "
        f"server counted {server.get('requests')} requests. Both processes share the machine's CPUs, so "
        "this is a lower bound on the emulator's own capacity."
    ]
    emit(rows, notes)


if __name__ == "__main__":
    main()
