"""The signed, retried, rate-limited HTTP client for the RTC IM OpenAPI (no Airflow here).

One :class:`RtcImClient` holds one ``requests.Session`` (keep-alive, a connection pool
sized for its threads) and one :class:`~airflow_provider_rtcim.core.ratelimit.RateLimiter`;
it is safe to share between threads. Each call:

* serializes the body once (compact JSON, UTF-8) and hashes and sends exactly those bytes;
* takes a rate-limiter slot and signs afresh (new ``X-Date``) for every attempt;
* retries only read actions (``Get``/``BatchGet``/``Scan``/``Query``/``List``/``Is`` prefixes,
  or ``retry=True``), and only transient failures (429/5xx, retryable ``Code`` even inside
  an HTTP 200, connection errors, resets, truncated bodies, timeouts, a 200 that is not
  JSON or lacks ``Result``, or a ``Result`` the caller's ``check`` rejects), with jittered
  exponential backoff of at least ``retry_backoff`` that honours ``Retry-After`` (seconds or
  an HTTP date, capped by ``retry_after_max``);
* on a 429, pauses the shared rate limiter for the chosen wait, so every thread using this
  client backs off, not just the one that was throttled;
* fails at once on client errors (signature, key, parameter, AppId, clock), with a hint.

This module imports ``requests`` at module level: import it lazily from anything a DAG
file imports.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import http.client
import json
import logging
import os
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import HTTPError as _Urllib3HTTPError  # can escape requests' wrapping
from urllib3.exceptions import NameResolutionError as _NameResolutionError
from urllib3.exceptions import ProxyError as _Urllib3ProxyError

from airflow_provider_rtcim.core.defaults import (
    DEFAULT_MAX_QPS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POOL_MAXSIZE,
    DEFAULT_RETRY_AFTER_MAX,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_RETRY_BACKOFF_MAX,
    DEFAULT_TIMEOUT,
    DEFAULT_VERSION,
    USER_AGENT,
)
from airflow_provider_rtcim.core.errors import (
    CODE_BAD_RESPONSE,
    CODE_CONFIG,
    CODE_CONNECTION,
    CODE_TIMEOUT,
    CODE_TRUNCATED,
    FIX_HINTS,
    RtcImError,
)
from airflow_provider_rtcim.core.lazy import lazy_lock, locked_cached_property
from airflow_provider_rtcim.core.ratelimit import RateLimiter
from airflow_provider_rtcim.core.signing import Credentials, sign_request
from airflow_provider_rtcim.core.validation import (
    redact_userinfo,
    region_note,
    validate_action,
    validate_version,
)

READ_ACTION_PREFIXES: tuple[str, ...] = ("Get", "BatchGet", "Scan", "Query", "List", "Is")

_log = logging.getLogger(__name__)


def is_read_action(action: str) -> bool:
    """Whether ``action`` only reads (and so is safe to retry)."""
    return action.startswith(READ_ACTION_PREFIXES)


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact JSON, non-ASCII kept, UTF-8."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def backoff_delay(
    attempt: int,
    *,
    base: float = DEFAULT_RETRY_BACKOFF,
    cap: float = DEFAULT_RETRY_BACKOFF_MAX,
    retry_after: float | None = None,
    retry_after_max: float = DEFAULT_RETRY_AFTER_MAX,
    rand: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to sleep before retry number ``attempt`` (1-based).

    Jittered exponential backoff with a floor: ``base + uniform(0, ceiling - base)`` where
    ``ceiling = min(cap, base * 2**(attempt-1))``, so every wait is at least ``base`` (the
    official SDK waits at least 300 ms; full jitter alone can pick ~0 s and hammer a
    struggling server) and at most ``cap``. A ``Retry-After`` from the server is a floor of
    its own, bounded by ``retry_after_max`` (not by ``cap``: the server knows best).
    """
    floor = max(0.0, min(base, cap))
    ceiling = max(floor, min(cap, base * (2 ** (attempt - 1))))
    delay = floor + rand(0.0, ceiling - floor) if ceiling > floor else floor
    delay = min(max(delay, floor), ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, retry_after_max))
    return max(0.0, delay)


