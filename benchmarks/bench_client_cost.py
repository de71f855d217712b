"""Benchmark 2: client CPU per 1,000 pages (the emulator's CPU is in another process).

The emulator runs with no latency and no QPS limit; one user has 20,000 conversations in
inbox 0 (1,000 pages of 20). Every variant fetches the same 1,000 pages, one thread, and
is timed with ``time.process_time`` (this process only):

* the Hook's ``iter_user_conversations`` (the product path: validation, signing, retries
  wrapper, pagination guards, dedupe) with ``max_qps=0`` (no client-side cap);
* the Hook's ``get_user_conversations`` page by page (the recorded cursors);
* baseline: a plain *unsigned* ``requests.Session`` loop POSTing the same JSON bytes and
  ``json.loads``-ing each response: the same pages, no signing, no checks;
* a loop like the baseline whose headers were signed *before* the timer started, for
  reference (the same HTTP work with the signature headers);
* the official ``volcengine`` SDK's generic signed call ``Service.json`` (plus the
  ``json.loads`` its callers do on the returned string);
* paced: the Hook's ``iter_user_conversations`` at its default cap (``max_qps`` 95, the
  product default) over the first ``PACED_PAGES`` pages, next to the SDK's calls spaced
  alike: the client's CPU per page when the rate limiter is on (the unpaced figure isolates
  the per-page cost; the paced one is what a real run pays).

The emulator runs with ``--no-auth`` so that the unsigned baseline gets the same 200 pages
as everyone else. Every signed variant still signs every request in full; only the
emulator's check is off (signature correctness is what the test suite checks, against this
same emulator and the official SDK's signer).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import Row, emit, emulator_process, fmt, median, setup_airflow_env, yes_no

CONVERSATIONS = 22_500  # 20,000 in inbox 0 -> 1,000 pages of 20
PAGES = 1_000
PACED_PAGES = 200  # about 2 s at 95 requests/s
REPS = 3
BENCH = "2 client CPU / 1k pages"
ACTION = "GetUserConversations"
VERSION = "2020-12-01"


def main() -> None:
    setup_airflow_env()
    with emulator_process(
        "--users", "1", "--conversations", str(CONVERSATIONS), "--qps", "0", "--no-auth"
    ) as emu:
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
    paced = RtcImHook()  # the default cap, 95 requests/s
    paced.get_user_conversations(uid, limit=1)  # connection and session set up outside the timer

    def hook_iter() -> int:
        n = sum(1 for _ in hook.iter_user_conversations(uid))
        if n != PAGES * 20:
            raise RuntimeError(f"hook listed {n} conversations")
        return PAGES

    def hook_pages() -> int:
        for b in bodies:
            hook.get_user_conversations(uid, cursor=b["Cursor"])
        return PAGES

    def hook_paced() -> int:
        listing = paced.iter_user_conversations(uid)
        n = sum(1 for _ in itertools.islice(listing, PACED_PAGES * 20))
        listing.close()
        if n != PACED_PAGES * 20:
            raise RuntimeError(f"paced hook listed {n} conversations")
        return PACED_PAGES

    def sdk_paced() -> int:
        from airflow_provider_rtcim.core.ratelimit import RateLimiter

        limiter = RateLimiter(95)  # the same spacing as the paced hook's
        for data in payloads[:PACED_PAGES]:
            limiter.acquire()
            json.loads(sdk.json(ACTION, {}, data.decode("utf-8")))
        return PACED_PAGES

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
            if resp.status_code != 200:
                raise RuntimeError(f"unsigned loop got HTTP {resp.status_code}: {resp.text[:200]}")
            json.loads(resp.content)
        return PAGES

    def sdk_json() -> int:
        for data in payloads:
            json.loads(sdk.json(ACTION, {}, data.decode("utf-8")))
        return PAGES

    results: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("hook_iter", "hook_pages", "raw", "raw_unsigned", "sdk", "hook_paced", "sdk_paced")
    }
    creds = emu.credentials()
    for _rep in range(REPS):
        # Signed outside the timer (X-Date is valid for 15 minutes).
        signed = [
            sign_request(creds, method="POST", url=url, headers={"Content-Type": "application/json"}, body=p)
            for p in payloads
        ]
        plan: list[tuple[str, Callable[[], int]]] = [
            ("raw_unsigned", raw_unsigned),
            ("hook_iter", hook_iter),
            ("sdk", sdk_json),
            ("hook_pages", hook_pages),
            ("raw", raw_presigned(signed)),
            ("hook_paced", hook_paced),
            ("sdk_paced", sdk_paced),
        ]
        for name, fn in plan:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            pages = fn()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            results[name].append((cpu * 1000 / pages, wall * 1000 / pages))
    hook.close()
    paced.close()
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
    base = f"{fmt(unsigned, 3)} (unsigned requests loop)"
    rows = [
        Row(
            BENCH,
            "Hook iter_user_conversations: client CPU s per 1,000 pages",
            fmt(hook_iter, 3),
            base,
            f"{hook_iter / unsigned:.2f}x",
            "<= 1.5x",
            yes_no(hook_iter / unsigned <= 1.5),
        ),
        Row(
            BENCH,
            "Hook get_user_conversations page loop: CPU s / 1k pages",
            fmt(hook_pages, 3),
            base,
            f"{hook_pages / unsigned:.2f}x",
            "<= 1.5x",
            yes_no(hook_pages / unsigned <= 1.5),
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
            f"paced at 95/s ({PACED_PAGES} pages): Hook iter vs SDK Service.json: CPU s / 1k pages",
            fmt(cpu("hook_paced"), 3),
            f"{fmt(cpu('sdk_paced'), 3)} (SDK paced alike)",
            f"{cpu('hook_paced') / cpu('sdk_paced'):.2f}x",
            "-",
            "-",
        ),
        Row(
            BENCH,
            "requests loop with pre-signed headers (signing outside the timer), for reference",
            fmt(raw, 3),
            base,
            f"{raw / unsigned:.2f}x",
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
        f"process (no latency, --qps 0, --no-auth so the unsigned baseline gets the same 200 pages), hook "
        f"max_qps=0, one thread; median of {REPS} interleaved runs. CPU = time.process_time of this process "
        "per 1,000 pages (ms per page = s per 1,000 pages). The baseline is a plain unsigned requests loop "
        "over the same pre-encoded bodies; the hook's ratio therefore includes its signing, validation, "
        "retry wrapper, pagination guards and dedupe. SDK: volcengine.base.Service.Service.json "
        "(re-serializes the response; its callers json.loads it, counted here). Paced: a second hook at its "
        f"default cap (95 requests/s) over the first {PACED_PAGES} pages of the same listing; the SDK has "
        "no limiter, so its paced loop takes a slot of the same kind of limiter before each call. A paced "
        "page costs more CPU than an unpaced one on both sides (each call wakes a cold process)."
    ]
    return rows, notes


if __name__ == "__main__":
    main()
