"""Reliability suite: faults, process death, hard errors, broken pagination, secrets, load.

Everything runs against the real emulator over HTTP on loopback; nothing is mocked (the
load test only wraps the rate limiter to record the slots it books). Determinism:

* faults are seeded by the emulator, which never faults one request more than
  ``max_consecutive_faults`` times in a row; every retry budget here is above that;
* retry backoffs are milliseconds (``retry_backoff`` on the hook), so retries cost nothing;
* nothing asserts speed. The QPS checks count the rate limiter's booked slots per
  one-second window (exact: no timestamps), and the emulator's QPS limit keeps headroom over
  the hook's (see the load test for why);
* the SIGKILL test stalls the emulator before it kills, so the sync cannot finish first.

Run ``pytest tests/test_reliability.py -s`` to see the printed retry, fault and window counts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_rtcim.core.errors import hint_for
from airflow_provider_rtcim.core.signing import signing_key
from airflow_provider_rtcim.emulator import ANOMALY_KINDS, FAULT_KINDS, Emulator
from airflow_provider_rtcim.hooks.rtcim import RtcImApiError, RtcImHook
from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator

Op = RtcImGetUserConversationsOperator

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
SYNC_SCRIPT = TESTS / "helpers" / "reliability_scripts" / "sync_to_file.py"
FAST = {"retry_backoff": 0.005, "retry_backoff_max": 0.05}
INT53 = 2**53


def _set_conn(monkeypatch: pytest.MonkeyPatch, emu: Emulator, **overrides: Any) -> None:
    for name, value in emu.airflow_env(**overrides).items():
        monkeypatch.setenv(name, value)


def _expected_rows(emu: Emulator, users: list[int]) -> list[dict[str, Any]]:
    """Ground truth as the operator writes it: users in input order, API order, plus the user id."""
    return [{**c, "ParticipantUserId": uid} for uid in users for c in emu.conversations(uid)]


def _parse_jsonl(data: bytes) -> list[dict[str, Any]]:
    """Every line must be a whole JSON object (a cut-off last line raises)."""
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    return _parse_jsonl(gzip.decompress(data) if path.name.endswith(".gz") else data)


def _pages(n: int, page_size: int) -> int:
    return max(1, -(-n // page_size))  # an empty listing still costs one request


# ---------------------------------------------------------------------------------------
# Chaos: 50 users, 20% faults of every kind, the output is still exact
# ---------------------------------------------------------------------------------------

CHAOS_MAX_CONSECUTIVE = 3


@pytest.mark.timeout(120)
@pytest.mark.rtcim_emulator(
    users=50,
    conversations_per_user=45,
    seed=42,
    # Headroom over the hook's default 95 QPS, so the only 429s are injected ones (see the load test).
    qps_limit=200,
    fault_rate=0.2,
    fault_seed=2026,
    max_consecutive_faults=CHAOS_MAX_CONSECUTIVE,
)
def test_chaos_sync_of_50_users_under_20_percent_faults_is_exact(
    rtcim_connection: Emulator, tmp_path: Path
) -> None:
    emu = rtcim_connection
    assert emu.config["fault_kinds"] == list(FAULT_KINDS)  # every kind, incl. badjson
    users = emu.user_ids
    assert len(users) == 50
    target = tmp_path / "chaos.jsonl"
    page_size = 10
    op = Op(task_id="chaos", participant_user_id=users, output_path=str(target), page_size=page_size)
    # The operator's own hook, with a retry budget above the emulator's consecutive-fault cap
    # and millisecond backoffs (the operator exposes no backoff knob).
    op.hook = RtcImHook(max_retries=CHAOS_MAX_CONSECUTIVE + 2, pool_maxsize=16, **FAST)
    summary = op.execute({})
    stats = emu.stats

    faults = stats["faults_injected"]
    print(
        f"\nchaos: {summary['requests']} requests, {summary['pages']} pages, {summary['retries']} retries; "
        f"emulator: {stats['requests']} requests, {stats['faults_total']} faults injected "
        f"{dict(sorted(faults.items()))}, {stats['throttled']} throttled by the QPS limit"
    )

    # the output holds exactly the ground truth: same ids, same order, every field, int64 exact
    expected = _expected_rows(emu, users)
    rows = _read_jsonl(target)
    assert len(rows) == len(expected) == summary["count"]
    for uid in users:
        got_ids = [r["ConversationShortId"] for r in rows if r["ParticipantUserId"] == uid]
        assert got_ids == [c["ConversationShortId"] for c in emu.conversations(uid)], uid
    assert rows == expected
    keys = [(r["ParticipantUserId"], r["ConversationShortId"]) for r in rows]
    assert len(set(keys)) == len(keys), "a conversation was written twice"
    big = [sid for _, sid in keys if sid > INT53]
    assert big, "the data set should hold ids a float cannot represent"
    assert all(isinstance(sid, int) for _, sid in keys)
    assert str(big[0]).encode() in target.read_bytes()  # written as exact integer digits

    # the retries are reported, and each one answered an injected fault (or a 429 from the limit)
    assert summary["users"] == 50
    assert summary["retries"] > 0
    assert summary["retries"] == stats["faults_total"] + stats["throttled"]
    assert summary["pages"] == sum(_pages(len(emu.conversations(u)), page_size) for u in users)
    assert summary["requests"] == summary["pages"] + summary["retries"] == stats["requests"]
    missing = [kind for kind in FAULT_KINDS if not faults.get(kind)]
    assert not missing, f"fault kinds never injected (pick another fault_seed): {missing}"
    assert [p.name for p in tmp_path.iterdir()] == ["chaos.jsonl"]  # no temporary object left


# ---------------------------------------------------------------------------------------
# SIGKILL mid-sync, then rerun: the final name only ever holds the complete file
# ---------------------------------------------------------------------------------------


class _FinalPathWatcher(threading.Thread):
    """Polls a path at high frequency; whenever it exists it must parse fully and equal ``expected``."""

    def __init__(self, path: Path, expected: list[dict[str, Any]]) -> None:
        super().__init__(name="final-path-watcher", daemon=True)
        self.path = path
        self.expected = expected
        self.polls = 0
        self.complete_sightings = 0
        self.bad: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.polls += 1
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                time.sleep(0.001)
                continue
            try:
                rows = _parse_jsonl(data)
            except ValueError as exc:
                self.bad.append(f"unparsable ({len(data)} bytes): {exc}")
            else:
                if rows == self.expected:
                    self.complete_sightings += 1
                else:
                    self.bad.append(f"{len(rows)} rows instead of {len(self.expected)}")
            time.sleep(0.005)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.01)


@pytest.mark.timeout(240)
def test_sigkill_mid_sync_then_rerun_never_exposes_a_partial_file(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "conversations.jsonl"
    spool_root = tmp_path / "tmpdir"  # TMPDIR of the sync processes: where their spools go
    spool_root.mkdir()
    # ~180 requests at 80 ms each over 2 workers: the first user is done after ~1 s, the sync
    # after ~7 s. Once the temporary object holds rows the emulator stalls every later request
    # (latency 30 s) before the kill, so the sync cannot finish first however slow this machine
    # is; the rerun runs at a small latency (the stalled requests of the killed run were the
    # dead process's, nothing waits for them).
    with Emulator(users=16, conversations_per_user=100, seed=9, latency=0.08) as emu:
        users = emu.user_ids
        expected = _expected_rows(emu, users)
        env = {**os.environ, **emu.airflow_env(), "TMPDIR": str(spool_root)}
        job = json.dumps({"output_path": str(target), "user_ids": users, "max_workers": 2, "page_size": 10})
        command = [sys.executable, str(SYNC_SCRIPT), job]
        watcher = _FinalPathWatcher(target, expected)
        watcher.start()
        try:
            with (tmp_path / "killed.log").open("wb") as log:
                killed = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    # mid-run: the temporary object already holds at least one finished user
                    def temp_has_data() -> bool:
                        if killed.poll() is not None:
                            raise AssertionError(
                                f"the sync exited ({killed.returncode}) before it could be killed: "
                                + (tmp_path / "killed.log").read_text()[-2000:]
                            )
                        return any(p.name != target.name and p.stat().st_size > 0 for p in out_dir.iterdir())

                    _wait_for(temp_has_data, 120, "the killed run's temporary object to hold rows")
                    emu.configure(latency=30)  # stall: no request answered from now on ends the sync
                    assert killed.poll() is None, "the sync finished before the emulator stalled it"
                    killed.send_signal(signal.SIGKILL)
                finally:
                    killed.kill()  # no-op once dead; never leave it running if an assertion fired
                    killed.wait(timeout=30)
            assert killed.returncode == -signal.SIGKILL
            assert not target.exists(), "the killed run published its file"
            temps_after_kill = sorted(p.name for p in out_dir.iterdir())
            spools_after_kill = sorted(p.name for p in spool_root.iterdir())
            partial = _parse_jsonl(
                b"".join(
                    line
                    for line in (out_dir / temps_after_kill[0]).read_bytes().splitlines(keepends=True)
                    if line.endswith(b"\n")
                )
            )
            assert 0 < len(partial) < len(expected)  # it really was killed half way
            requests_before_rerun = emu.stats["requests"]
            emu.configure(latency=0.01)

            rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
            assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
            _wait_for(lambda: watcher.complete_sightings > 0, 10, "the watcher to see the final file")
        finally:
            watcher.stop()
        rerun_requests = emu.stats["requests"] - requests_before_rerun

    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    temps_after_rerun = sorted(p.name for p in out_dir.iterdir() if p.name != target.name)
    spools_after_rerun = sorted(p.name for p in spool_root.iterdir())
    print(
        f"\nkill/rerun: killed after {requests_before_rerun} requests with {len(partial)} of "
        f"{len(expected)} rows in its temporary object; rerun: {rerun_requests} requests, "
        f"summary {summary}; watcher: {watcher.polls} polls, {watcher.complete_sightings} complete "
        f"sightings, {len(watcher.bad)} bad; temporary objects after the kill {temps_after_kill}, "
        f"after the rerun {temps_after_rerun}; spool dirs after the kill {spools_after_kill}, "
        f"after the rerun {spools_after_rerun}"
    )
    assert watcher.bad == [], watcher.bad[:5]
    assert watcher.polls > 100  # it really watched (at ~1 ms per poll while absent)
    assert _read_jsonl(target) == expected
    assert summary["count"] == len(expected) and summary["users"] == len(users)
    assert summary["path"].endswith(str(target))
    # A killed run cannot clean up after itself. What it leaves must never be mistaken for
    # output: hidden (leading dot) and ending in .tmp, so *.jsonl globs and dot-file-skipping
    # readers ignore it; the rerun, once it has published, deletes it.
    assert len(temps_after_kill) == 1
    name = temps_after_kill[0]
    assert name.startswith(f".{target.name}.") and name.endswith(".tmp"), name
    assert temps_after_rerun == []


# ---------------------------------------------------------------------------------------
# Non-retryable errors: one request, a message with the Code, the fix and the RequestId
# ---------------------------------------------------------------------------------------

# id: (connection overrides, emulator config, body for hook.call or None for a page, code, status, words)
HARD_ERRORS: dict[str, tuple[dict, dict, dict | None, str, int, tuple[str, ...]]] = {
    "wrong_secret": (
        {"password": "wrong-secret-0000"},
        {},
        None,
        "SignatureDoesNotMatch",
        401,
        ("password",),
    ),
    "unknown_key": ({"login": "AKLTnobody"}, {}, None, "InvalidAccessKey", 401, ("login",)),
    "unknown_app_id": ({"app_id": 424242}, {}, None, "InvalidParameter.NotExistAppId", 400, ("424242",)),
    "illegal_app_id": ({}, {}, {"AppId": 0}, "InvalidParameter.IllegalAppId", 400, ("AppId 0",)),
    "limit_out_of_range": ({}, {}, {"Limit": 50}, "InvalidParameter", 400, ("Limit", "50")),
    "forged_cursor": ({}, {}, {"Cursor": 123456789}, "InvalidParameter", 400, ("Cursor", "123456789")),
    "bad_data_type": ({}, {}, {"DataType": 9}, "InvalidParameter", 400, ("DataType",)),
    "missing_limit": ({}, {}, {"Limit": None}, "MissingParameter", 400, ("Limit",)),
    "clock_skew": ({}, {"clock_offset": 3600}, None, "InvalidTimestamp", 400, ("clock",)),
    "stale_session_token": (
        {"session_token": "stale-token-0000"},
        {"session_token": "fresh-token-1111"},
        None,
        "InvalidSecretToken",
        401,
        ("session_token",),
    ),
}


@pytest.mark.timeout(30)
@pytest.mark.rtcim_emulator(users=1, conversations_per_user=30)
@pytest.mark.parametrize("case", list(HARD_ERRORS))
def test_non_retryable_errors_fail_in_one_request_naming_cause_fix_and_request_id(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    overrides, config, body_changes, code, status, words = HARD_ERRORS[case]
    emu = rtcim_emulator
    _set_conn(monkeypatch, emu, **overrides)
    emu.configure(**config)
    uid = emu.user_ids[0]
    hook = RtcImHook(max_retries=5, **FAST)  # a generous budget: none of it may be used
    with pytest.raises(RtcImApiError) as info:
        if body_changes is None:
            hook.get_user_conversations(uid)
        else:
            # hook.call sends the body as given: the server is the one that rejects it
            body = {"AppId": emu.app_id, "ParticipantUserId": uid, "Cursor": 0, "Limit": 20, "DataType": 1}
            body.update(body_changes)
            hook.call("GetUserConversations", {k: v for k, v in body.items() if v is not None})
    err = info.value
    text = str(err)
    assert (err.code, err.http_status) == (code, status)
    assert not err.retryable
    assert emu.stats["requests"] == 1
    assert hook.stats["requests"] == 1 and hook.stats["retries"] == 0
    assert code in text
    hint = hint_for(code)
    assert hint and hint in text, text  # what to fix
    assert err.request_id and f"RequestId {err.request_id}" in text
    for word in words:
        assert word in text, (word, text)
    for secret in (emu.secret_access_key, "wrong-secret-0000", "stale-token-0000", "fresh-token-1111"):
        assert secret not in text and secret not in repr(err)


# ---------------------------------------------------------------------------------------
# Pagination anomalies: a clear error or the exact result, never a hang
# ---------------------------------------------------------------------------------------

FAILING_ANOMALIES = {
    "stuck_cursor",
    "negative_cursor",
    "endless_empty",
}  # the rest end with the exact listing


@pytest.mark.timeout(30)
@pytest.mark.rtcim_emulator(users=1, conversations_per_user=95, seed=4)
@pytest.mark.parametrize("anomaly", ANOMALY_KINDS)
def test_pagination_anomaly_through_the_hook(rtcim_connection: Emulator, anomaly: str) -> None:
    emu = rtcim_connection
    uid = emu.user_ids[0]
    truth = emu.conversations(uid)
    emu.configure(anomalies={uid: anomaly})
    hook = RtcImHook(max_retries=5, **FAST)  # default max_pages (100,000): the guard is not a page cap
    if anomaly in FAILING_ANOMALIES:
        with pytest.raises(RtcImApiError) as info:
            list(hook.iter_user_conversations(uid, page_size=10))
        assert info.value.code == "PaginationAnomaly"
        assert str(uid) in str(info.value) and "PaginationAnomaly" in str(info.value)
        assert not info.value.retryable
        if anomaly == "endless_empty":  # no single page shows it: 100 pages in a row with nothing new
            assert emu.stats["requests"] == 100
        else:
            assert emu.stats["requests"] <= 3  # caught on the page that shows it, not after a loop
    else:
        got = list(hook.iter_user_conversations(uid, page_size=10))
        assert got == truth
        assert emu.stats["requests"] <= 2 * _pages(len(truth), 10) + 2


@pytest.mark.timeout(30)
@pytest.mark.rtcim_emulator(users=3, conversations_per_user=95, seed=4)
@pytest.mark.parametrize("anomaly", ANOMALY_KINDS)
def test_pagination_anomaly_through_the_operator(
    rtcim_connection: Emulator, tmp_path: Path, anomaly: str
) -> None:
    emu = rtcim_connection
    users = emu.user_ids
    bad = users[1]
    emu.configure(anomalies={bad: anomaly})
    target = tmp_path / "out" / "conversations.jsonl"
    op = Op(task_id="t", participant_user_id=users, output_path=str(target), page_size=10, max_workers=3)
    op.hook = RtcImHook(max_retries=5, pool_maxsize=3, **FAST)
    if anomaly in FAILING_ANOMALIES:
        with pytest.raises(RtcImApiError) as info:
            op.execute({})
        text = str(info.value)
        assert f"participant_user_id={bad}" in text and "PaginationAnomaly" in text
        assert info.value.code == "PaginationAnomaly"
        assert not target.parent.exists()  # no file, no temporary object, and the directory it made is gone
    else:
        summary = op.execute({})
        assert _read_jsonl(target) == _expected_rows(emu, users)
        assert summary["count"] == len(_expected_rows(emu, users))


# ---------------------------------------------------------------------------------------
# Secrets: `airflow dags test` of the demo DAG leaks neither the secret nor the token
# ---------------------------------------------------------------------------------------

SECRET_CANARY = "SECRET-canary-7f3a9c1e-do-not-log"
TOKEN_CANARY = "TOKEN-canary-4b2d8e6f-do-not-log"


def _needles(region: str) -> dict[str, str]:
    """What must never appear: both canaries, their distinctive parts, and the derived signing keys."""
    needles = {
        "secret": SECRET_CANARY,
        "token": TOKEN_CANARY,
        "secret fragment": "canary-7f3a9c1e",
        "token fragment": "canary-4b2d8e6f",
    }
    today = dt.datetime.now(dt.timezone.utc).date()
    for offset in (-1, 0, 1):
        short = (today + dt.timedelta(days=offset)).strftime("%Y%m%d")
        needles[f"signing key {short}"] = signing_key(SECRET_CANARY, short, region, "rtc").hex()
    return needles


def _scan(sources: dict[str, str], needles: dict[str, str]) -> list[str]:
    """``"<source>: <needle name>"`` for every needle found in every source (case-insensitive)."""
    return [
        f"{label}: {name}"
        for label, text in sources.items()
        for name, needle in needles.items()
        if needle.lower() in text.lower()
    ]


def _as_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw)  # compressed serialized DAGs and the like
        return raw.decode("utf-8", "replace")
    return str(value)


def _dump_sqlite(path: Path) -> dict[str, str]:
    """Every row of every table, as text, one entry per table."""
    out: dict[str, str] = {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()  # noqa: S608 - names from sqlite_master
            out[f"db:{table}"] = "\n".join(" | ".join(_as_text(v) for v in row) for row in rows)
    return out


@pytest.mark.dagrun
@pytest.mark.timeout(300)
def test_secrets_never_leak_from_airflow_dags_test_of_the_demo_dag(tmp_path: Path) -> None:
    home = tmp_path / "airflow_home"
    home.mkdir()
    out_base = tmp_path / "exports"
    airflow = str(Path(sys.executable).with_name("airflow"))
    with Emulator(
        users=4,
        conversations_per_user=30,
        seed=13,
        secret_access_key=SECRET_CANARY,
        session_token=TOKEN_CANARY,
    ) as emu:
        conn_json = emu.connection_json()
        assert json.loads(conn_json)["extra"]["session_token"] == TOKEN_CANARY
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # not the pytest home
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags_examples"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # The default level. At DEBUG, Airflow's task supervisor logs every MaskSecret
                # message it relays, secrets included: an Airflow behaviour, not this provider's.
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW_CONN_RTCIM_DEFAULT": conn_json,
                "AIRFLOW_VAR_RTCIM_USER_IDS": json.dumps(emu.user_ids),
                "AIRFLOW_VAR_RTCIM_OUTPUT_BASE": f"file://{out_base}",
            }
        )
        migrate = subprocess.run(
            [airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=240
        )
        assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
        # Register the DAGs (and their Assets) as the DAG processor would: Airflow 3.0's
        # `dags test` on a fresh database otherwise fails on an inactive Asset outlet.
        reserialize = subprocess.run(
            [airflow, "dags", "reserialize"], env=env, capture_output=True, text=True, timeout=240
        )
        assert reserialize.returncode == 0, reserialize.stdout[-2000:] + reserialize.stderr[-2000:]
        run = subprocess.run(
            [airflow, "dags", "test", "rtcim_sync_conversations"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        stats = emu.stats
        expected = _expected_rows(emu, emu.user_ids)
        needles = _needles(emu.region)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    # the run succeeded and wrote the file (so the scan below is not vacuous)
    outputs = [p for p in out_base.rglob("*") if p.is_file()]
    finals = [p for p in outputs if p.name == "conversations.jsonl.gz"]
    assert len(finals) == 1, outputs
    assert _read_jsonl(finals[0]) == expected
    assert stats["requests"] > 0 and stats["signature_failures"] == 0  # signed with both canaries

    # Airflow 3.0's `dags test` prints its in-process supervisor's debug log whatever the logging
    # level, and that echoes each MaskSecret request (Airflow and the hook asking for a value to be
    # masked) with the value: Airflow's own lines, left out of the scan.
    def without_mask_requests(text: str) -> str:
        return "\n".join(line for line in text.splitlines() if "msg=MaskSecret(value=" not in line)

    sources: dict[str, str] = {
        "stdout": without_mask_requests(run.stdout),
        "stderr": without_mask_requests(run.stderr),
    }
    sources["migrate output"] = migrate.stdout + migrate.stderr + reserialize.stdout + reserialize.stderr
    for path in outputs:
        data = path.read_bytes()
        sources[f"output:{path.name}"] = _as_text(
            gzip.decompress(data) if path.name.endswith(".gz") else data
        )
    db_path = home / "airflow.db"
    for path in sorted(p for p in home.rglob("*") if p.is_file()):  # logs/, airflow.cfg, the raw DB ...
        sources[f"home:{path.relative_to(home)}"] = path.read_bytes().decode("latin-1")
    sources.update(_dump_sqlite(db_path))

    # the sources hold what they should: the DAG ran, pushed its XCom, rendered its templates
    db_text = "\n".join(v for k, v in sources.items() if k.startswith("db:"))
    assert str(finals[0]) in sources["db:xcom"]
    assert str(finals[0]) in sources["db:rendered_task_instance_fields"]
    assert "success" in sources["db:dag_run"] and "rtcim_sync_conversations" in db_text
    assert "Listed " in run.stdout + run.stderr  # the task's own log lines were captured

    hits = _scan(sources, needles)
    print(f"\nsecrets: scanned {len(sources)} sources, {sum(map(len, sources.values()))} characters: {hits}")
    assert hits == []

    # the scanner itself finds the canaries where they are meant to be
    canary_file = tmp_path / "canary.txt"
    canary_file.write_text(f"x={SECRET_CANARY}\ny={TOKEN_CANARY}\n")
    assert _scan({"canary file": canary_file.read_text()}, needles) == [
        "canary file: secret",
        "canary file: token",
        "canary file: secret fragment",
        "canary file: token fragment",
    ]
    assert {"env: secret", "env: token"} <= set(_scan({"env": json.dumps(env)}, needles))
    sig_key = needles[f"signing key {dt.datetime.now(dt.timezone.utc):%Y%m%d}"]
    assert _scan({"k": f"key={sig_key.upper()}"}, needles) != []


# ---------------------------------------------------------------------------------------
# Load: one hook shared by 16 threads, 2,000 requests, under the QPS cap, nothing lost
# ---------------------------------------------------------------------------------------

LOAD_MAX_QPS = 200
LOAD_THREADS = 16
_NS = 1_000_000_000


def _known_pages(emu: Emulator, page_size: int) -> list[tuple[int, int, dict[str, Any]]]:
    """(user, cursor, the page's Result) for every page of every user (cursors are opaque)."""
    hook = RtcImHook(max_qps=0)
    pages = []
    for uid in emu.user_ids:
        cursor = 0
        while True:
            page = hook.get_user_conversations(uid, cursor=cursor, limit=page_size)
            pages.append((uid, cursor, page))
            if not page["HasMore"]:
                break
            cursor = page["NextCursor"]
    hook.close()
    return pages


def _max_per_window(slots_ns: list[int], window_ns: int = _NS) -> int:
    """The most slots in any half-open window ``[t, t + window)`` (integer nanoseconds)."""
    slots = sorted(slots_ns)
    best = lo = 0
    for hi, t in enumerate(slots):
        while slots[lo] <= t - window_ns:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _record_booked_slots(hook: RtcImHook) -> list[int]:
    """Record every slot the hook's rate limiter books, in integer nanoseconds of its clock.

    ``RateLimiter.reserve`` reads its clock once, under its lock, and books the slot
    ``now + wait``; both are integer nanoseconds inside the limiter. The wrapper captures that
    ``now`` (per thread: the clock call happens in the reserving thread) and the returned
    wait, so the recorded slot is the booked one, exactly: no start-up jitter, no GIL.
    """
    limiter = hook.client.rate_limiter
    assert limiter.enabled
    clock, reserve = limiter._clock, limiter.reserve
    local = threading.local()
    slots: list[int] = []

    def recording_clock() -> float:
        local.now = clock()
        return local.now

    def recording_reserve() -> float:
        local.now = None
        wait = reserve()
        assert local.now is not None, "the limiter booked a slot without reading its clock"
        slots.append(int(local.now * _NS) + round(wait * _NS))  # list.append is atomic
        return wait

    limiter._clock = recording_clock
    limiter.reserve = recording_reserve  # type: ignore[method-assign]
    return slots


def _hammer(
    emu: Emulator, *, emulator_qps: int, requests: int, max_retries: int
) -> tuple[RtcImHook, list[Any], list[Any], list[int], list[tuple[int, int, dict[str, Any]]]]:
    pages = _known_pages(emu, page_size=5)
    time.sleep(1.1)  # let those requests leave the emulator's one-second window
    emu.configure(qps_limit=emulator_qps)
    emu.reset_stats()
    hook = RtcImHook(max_qps=LOAD_MAX_QPS, max_retries=max_retries, pool_maxsize=LOAD_THREADS, **FAST)
    slots = _record_booked_slots(hook)
    results: list[Any] = [None] * requests
    errors: list[Any] = []

    def work(first: int) -> None:
        for i in range(first, requests, LOAD_THREADS):
            uid, cursor, _ = pages[i % len(pages)]
            try:
                results[i] = hook.get_user_conversations(uid, cursor=cursor, limit=5)
            except Exception as exc:
                errors.append((i, exc))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return hook, results, errors, slots, pages


@pytest.mark.timeout(120)
@pytest.mark.rtcim_emulator(users=4, conversations_per_user=45, seed=5)
def test_load_one_hook_16_threads_2000_requests_under_qps_nothing_lost(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    n = 2000
    # The emulator's limit has 25% headroom over the hook's, enough for any scheduling: a
    # request reaches the server after its slot, so the requests the server sees in one of its
    # one-second windows had their slots in that window (at most max_qps of them, below) or
    # earlier and were still in flight when it began (at most one per thread): <= 200 + 16.
    # At equal limits the hook draws 429s (see the next test); max_retries=0 would lose them.
    hook, results, errors, slots, pages = _hammer(emu, emulator_qps=250, requests=n, max_retries=0)
    stats = emu.stats
    peak = _max_per_window(slots)
    print(
        f"\nload: {n} requests by {LOAD_THREADS} threads at max_qps={LOAD_MAX_QPS}; emulator: "
        f"{stats['requests']} requests, {stats['throttled']} throttled; busiest 1 s window: {peak} slots"
    )
    assert errors == []
    wrong = [i for i, got in enumerate(results) if got != pages[i % len(pages)][2]]
    assert wrong == [], f"{len(wrong)} responses lost or wrong, e.g. request {wrong[:5]}"
    assert stats["requests"] == n and hook.stats["requests"] == n and len(slots) == n
    assert stats["throttled"] == 0
    # The limiter's guarantee, checked exactly on the slots it booked (not on measured request
    # starts, which jitter): no half-open second holds more than max_qps of them. (How close
    # the peak comes to it depends on how fast 16 threads get answers: not asserted.)
    assert peak <= LOAD_MAX_QPS
    # ... because slots are spaced by at least 1/max_qps (rounded up to whole nanoseconds)
    ordered = sorted(slots)
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= -(-_NS // LOAD_MAX_QPS)


@pytest.mark.timeout(120)
@pytest.mark.rtcim_emulator(users=4, conversations_per_user=45, seed=5)
def test_load_at_a_server_limit_equal_to_max_qps_loses_nothing(rtcim_connection: Emulator) -> None:
    # A finding, kept as a test: with the server's limit equal to the hook's max_qps, jitter
    # between slot and arrival can make the server's sliding window see max_qps + 1, so some
    # requests may draw 429 (about 1% on an idle machine; how many depends on scheduling, so
    # no count is asserted). This is why the hook's default is 95, under the API's 100. The
    # retries absorb them: nothing is lost, each retry answers one 429, and the limiter still
    # books at most max_qps slots per second (a 429 pauses it, it never bursts to catch up).
    emu = rtcim_connection
    n = 1000
    hook, results, errors, slots, pages = _hammer(emu, emulator_qps=LOAD_MAX_QPS, requests=n, max_retries=10)
    stats = emu.stats
    print(
        f"\nload at equal limits: {n} calls, {stats['requests']} requests, {stats['throttled']} "
        f"throttled ({100 * stats['throttled'] / n:.1f}%), hook retries {hook.stats['retries']}, "
        f"busiest 1 s window {_max_per_window(slots)} slots"
    )
    assert errors == []
    assert all(got == pages[i % len(pages)][2] for i, got in enumerate(results))
    assert hook.stats["retries"] == stats["throttled"] == stats["by_status"].get(429, 0)
    assert stats["requests"] == n + stats["throttled"] == hook.stats["requests"] == len(slots)
    throttled = stats["throttled"]
    assert stats["by_status"] == ({200: n, 429: throttled} if throttled else {200: n})
    assert _max_per_window(slots) <= LOAD_MAX_QPS