def parse_retry_after(value: str | None, *, now: Callable[[], dt.datetime] | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds (``"3"``) or an HTTP date (RFC 9110).

    A date in the past means 0. Anything unparseable is None (no hint). ``now`` returns the
    current aware UTC time (injectable for tests).
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:  # pragma: no cover - older Pythons returned None
            return None
        if when.tzinfo is None:  # "-0000": UTC by RFC 5322
            when = when.replace(tzinfo=dt.timezone.utc)
        current = now() if now is not None else dt.datetime.now(dt.timezone.utc)
        return max(0.0, (when - current).total_seconds())
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return seconds if seconds >= 0 else None


def is_throttled(error: RtcImError) -> bool:
    """Whether ``error`` says the account's request rate was exceeded (HTTP 429 or FlowLimitExceeded)."""
    return error.http_status == 429 or str(error.code or "").startswith("FlowLimitExceeded")


class ClientStats:
    """Thread-safe cumulative counters: ``requests`` (HTTP attempts), ``retries``, ``pages``."""

    NAMES = ("requests", "retries", "pages")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.NAMES, 0)

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class _Failure(Exception):
    """One attempt's failure, before the retry decision (internal)."""

    def __init__(self, error: RtcImError, retry_after: float | None = None, reason: str = "") -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.reason = reason


