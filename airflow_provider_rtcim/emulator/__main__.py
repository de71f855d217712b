"""``python -m airflow_provider_rtcim.emulator``: run the RTC IM emulator until SIGINT/SIGTERM.

Prints the URL, the credentials and an ``export AIRFLOW_CONN_RTCIM_DEFAULT='...'`` line;
``--ready-file PATH`` gets a JSON {url, access_key_id, secret_access_key, app_id, region,
user_ids, string_user_ids, pid} (written atomically) once the server is listening, removed
on exit. ``--help`` lists every option, e.g.::

    python -m airflow_provider_rtcim.emulator --port 8080 --users 5 --string-users 3 \\
        --messages 40 --participants 12 --anomaly '*=stuck_cursor' --anomaly 'str:007=empty_pages'

"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence

from airflow_provider_rtcim.emulator.server import (
    ALL_ANOMALY_KINDS,
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_APP_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_ACCESS_KEY,
    FAULT_KINDS,
    Emulator,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m airflow_provider_rtcim.emulator",
        description=(
            "Local emulator of the Volcengine RTC IM OpenAPI read actions (GetUserConversations, "
            "ScanConversationParticipantList, GetConversationMessages, BatchGetConversations, "
            "BatchGetUser, ListFriend, GetBlackList, GetParticipantReadIndex, BatchGetBlockParticipants)."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = a free port)")
    p.add_argument("--users", type=int, default=3, help="generated users (default 3)")
    p.add_argument("--conversations", type=int, default=45, help="conversations per user (default 45)")
    p.add_argument("--seed", type=int, default=0, help="data set seed (default 0)")
    p.add_argument(
        "--string-users", type=int, default=0, help='generated string users ("007", "123", ...; default 0)'
    )
    p.add_argument(
        "--messages", type=int, default=None, help="messages per conversation (default: 0..12, varying)"
    )
    p.add_argument(
        "--participants",
        type=int,
        default=None,
        help="members per group / live group (default: 3..12 / 4..20, varying; one-to-ones have 2)",
    )
    p.add_argument(
        "--data-file",
        help="JSON data file ({app_ids, users, string_users, participants, messages}; see emulator.data)",
    )
    p.add_argument(
        "--app-id",
        type=int,
        action="append",
        dest="app_ids",
        help=f"AppId (repeatable; default {DEFAULT_APP_ID})",
    )
    p.add_argument("--access-key-id", default=DEFAULT_ACCESS_KEY_ID)
    p.add_argument("--secret-access-key", default=DEFAULT_SECRET_ACCESS_KEY)
    p.add_argument("--session-token", default=None, help="require this X-Security-Token")
    p.add_argument("--region", default=DEFAULT_REGION)
    p.add_argument("--qps", type=float, default=100, help="account QPS limit (default 100; 0 = unlimited)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to each API request")
    p.add_argument("--fault-rate", type=float, default=0.0, help="probability of a fault per attempt (0..1)")
    p.add_argument("--fault-kinds", default=None, help=f"comma-separated subset of: {','.join(FAULT_KINDS)}")
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--max-consecutive-faults", type=int, default=3)
    p.add_argument("--retry-after", type=float, default=None, help="Retry-After seconds on 429s")
    p.add_argument(
        "--anomaly",
        action="append",
        default=[],
        metavar="KEY=KIND",
        help=(
            "pagination anomaly for a user id, a ConversationShortId, str:<string user id> or '*' "
            f"(repeatable); kinds: {', '.join(ALL_ANOMALY_KINDS)}"
        ),
    )
    p.add_argument("--reorder-data-type0", action="store_true", help="DataType 0 order changes while paging")
    p.add_argument(
        "--participants-last-page-has-more",
        action="store_true",
        help="ScanConversationParticipantList's last page says HasMore true beside NextCursor -1",
    )
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="BENCHMARKS ONLY: serve unsigned requests (no signature/credential/X-Date checks)",
    )
    p.add_argument("--clock-offset", type=float, default=0.0, help="seconds added to the server clock")
    p.add_argument("--ready-file", help="write a JSON description here once listening")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p


def _write_ready_file(path: str, info: dict) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rtcim-ready-", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    anomalies: dict[str, str] = {}
    for item in args.anomaly:
        uid, sep, kind = item.partition("=")
        if not sep:
            print(f"--anomaly {item!r}: expected KEY=KIND or *=KIND", file=sys.stderr)
            return 2
        anomalies[uid.strip()] = kind.strip()
    try:
        emu = Emulator(
            host=args.host,
            port=args.port,
            users=args.users,
            conversations_per_user=args.conversations,
            seed=args.seed,
            string_users=args.string_users,
            messages_per_conversation=args.messages,
            participants_per_conversation=args.participants,
            data=args.data_file,
            app_ids=args.app_ids,
            access_key_id=args.access_key_id,
            secret_access_key=args.secret_access_key,
            session_token=args.session_token,
            region=args.region,
            qps_limit=args.qps or None,
            latency=args.latency,
            fault_rate=args.fault_rate,
            fault_kinds=args.fault_kinds,
            fault_seed=args.fault_seed,
            max_consecutive_faults=args.max_consecutive_faults,
            retry_after=args.retry_after,
            anomalies=anomalies,
            reorder_data_type0=args.reorder_data_type0,
            participants_last_page_has_more=args.participants_last_page_has_more,
            clock_offset=args.clock_offset,
            verify_signatures=not args.no_auth,
            verbose=args.verbose,
        )
    except (ValueError, OSError) as exc:
        print(f"rtcim emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        emu.start()
    except OSError as exc:
        print(f"rtcim emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    info = {
        "url": emu.url,
        "access_key_id": emu.access_key_id,
        "secret_access_key": emu.secret_access_key,
        "app_id": emu.app_id,
        "region": emu.region,
        "user_ids": emu.user_ids,
        "string_user_ids": emu.string_user_ids,
        "pid": os.getpid(),
    }
    print(f"RTC IM emulator listening on {emu.url}")
    print(f"  access key id:     {emu.access_key_id}")
    print(f"  secret access key: {emu.secret_access_key}")
    if emu.session_token:
        print(f"  session token:     {emu.session_token}")
    if not emu.verify_signatures:
        print("  WARNING: --no-auth: signatures are NOT verified (benchmarks only)")
    print(f"  app id: {emu.app_id}   region: {emu.region}   user ids: {emu.user_ids}")
    if emu.string_user_ids:
        print(f"  string user ids: {emu.string_user_ids}")
    print(f"export {shlex.quote('AIRFLOW_CONN_RTCIM_DEFAULT')}={shlex.quote(emu.connection_json())}")
    sys.stdout.flush()
    if args.ready_file:
        _write_ready_file(args.ready_file, info)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
        if args.ready_file:
            with contextlib.suppress(OSError):
                os.remove(args.ready_file)
        print("RTC IM emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
