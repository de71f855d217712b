"""The checks of ``make e2e-celery`` (scripts/celery_e2e.sh starts the deployment first).

Unpauses ``rtcim_sync_conversations_mapped`` (its latest daily interval becomes a scheduled
run), samples the emulator's request counter while the run goes, and asserts:

* every task of the run succeeded, and the batch files hold exactly the emulator's data;
* at no moment did more than 4 ``sync_batch`` tasks run (the ``rtcim_api`` pool), over both
  workers, and more than one ran at once (the pool, not one worker, is the bound);
* both Celery workers ran batches;
* the emulator counted no 429 (``throttled`` == 0, no 429 in ``by_status``);
* while the pool was full (4 batches running), the achieved rate was at least 0.9 of the
  budget (4 x 24 = 96 requests/s).

Prints the achieved requests/s and the 429s. Every wait is bounded. Exit 0 only if all pass.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import requests

DAG_ID = "rtcim_sync_conversations_mapped"
BUDGET = 4 * 24.0
POOL_SLOTS = 4


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Api:
    def __init__(self, base: str, user: str, password: str) -> None:
        self.base = base.rstrip("/")
        self.s = requests.Session()
        r = self.s.post(f"{self.base}/auth/token", json={"username": user, "password": password}, timeout=30)
        r.raise_for_status()
        self.s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def __call__(self, method: str, path: str, **kw):
        r = self.s.request(method, f"{self.base}/api/v2{path}", timeout=60, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {r.status_code} {r.text[:300]}")
        return r.json()


def wait_for(fn, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"FAILED: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--emulator", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--worker-logs", nargs=2, required=True)
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    api = Api(args.api, args.user, args.password)
    emu = requests.Session()

    def stats() -> dict:
        return emu.get(f"{args.emulator}/_emulator/stats", timeout=10).json()

    wait_for(
        lambda: any(d["dag_id"] == DAG_ID for d in api("GET", "/dags")["dags"]), 180, f"{DAG_ID} to be parsed"
    )
    emu.post(f"{args.emulator}/_emulator/stats/reset", timeout=10).raise_for_status()
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(requests.RequestException):
                samples.append((time.time(), stats()["requests"]))
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.time()
    api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    print(f"unpaused {DAG_ID}: its latest daily interval is scheduled now", flush=True)
    run = wait_for(lambda: (api("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"] or [None])[0], 120, "the run")
    run_id = run["dag_run_id"]

    def finished():
        r = api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
        return r if r["state"] in ("success", "failed") else None

    run = wait_for(finished, args.timeout, f"run {run_id} to finish")
    stop.set()
    sampler.join(timeout=5)
    final = stats()
    tis = api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})[
        "task_instances"
    ]
    failures: list[str] = []

    states = {(t["task_id"], t["map_index"]): t["state"] for t in tis}
    if run["state"] != "success" or set(states.values()) != {"success"}:
        failures.append(f"run {run_id} is {run['state']}; task states {states}")

    batches = sorted((t for t in tis if t["task_id"] == "sync_batch"), key=lambda t: t["map_index"])
    spans = [(ts(t["start_date"]), ts(t["end_date"])) for t in batches if t["start_date"] and t["end_date"]]
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    running = peak = 0
    full: list[tuple[float, float]] = []  # intervals with the pool full
    open_at = None
    for when, delta in events:
        running += delta
        peak = max(peak, running)
        if running >= POOL_SLOTS and open_at is None:
            open_at = when
        elif running < POOL_SLOTS and open_at is not None:
            full.append((open_at, when))
            open_at = None

    # the achieved rate while the pool was full (first second of each span dropped: task start-up)
    def count_at(t: float) -> float:
        before = [s for s in samples if s[0] <= t]
        after = [s for s in samples if s[0] >= t]
        if not before or not after:
            return float("nan")
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (t - t0) / (t1 - t0)

    steady_requests = steady_seconds = 0.0
    for a, b in full:
        a += 1.0
        if b - a > 1.0:
            steady_requests += count_at(b) - count_at(a)
            steady_seconds += b - a
    rate = steady_requests / steady_seconds if steady_seconds else 0.0
    overall = (
        final["requests"] / max(1e-9, (max(e for _, e in spans) - min(s for s, _ in spans))) if spans else 0
    )
    by_status = {str(k): v for k, v in final["by_status"].items()}
    print(
        json.dumps(
            {
                "run": run_id,
                "state": run["state"],
                "batches": len(batches),
                "peak_concurrent_batches": peak,
                "requests": final["requests"],
                "throttled_429": final["throttled"],
                "by_status": by_status,
                "steady_seconds_pool_full": round(steady_seconds, 1),
                "steady_requests_per_s": round(rate, 1),
                "overall_requests_per_s": round(overall, 1),
                "budget_requests_per_s": BUDGET,
                "wall_seconds": round(time.time() - started, 1),
            },
            indent=1,
        )
    )

    if len(batches) != 8:
        failures.append(f"expected 8 batches (32 users / 4), got {len(batches)}")
    if peak > POOL_SLOTS:
        failures.append(f"{peak} batch tasks ran at once: more than the pool's {POOL_SLOTS} slots")
    if peak < 2:
        failures.append(f"batches never ran concurrently (peak {peak})")
    if final["throttled"] != 0 or "429" in by_status:
        failures.append(f"the emulator throttled: throttled={final['throttled']}, by_status={by_status}")
    if steady_seconds < 5:
        failures.append(f"the pool was full for only {steady_seconds:.1f} s: too short to measure the rate")
    elif rate < 0.9 * BUDGET:
        failures.append(f"achieved {rate:.1f} requests/s with the pool full, below 0.9 x {BUDGET:.0f}")

    per_worker = {}
    for log in args.worker_logs:
        text = Path(log).read_text(errors="replace")
        per_worker[Path(log).stem] = sum(1 for t in batches if t["id"] in text)
    print(f"batches per worker (by task instance id in each worker's log): {per_worker}")
    if sum(1 for n in per_worker.values() if n) < 2:
        failures.append(f"not both workers ran batches: {per_worker}")

    # the data: every batch file, in map-index order, is exactly the emulator's conversations
    users = json.loads(requests.get(f"{args.emulator}/_emulator/users", timeout=30).text)["user_ids"]
    want = []
    for uid in users:
        infos = emu.get(
            f"{args.emulator}/_emulator/users/{uid}/conversations?data_type=1&inbox_type=0", timeout=60
        )
        want += [(uid, c["ConversationShortId"]) for c in infos.json()["ConversationInfos"]]
    got = []
    for path in sorted(Path(args.output).rglob("batch=*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            got += [(r["ParticipantUserId"], r["ConversationShortId"]) for r in map(json.loads, fh)]
    if got != want:
        failures.append(
            f"the batch files hold {len(got)} rows, the emulator has {len(want)} (or the order differs)"
        )
    else:
        print(f"the batch files hold exactly the emulator's {len(want)} conversations")

    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    print("e2e-celery: " + ("all checks passed" if not failures else f"{len(failures)} check(s) failed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
