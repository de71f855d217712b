"""RtcImHook over real HTTP against the emulator on loopback.

Every test talks to a running emulator (fixtures ``rtcim_emulator`` / ``rtcim_connection``
from the package's pytest plugin); nothing is mocked. Retry backoff is tiny so faults
cost milliseconds.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_rtcim.compat import AirflowFailException
from airflow_provider_rtcim.core.errors import RtcImError
from airflow_provider_rtcim.emulator import Emulator
from airflow_provider_rtcim.emulator.server import FAULT_KINDS
from airflow_provider_rtcim.hooks.rtcim import RtcImApiError, RtcImHook

FAST = {"retry_backoff": 0.001, "retry_backoff_max": 0.01}


def _hook(conn_id: str = "rtcim_default", **kwargs: Any) -> RtcImHook:
    return RtcImHook(conn_id, **{**FAST, **kwargs})


def _set_conn(
    monkeypatch: pytest.MonkeyPatch, emu: Emulator, conn_id: str = "rtcim_default", **ov: Any
) -> None:
    for name, value in emu.airflow_env(conn_id, **ov).items():
        monkeypatch.setenv(name, value)


def _ids(items: list[dict[str, Any]]) -> list[int]:
    return [c["ConversationShortId"] for c in items]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# import cost
# ---------------------------------------------------------------------------------------


def test_importing_the_hook_does_not_import_requests() -> None:
    code = (
        "import sys, airflow_provider_rtcim.hooks.rtcim as m; "
        "m.RtcImHook('x', max_qps=5); "
        "print(sorted(n for n in ('requests', 'airflow_provider_rtcim.core.client', 'urllib3') "
        "if n in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------------------------------
# listings
# ---------------------------------------------------------------------------------------


@pytest.mark.rtcim_emulator(users=2, conversations_per_user=203, seed=7)
def test_listing_across_many_pages_is_exact(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    hook = _hook()
    pages = 0
    for uid in emu.user_ids:
        truth = emu.conversations(uid, data_type=1)
        got = list(hook.iter_user_conversations(uid, page_size=7))
        assert got == truth  # every field, ids and order, int64 exact
        assert len(got) > 150
        assert any(i > 2**53 for i in _ids(got))
        pages += -(-len(truth) // 7)
    assert hook.stats["pages"] == pages
    assert hook.stats["requests"] == pages
    assert hook.stats["retries"] == 0
    assert emu.stats["requests"] == pages


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=45)
def test_string_ids_app_id_override_and_count(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    uid = emu.user_ids[0]
    hook = _hook()
    assert hook.app_id == emu.app_id
    page = hook.get_user_conversations(str(uid), limit=20, app_id=str(emu.app_id))
    assert _ids(page["ConversationInfos"]) == _ids(emu.conversations(uid))[:20]
    assert page["HasMore"] is True
    page2 = hook.get_user_conversations(uid, cursor=page["NextCursor"], limit=20)
    assert _ids(page2["ConversationInfos"]) == _ids(emu.conversations(uid))[20:40]
    assert hook.count_user_conversations(uid) == len(emu.conversations(uid)) > 20
    skipped = list(hook.iter_user_conversations(uid, skip_member_count=True))
    assert all("MemberCount" not in c for c in skipped)
    assert _ids(skipped) == _ids(emu.conversations(uid))


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=30)
def test_data_type_0_listing_has_each_conversation_once(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    emu.configure(reorder_data_type0=True)
    uid = emu.user_ids[0]
    got = _ids(list(_hook().iter_user_conversations(uid, data_type=0, page_size=5)))
    assert len(got) == len(set(got))
    assert set(got) <= set(_ids(emu.conversations(uid, data_type=1)))


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=50)
def test_stuck_cursor_is_a_clear_error(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    uid = emu.user_ids[0]
    emu.configure(anomalies={uid: "stuck_cursor"})
    with pytest.raises(RtcImApiError) as info:
        list(_hook().iter_user_conversations(uid, page_size=10))
    err = info.value
    assert err.code == "PaginationAnomaly"
    assert str(uid) in str(err)
    assert "page 2" in str(err)
    assert "stuck" in str(err)
    assert isinstance(err, RtcImError)
    assert emu.stats["requests"] == 2


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=50)
def test_negative_cursor_with_has_more_is_a_clear_error(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    uid = emu.user_ids[0]
    emu.configure(anomalies={uid: "negative_cursor"})
    with pytest.raises(RtcImApiError, match=r"negative NextCursor") as info:
        list(_hook().iter_user_conversations(uid, page_size=10))
    assert info.value.code == "PaginationAnomaly"


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=50)
@pytest.mark.parametrize("anomaly", ["empty_pages", "repeated_page"])
def test_empty_and_repeated_pages_still_give_the_exact_listing(
    rtcim_connection: Emulator, anomaly: str
) -> None:
    emu = rtcim_connection
    uid = emu.user_ids[0]
    emu.configure(anomalies={uid: anomaly})
    got = list(_hook().iter_user_conversations(uid, page_size=10))
    assert got == emu.conversations(uid)


class _Scripted:
    """A loopback HTTP server answering with scripted JSON bodies, one per request (the last
    repeats): for responses the emulator cannot produce, such as a page without HasMore."""

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        self.bodies = list(bodies)
        self.requests: list[dict[str, Any]] = []
        script = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                script.requests.append(sent)
                index = min(len(script.requests), len(script.bodies)) - 1
                data = json.dumps(script.bodies[index]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    servers: list[_Scripted] = []

    def start(*bodies: dict[str, Any]) -> _Scripted:
        server = _Scripted(list(bodies))
        servers.append(server)
        conn = {"conn_type": "rtcim", "login": "ak", "password": "sk", "host": server.url}
        conn["extra"] = {"app_id": 7, "endpoint_url": server.url, "max_qps": 0}
        monkeypatch.setenv("AIRFLOW_CONN_RTCIM_DEFAULT", json.dumps(conn))
        return server

    yield start
    for server in servers:
        server.close()


def _result(ids: list[int], **fields: Any) -> dict[str, Any]:
    infos = [{"ConversationShortId": i} for i in ids]
    return {"ResponseMetadata": {"RequestId": "r"}, "Result": {"ConversationInfos": infos, **fields}}


def test_a_page_without_has_more_is_retried_not_taken_as_the_end(scripted: Any) -> None:
    server = scripted(
        _result([1, 2], HasMore=True, NextCursor=2),
        _result([3], NextCursor=3),  # no HasMore: malformed, fetched again
        _result([3, 4], HasMore=False, NextCursor=4),
    )
    hook = _hook()
    assert _ids(list(hook.iter_user_conversations(10001))) == [1, 2, 3, 4]
    assert [r["Cursor"] for r in server.requests] == [0, 2, 2]
    assert hook.stats == {"requests": 3, "retries": 1, "pages": 2}


@pytest.mark.parametrize("has_more", [None, "false", 0])
def test_a_page_without_a_bool_has_more_fails_after_the_retries(scripted: Any, has_more: Any) -> None:
    fields = {} if has_more is None else {"HasMore": has_more}
    server = scripted(_result([1, 2], HasMore=True, NextCursor=2), _result([3], NextCursor=3, **fields))
    hook = _hook(max_retries=2)
    got: list[int] = []
    with pytest.raises(RtcImApiError) as info:
        for item in hook.iter_user_conversations(10001):
            got.append(item["ConversationShortId"])
    assert info.value.code == "MalformedResponse"
    assert "HasMore" in str(info.value)
    assert "gave up after 3 attempts" in str(info.value)
    assert got == [1, 2]  # never a silently short listing
    assert len(server.requests) == 4
    with pytest.raises(RtcImApiError, match="HasMore"):  # one page fetched alone: the same
        hook.get_user_conversations(10001, cursor=2)


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=100)
def test_max_pages_bounds_the_listing(rtcim_connection: Emulator) -> None:
    uid = rtcim_connection.user_ids[0]
    with pytest.raises(RtcImApiError, match=r"max_pages=3") as info:
        list(_hook().iter_user_conversations(uid, page_size=10, max_pages=3))
    assert info.value.code == "PaginationAnomaly"
    assert rtcim_connection.stats["requests"] == 3


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda h, u: h.get_user_conversations(u, limit=21), r"limit must be between 1 and 20"),
        (lambda h, u: h.get_user_conversations(u, limit=0), r"limit"),
        (lambda h, u: h.get_user_conversations(u, data_type=5), r"data_type must be one of"),
        (lambda h, u: h.get_user_conversations(u, inbox_type=-1), r"inbox_type"),
        (lambda h, u: h.get_user_conversations(1.5), r"participant_user_id"),
        (lambda h, u: h.get_user_conversations(True), r"participant_user_id"),
        (lambda h, u: h.get_user_conversations(None), r"participant_user_id"),
        (lambda h, u: h.get_user_conversations(u, app_id=0), r"app_id"),
        (lambda h, u: h.get_user_conversations(u, cursor=-1), r"cursor"),
        (lambda h, u: h.get_user_conversations(u, skip_member_count="yes"), r"skip_member_count"),
        (lambda h, u: h.iter_user_conversations(u, page_size=50), r"page_size"),
        (lambda h, u: h.iter_user_conversations(u, max_pages=0), r"max_pages"),
        (lambda h, u: h.count_user_conversations(u, data_type=3), r"data_type"),
        (lambda h, u: h.call("Bad Action", {}), r"action"),
    ],
)
def test_bad_arguments_fail_before_any_request(rtcim_connection: Emulator, call: Any, pattern: str) -> None:
    hook = _hook()
    with pytest.raises(ValueError, match=pattern):
        call(hook, rtcim_connection.user_ids[0])
    assert rtcim_connection.stats["requests"] == 0
    assert hook.stats["requests"] == 0


@pytest.mark.parametrize(
    ("override", "code", "status", "fix"),
    [
        ({"password": "not-the-right-secret"}, "SignatureDoesNotMatch", 401, "password"),
        ({"login": "AKLTnobody"}, "InvalidAccessKey", 401, "login"),
        ({"app_id": 424242}, "InvalidParameter.NotExistAppId", 400, "app_id"),
    ],
)
def test_client_errors_fail_at_once_with_a_fix(
    rtcim_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    override: dict,
    code: str,
    status: int,
    fix: str,
) -> None:
    _set_conn(monkeypatch, rtcim_emulator, **override)
    hook = _hook()
    with pytest.raises(RtcImApiError) as info:
        hook.get_user_conversations(rtcim_emulator.user_ids[0])
    err = info.value
    assert (err.code, err.http_status) == (code, status)
    assert err.request_id
    assert fix in str(err)
    assert not err.retryable
    assert rtcim_emulator.stats["requests"] == 1
    assert hook.stats == {"requests": 1, "retries": 0, "pages": 0}


def test_clock_skew_is_invalid_timestamp_and_not_retried(rtcim_connection: Emulator) -> None:
    rtcim_connection.configure(clock_offset=3600)
    with pytest.raises(RtcImApiError) as info:
        _hook().get_user_conversations(rtcim_connection.user_ids[0])
    assert info.value.code == "InvalidTimestamp"
    assert "clock" in str(info.value)
    assert rtcim_connection.stats["requests"] == 1


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"app_id": None}, "has no AppId: set extra.app_id or pass app_id="),
        ({"login": None}, "has no Access Key ID: set the connection's login"),
        ({"password": None}, "has no Secret Access Key: set the connection's password"),
    ],
)
def test_missing_app_id_or_credentials_name_connection_and_field(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, override: dict, field: str
) -> None:
    _set_conn(monkeypatch, rtcim_emulator, **override)
    with pytest.raises(RtcImApiError) as info:
        _hook().get_user_conversations(rtcim_emulator.user_ids[0])
    assert str(info.value) == f"MisconfiguredConnection: Connection 'rtcim_default' {field}"  # no stray colon
    assert info.value.code == "MisconfiguredConnection"
    assert rtcim_emulator.stats["requests"] == 0


def test_missing_app_id_on_connection_can_be_given_by_the_task(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_conn(monkeypatch, rtcim_emulator, app_id=None)
    hook = _hook()
    assert hook.app_id is None
    uid = rtcim_emulator.user_ids[0]
    assert len(list(hook.iter_user_conversations(uid, app_id=rtcim_emulator.app_id))) == len(
        rtcim_emulator.conversations(uid)
    )


# ---------------------------------------------------------------------------------------
# retries
# ---------------------------------------------------------------------------------------


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=60)
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_is_retried_and_the_result_is_exact(
    rtcim_connection: Emulator, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    emu = rtcim_connection
    emu.configure(fault_rate=0.6, fault_kinds=[kind], fault_seed=3)
    uid = emu.user_ids[0]
    hook = _hook(max_retries=5)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_rtcim"):
        got = list(hook.iter_user_conversations(uid, page_size=10))
    emu.configure(fault_rate=0.0)
    assert got == emu.conversations(uid)
    assert emu.stats["faults_injected"].get(kind, 0) > 0
    assert hook.stats["retries"] == emu.stats["faults_total"]
    assert hook.stats["requests"] == hook.stats["pages"] + hook.stats["retries"]
    retry_lines = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retry_lines) == hook.stats["retries"]
    assert all("GetUserConversations" in line and "attempt " in line and "/6" in line for line in retry_lines)


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=5)
@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        ("429", "FlowLimitExceeded.QPSOverLimit", 429),
        ("500", "InternalError", 500),
        ("502", "FailToConnect", 502),
        ("503", "ServiceUnavailableTemp", 503),
        ("504", "InternalServiceTimeout", 504),
        ("reset", "ConnectionError", None),
        ("truncate", "TruncatedResponse", None),
        ("error200", "InternalError", 200),
        ("badjson", "MalformedResponse", 200),
    ],
)
def test_each_fault_kind_is_classified_as_transient(
    rtcim_connection: Emulator, kind: str, code: str, status: int | None
) -> None:
    rtcim_connection.configure(fault_rate=1.0, fault_kinds=[kind])
    with pytest.raises(RtcImApiError) as info:
        _hook(max_retries=0).get_user_conversations(rtcim_connection.user_ids[0])
    assert (info.value.code, info.value.http_status, info.value.retryable) == (code, status, True)
    assert rtcim_connection.stats["requests"] == 1


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=10, max_consecutive_faults=10)
def test_retries_are_bounded(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    emu.configure(fault_rate=1.0, fault_kinds=["503"])
    hook = _hook(max_retries=2)
    with pytest.raises(RtcImApiError) as info:
        hook.get_user_conversations(emu.user_ids[0])
    assert info.value.code == "ServiceUnavailableTemp"
    assert info.value.http_status == 503
    assert "gave up after 3 attempts" in str(info.value)
    assert emu.stats["requests"] == 3
    assert hook.stats["retries"] == 2


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=10)
def test_retry_false_sends_once(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    emu.configure(fault_rate=1.0, fault_kinds=["500"])
    body = {"AppId": emu.app_id, "ParticipantUserId": emu.user_ids[0], "Cursor": 0, "Limit": 5}
    with pytest.raises(RtcImApiError) as info:
        _hook().call("GetUserConversations", body, retry=False)
    assert info.value.code == "InternalError"
    assert emu.stats["requests"] == 1


def test_a_write_action_is_not_retried(rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # A transient failure on every attempt, with no timing involved: the endpoint refuses
    # connections. (The emulator's injected faults only hit GetUserConversations, and its
    # QPS limit would make this depend on two calls landing in the same second.)
    url = f"http://127.0.0.1:{_free_port()}"
    _set_conn(monkeypatch, rtcim_emulator, host=url, endpoint_url=url)
    hook = _hook(max_retries=2)
    with pytest.raises(RtcImApiError) as info:
        hook.call("CreateConversation", {"AppId": rtcim_emulator.app_id})
    assert info.value.code == "ConnectionError"
    assert info.value.retryable  # transient, yet not retried: a write could act twice
    assert hook.stats == {"requests": 1, "retries": 0, "pages": 0}
    # ... unless the caller says the action is safe to repeat
    with pytest.raises(RtcImApiError):
        hook.call("CreateConversation", {"AppId": rtcim_emulator.app_id}, retry=True)
    assert hook.stats == {"requests": 4, "retries": 2, "pages": 0}


class _Recorder:
    """An injected sleep: records each wait (and the thread) instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.calls.append((threading.current_thread().name, seconds))

    def waits(self, thread: str | None = None) -> list[float]:
        with self._lock:
            return [s for t, s in self.calls if thread is None or t == thread]


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=5)
def test_retry_after_is_honoured_beyond_the_backoff_cap(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    emu.configure(fault_rate=1.0, fault_kinds=["429"], retry_after=3, max_consecutive_faults=1)
    sleep = _Recorder()
    hook = _hook(sleep=sleep)  # backoff capped at 0.01 s; Retry-After has its own cap (120 s)
    page = hook.get_user_conversations(emu.user_ids[0])
    assert len(page["ConversationInfos"]) == 5
    assert emu.stats["by_status"][429] == 1
    assert hook.stats["retries"] == 1
    assert sleep.waits()[0] >= 3.0  # the backoff before the retry: at least Retry-After


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=5)
def test_retry_after_max_caps_the_servers_wait(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    emu.configure(fault_rate=1.0, fault_kinds=["429"], retry_after=3600, max_consecutive_faults=1)
    sleep = _Recorder()
    hook = _hook(sleep=sleep, retry_after_max=2)
    hook.get_user_conversations(emu.user_ids[0])
    assert sleep.waits()[0] == pytest.approx(2.0)


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=5)
def test_a_429_makes_every_thread_of_the_hook_back_off(rtcim_connection: Emulator) -> None:
    # The API's limit is per account: when one thread is throttled, the others must not
    # keep sending. The sleep is injected, so the test waits for nothing: the 30 s pause
    # shows in what the other thread is told to wait.
    emu = rtcim_connection
    emu.configure(fault_rate=1.0, fault_kinds=["429"], retry_after=30, max_consecutive_faults=1)
    sleep = _Recorder()
    hook = _hook(sleep=sleep)
    uid = emu.user_ids[0]
    hook.get_user_conversations(uid)  # this thread: 429, Retry-After 30, retried
    assert sleep.waits()[0] >= 30.0
    emu.configure(fault_rate=0.0)
    other = threading.Thread(target=hook.get_user_conversations, args=(uid,), name="other-task")
    other.start()
    other.join()
    waits = sleep.waits("other-task")
    assert len(waits) == 1
    assert waits[0] > 20.0  # held by the rate limiter until the 429's deadline
    assert emu.stats["by_status"][429] == 1