class RtcImClient:
    """Signed, retried, rate-limited calls to one RTC IM endpoint. Thread-safe.

    :param credentials: what requests are signed with (region and service included).
    :param endpoint: ``scheme://host[:port][/path]`` of the API.
    :param timeout: seconds for connect and for each read.
    :param max_qps: client-side cap on request starts per second (None or 0: no cap).
    :param max_retries: retries after the first attempt for a retryable failure of a read.
    :param pool_maxsize: connections kept per host (at least the number of threads sharing
        this client).
    :param proxies: ``{"http": url, "https": url}`` or None.
    :param verify: TLS verification: True, False or a CA bundle path.
    :param retry_backoff: base of the exponential backoff, seconds; also the least wait
        before any retry.
    :param retry_backoff_max: cap of one backoff sleep, seconds.
    :param retry_after_max: cap of a wait asked for by ``Retry-After``, seconds.
    :param sleep: the sleep function (injectable so tests need not wait).
    :param error_class: the exception type raised (the hook passes ``RtcImApiError``).
    :param logger: where retries are logged (WARNING); never receives a secret.
    :param name: a label for logs and ``repr`` (e.g. the connection id).
    """

    def __init__(
        self,
        *,
        credentials: Credentials,
        endpoint: str,
        timeout: float = DEFAULT_TIMEOUT,
        max_qps: float | None = DEFAULT_MAX_QPS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        proxies: Mapping[str, str] | None = None,
        verify: bool | str = True,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
        retry_backoff_max: float = DEFAULT_RETRY_BACKOFF_MAX,
        retry_after_max: float = DEFAULT_RETRY_AFTER_MAX,
        sleep: Callable[[float], None] = time.sleep,
        error_class: type[RtcImError] = RtcImError,
        logger: logging.Logger | logging.LoggerAdapter | Any | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if isinstance(pool_maxsize, bool) or not isinstance(pool_maxsize, int) or pool_maxsize < 1:
            raise ValueError(f"pool_maxsize must be an integer >= 1, got {pool_maxsize!r}")
        self.credentials = credentials
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.pool_maxsize = pool_maxsize
        self.proxies = dict(proxies) if proxies else None
        self.verify = verify
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self.retry_after_max = retry_after_max
        self.error_class = error_class
        self.name = name
        self._sleep = sleep
        self._log = logger if logger is not None else _log
        self.rate_limiter = RateLimiter(max_qps, sleep=sleep)
        self.stats = ClientStats()
        self._urls: dict[tuple[str, str], str] = {}
        self._prepared_urls: dict[str, str] = {}
        self._request_proxies: dict[str, str] = {}
        self._request_verify: bool | str = verify

    # -- session ------------------------------------------------------------------------

    @locked_cached_property
    def session(self) -> requests.Session:
        """The shared ``requests.Session``, built on first use."""
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.pool_maxsize, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        # Read the environment once, here, not on every request: with trust_env requests scans
        # os.environ for proxies, CA bundles and .netrc per request (~1 ms, a third of the
        # client's CPU per page). HTTP(S)_PROXY / NO_PROXY and REQUESTS_CA_BUNDLE /
        # CURL_CA_BUNDLE still apply as requests would apply them; the connection's own
        # proxies and verify win over them; .netrc is never used (requests are signed).
        session.trust_env = False
        self._request_proxies = {**requests.utils.get_environ_proxies(self.endpoint), **(self.proxies or {})}
        verify = self.verify
        if verify is True:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._request_verify = verify
        session.proxies.update(self._request_proxies)
        session.verify = verify
        return session

    def close(self) -> None:
        """Close the session's pooled connections (the client can still be used after)."""
        with lazy_lock(self):
            session = self.__dict__.pop("session", None)
        if session is not None:
            session.close()

    # -- calls --------------------------------------------------------------------------

    def url_for(self, action: str, version: str = DEFAULT_VERSION) -> str:
        return f"{self.endpoint}/?Action={quote(action, safe='')}&Version={quote(version, safe='')}"

    def call(
        self,
        action: str,
        body: Mapping[str, Any],
        *,
        version: str = DEFAULT_VERSION,
        retry: bool | None = None,
        check: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> dict[str, Any]:
        """POST ``body`` to ``action`` and return the response's ``Result``.

        :param retry: retry transient failures; default True for read actions only (a
            retried write could act twice).
        :param check: called with each attempt's ``Result``; a returned text marks the
            response malformed (code ``MalformedResponse``, retried like a garbled body).
        :raises error_class: on any failure, with ``code``, ``http_status``, ``request_id``.
        """
        url = self._urls.get((action, version))
        if url is None:  # checked once per action and version, then looked up
            validate_action(action)
            validate_version(version)
            url = self._urls[(action, version)] = self.url_for(action, version)
        if not isinstance(body, Mapping):
            raise ValueError(f"body must be a JSON object (dict), got {type(body).__name__}")
        if retry is not None and not isinstance(retry, bool):
            raise ValueError(f"retry must be True, False or None, got {retry!r}")
        data = encode_body(body)
        can_retry = is_read_action(action) if retry is None else retry
        tries = self.max_retries + 1 if can_retry else 1
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            try:
                return self._attempt(action, url, data, can_retry=can_retry, check=check)
            except _Failure as failure:
                error = failure.error
                throttled = is_throttled(error)
                if not (can_retry and error.retryable) or attempt >= tries:
                    if throttled and failure.retry_after:
                        # Not retrying, but the rest of the hook must still honour the server.
                        self.rate_limiter.pause(min(failure.retry_after, self.retry_after_max))
                    if attempt > 1:
                        spent = time.monotonic() - started
                        error.message = (
                            f"{error.message} (gave up after {attempt} attempts over {spent:.1f} s)"
                        )
                        error.args = (str(error),)
                    raise error from None
                delay = backoff_delay(
                    attempt,
                    base=self.retry_backoff,
                    cap=self.retry_backoff_max,
                    retry_after=failure.retry_after,
                    retry_after_max=self.retry_after_max,
                )
                if throttled:
                    # The limit is per account: every thread sharing this client backs off.
                    self.rate_limiter.pause(delay)
                self.stats.incr("retries")
                self._log.warning(
                    "RTC IM %s failed (%s), attempt %d/%d; retrying in %.2fs%s",
                    action,
                    failure.reason,
                    attempt,
                    tries,
                    delay,
                    f" (Retry-After {failure.retry_after:g}s)" if failure.retry_after is not None else "",
                )
                if delay > 0:
                    self._sleep(delay)

    def _error(self, message: str, *, action: str, **kwargs: Any) -> RtcImError:
        return self.error_class(message, action=action, **kwargs)

    @property
    def endpoint_for_display(self) -> str:
        """The endpoint with any ``user:password@`` hidden (for messages and ``repr``)."""
        return redact_userinfo(self.endpoint)

    def _attempt(
        self,
        action: str,
        url: str,
        data: bytes,
        *,
        can_retry: bool,
        check: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> dict[str, Any]:
        self.rate_limiter.acquire()
        headers = sign_request(
            self.credentials,
            method="POST",
            url=url,
            headers={"Content-Type": "application/json"},
            body=data,
        )
        self.stats.incr("requests")
        try:
            session = self.session  # resolves the environment's proxies and CA bundle once
            response = session.send(
                self._prepare(session, url, headers, data),
                timeout=self.timeout,
                allow_redirects=False,
                proxies=self._request_proxies,
                verify=self._request_verify,
                stream=False,
                cert=None,
            )
            content = response.content
        except requests.exceptions.Timeout as exc:
            raise self._transport_failure(action, CODE_TIMEOUT, exc) from None
        except requests.exceptions.SSLError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                error = self._error(
                    f"TLS certificate verification failed for {self.endpoint_for_display}: fix extra.verify "
                    "(a CA bundle path) or the endpoint",
                    action=action,
                    code="SSLError",
                )
                raise _Failure(error, reason="SSLError") from None
            raise self._transport_failure(action, CODE_CONNECTION, exc) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            raise self._transport_failure(action, CODE_TRUNCATED, exc) from None
        except requests.exceptions.ConnectionError as exc:
            raise self._transport_failure(action, CODE_CONNECTION, exc) from None
        except (http.client.IncompleteRead, _Urllib3HTTPError) as exc:
            raise self._transport_failure(action, CODE_TRUNCATED, exc) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            error = self._error(
                f"invalid endpoint {self.endpoint_for_display!r}: {type(exc).__name__}",
                action=action,
                code=CODE_CONFIG,
            )
            raise _Failure(error, reason=type(exc).__name__) from None
        except requests.exceptions.RequestException as exc:
            error = self._error(
                f"request failed: {type(exc).__name__}: {_short(str(exc))}",
                action=action,
                code=CODE_CONNECTION,
            )
            raise _Failure(error, reason=type(exc).__name__) from None
        return self._parse(
            action, response.status_code, response.headers, content, can_retry=can_retry, check=check
        )

    def _prepare(
        self, session: requests.Session, url: str, headers: Mapping[str, str], data: bytes
    ) -> requests.PreparedRequest:
        """What ``session.post`` would send (the session's headers, the signed ones, the exact
        body), made directly: ``Session.request`` would also merge cookies (the API sets none),
        hooks and the environment's settings (resolved once) per call, a fifth of our CPU."""
        prepared = requests.PreparedRequest()
        if url not in self._prepared_urls:
            prepared.prepare_url(url, None)
            self._prepared_urls[url] = prepared.url  # type: ignore[assignment]
        prepared.method, prepared.url, prepared.body = "POST", self._prepared_urls[url], data
        prepared.headers = CaseInsensitiveDict(session.headers)
        prepared.headers.update(headers)
        prepared.headers["Content-Length"] = str(len(data))
        return prepared

    def _transport_failure(self, action: str, code: str, exc: BaseException) -> _Failure:
        # The text names the endpoint (or proxy) and the cause once, never a header, a body or
        # a password; urllib3's own "Max retries exceeded" wrapping is dropped.
        message, cause = self._describe_transport(code, exc)
        return _Failure(self._error(message, action=action, code=code), reason=f"{code}: {cause}")

    def _signature_message(self, message: str) -> str:
        """The API's message, plus why the region may be at fault when it does not look like the endpoint's.

        The usual hint (check the password) is written into the message after the region's, so
        that the error's text carries each hint once.
        """
        note = region_note(self.endpoint, self.credentials.region)
        if note is None:
            return message
        return f"{message} ({note}; if the region is right, {FIX_HINTS['SignatureDoesNotMatch']})"

    def _proxy_for_display(self) -> str | None:
        scheme = urlsplit(self.endpoint).scheme
        proxy = self._request_proxies.get(scheme) or self._request_proxies.get("all")
        return redact_userinfo(proxy) if proxy else None

    def _describe_transport(self, code: str, exc: BaseException) -> tuple[str, str]:
        """``(message, cause)`` for a failure below HTTP: what happened, to what, and why."""
        causes = list(_causes(exc))
        found = lambda kind: any(isinstance(c, kind) for c in causes)  # noqa: E731
        endpoint = self.endpoint_for_display
        proxy = (
            self._proxy_for_display() if found((requests.exceptions.ProxyError, _Urllib3ProxyError)) else None
        )
        target = f"the proxy {proxy} (for {endpoint})" if proxy else endpoint
        host = urlsplit(proxy if proxy else self.endpoint).hostname or "?"
        if code == CODE_TIMEOUT:
            limit = f"{self.timeout:g} s"
            if found(requests.exceptions.ConnectTimeout):
                return f"timed out connecting to {target} after {limit}", "connect timeout"
            return f"no response from {target} within {limit} (read timeout)", "read timeout"
        if code == CODE_TRUNCATED:
            return f"the response from {endpoint} was cut short ({_innermost(causes)})", "response cut short"
        if found(ssl.SSLError) or isinstance(exc, requests.exceptions.SSLError):
            if "WRONG_VERSION_NUMBER" in " ".join(map(str, causes)) and self.endpoint.startswith("https://"):
                plain = "http://" + endpoint.removeprefix("https://")
                return (
                    f"TLS handshake with {endpoint} failed: the server answered in plain HTTP "
                    f"(WRONG_VERSION_NUMBER): did you mean {plain}?",
                    "TLS to a plain-HTTP server",
                )
            return f"TLS handshake with {target} failed: {_innermost(causes)}", "TLS error"
        if found(_NameResolutionError) or found(socket.gaierror):
            return (
                f"cannot connect to {target}: DNS lookup of {host} failed (unknown host)",
                "DNS lookup failed",
            )
        if found(ConnectionRefusedError):
            return f"cannot connect to {target}: connection refused", "connection refused"
        if found(ConnectionResetError) or found(http.client.RemoteDisconnected) or found(BrokenPipeError):
            return (
                f"the connection to {target} was closed before a response (connection reset)",
                "connection reset",
            )
        return f"cannot connect to {target}: {_innermost(causes)}", _innermost(causes, limit=80)

    def _parse(
        self,
        action: str,
        status: int,
        headers: Mapping[str, str],
        content: bytes,
        *,
        can_retry: bool,
        check: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> dict[str, Any]:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        try:
            payload = json.loads(content.decode("utf-8")) if content else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        meta = payload.get("ResponseMetadata") if isinstance(payload, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        request_id = meta.get("RequestId") or headers.get("X-Tt-Logid") or None
        err = meta.get("Error")
        if isinstance(err, dict) and (err.get("Code") or err.get("Message") or err.get("CodeN")):
            code = str(err.get("Code") or err.get("CodeN") or "") or None
            message = str(err.get("Message") or "the API returned an error")
            if code == "SignatureDoesNotMatch":
                message = self._signature_message(message)
            error = self._error(message, action=action, code=code, http_status=status, request_id=request_id)
            raise _Failure(error, retry_after, reason=f"{code}, HTTP {status}")
        if status != 200:
            snippet = _short(content.decode("utf-8", "replace")) if content else "empty body"
            error = self._error(
                f"unexpected HTTP {status} from {self.endpoint_for_display}: {snippet}",
                action=action,
                http_status=status,
                request_id=request_id,
            )
            raise _Failure(error, retry_after, reason=f"HTTP {status}")

        def malformed(message: str) -> _Failure:
            error = self._error(
                message, action=action, code=CODE_BAD_RESPONSE, http_status=status, request_id=request_id
            )
            return _Failure(error, retry_after, reason=f"{CODE_BAD_RESPONSE}, HTTP 200")

        if not isinstance(payload, dict):
            raise malformed("HTTP 200 but the body is not a JSON object (truncated or garbled)")
        result = payload.get("Result")
        if isinstance(result, dict):
            problem = check(result) if check is not None else None
            if not problem:
                return result
            raise malformed(f"HTTP 200 but the Result is malformed: {problem}")
        if result is None and "Result" not in payload and not can_retry:
            # A write that succeeded may carry no Result; calling it failed could cause a re-run.
            return {}
        raise malformed("HTTP 200 but the body has no Result object")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, endpoint={self.endpoint_for_display!r}, "
            f"access_key_id={self.credentials.access_key_id!r}, region={self.credentials.region!r}, "
            f"max_qps={self.rate_limiter.max_qps}, max_retries={self.max_retries})"
        )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it (urllib3 ``reason``, ``__cause__``, ``__context__``, args), each once."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack += [getattr(item, "reason", None), item.__cause__, item.__context__, *item.args]


_ERRNO = re.compile(r"^\[Errno -?[0-9]+\] ")


def _innermost(causes: list[BaseException], limit: int = 200) -> str:
    """The deepest cause's own words (``[Errno 113] No route to host`` -> ``no route to host``)."""
    for cause in reversed(causes):
        text = _ERRNO.sub("", " ".join(str(cause).split()))
        if text and "Max retries exceeded" not in text:
            return _short(text[:1].lower() + text[1:], limit)
    return type(causes[-1]).__name__ if causes else "unknown error"


def _short(text: str, limit: int = 200) -> str:
    """One line, at most ``limit`` characters, any ``user:password@`` in a URL (a proxy's) hidden."""
    text = redact_userinfo(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."
