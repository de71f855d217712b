"""Benchmark 2: client CPU per 1,000 pages (the emulator's CPU is in another process).

The emulator runs with no latency and no QPS limit; one user has 20,000 conversations in
inbox 0 (1,000 pages of 20). Every variant fetches the same 1,000 pages, one thread, and
is timed with ``time.process_time`` (this process only):

* the Hook's ``iter_user_conversations`` (the product path: validation, signing, retries
  wrapper, pagination guards, dedupe) with ``max_qps=0`` (no client-side cap);
* the Hook's ``get_user_conversations`` page by page (the recorded cursors);
* baseline: a plain ``requests.Session`` loop POSTing the same JSON bytes with headers
  signed *before* the timer starts, then ``json.loads`` of each response: the same HTTP
  work and the same response bytes, signing excluded;
* a plain unsigned loop (the emulator answers 401 ``MissingSignature``: small responses,
  no signature check), for reference;
* the official ``volcengine`` SDK's generic signed call ``Service.json`` (plus the
  ``json.loads`` its callers do on the returned string).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import Row, emit, emulator_process, fmt, median, setup_airflow_env, yes_no

CONVERSATIONS = 22_500  # 20,000 in inbox 0 -> 1,000 pages of 20
PAGES = 1_000
REPS = 3
BENCH = "2 client CPU / 1k pages"
ACTION = "GetUserConversations"
VERSION = "2020-12-01"


def main() -> None:
    setup_airflow_env()
    with emulator_process("--users", "1", "--conversations", str(CONVERSATIONS), "--qps", "0") as emu:
        os.environ["AIRFLOW_CONN_RTCIM_DEFAULT"] = emu.connection_json()
        results, info = measure(emu)
    rows, notes = report(results, info)
    emit(rows, notes)


def measure(emu: Any) -> tuple[dict[str, list[tuple[float, float]]], dict[str, Any]]:
    import requests

    from airflow_provider_rtcim.core.client import encode_body
    from airflow_provider_rtcim.core.signing import sign_request
    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

    uid = emu.user_ids[0]
    hook = RtcImHook(max_qps=0)
    url = hook.client.url_for(ACTION, VERSION)

    # Record the cursors of the 1,000 pages (and warm everything up).
    bodies: list[dict[str, Any]] = []
    cursor = 0
    while True:
        body = {
            "AppId": emu.app_id,
            "ParticipantUserId": uid,
            "Cursor": cursor,
            "Limit": 20,
            "DataType": 1,
            "InboxType": 0,
            "SkipMemberCount": False,
        }
        bodies.append(body)
        page = hook.get_user_conversations(uid, cursor=cursor)
        if not page.get("HasMore"):
            break
        cursor = page["NextCursor"]
    if len(bodies) != PAGES:
        raise RuntimeError(f"expected {PAGES} pages, got {len(bodies)}")
    payloads = [encode_body(b) for b in bodies]

    session = requests.Session()
    sdk = make_sdk_service(emu)

    def hook_iter() -> int:
        n = sum(1 for _ in hook.iter_user_conversations(uid))
        if n != PAGES * 20:
            raise RuntimeError(f"hook listed {n} conversations")
        return PAGES

    def hook_pages() -> int:
        for b in bodies:
            hook.get_user_conversations(uid, cursor=b["Cursor"])
        return PAGES

    def raw_presigned(signed: list[dict[str, str]]) -> Callable[[], int]:
        def run() -> int:
            for data, headers in zip(payloads, signed, strict=True):
                resp = session.post(url, data=data, headers=headers)
                if resp.status_code != 200:
                    raise RuntimeError(f"raw loop got HTTP {resp.status_code}: {resp.text[:200]}")
                json.loads(resp.content)
            return PAGES

        return run

    def raw_unsigned() -> int:
        headers = {"Content-Type": "application/json"}
        for data in payloads:
            resp = session.post(url, data=data, headers=headers)
            if resp.status_code != 401:
                raise RuntimeError(f"unsigned loop got HTTP {resp.status_code}")
            json.loads(resp.content)
        return PAGES

    def sdk_json() -> int:
        for data in payloads:
            json.loads(sdk.json(ACTION, {}, data.decode("utf-8")))
        return PAGES

    results: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("hook_iter", "hook_pages", "raw", "raw_unsigned", "sdk")
    }
    creds = emu.credentials()
    for rep in range(REPS):
        # Signed outside the timer (X-Date is valid for 15 minutes).
        signed = [
            sign_request(creds, method="POST", url=url, headers={"Content-Type": "application/json"}, body=p)
            for p in payloads
        ]
        plan: list[tuple[str, Callable[[], int]]] = [
            ("raw", raw_presigned(signed)),
            ("hook_iter", hook_iter),
            ("sdk", sdk_json),
            ("hook_pages", hook_pages),
        ]
        if rep == 0:
            plan.append(("raw_unsigned", raw_unsigned))
        for name, fn in plan:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            pages = fn()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            results[name].append((cpu * 1000 / pages, wall * 1000 / pages))
    hook.close()
    session.close()
    info = {"hook_stats": hook.stats, "response_bytes": len(json.dumps(page, ensure_ascii=False))}
    return results, info


def make_sdk_service(emu: Any) -> Any:
    from volcengine.ApiInfo import ApiInfo
    from volcengine.base.Service import Service
    from volcengine.Credentials import Credentials
    from volcengine.ServiceInfo import ServiceInfo

    host = emu.url.split("://", 1)[1]
    service_info = ServiceInfo(
        host,
        {"Accept": "application/json"},
        Credentials(emu.access_key_id, emu.secret_access_key, "rtc", emu.region),
        30,
        30,
        scheme="http",
    )
    api_info = {ACTION: ApiInfo("POST", "/", {"Action": ACTION, "Version": VERSION}, {}, {})}
    return Service(service_info, api_info)


def report(
    results: dict[str, list[tuple[float, float]]], info: dict[str, Any]
) -> tuple[list[Row], list[str]]:
    def cpu(name: str) -> float:
        return median([c for c, _ in results[name]])

    def wall(name: str) -> float:
        return median([w for _, w in results[name]])

    raw, hook_iter, hook_pages, sdk = cpu("raw"), cpu("hook_iter"), cpu("hook_pages"), cpu("sdk")
    unsigned = cpu("raw_unsigned")
    base = f"{fmt(raw, 3)} (pre-signed requests loop)"
    rows = [
        Row(
            BENCH,
            "Hook iter_user_conversations: client CPU s per 1,000 pages",
            fmt(hook_iter, 3),
            base,
            f"{hook_iter / raw:.2f}x",
            "<= 1.5x",
            yes_no(hook_iter / raw <= 1.5),
        ),
        Row(
            BENCH,
            "Hook get_user_conversations page loop: CPU s / 1k pages",
            fmt(hook_pages, 3),
            base,
            f"{hook_pages / raw:.2f}x",
            "<= 1.5x",
            yes_no(hook_pages / raw <= 1.5),
        ),
        Row(
            BENCH,
            "Hook iter vs volcengine SDK Service.json: CPU s / 1k pages",
            fmt(hook_iter, 3),
            f"{fmt(sdk, 3)} (SDK)",
            f"{hook_iter / sdk:.2f}x",
            "<= 1.0x",
            yes_no(hook_iter <= sdk),
        ),
        Row(
            BENCH,
            "unsigned requests loop (401 MissingSignature), for reference",
            fmt(unsigned, 3),
            base,
            f"{unsigned / raw:.2f}x",
            "-",
            "-",
        ),
        Row(
            BENCH,
            "wall s / 1k pages: hook iter | raw | SDK (includes the emulator's time)",
            f"{fmt(wall('hook_iter'), 3)} | {fmt(wall('raw'), 3)} | {fmt(wall('sdk'), 3)}",
            "-",
            "-",
            "-",
            "-",
        ),
    ]
    notes = [
        f"2: one user, {PAGES} pages of 20 (~{info['response_bytes'] / 1024:.0f} KiB each), emulator in its own "
        f"process (no latency, --qps 0), hook max_qps=0, one thread; median of {REPS} interleaved runs "
        "(the unsigned loop once). CPU = time.process_time of this process per 1,000 pages (ms per page = "
        "s per 1,000 pages). The baseline signs its requests before the timer (so it gets the same 200 "
        "responses); the ratios therefore include the hook's signing. The unsigned loop gets small 401 "
        "bodies, so it does less HTTP work than the others. SDK: volcengine.base.Service.Service.json "
        "(re-serializes the response; its callers json.loads it, counted here)."
    ]
    return rows, notes


if __name__ == "__main__":
    main()
