"""Pure units of the core: validation, the rate limiter, the pagination walk, retry classification.

No HTTP here: the pagination walk takes a fake ``fetch_page`` (the one place a fake is
right), the rate limiter an injected clock. The HTTP behaviour is tested in test_hook.py.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_rtcim.core import validation as v
from airflow_provider_rtcim.core.actions import GET_USER_CONVERSATIONS as GUC
from airflow_provider_rtcim.core.client import (
    RtcImClient,
    _Failure,
    backoff_delay,
    encode_body,
    is_read_action,
    parse_retry_after,
)
from airflow_provider_rtcim.core.errors import RtcImError, hint_for, is_retryable
from airflow_provider_rtcim.core.intset import Int64Set
from airflow_provider_rtcim.core.pagination import Listing, iter_pages, page_problem
from airflow_provider_rtcim.core.ratelimit import RateLimiter
from airflow_provider_rtcim.core.signing import Credentials

# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(5, 5), ("5", 5), (" 42 ", 42), ("-3", -3), (2**63 - 1, 2**63 - 1)]
)
def test_to_int_accepts_ints_and_numeric_strings(value: Any, expected: int) -> None:
    assert v.to_int(value, "f") == expected


@pytest.mark.parametrize("value", [True, False, 1.0, 1.5, None, "", "1.0", "abc", "1e3", [1], b"1"])
def test_to_int_rejects_everything_else(value: Any) -> None:
    with pytest.raises(ValueError, match="my_field"):
        v.to_int(value, "my_field")


@pytest.mark.parametrize(
    ("func", "good", "bad", "words"),
    [
        (
            v.validate_int_user_id,
            [1, "10001", 2**63 - 1],
            [0, -1, 2**63, True, 1.0, None, "x"],
            "participant_user_id",
        ),
        (v.validate_app_id, [1, "123", 2**31 - 1], [0, -5, 2**31, False, 2.0, None], "app_id"),
        (lambda x: v.validate_page_size(x, "limit"), [1, 20, "7"], [0, 21, -1, True, 5.0, None], "limit"),
        (v.validate_page_size, [1, 20], [0, 21], "page_size"),
        (lambda x: v.to_positive_int(x, "max_pages"), [1, 100_000], [0, -1, True], "max_pages"),
        (v.validate_data_type, [0, 1, 2, "1"], [3, -1, True, 1.0, None], "data_type"),
        (v.validate_inbox_type, [0, 3, "2"], [-1, True, 0.0, None], "inbox_type"),
        (v.validate_cursor, [0, 2**62], [-1, True, 1.5], "cursor"),
    ],
)
def test_validators(func: Any, good: list[Any], bad: list[Any], words: str) -> None:
    for value in good:
        assert func(value) == int(value)
    for value in bad:
        with pytest.raises(ValueError, match=words):
            func(value)


def test_validator_messages_name_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"limit must be between 1 and 20, got 21"):
        v.validate_page_size(21, "limit")
    with pytest.raises(ValueError, match=r"data_type must be one of 0 .*1 .*2 .*got 7"):
        v.validate_data_type(7)
    with pytest.raises(ValueError, match=r"inbox_type must be an integer >= 0, got -1"):
        v.validate_inbox_type(-1)
    with pytest.raises(ValueError, match=r"participant_user_id must be a positive integer"):
        v.validate_int_user_id(0)
    with pytest.raises(ValueError, match=r"app_id must be a positive integer"):
        v.validate_app_id("-1")
    with pytest.raises(ValueError, match=r"got a bool"):
        v.validate_app_id(True)
    with pytest.raises(ValueError, match=r"custom must be"):
        v.validate_int_user_id("x", "custom")


def test_validate_bool_action_version() -> None:
    assert v.validate_bool(True, "skip") is True
    with pytest.raises(ValueError, match="skip must be True or False"):
        v.validate_bool("true", "skip")
    assert v.validate_action("GetUserConversations") == "GetUserConversations"
    for bad in ["", "Get User", "Get&X=1", None, 5]:
        with pytest.raises(ValueError, match="action"):
            v.validate_action(bad)
    with pytest.raises(ValueError, match="version"):
        v.validate_version("2020/12/01")


@pytest.mark.parametrize(
    ("host", "port", "region", "endpoint_url", "expected"),
    [
        ("http://127.0.0.1:8080", None, "cn-north-1", None, "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", None, "cn-north-1", None, "http://127.0.0.1:8080"),
        ("rtc.example.com", None, "cn-north-1", None, "https://rtc.example.com"),
        ("rtc.example.com", 8443, "cn-north-1", None, "https://rtc.example.com:8443"),
        ("rtc.example.com:9000", 8443, "cn-north-1", None, "https://rtc.example.com:9000"),
        (None, None, "cn-north-1", None, "https://rtc.volcengineapi.com"),
        ("", None, "ap-southeast-1", None, "https://open-ap-singapore-1.volcengineapi.com"),
        ("ignored.example.com", None, "cn-north-1", "http://localhost:1234", "http://localhost:1234"),
        ("https://gw.example.com/rtc/", None, "cn-north-1", None, "https://gw.example.com/rtc"),
        ("rtc.example.com", 0, "cn-north-1", None, "https://rtc.example.com"),  # the UI's Test posts port 0
        ("http://127.0.0.1:8080", 0, "cn-north-1", None, "http://127.0.0.1:8080"),
        (None, 0, "cn-north-1", None, "https://rtc.volcengineapi.com"),
    ],
)
def test_resolve_endpoint(host: Any, port: Any, region: str, endpoint_url: Any, expected: str) -> None:
    assert v.resolve_endpoint(host, port=port, region=region, endpoint_url=endpoint_url) == expected


@pytest.mark.parametrize(
    "region", ["cn-north-1", "ap-southeast-1", "eu-west-7", "cn-beijing-2", " cn-north-1 "]
)
def test_validate_region_accepts_well_formed_names(region: str) -> None:
    assert v.validate_region(region) == region.strip()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("mars", "got 'mars'"),
        ("Mars 1", "(lowercase letters and dashes, then a number)"),
        ("CN-NORTH-1", "did you mean 'cn-north-1'?"),
        ("cn_north_1", "did you mean 'cn-north-1'?"),
        ("cn-north-1/x", "known regions: cn-north-1 (https://rtc.volcengineapi.com), ap-southeast-1"),
        ("", "got ''"),
        (None, "must be a string such as 'cn-north-1', got None"),
    ],
)
def test_validate_region_rejects_malformed_names(value: Any, words: str) -> None:
    with pytest.raises(ValueError, match=r"extra\.region") as info:
        v.validate_region(value)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("endpoint", "region", "suspect"),
    [
        ("https://rtc.volcengineapi.com", "cn-north-1", None),
        ("https://open-ap-singapore-1.volcengineapi.com", "ap-southeast-1", None),
        ("http://127.0.0.1:8080", "cn-north-1", None),  # a custom endpoint and a known region: plausible
        ("https://rtc.volcengineapi.com", "ap-southeast-1", "is region cn-north-1's, not ap-southeast-1's"),
        ("https://open-ap-singapore-1.volcengineapi.com/", "cn-north-1", "is region ap-southeast-1's"),
        ("http://127.0.0.1:8080", "mars-1", "'mars-1' is not a known region (cn-north-1, ap-southeast-1)"),
        # a custom endpoint and a region other than the default: a choice that may be wrong
        (
            "http://127.0.0.1:8080",
            "ap-southeast-1",
            "'ap-southeast-1' is configured, and the endpoint 127.0.0.1",
        ),
    ],
)
def test_region_note_suspects_a_region_that_is_not_the_endpoints(
    endpoint: str, region: str, suspect: Any
) -> None:
    note = v.region_note(endpoint, region)
    if suspect is None:
        assert note is None
    else:
        assert note is not None and note.startswith("the region may be the cause: ")
        assert suspect in note and note.endswith("check extra.region")


def test_resolve_endpoint_errors() -> None:
    with pytest.raises(ValueError, match=r"region 'eu-west-9' has no known endpoint.*cn-north-1"):
        v.resolve_endpoint(None, region="eu-west-9")
    with pytest.raises(ValueError, match=r"extra.endpoint_url must be a URL"):
        v.resolve_endpoint(None, endpoint_url="ftp://x")
    with pytest.raises(ValueError, match=r"invalid port"):
        v.resolve_endpoint("http://host:notaport")
    with pytest.raises(ValueError, match=r"query or fragment"):
        v.resolve_endpoint("http://host/?a=b")


def test_parse_proxies_and_verify() -> None:
    assert v.parse_proxies("http://proxy:3128") == {"http": "http://proxy:3128", "https": "http://proxy:3128"}
    assert v.parse_proxies('{"https": "http://p:1"}') == {"https": "http://p:1"}
    assert v.parse_proxies({"http": "http://p:2"}) == {"http": "http://p:2"}
    assert v.parse_proxies(None) is None
    assert v.parse_proxies("") is None
    for bad in ["proxy:3128", "{not json", {"http": 5}, 42]:
        with pytest.raises(ValueError, match="proxies"):
            v.parse_proxies(bad)
    assert v.parse_verify(None) is True
    assert v.parse_verify(False) is False
    assert v.parse_verify("false") is False
    assert v.parse_verify("TRUE") is True
    assert v.parse_verify("/etc/ssl/ca.pem") == "/etc/ssl/ca.pem"
    with pytest.raises(ValueError, match="verify"):
        v.parse_verify(3)


@pytest.mark.parametrize(
    "bad",
    [
        "bob:hunter2-pass@proxy.local:3128",  # no scheme: rejected, its password not echoed
        "http://bob:hunter2-pass@",  # no host
        {"https": "http://bob:hunter2-pass@"},
        {"http": ["http://bob:hunter2-pass@proxy.local:3128"]},
    ],
)
def test_parse_proxies_errors_hide_credentials(bad: Any) -> None:
    with pytest.raises(ValueError, match="proxies") as info:
        v.parse_proxies(bad, "extra.proxies")
    assert "hunter2-pass" not in str(info.value)
    assert "bob" not in str(info.value)


def test_url_redaction_helpers() -> None:
    assert v.redact_url("http://bob:pw@proxy:3128/x") == "http://***@proxy:3128/x"
    assert v.redact_url("bob:pw@proxy:3128") == "***@proxy:3128"
    assert v.redact_url("http://proxy:3128") == "http://proxy:3128"
    assert v.redact_userinfo("to http://a:b@h:1/ and https://c:d@e") == "to http://***@h:1/ and https://***@e"
    assert v.url_passwords("http://bob:p%40ss@proxy:3128") == ["p%40ss", "p@ss"]
    assert v.url_passwords("bob:pw@proxy:3128") == ["pw"]
    assert v.url_passwords("http://bob@proxy:3128") == []
    assert v.url_passwords("http://proxy:3128") == []
    assert v.url_passwords(None) == []
    with pytest.raises(ValueError, match="host") as info:
        v.resolve_endpoint("ftp://bob:hunter2-pass@h")
    assert "hunter2-pass" not in str(info.value)


def test_numbers() -> None:
    assert v.to_positive_float("2.5", "timeout") == 2.5
    for bad in [0, -1, "abc", True, None, float("inf"), float("nan")]:
        with pytest.raises(ValueError, match="timeout"):
            v.to_positive_float(bad, "timeout")
    assert v.to_max_qps(0) is None
    assert v.to_max_qps(None) is None
    assert v.to_max_qps("50") == 50.0
    with pytest.raises(ValueError, match="max_qps"):
        v.to_max_qps(-1)
    assert v.to_bool("yes", "f") is True
    with pytest.raises(ValueError, match="f must be true or false"):
        v.to_bool("maybe", "f")


# ---------------------------------------------------------------------------------------
# rate limiter (injected clock, no wall-clock assertions)
# ---------------------------------------------------------------------------------------


class FakeClock:
    """A clock that advances a little every time it is read (thread-safe)."""

    def __init__(self, step: float = 0.0007) -> None:
        self.local = threading.local()  # .last: the value this thread read last
        self._lock = threading.Lock()
        self._now = 1000.0
        self._step = step

    def __call__(self) -> float:
        with self._lock:
            self._now += self._step
            self.local.last = self._now
            return self._now


def _max_in_any_window(starts: list[float], width: float = 1.0) -> int:
    starts = sorted(starts)
    best, j = 0, 0
    for i, start in enumerate(starts):
        while j < len(starts) and starts[j] < start + width - 1e-9:
            j += 1
        best = max(best, j - i)
    return best


@pytest.mark.parametrize("max_qps", [20, 7, 100, 33.3])
def test_rate_limiter_never_exceeds_max_qps_across_threads(max_qps: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(max_qps, clock=clock, sleep=lambda s: None)
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(40):
            wait = limiter.reserve()  # reads the clock once, in this thread
            with lock:
                starts.append(clock.local.last + wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(starts) == 320
    assert _max_in_any_window(starts) <= int(max_qps)
    gaps = [b - a for a, b in zip(sorted(starts), sorted(starts)[1:], strict=False)]
    assert min(gaps) >= 1 / int(max_qps) - 1e-6


def test_rate_limiter_acquire_sleeps_for_the_slot_and_keeps_no_burst_credit() -> None:
    now = [0.0]
    slept: list[float] = []
    limiter = RateLimiter(10, clock=lambda: now[0], sleep=slept.append)
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(0.1)
    assert limiter.acquire() == pytest.approx(0.2)
    assert slept == [pytest.approx(0.1), pytest.approx(0.2)]
    now[0] = 100.0  # long idle: no credit builds up
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(0.1)


def test_rate_limiter_pause_until_holds_every_later_slot() -> None:
    now = [0.0]
    slept: list[float] = []
    limiter = RateLimiter(10, clock=lambda: now[0], sleep=slept.append)
    assert limiter.acquire() == 0.0  # slot 0.0; next free 0.1
    limiter.pause_until(2.0)  # a 429 at t=0 with a 2 s wait
    assert limiter.reserve() == pytest.approx(2.0)  # another thread: held to the deadline
    assert limiter.reserve() == pytest.approx(2.1)  # and spaced after it
    limiter.pause_until(1.0)  # an earlier deadline never pulls slots forward
    assert limiter.reserve() == pytest.approx(2.2)
    now[0] = 5.0
    assert limiter.acquire() == 0.0  # the pause is over; no burst credit from it
    limiter.pause(0.5)  # relative form, on the limiter's clock
    assert limiter.acquire() == pytest.approx(0.5)
    assert slept == [pytest.approx(0.5)]


def test_rate_limiter_pause_works_with_limiting_disabled() -> None:
    now = [10.0]
    limiter = RateLimiter(None, clock=lambda: now[0], sleep=lambda s: None)
    assert limiter.reserve() == 0.0
    limiter.pause_until(13.0)
    assert limiter.reserve() == pytest.approx(3.0)
    assert limiter.reserve() == pytest.approx(3.0)  # no spacing when disabled, but the pause holds
    now[0] = 13.5
    assert limiter.reserve() == 0.0


@pytest.mark.parametrize("max_qps", [None, 0])
def test_rate_limiter_disabled(max_qps: Any) -> None:
    limiter = RateLimiter(max_qps, clock=lambda: 0.0, sleep=lambda s: pytest.fail("slept"))
    assert not limiter.enabled
    assert all(limiter.acquire() == 0.0 for _ in range(1000))


@pytest.mark.parametrize("bad", [-1, "10", True, float("nan")])
def test_rate_limiter_rejects_bad_max_qps(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_qps"):
        RateLimiter(bad)


# ---------------------------------------------------------------------------------------
# pagination (fake fetch_page: pure logic)
# ---------------------------------------------------------------------------------------


class FakePages:
    """Serves scripted pages keyed by the cursor sent, and records the cursors."""

    def __init__(self, pages: Mapping[int, dict[str, Any]]) -> None:
        self.pages = pages
        self.sent: list[int] = []

    def __call__(self, cursor: int) -> dict[str, Any]:
        self.sent.append(cursor)
        return self.pages[cursor]


def _page(ids: list[int], has_more: bool, next_cursor: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ConversationInfos": [{"ConversationShortId": i, "Name": f"c{i}"} for i in ids],
        "HasMore": has_more,
    }
    if next_cursor is not None:
        result["NextCursor"] = next_cursor
    return result


def test_walks_opaque_cursors_verbatim_and_keeps_fields() -> None:
    big = 2**62 + 7
    fake = FakePages(
        {
            0: _page([big, 2], True, 9000000000000000001),
            9000000000000000001: _page([3], True, 17),
            17: _page([4], False, -1),
        }
    )
    items = list(Listing(spec=GUC, fetch_page=fake))
    assert [i["ConversationShortId"] for i in items] == [big, 2, 3, 4]
    assert items[0]["Name"] == f"c{big}"
    assert fake.sent == [0, 9000000000000000001, 17]


def test_is_lazy() -> None:
    fake = FakePages({0: _page([1], True, 5), 5: _page([2], False)})
    gen = Listing(spec=GUC, fetch_page=fake)
    assert fake.sent == []
    assert next(gen)["ConversationShortId"] == 1
    assert fake.sent == [0]


def test_empty_pages_with_has_more_go_on() -> None:
    fake = FakePages({0: _page([], True, 3), 3: _page([], True, 8), 8: _page([1, 2], False)})
    assert [i["ConversationShortId"] for i in Listing(spec=GUC, fetch_page=fake)] == [1, 2]
    assert fake.sent == [0, 3, 8]


def test_missing_infos_is_an_empty_page() -> None:
    fake = FakePages({0: {"HasMore": False}})
    assert list(Listing(spec=GUC, fetch_page=fake)) == []


def test_duplicates_are_yielded_once() -> None:
    dups: list[tuple[int, int]] = []
    fake = FakePages({0: _page([1, 2, 2], True, 5), 5: _page([2, 3, 1], False)})
    items = list(Listing(spec=GUC, fetch_page=fake, on_duplicate=lambda i, p: dups.append((i, p))))
    assert [i["ConversationShortId"] for i in items] == [1, 2, 3]
    assert dups == [(2, 1), (2, 2), (1, 2)]


def test_stuck_cursor_raises_naming_what_cursor_and_page() -> None:
    fake = FakePages({0: _page([1], True, 4), 4: _page([2], True, 4)})
    gen = Listing(spec=GUC, fetch_page=fake, what="user 10001's conversations")
    with pytest.raises(RtcImError) as info:
        list(gen)
    err = info.value
    assert err.code == "PaginationAnomaly"
    assert "user 10001" in str(err)
    assert "page 2" in str(err)
    assert "cursor 4" in str(err)
    assert "stuck" in str(err)
    assert fake.sent == [0, 4]


def test_negative_cursor_with_has_more_raises() -> None:
    fake = FakePages({0: _page([1], True, -1)})
    with pytest.raises(RtcImError, match=r"negative NextCursor -1") as info:
        list(Listing(spec=GUC, fetch_page=fake))
    assert info.value.code == "PaginationAnomaly"


def test_cursor_cycle_raises() -> None:
    fake = FakePages({0: _page([1], True, 5), 5: _page([2], True, 9), 9: _page([3], True, 5)})
    with pytest.raises(RtcImError, match=r"cycle") as info:
        list(Listing(spec=GUC, fetch_page=fake))
    assert info.value.code == "PaginationAnomaly"
    assert fake.sent == [0, 5, 9]


@pytest.mark.parametrize("bad", [None, "12", 1.5, True])
def test_missing_or_non_int_next_cursor_with_has_more_raises(bad: Any) -> None:
    page = _page([1], True)
    if bad is not None:
        page["NextCursor"] = bad
    with pytest.raises(RtcImError, match=r"NextCursor is .*not an integer") as info:
        list(Listing(spec=GUC, fetch_page=FakePages({0: page})))
    assert info.value.code == "PaginationAnomaly"


def test_max_pages_bounds_every_listing() -> None:
    pages = {i: _page([i + 1], True, i + 1) for i in range(100)}
    fake = FakePages(pages)
    with pytest.raises(RtcImError, match=r"max_pages=10") as info:
        list(Listing(spec=GUC, fetch_page=fake, max_pages=10))
    assert info.value.code == "PaginationAnomaly"
    assert len(fake.sent) == 10
    # exactly max_pages pages that end the listing is fine
    fake2 = FakePages({0: _page([1], True, 1), 1: _page([2], False)})
    assert len(list(Listing(spec=GUC, fetch_page=fake2, max_pages=2))) == 2


def test_malformed_pages_raise() -> None:
    with pytest.raises(RtcImError, match="not a list"):
        list(Listing(spec=GUC, fetch_page=FakePages({0: {"ConversationInfos": {"a": 1}, "HasMore": False}})))
    with pytest.raises(RtcImError, match="HasMore"):
        list(Listing(spec=GUC, fetch_page=FakePages({0: {"ConversationInfos": [], "HasMore": "yes"}})))
    with pytest.raises(RtcImError, match="without an integer ConversationShortId"):
        list(
            Listing(
                spec=GUC,
                fetch_page=FakePages(
                    {0: {"ConversationInfos": [{"ConversationShortId": "7"}], "HasMore": False}}
                ),
            )
        )
    with pytest.raises(RtcImError, match="not an object"):
        list(iter_pages(spec=GUC, fetch_page=lambda c: [], max_pages=3))  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize("has_more", ["missing", None, "false", 0, 1])
def test_a_page_without_a_bool_has_more_never_ends_the_listing_silently(has_more: Any) -> None:
    last = {"ConversationInfos": [{"ConversationShortId": 2}], "NextCursor": 9}
    if has_more != "missing":
        last["HasMore"] = has_more
    fake = FakePages({0: _page([1], True, 5), 5: last})
    seen: list[int] = []
    with pytest.raises(RtcImError, match="HasMore") as info:
        for item in Listing(spec=GUC, fetch_page=fake):
            seen.append(item["ConversationShortId"])
    assert info.value.code == "MalformedResponse"
    assert info.value.retryable
    assert "cursor 5" in str(info.value)
    assert seen == [1]  # page 2's items are not handed out as if the listing were complete
    assert page_problem(last, "ConversationInfos") is not None
    assert page_problem(_page([1], False), "ConversationInfos") is None
    assert page_problem({"HasMore": True}, "ConversationInfos") is None


def test_error_class_is_used() -> None:
    class MyError(RtcImError):
        pass

    with pytest.raises(MyError):
        list(Listing(spec=GUC, fetch_page=FakePages({0: _page([1], True, 0)}), error_class=MyError))


def test_max_pages_validated() -> None:
    with pytest.raises(ValueError, match="max_pages"):
        list(iter_pages(spec=GUC, fetch_page=FakePages({}), max_pages=0))


# ---------------------------------------------------------------------------------------
# retry classification
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("FlowLimitExceeded", 429, True),
        ("FlowLimitExceeded.QPSOverLimit", 429, True),
        ("FlowLimitExceeded.QPSOverLimit", 200, True),
        ("InternalError", 500, True),
        ("InternalError", 200, True),
        ("ServiceUnavailableTemp", 503, True),
        ("InternalServiceTimeout", 504, True),
        ("FailToConnect", 502, True),
        (None, 429, True),
        (None, 500, True),
        (None, 502, True),
        (None, 503, True),
        (None, 504, True),
        ("ConnectionError", None, True),
        ("Timeout", None, True),
        ("TruncatedResponse", None, True),
        ("MalformedResponse", 200, True),
        ("SignatureDoesNotMatch", 401, False),
        ("SignatureDoesNotMatch", 500, False),
        ("InvalidAccessKey", 401, False),
        ("InvalidParameter.NotExistAppId", 400, False),
        ("InvalidParameter", 400, False),
        ("MissingParameter", 400, False),
        ("AccessDenied", 403, False),
        ("InvalidTimestamp", 400, False),
        ("InvalidTimestamp", 403, False),
        ("InvalidSecretToken", 401, False),
        ("ServiceNotFound", 404, False),
        ("PaginationAnomaly", None, False),
        ("MisconfiguredConnection", None, False),
        (None, 400, False),
        (None, 404, False),
        ("SomethingNew", 200, False),
        ("SomethingNew", 503, True),
    ],
)
def test_is_retryable_table(code: Any, status: Any, expected: bool) -> None:
    assert is_retryable(code, status) is expected


def test_hints_for_client_errors() -> None:
    assert "password" in (hint_for("SignatureDoesNotMatch") or "")
    assert "login" in (hint_for("InvalidAccessKey") or "")
    assert "app_id" in (hint_for("InvalidParameter.NotExistAppId") or "")
    assert "clock" in (hint_for("InvalidTimestamp") or "")
    assert hint_for("InternalError") is None


@pytest.mark.parametrize(
    ("action", "read"),
    [
        ("GetUserConversations", True),
        ("BatchGetConversations", True),
        ("ScanConversationParticipantList", True),
        ("QueryOnlineStatus", True),
        ("ListApps", True),
        ("IsUserInConversation", True),
        ("CreateConversation", False),
        ("SendMessage", False),
        ("DeleteConversation", False),
    ],
)
def test_read_actions(action: str, read: bool) -> None:
    assert is_read_action(action) is read


def test_backoff_is_jittered_exponential_capped_and_honours_retry_after() -> None:
    top = lambda lo, hi: hi  # noqa: E731 - the jitter's upper bound
    assert backoff_delay(1, base=0.3, cap=20, rand=top) == pytest.approx(0.3)
    assert backoff_delay(3, base=0.3, cap=20, rand=top) == pytest.approx(1.2)
    assert backoff_delay(30, base=0.3, cap=20, rand=top) == 20
    assert backoff_delay(1, base=0.3, cap=20, retry_after=2.0, rand=top) == 2.0
    assert backoff_delay(2, base=0.0, cap=20, rand=top) == 0.0
    # Retry-After has its own cap, not retry_backoff_max
    assert backoff_delay(1, base=0.3, cap=1.5, retry_after=60.0, rand=top) == 60.0
    assert backoff_delay(1, base=0.3, cap=1.5, retry_after=600.0, retry_after_max=120.0, rand=top) == 120.0
    assert backoff_delay(1, base=0.3, cap=1.5, retry_after=0.0, rand=top) == pytest.approx(0.3)


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 30])
def test_backoff_never_below_the_base(attempt: int) -> None:
    # Full jitter alone can draw ~0 s; the official SDK waits at least 300 ms.
    bottom = lambda lo, hi: lo  # noqa: E731 - the jitter's lower bound
    assert backoff_delay(attempt, base=0.3, cap=20, rand=bottom) >= 0.3
    for _ in range(200):
        assert 0.3 <= backoff_delay(attempt, base=0.3, cap=20) <= 20
    assert backoff_delay(attempt, base=0.3, cap=0.1, rand=bottom) == pytest.approx(0.1)  # cap wins


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = lambda: dt.datetime(2015, 10, 21, 7, 27, 30, tzinfo=dt.timezone.utc)  # noqa: E731
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == pytest.approx(30.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000", now=now) == pytest.approx(30.0)
    for bad in [None, "", "-1", "soon", "nan", "inf", "Wed, 99 Foo 2015"]:
        assert parse_retry_after(bad, now=now) is None, bad


def test_encode_body_is_compact_utf8_and_exact_for_int64() -> None:
    data = encode_body({"Name": "群", "Id": 2**63 - 1, "Limit": 20})
    assert data == '{"Name":"群","Id":9223372036854775807,"Limit":20}'.encode()


def _client() -> RtcImClient:
    return RtcImClient(credentials=Credentials("AK", "SK"), endpoint="http://127.0.0.1:9")


def _classify(status: int, payload: Any, *, raw: bytes | None = None, headers: dict | None = None) -> Any:
    content = raw if raw is not None else json.dumps(payload).encode()
    try:
        return _client()._parse("GetX", status, headers or {}, content, can_retry=True)
    except _Failure as failure:
        return failure


def _err(code: str, status: int) -> dict[str, Any]:
    return {"ResponseMetadata": {"RequestId": "rid-1", "Error": {"Code": code, "Message": "m"}}}


@pytest.mark.parametrize(
    ("status", "payload", "raw", "code", "retryable"),
    [
        (200, {"ResponseMetadata": {}, "Result": {"A": 1}}, None, None, None),
        (200, _err("InternalError", 200), None, "InternalError", True),
        (429, _err("FlowLimitExceeded.QPSOverLimit", 429), None, "FlowLimitExceeded.QPSOverLimit", True),
        (401, _err("SignatureDoesNotMatch", 401), None, "SignatureDoesNotMatch", False),
        (400, _err("InvalidParameter.NotExistAppId", 400), None, "InvalidParameter.NotExistAppId", False),
        (503, None, b"<html>bad gateway</html>", None, True),
        (404, None, b"not found", None, False),
        (200, None, b'{"ResponseMetadata": {"Request', "MalformedResponse", True),
        (200, {"ResponseMetadata": {"RequestId": "r"}}, None, "MalformedResponse", True),
        (200, None, b"", "MalformedResponse", True),
    ],
)
def test_response_classification(status: int, payload: Any, raw: Any, code: Any, retryable: Any) -> None:
    out = _classify(status, payload, raw=raw)
    if retryable is None:
        assert out == {"A": 1}
        return
    assert isinstance(out, _Failure)
    assert out.error.code == code
    assert out.error.http_status == status
    assert out.error.retryable is retryable


def test_classification_keeps_request_id_and_retry_after() -> None:
    out = _classify(429, _err("FlowLimitExceeded", 429), headers={"Retry-After": "2"})
    assert out.error.request_id == "rid-1"
    assert out.retry_after == 2.0


def test_check_marks_a_result_malformed_and_retryable() -> None:
    content = json.dumps(
        {"ResponseMetadata": {"RequestId": "rid-9"}, "Result": {"ConversationInfos": []}}
    ).encode()
    try:
        _client()._parse(
            "GetX", 200, {}, content, can_retry=True, check=lambda r: page_problem(r, "ConversationInfos")
        )
    except _Failure as failure:
        assert failure.error.code == "MalformedResponse"
        assert failure.error.retryable
        assert failure.error.request_id == "rid-9"
        assert "HasMore is missing" in str(failure.error)
    else:
        pytest.fail("a page without HasMore was accepted")


def test_write_without_result_is_success() -> None:
    assert _client()._parse("SendX", 200, {}, b'{"ResponseMetadata":{}}', can_retry=False) == {}


def test_client_repr_has_no_secret() -> None:
    client = RtcImClient(
        credentials=Credentials("AKLTvisible", "super-secret-key", session_token="tok-secret-xyz"),
        endpoint="http://127.0.0.1:9/",
    )
    text = repr(client)
    assert "AKLTvisible" in text
    assert "super-secret-key" not in text
    assert "tok-secret-xyz" not in text
    assert client.endpoint == "http://127.0.0.1:9"


def test_client_rejects_bad_arguments_before_any_request() -> None:
    client = _client()
    with pytest.raises(ValueError, match="action"):
        client.call("Get X", {})
    with pytest.raises(ValueError, match="body must be a JSON object"):
        client.call("GetX", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry"):
        client.call("GetX", {}, retry="yes")  # type: ignore[arg-type]
    assert client.stats.snapshot() == {"requests": 0, "retries": 0, "pages": 0}
    with pytest.raises(ValueError, match="max_retries"):
        RtcImClient(credentials=Credentials("a", "b"), endpoint="http://x", max_retries=-1)


def test_every_transport_failure_hides_proxy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # A generic RequestException (not a timeout / connection / TLS error) goes through the
    # same redaction as the others. What raises it is mocked: nothing on loopback does.
    import requests

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        raise requests.exceptions.RequestException(
            "Cannot use proxy http://bob:hunter2-pass@proxy.local:3128/ for this request"
        )

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    client = RtcImClient(
        credentials=Credentials("AK", "SK"),
        endpoint="http://127.0.0.1:9",
        proxies={"http": "http://bob:hunter2-pass@proxy.local:3128"},
        max_qps=None,
    )
    with pytest.raises(RtcImError) as info:
        client.call("GetX", {}, retry=False)
    assert info.value.code == "ConnectionError"
    assert "hunter2-pass" not in str(info.value)
    assert "http://***@proxy.local:3128/" in str(info.value)


def test_endpoint_credentials_never_shown() -> None:
    client = RtcImClient(credentials=Credentials("AK", "SK"), endpoint="http://bob:hunter2-pass@127.0.0.1:9")
    assert "hunter2-pass" not in repr(client)
    assert client.endpoint_for_display == "http://***@127.0.0.1:9"


def test_transport_messages_hide_proxy_credentials() -> None:
    from airflow_provider_rtcim.core.client import _short

    text = _short("ProxyError('Unable to connect to proxy', http://bob:hunter2-pass@proxy.local:3128/)")
    assert "hunter2-pass" not in text
    assert "http://***@proxy.local:3128/" in text


# ---------------------------------------------------------------------------------------
# Int64Set: the compact dedupe set behind iter_user_conversations
# ---------------------------------------------------------------------------------------


@given(
    st.lists(
        st.one_of(
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.integers(),
            st.sampled_from([0, -1, 1, -(2**63), 2**63 - 1, 2**63, 7 * 10**18]),
        )
    )
)
@settings(deadline=None)  # a loaded CI machine must not turn slow examples into failures
def test_int64set_behaves_like_a_set(values):
    compact, reference = Int64Set(), set()
    for value in values:
        assert compact.add(value) == (value not in reference)
        reference.add(value)
    assert len(compact) == len(reference)
    for value in values:
        assert value in compact
    for probe in (3, -3, 2**63 + 5, -(2**63) - 5, 10**19):
        assert (probe in compact) == (probe in reference)
    assert "1" not in compact


def test_int64set_grows_and_stays_compact():
    ids = [7_000_000_000_000_000_000 + i * 7919 for i in range(50_000)]
    s = Int64Set()
    assert all(s.add(i) for i in ids)
    assert not any(s.add(i) for i in ids[::7])
    assert len(s) == len(ids)
    assert all(i in s for i in ids[::101])
    assert s.nbytes <= 32 * len(ids)  # at most half full, 8 bytes a slot


# ---------------------------------------------------------------------------------------
# pagination: runs of pages without a new item
# ---------------------------------------------------------------------------------------


class EndlessPages:
    """HasMore forever with a new cursor each time; ``ids(n)`` gives page n's ids (1-based)."""

    def __init__(self, ids: Any = lambda n: []) -> None:
        self.ids = ids
        self.sent: list[int] = []

    def __call__(self, cursor: int) -> dict[str, Any]:
        self.sent.append(cursor)
        return _page(self.ids(len(self.sent)), True, 1000 + len(self.sent))


