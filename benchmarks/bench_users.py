"""Benchmark 9: user profiles, up to the physical limit of BatchGetUser.

``RtcImUsersOperator.execute`` over every member of 200 conversations (``users_from``: the
members file the members operator wrote; about 20,000 distinct registered users), the emulator
in its own process adding 50 ms a request and enforcing its sliding-window 100 QPS. Each
request carries 50 ids (the API's most), so the ceiling is 100 QPS x 50 = 5,000 users a second;
the operator runs at the hook's default ``max_qps`` (95) with its default workers. The baseline
is the same operator with ``max_workers=1`` over the same file.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from benchmarks.common import Row, emit, emulator_process, fmt, run_sync, setup_airflow_env, yes_no

LATENCY = 0.05
SERVER_QPS = 100
IDS_PER_REQUEST = 50
CEILING = SERVER_QPS * IDS_PER_REQUEST
BENCH = "9 users"


def main() -> None:
    setup_airflow_env()
    from airflow_provider_rtcim.operators.rtcim import (
        RtcImConversationParticipantsOperator,
        RtcImUsersOperator,
        count_distinct_keys,
    )

    with (
        tempfile.TemporaryDirectory(prefix="rtcim-bench-users-") as out,
        emulator_process(
            "--users",
            "20",
            "--conversations",
            "10",
            "--participants",
            "200",
            "--qps",
            str(SERVER_QPS),
            "--latency",
            str(LATENCY),
        ) as emu,  # fmt: skip
    ):
        os.environ["AIRFLOW_CONN_RTCIM_DEFAULT"] = emu.connection_json()
        conversations = emu.admin("conversations")["conversation_ids"]
        members = os.path.join(out, "members.jsonl")
        RtcImConversationParticipantsOperator(
            task_id="bench_members", conversation_short_id=conversations, output_path=members, max_workers=32
        ).execute(context={})
        users = count_distinct_keys(members, kind="users")

        def users_op(**kwargs: Any) -> Any:
            return lambda path: RtcImUsersOperator(
                task_id="bench_users", users_from=members, output_path=path, **kwargs
            )

        seq = run_sync(emu, users_op(max_workers=1))
        par = run_sync(emu, users_op())
    for res in (seq, par):
        if res["count"] != users or res["requests"] != -(-users // IDS_PER_REQUEST):
            raise RuntimeError(f"{res['count']} profiles in {res['requests']} requests for {users} users")
    ids_par = users / par["elapsed"]
    ids_seq = users / seq["elapsed"]
    share = ids_par / CEILING
    rows = [
        Row(
            BENCH,
            f"users/s, {users:,} users in {par['requests']} requests of {IDS_PER_REQUEST} (default max_qps)",
            fmt(ids_par, 0),
            f"{fmt(ids_seq, 0)} (max_workers=1)",
            f"{ids_par / ids_seq:.1f}x",
            "-",
            "-",
        ),
        Row(
            BENCH,
            f"share of the {CEILING:,} users/s ceiling (100 QPS x {IDS_PER_REQUEST} ids)",
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
    ]
    notes = [
        f"9: emulator in its own process, {LATENCY * 1000:.0f} ms latency, {SERVER_QPS} QPS sliding window; "
        f"{users:,} distinct users read from a members file: parallel {par['requests']} requests in "
        f"{par['elapsed']:.1f} s ({par['retries']} retries), sequential {seq['elapsed']:.1f} s."
    ]
    emit(rows, notes)


if __name__ == "__main__":
    main()