def test_verify_from_the_connection_wins_over_ca_bundle_env(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override session.verify; what the
    # transport receives is recorded (and the request still sent) to see which one won.
    import requests

    env_bundle = tmp_path / "env-ca.pem"
    env_bundle.write_text("not used\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(env_bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(env_bundle))
    seen: list[Any] = []
    real_send = requests.adapters.HTTPAdapter.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("verify"))
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    uid = rtcim_emulator.user_ids[0]
    for verify, expected in [(False, False), ("/etc/my-company-ca.pem", "/etc/my-company-ca.pem")]:
        seen.clear()
        _set_conn(monkeypatch, rtcim_emulator, verify=verify)
        hook = _hook()
        hook.get_user_conversations(uid, limit=1)
        assert seen == [expected]


def test_unreachable_endpoint_is_retried_then_a_connection_error(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    _set_conn(monkeypatch, rtcim_emulator, host=url, endpoint_url=url)
    hook = _hook(max_retries=2)
    with pytest.raises(RtcImApiError) as info:
        hook.get_user_conversations(1)
    assert info.value.code == "ConnectionError"
    assert hook.stats == {"requests": 3, "retries": 2, "pages": 0}


def test_timeout_is_retried_then_a_timeout_error(rtcim_connection: Emulator) -> None:
    rtcim_connection.configure(latency=0.5)
    hook = _hook(timeout=0.05, max_retries=1)
    with pytest.raises(RtcImApiError) as info:
        hook.get_user_conversations(rtcim_connection.user_ids[0])
    assert info.value.code == "Timeout"
    assert hook.stats["requests"] == 2
    text = str(info.value)
    assert f"no response from {rtcim_connection.url} within 0.05 s (read timeout)" in text, text
    assert "gave up after 2 attempts over " in text and "Timeout: " not in text.split(": ", 1)[1]


# What a failure below HTTP says: once what happened and why, no urllib3 wrapping, no secret.
_URLLIB3_NOISE = (
    "Max retries exceeded",
    "HTTPConnectionPool",
    "NewConnectionError",
    "ConnectionError: ConnectionError",
)


def _transport_error(hook: RtcImHook, caplog: pytest.LogCaptureFixture) -> tuple[RtcImApiError, list[str]]:
    with (
        caplog.at_level(logging.WARNING, logger="airflow_provider_rtcim"),
        pytest.raises(RtcImApiError) as info,
    ):
        hook.get_user_conversations(1)
    return info.value, [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]


def test_connection_refused_says_what_and_why_once(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    _set_conn(monkeypatch, rtcim_emulator, host=url, endpoint_url=url)
    err, retries = _transport_error(_hook(max_retries=5), caplog)
    assert err.code == "ConnectionError"
    text = str(err)
    assert re.fullmatch(
        rf"GetUserConversations ConnectionError: cannot connect to {re.escape(url)}: connection refused "
        r"\(gave up after 6 attempts over [0-9]+\.[0-9] s\)",
        text,
    ), text
    for noise in _URLLIB3_NOISE:
        assert noise not in text
    assert len(retries) == 5
    assert all("(ConnectionError: connection refused)" in line for line in retries), retries
    assert not any(noise in line for line in retries for noise in _URLLIB3_NOISE)


def test_an_unknown_host_is_named_as_a_dns_failure(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _set_conn(monkeypatch, rtcim_emulator, host="http://rtcim-no-such-host.invalid", endpoint_url=None)
    err, _ = _transport_error(_hook(max_retries=0), caplog)
    assert err.code == "ConnectionError"
    assert err.message == (
        "cannot connect to http://rtcim-no-such-host.invalid: DNS lookup of rtcim-no-such-host.invalid "
        "failed (unknown host)"
    )


def test_https_to_a_plain_http_server_asks_whether_http_was_meant(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    https = rtcim_emulator.url.replace("http://", "https://")
    _set_conn(monkeypatch, rtcim_emulator, host=https, endpoint_url=https)
    err, _ = _transport_error(_hook(max_retries=0), caplog)
    assert err.code == "ConnectionError"
    assert err.message == (
        f"TLS handshake with {https} failed: the server answered in plain HTTP (WRONG_VERSION_NUMBER): "
        f"did you mean {rtcim_emulator.url}?"
    )
    ok, message = _hook().test_connection()
    assert not ok and message == f"Cannot reach the API: {err.message}"


def test_a_refusing_proxy_is_named_without_its_password(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = _free_port()
    _set_conn(monkeypatch, rtcim_emulator, proxies=f"http://proxyuser:pr0xy-s3cret@127.0.0.1:{port}")
    err, retries = _transport_error(_hook(max_retries=1), caplog)
    assert err.code == "ConnectionError"
    assert err.message.startswith(
        f"cannot connect to the proxy http://***@127.0.0.1:{port} (for {rtcim_emulator.url}): connection refused"
    ), err.message
    assert "pr0xy-s3cret" not in str(err) and not any("pr0xy-s3cret" in line for line in retries)
    assert "proxyuser" not in str(err)


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=5)
def test_a_reset_connection_is_named_as_such(
    rtcim_connection: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    rtcim_connection.configure(fault_rate=1.0, fault_kinds=["reset"])
    with pytest.raises(RtcImApiError) as info:
        _hook(max_retries=0).get_user_conversations(rtcim_connection.user_ids[0])
    assert info.value.code == "ConnectionError"
    assert "connection reset" in info.value.message, info.value.message
    assert rtcim_connection.url in info.value.message
    for noise in _URLLIB3_NOISE:
        assert noise not in str(info.value)


# ---------------------------------------------------------------------------------------
# rate limit
# ---------------------------------------------------------------------------------------


def _hammer(hook: RtcImHook, emu: Emulator, threads: int, per_thread: int) -> list[BaseException]:
    errors: list[BaseException] = []
    body = {"AppId": emu.app_id, "ParticipantUserId": emu.user_ids[0], "Cursor": 0, "Limit": 1}

    def worker() -> None:
        for _ in range(per_thread):
            try:
                hook.call("GetUserConversations", body)
            except RtcImApiError as exc:
                errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors


@pytest.mark.rtcim_emulator(qps_limit=40)
def test_one_hook_shared_by_8_threads_stays_under_the_limit(rtcim_connection: Emulator) -> None:
    # Twice the headroom (20 vs 40): scheduling jitter on a busy machine cannot draw a 429.
    emu = rtcim_connection
    hook = _hook(max_qps=20, max_retries=0, pool_maxsize=8)
    assert _hammer(hook, emu, threads=8, per_thread=8) == []
    assert emu.stats["throttled"] == 0
    assert emu.stats["requests"] == 64
    assert hook.stats["requests"] == 64


@pytest.mark.rtcim_emulator(qps_limit=5)
def test_without_the_limiter_the_emulator_throttles(rtcim_connection: Emulator) -> None:
    # The control for the test above: unthrottled load from 8 threads draws 429s. The
    # emulator's limit is low (5/s for 96 requests) so that even a slow, loaded machine,
    # which could not reach 40/s, still goes over it.
    hook = _hook(max_qps=0, max_retries=0, pool_maxsize=8)
    errors = _hammer(hook, rtcim_connection, threads=8, per_thread=12)
    assert rtcim_connection.stats["throttled"] > 0
    assert errors and all(e.code == "FlowLimitExceeded.QPSOverLimit" for e in errors)


# ---------------------------------------------------------------------------------------
# connection parsing
# ---------------------------------------------------------------------------------------


def _settings(monkeypatch: pytest.MonkeyPatch, conn: dict[str, Any], **kwargs: Any) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_RTCIM_PARSE", json.dumps({"conn_type": "rtcim", **conn}))
    return RtcImHook("rtcim_parse", **kwargs).settings


@pytest.mark.parametrize(
    ("conn", "endpoint"),
    [
        ({"host": "http://127.0.0.1:8080"}, "http://127.0.0.1:8080"),
        ({"host": "rtc.example.com"}, "https://rtc.example.com"),
        ({"host": "rtc.example.com", "port": 8443}, "https://rtc.example.com:8443"),
        # the 3.3.2 UI's Test button needs a stored port of 0: it must change nothing
        ({"host": "rtc.example.com", "port": 0}, "https://rtc.example.com"),
        ({"host": "http://127.0.0.1:8080", "port": 0}, "http://127.0.0.1:8080"),
        ({"host": "https://rtc.example.com", "port": 0}, "https://rtc.example.com"),
        ({"port": 0}, "https://rtc.volcengineapi.com"),
        ({"port": 0, "extra": {"endpoint_url": "http://b.example.com:81"}}, "http://b.example.com:81"),
        ({}, "https://rtc.volcengineapi.com"),
        ({"extra": {"region": "ap-southeast-1"}}, "https://open-ap-singapore-1.volcengineapi.com"),
        (
            {"host": "a.example.com", "extra": {"endpoint_url": "http://b.example.com:81"}},
            "http://b.example.com:81",
        ),
    ],
)
def test_endpoint_resolution(monkeypatch: pytest.MonkeyPatch, conn: dict, endpoint: str) -> None:
    assert _settings(monkeypatch, {"login": "ak", "password": "sk", **conn}).endpoint == endpoint


def test_extras_defaults_and_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(monkeypatch, {"login": "ak", "password": "sk"})
    assert (s.app_id, s.region, s.timeout, s.max_qps, s.max_retries, s.proxies, s.verify) == (
        None,
        "cn-north-1",
        30.0,
        95.0,
        5,
        None,
        True,
    )
    s = _settings(
        monkeypatch,
        {
            "login": "ak",
            "password": "sk",
            "extra": {
                "app_id": "123",
                "timeout": "7.5",
                "max_qps": "50",
                "max_retries": "2",
                "proxies": "http://proxy.local:3128",
                "verify": "false",
                "session_token": "tok",
            },
        },
    )
    assert (s.app_id, s.timeout, s.max_qps, s.max_retries, s.verify, s.session_token) == (
        123,
        7.5,
        50.0,
        2,
        False,
        "tok",
    )
    assert s.proxies == {"http": "http://proxy.local:3128", "https": "http://proxy.local:3128"}
    s = _settings(
        monkeypatch,
        {"login": "a", "password": "b", "extra": {"proxies": {"https": "http://p:1"}, "verify": "/ca.pem"}},
    )
    assert (s.proxies, s.verify) == ({"https": "http://p:1"}, "/ca.pem")
    s = _settings(
        monkeypatch, {"login": "a", "password": "b", "extra": {"proxies": '{"http": "http://p:2"}'}}
    )
    assert s.proxies == {"http": "http://p:2"}
    assert _settings(monkeypatch, {"extra": {"max_qps": 0}}).max_qps is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"app_id": "abc"}, "extra.app_id"),
        ({"app_id": 0}, "extra.app_id"),
        ({"timeout": "soon"}, "extra.timeout"),
        ({"timeout": -1}, "extra.timeout"),
        ({"max_qps": -5}, "extra.max_qps"),
        ({"max_retries": 1.5}, "extra.max_retries"),
        ({"proxies": "proxy:3128"}, "extra.proxies"),
        ({"verify": 3}, "extra.verify"),
        ({"region": "mars-1"}, "region 'mars-1' has no known endpoint"),
        ({"region": "Mars 1"}, "extra.region must be a region name such as 'cn-north-1'"),
        ({"region": "cn-north"}, "(lowercase letters and dashes, then a number), got 'cn-north'"),
        ({"region": "CN-NORTH-1"}, "did you mean 'cn-north-1'? known regions: cn-north-1 (https://"),
        ({"region": "ap_southeast_1"}, "did you mean 'ap-southeast-1'?"),
        ({"region": 1}, "extra.region must be a string such as 'cn-north-1', got 1"),
        ({"region": "cn-north-1; x", "endpoint_url": "http://127.0.0.1:1"}, "extra.region must be a region"),
        ({"endpoint_url": "ftp://x"}, "extra.endpoint_url"),
    ],
)
def test_bad_extras_name_connection_and_field(
    monkeypatch: pytest.MonkeyPatch, extra: dict, field: str
) -> None:
    with pytest.raises(RtcImApiError) as info:
        _settings(monkeypatch, {"login": "ak", "password": "sk", "extra": extra})
    assert "Connection 'rtcim_parse'" in str(info.value)
    assert field in str(info.value)
    assert info.value.code == "MisconfiguredConnection"
    assert isinstance(info.value, AirflowFailException)  # fails at once: no task retries spent


def test_hook_kwargs_override_extras(rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, rtcim_emulator, max_qps=50, max_retries=4, timeout=9)
    client = _hook(max_qps=7, max_retries=1, timeout=2.5, pool_maxsize=3).client
    assert (client.rate_limiter.max_qps, client.max_retries, client.timeout, client.pool_maxsize) == (
        7.0,
        1,
        2.5,
        3,
    )
    client = _hook().client
    assert (client.rate_limiter.max_qps, client.max_retries, client.timeout) == (50.0, 4, 9.0)
    assert client.session.adapters["http://"]._pool_maxsize == 32


def test_uri_form_connection(rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = rtcim_emulator
    uri = (
        f"rtcim://{quote(emu.access_key_id, safe='')}:{quote(emu.secret_access_key, safe='')}"
        f"@127.0.0.1:{emu.port}/"
        f"?endpoint_url={quote(emu.url, safe='')}&app_id={emu.app_id}&max_qps=10&verify=false"
    )
    monkeypatch.setenv("AIRFLOW_CONN_RTCIM_URI", uri)
    hook = _hook("rtcim_uri")
    assert hook.endpoint == emu.url
    assert (hook.app_id, hook.settings.max_qps, hook.settings.verify) == (emu.app_id, 10.0, False)
    uid = emu.user_ids[0]
    assert list(hook.iter_user_conversations(uid)) == emu.conversations(uid)
    # without endpoint_url, a URI's host is a bare host: https on its port
    monkeypatch.setenv("AIRFLOW_CONN_RTCIM_URI2", "rtcim://ak:sk@rtc.example.com:8443/?app_id=5")
    assert _hook("rtcim_uri2").endpoint == "https://rtc.example.com:8443"


def test_proxies_are_used(rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # The endpoint does not resolve; the request only arrives through the proxy (the
    # emulator serves absolute-URI proxy requests, and the signature covers the Host).
    _set_conn(
        monkeypatch,
        rtcim_emulator,
        host="http://rtc.invalid:9",
        endpoint_url="http://rtc.invalid:9",
        proxies=rtcim_emulator.url,
    )
    hook = _hook(max_retries=0)
    assert hook.settings.proxies == {"http": rtcim_emulator.url, "https": rtcim_emulator.url}
    page = hook.get_user_conversations(rtcim_emulator.user_ids[0], limit=3)
    assert len(page["ConversationInfos"]) == 3
    assert rtcim_emulator.stats["requests"] == 1


def test_from_connection_never_fetches_the_connection(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import Connection

    emu = rtcim_emulator
    conn_dict = json.loads(emu.connection_json())
    extra = conn_dict.pop("extra")
    conn = Connection(conn_id="rtcim_trigger", extra="{not json at all", **conn_dict)

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("get_connection called")

    monkeypatch.setattr(RtcImHook, "get_connection", classmethod(boom))
    hook = RtcImHook.from_connection(conn, extra=extra, **FAST)
    assert hook.rtcim_conn_id == "rtcim_trigger"
    uid = emu.user_ids[0]
    assert hook.count_user_conversations(uid) == len(emu.conversations(uid))


# ---------------------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------------------

SESSION_TOKEN = "sts-session-token-value-987654"


@pytest.mark.rtcim_emulator(users=1, conversations_per_user=25, session_token=SESSION_TOKEN)
def test_secrets_never_logged_raised_or_shown(
    rtcim_connection: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = rtcim_connection
    secret = emu.secret_access_key
    caplog.set_level(logging.DEBUG)
    emu.configure(fault_rate=0.5, fault_kinds=["503", "reset", "error200"])
    hook = _hook()
    uid = emu.user_ids[0]
    assert list(hook.iter_user_conversations(uid)) == emu.conversations(uid)
    assert hook.stats["retries"] > 0
    texts = [repr(hook), repr(hook.client), repr(hook.settings), repr(hook.credentials())]
    # a failing call: wrong secret (and the session token still sent)
    _set_conn(monkeypatch, emu, "rtcim_bad", password="wrong-" + secret)
    bad = _hook("rtcim_bad")
    with pytest.raises(RtcImApiError) as info:
        bad.get_user_conversations(uid)
    texts += [str(info.value), repr(info.value), repr(bad), str(bad.test_connection())]
    assert "SignatureDoesNotMatch" in str(info.value)
    out = capsys.readouterr()
    texts += [out.out, out.err]
    texts += [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    assert any("retrying in" in t for t in texts)  # the retry warnings were captured
    for text in texts:
        assert secret not in text
        assert SESSION_TOKEN not in text
        assert "wrong-" + secret not in text


def test_from_connection_registers_every_secret_with_mask_secret(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An in-memory Connection: nothing in Airflow's get_connection path masks for us here
    # (as in a trigger), so the hook itself must register each secret.
    import airflow.sdk.log
    from airflow.sdk import Connection

    from airflow_provider_rtcim import compat

    masked: list[str] = []
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", lambda value, name=None: masked.append(value))
    # the package takes it through compat, which keeps what it resolved once
    monkeypatch.setattr(compat, "mask_secret", airflow.sdk.log.mask_secret, raising=False)
    emu = rtcim_emulator
    conn = Connection(
        conn_id="rtcim_mem",
        conn_type="rtcim",
        login=emu.access_key_id,
        password="in-memory-secret-key-1234",
        host=emu.url,
    )
    extra = {
        "app_id": emu.app_id,
        "endpoint_url": emu.url,
        "session_token": "in-memory-session-token-5678",
        "proxies": {"https": "http://proxyuser:proxy%2Fpass-9012@proxy.local:3128"},
    }
    hook = RtcImHook.from_connection(conn, extra=extra, **FAST)
    hook.settings  # noqa: B018 - loading the settings registers the secrets
    assert "in-memory-secret-key-1234" in masked
    assert "in-memory-session-token-5678" in masked
    assert "proxy%2Fpass-9012" in masked  # as written in the URL
    assert "proxy/pass-9012" in masked  # and decoded
    assert emu.access_key_id not in masked  # the key id is not a secret


def test_secrets_are_registered_with_the_masker(rtcim_connection: Emulator) -> None:
    from airflow_compat import redact

    hook = _hook()
    hook.settings  # noqa: B018 - loading the connection masks the secret
    assert rtcim_connection.secret_access_key not in str(redact(f"x {rtcim_connection.secret_access_key} y"))


# ---------------------------------------------------------------------------------------
# test_connection
# ---------------------------------------------------------------------------------------


def test_test_connection_ok(rtcim_connection: Emulator) -> None:
    ok, message = _hook().test_connection()
    assert ok is True
    assert rtcim_connection.url in message
    assert str(rtcim_connection.app_id) in message
    assert rtcim_connection.stats["requests"] == 1


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"login": "AKLTwrong"}, ["Access Key ID 'AKLTwrong' is unknown", "InvalidAccessKey", "login"]),
        (
            {"password": "wrong-secret-xyz"},
            ["Secret Access Key does not match", "SignatureDoesNotMatch", "password", "region cn-north-1"],
        ),
        ({"app_id": 777}, ["AppId 777", "NotExistAppId", "extra.app_id", "AKLTemulatorKey"]),
        ({"app_id": None}, ["has no AppId", "extra.app_id"]),
        ({"login": None}, ["has no Access Key ID", "login"]),
        ({"password": None}, ["has no Secret Access Key", "password"]),
        ({"timeout": "never"}, ["Invalid connection setting: extra.timeout must be a number"]),
        ({"region": "Mars 1"}, ["Invalid connection setting: extra.region must be a region name"]),
    ],
)
def test_test_connection_says_what_to_fix(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, override: dict, words: list[str]
) -> None:
    # Airflow tests a temporary copy of the connection under a random id: never name it.
    _set_conn(monkeypatch, rtcim_emulator, conn_id="kwucgi4y", **override)
    ok, message = _hook("kwucgi4y").test_connection()
    assert ok is False
    assert "kwucgi4y" not in message.lower() and "Connection '" not in message
    for word in words:
        assert word in message
    assert rtcim_emulator.secret_access_key not in message


def test_test_connection_unreachable(rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    _set_conn(monkeypatch, rtcim_emulator, host=url, endpoint_url=url)
    hook = _hook()
    ok, message = hook.test_connection()
    assert ok is False
    assert message == f"Cannot reach the API: cannot connect to {url}: connection refused."
    assert hook.stats["requests"] == 1  # no retries for the Test button


def test_test_connection_missing_connection_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_RTCIM_NOWHERE", raising=False)
    ok, message = RtcImHook("rtcim_nowhere").test_connection()
    assert ok is False
    assert "rtcim_nowhere" in message and "AIRFLOW_CONN_RTCIM_NOWHERE" in message


# A wrong region is not blamed on the password alone. The region is part of the signature.


def test_an_unknown_region_with_an_explicit_endpoint_is_suspected(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_conn(monkeypatch, rtcim_emulator, region="mars-1")
    with pytest.raises(RtcImApiError) as info:
        _hook().get_user_conversations(rtcim_emulator.user_ids[0])
    err, text = info.value, str(info.value)
    assert (err.code, err.http_status, err.retryable) == ("SignatureDoesNotMatch", 401, False)
    assert (
        "(the region may be the cause: 'mars-1' is not a known region (cn-north-1, ap-southeast-1), "
        "and the region is part of the signature: check extra.region; if the region is right, the Secret "
        "Access Key does not match the Access Key ID: check the connection's password (the Secret Access Key field))"
    ) in text, text
    assert text.count("check the connection's password") == 1
    assert err.request_id and text.endswith(f"[RequestId {err.request_id}]")
    ok, message = _hook().test_connection()
    assert ok is False
    assert "the region may be the cause: 'mars-1' is not a known region" in message, message
    assert (
        "check the Region field (extra.region); if the region is right, the Secret Access Key does not match"
        in message
    )
    assert "Connection '" not in message


def test_a_region_other_than_the_endpoints_is_suspected(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cn-north-1 endpoint (reached through the emulator as an HTTP proxy) with another region."""
    _set_conn(
        monkeypatch,
        rtcim_emulator,
        host="http://rtc.volcengineapi.com",
        endpoint_url=None,
        proxies=rtcim_emulator.url,
        region="ap-southeast-1",
    )
    with pytest.raises(RtcImApiError) as info:
        _hook().get_user_conversations(rtcim_emulator.user_ids[0])
    assert info.value.code == "SignatureDoesNotMatch"
    assert (
        "the region may be the cause: the endpoint rtc.volcengineapi.com is region cn-north-1's, not "
        "ap-southeast-1's, and the region is part of the signature: check extra.region"
    ) in str(info.value)
    ok, message = _hook().test_connection()
    assert not ok and "the endpoint rtc.volcengineapi.com is region cn-north-1's" in message
    # with the endpoint's own region the same route works: the region was the cause
    _set_conn(
        monkeypatch,
        rtcim_emulator,
        host="http://rtc.volcengineapi.com",
        endpoint_url=None,
        proxies=rtcim_emulator.url,
        region="cn-north-1",
    )
    assert _hook().test_connection()[0] is True


def test_a_wrong_secret_with_a_plausible_region_blames_only_the_secret(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_conn(monkeypatch, rtcim_emulator, password="not-the-secret")
    with pytest.raises(RtcImApiError) as info:
        _hook().get_user_conversations(rtcim_emulator.user_ids[0])
    assert "region" not in str(info.value)
    assert "check the connection's password" in str(info.value)


def test_any_well_formed_region_works_with_an_explicit_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(region="eu-west-7") as emu:
        _set_conn(monkeypatch, emu)
        ok, message = _hook().test_connection()
    assert ok, message
    assert "region eu-west-7" in message


# Connections a plain script cannot see, and what the form stores


def test_a_missing_connection_says_where_connections_are_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    from airflow_provider_rtcim.compat import AirflowNotFoundException
    from airflow_provider_rtcim.hooks.rtcim import RtcImConnectionNotFound

    monkeypatch.delenv("AIRFLOW_CONN_RTCIM_NOWHERE", raising=False)
    with pytest.raises(AirflowNotFoundException) as info:  # what existing callers catch
        RtcImHook("rtcim_nowhere").get_user_conversations(1)
    err = info.value
    assert isinstance(err, RtcImConnectionNotFound)
    assert isinstance(err, RtcImApiError) and isinstance(err, RtcImError)
    assert err.code == "MisconfiguredConnection" and not err.retryable
    text = str(err)
    assert text.startswith("MisconfiguredConnection: Connection 'rtcim_nowhere' is not defined.")
    assert "outside a task" in text and "AIRFLOW_CONN_RTCIM_NOWHERE environment variable" in text
    assert "`airflow connections add` is not" in text
    again = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own object
    assert type(again) is RtcImConnectionNotFound and str(again) == text


def test_a_connection_in_the_metadata_db_is_not_visible_outside_a_task(
    airflow_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `airflow connections add` stores is only for tasks: a plain script gets the explanation."""
    from airflow.models import Connection as DbConnection
    from airflow.utils.session import create_session

    from airflow_provider_rtcim.hooks.rtcim import RtcImConnectionNotFound

    monkeypatch.delenv("AIRFLOW_CONN_RTCIM_IN_DB", raising=False)
    with create_session() as session:
        session.add(DbConnection(conn_id="rtcim_in_db", conn_type="rtcim", login="ak", password="sk"))
    try:
        with create_session() as session:  # it is stored ...
            assert session.query(DbConnection).filter(DbConnection.conn_id == "rtcim_in_db").count() == 1
        from airflow_provider_rtcim.compat import AirflowNotFoundException, BaseHook

        try:
            BaseHook.get_connection("rtcim_in_db")
        except AirflowNotFoundException:  # 3.1+: a plain script sees no metadata-DB connection
            with pytest.raises(
                RtcImConnectionNotFound, match="AIRFLOW_CONN_RTCIM_IN_DB environment variable"
            ):
                RtcImHook("rtcim_in_db").settings  # noqa: B018
        else:  # Airflow 3.0's BaseHook reads the metadata DB from anywhere: then the hook uses it
            settings = RtcImHook("rtcim_in_db").settings
            assert (settings.access_key_id, settings.secret_access_key) == ("ak", "sk")
    finally:
        with create_session() as session:
            session.query(DbConnection).filter(DbConnection.conn_id == "rtcim_in_db").delete()


def test_a_form_saved_with_every_extra_empty_stores_nulls_and_means_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The 3.3 UI stores each empty extra field as an explicit null."""
    from airflow_provider_rtcim.get_provider_info import get_provider_info

    (conn_type,) = get_provider_info()["connection-types"]
    extra = dict.fromkeys(conn_type["conn-fields"], None)
    assert {"app_id", "region", "session_token", "endpoint_url", "timeout", "max_qps", "max_retries"} <= set(
        extra
    )
    s = _settings(monkeypatch, {"login": "ak", "password": "sk", "port": 0, "extra": extra})
    assert (s.endpoint, s.region, s.app_id, s.session_token) == (
        "https://rtc.volcengineapi.com",
        "cn-north-1",
        None,
        None,
    )
    assert (s.timeout, s.max_qps, s.max_retries, s.proxies, s.verify) == (30.0, 95.0, 5, None, True)


# ---------------------------------------------------------------------------------------
# housekeeping
# ---------------------------------------------------------------------------------------


def test_no_io_in_init_and_close_then_reuse(
    rtcim_connection: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_RTCIM_DEFAULT")
    hook = _hook()  # no connection exists: __init__ must not look it up
    assert hook.stats == {"requests": 0, "retries": 0, "pages": 0}
    assert "rtcim_default" in repr(hook)
    _set_conn(monkeypatch, rtcim_connection)
    uid = rtcim_connection.user_ids[0]
    hook.get_user_conversations(uid)
    hook.close()
    hook.get_user_conversations(uid)
    hook.close()
    hook.close()
    assert hook.stats["requests"] == 2


def test_hook_identity_for_airflow() -> None:
    assert RtcImHook.conn_type == "rtcim"
    assert RtcImHook.conn_name_attr == "rtcim_conn_id"
    assert RtcImHook.default_conn_name == "rtcim_default"
    assert RtcImHook.hook_name
    from airflow_provider_rtcim.compat import AirflowException

    assert issubclass(RtcImApiError, AirflowException)
    assert issubclass(RtcImApiError, RtcImError)
    for bad in [{"max_qps": -1}, {"timeout": 0}, {"max_retries": -1}, {"pool_maxsize": 0}]:
        with pytest.raises(ValueError):
            RtcImHook(**bad)


@pytest.mark.timeout(60)
@pytest.mark.rtcim_emulator(users=2, conversations_per_user=30, qps_limit=None)
def test_endless_empty_pages_fail_fast_instead_of_hanging(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    uid = emu.user_ids[0]
    emu.configure(anomalies={uid: "endless_empty"})
    hook = _hook(max_qps=0)
    with pytest.raises(RtcImApiError) as info:
        list(hook.iter_user_conversations(uid, page_size=20))
    err = info.value
    assert err.code == "PaginationAnomaly"
    assert str(uid) in str(err) and "100 pages in a row" in str(err)
    assert "cursor" in str(err)
    assert emu.stats["requests"] == 100  # the guard's default, not max_pages=100_000
    # the other user's listing, and the finite empty_pages anomaly, stay exact
    other = emu.user_ids[1]
    emu.configure(anomalies={uid: "endless_empty", other: "empty_pages"})
    assert list(hook.iter_user_conversations(other, page_size=7)) == emu.conversations(other)


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_an_empty_max_qps_field_means_the_default_not_no_limit(
    monkeypatch: pytest.MonkeyPatch, empty: Any
) -> None:
    """A connection saved from the UI with the field cleared must keep the 95 QPS cap; only 0 disables it."""
    s = _settings(monkeypatch, {"login": "ak", "password": "sk", "extra": {"max_qps": empty}})
    assert s.max_qps == 95.0
    s = _settings(monkeypatch, {"login": "ak", "password": "sk", "extra": {"max_qps": 0}})
    assert s.max_qps is None