def test_endless_empty_pages_stop_after_100_pages_without_new_items() -> None:
    fake = EndlessPages()
    with pytest.raises(RtcImError) as info:
        list(Listing(spec=GUC, fetch_page=fake, what="user 10001's conversations"))
    err = info.value
    assert err.code == "PaginationAnomaly" and err.action == "GetUserConversations"
    assert len(fake.sent) == 100  # the default guard, far below max_pages
    text = str(err)
    assert "user 10001's conversations" in text
    assert "100 pages in a row" in text and "pages 1-100" in text
    assert "last cursor sent 1099" in text and "NextCursor 1100" in text


def test_endless_duplicate_pages_stop_too_after_the_new_items() -> None:
    fake = EndlessPages(lambda n: [1, 2] if n <= 2 else [2, 1])
    gen = Listing(spec=GUC, fetch_page=fake, max_pages_without_new_items=5)
    assert [next(gen)["ConversationShortId"] for _ in range(2)] == [1, 2]
    with pytest.raises(RtcImError, match=r"5 pages in a row \(pages 2-6\)") as info:
        list(gen)
    assert info.value.code == "PaginationAnomaly"
    assert len(fake.sent) == 6


def test_a_new_item_resets_the_run_and_a_last_page_ends_normally() -> None:
    # 4 empty pages, 1 item, 4 empty pages, then the last (empty) page: limit 5 never reached
    script = [[]] * 4 + [[7]] + [[]] * 4
    pages = {c: _page(ids, True, c + 1) for c, ids in enumerate(script)}
    pages[len(script)] = _page([], False, -1)
    fake = FakePages(pages)
    assert [
        i["ConversationShortId"] for i in Listing(spec=GUC, fetch_page=fake, max_pages_without_new_items=5)
    ] == [7]
    assert len(fake.sent) == 10
    # a last page (HasMore false) after the limit's worth of empty pages is still the end
    pages = {c: _page([], True, c + 1) for c in range(2)}
    pages[2] = _page([], False, -1)
    assert list(Listing(spec=GUC, fetch_page=FakePages(pages), max_pages_without_new_items=3)) == []


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "100", None])
def test_max_pages_without_new_items_must_be_a_positive_int(bad: Any) -> None:
    fake = FakePages({0: _page([1], False)})
    with pytest.raises(ValueError, match="max_pages_without_new_items"):
        list(Listing(spec=GUC, fetch_page=fake, max_pages_without_new_items=bad))
    assert fake.sent == []
