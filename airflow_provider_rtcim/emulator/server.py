"""The emulator's HTTP server and its Python API (:class:`Emulator`). See the package docstring."""

from __future__ import annotations

import contextlib
import hmac
import itertools
import json
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from airflow_provider_rtcim.core.signing import (
    Credentials,
    compute_signature,
    is_signed_header,
    parse_authorization,
    parse_x_date,
    sha256_hex,
)
from airflow_provider_rtcim.emulator.data import (
    _PAGE_BITS,
    DATA_TYPES,
    ConversationStore,
    CursorCodec,
    _hash64,
    generate,
    load_data,
)

ACTION = "GetUserConversations"
VERSION = "2020-12-01"
SERVICE = "rtc"
MAX_LIMIT = 20
TIMESTAMP_WINDOW = 900  # seconds either side of the server clock

DEFAULT_ACCESS_KEY_ID = "AKLTemulatorKey"
DEFAULT_SECRET_ACCESS_KEY = "emulator-secret-key-0123456789"
DEFAULT_APP_ID = 100001
DEFAULT_REGION = "cn-north-1"

FAULT_KINDS: tuple[str, ...] = (
    "429",
    "500",
    "502",
    "503",
    "504",
    "reset",
    "truncate",
    "error200",
    "badjson",
)
"""Injectable faults: HTTP errors, a reset connection, a cut-short body, an Error inside a
200, and a 200 whose body is not JSON."""

ANOMALY_KINDS: tuple[str, ...] = (
    "stuck_cursor",
    "negative_cursor",
    "empty_pages",
    "repeated_page",
    "endless_empty",
)
"""Pagination anomalies (per user id, or ``"*"`` for every user)."""

_FAULT_STATUS = {
    "429": (429, "FlowLimitExceeded.QPSOverLimit", "request rate exceeds the account's QPS limit"),
    "500": (500, "InternalError", "internal error, please retry"),
    "502": (502, "FailToConnect", "the gateway failed to connect to the backend"),
    "503": (503, "ServiceUnavailableTemp", "service temporarily unavailable, please retry"),
    "504": (504, "InternalServiceTimeout", "the backend timed out"),
    "error200": (200, "InternalError", "internal error, please retry"),
}

_CONFIG_KEYS = (
    "latency",
    "qps_limit",
    "fault_rate",
    "fault_kinds",
    "fault_seed",
    "max_consecutive_faults",
    "retry_after",
    "anomalies",
    "reorder_data_type0",
    "clock_offset",
    "session_token",
    "verify_signatures",
    "verbose",
)

_ENDLESS_FLAG = 2  # cursor flag of the endless_empty anomaly: (offset, page) hold a page counter


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Reply:
    """What the handler sends: ``kind`` is "normal", "reset" or "truncate"."""

    __slots__ = ("body", "headers", "kind", "status")

    def __init__(
        self, status: int, body: bytes, *, kind: str = "normal", headers: dict[str, str] | None = None
    ) -> None:
        self.status, self.body, self.kind, self.headers = status, body, kind, headers or {}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _normalize_fault_kinds(kinds: Iterable[str] | str | None) -> tuple[str, ...]:
    if kinds is None:
        return FAULT_KINDS
    if isinstance(kinds, str):
        kinds = [k for k in kinds.split(",") if k.strip()]
    out = tuple(str(k).strip() for k in kinds)
    bad = [k for k in out if k not in FAULT_KINDS]
    if bad or not out:
        raise ValueError(f"fault_kinds: {bad or 'empty'} not allowed; choose from {', '.join(FAULT_KINDS)}")
    return out


def _normalize_anomalies(anomalies: Mapping[Any, str] | None) -> dict[Any, str]:
    out: dict[Any, str] = {}
    for key, kind in (anomalies or {}).items():
        if kind not in ANOMALY_KINDS:
            raise ValueError(f"anomalies: {kind!r} is not one of {', '.join(ANOMALY_KINDS)}")
        if key == "*":
            out["*"] = kind
        else:
            try:
                out[int(key)] = kind
            except (TypeError, ValueError):
                raise ValueError(f"anomalies: key {key!r} must be a user id or '*'") from None
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):  # type: ignore[override]
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[override]
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self.sockets_lock:
            socks = list(self.open_sockets)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        if self.emulator.verbose:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rtcim-emulator"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.emulator.verbose:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        emu = self.server.emulator
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        if parts.path.startswith("/_emulator"):
            status, payload = emu._handle_admin(self.command, parts.path, parts.query, body)
            self._send(_Reply(status, _dumps(payload)))
            return
        reply = emu._handle_api(self.command, parts.path, parts.query, self.headers, body)
        latency = emu.latency
        if latency > 0:
            time.sleep(latency)
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        if reply.kind == "reset":
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.rfile.close()
                self.connection.close()
            except OSError:
                pass
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.kind == "truncate":
            self.close_connection = True
            self.end_headers()
            self.wfile.write(reply.body[: len(reply.body) // 2])
            return
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


class Emulator:
    """A local, faithful stand-in for the RTC IM ``GetUserConversations`` OpenAPI.

    Keyword-only options (all but the data and credentials can be changed later with
    :meth:`configure`):

    - ``host`` / ``port``: where to listen (default ``127.0.0.1`` and a free port).
    - ``users``, ``conversations_per_user``, ``seed``: the generated data set (ids
      ``1000001``...); ignored when ``data`` (a dict or a JSON file path) is given.
    - ``app_ids`` (default ``[100001]``; the first is :attr:`app_id`), ``access_key_id``,
      ``secret_access_key``, ``session_token`` (required as ``X-Security-Token`` when set),
      ``region``.
    - ``qps_limit`` (default 100; ``None``/0 = unlimited): account-wide sliding window of
      1 s over *admitted* requests; beyond it, HTTP 429 ``FlowLimitExceeded.QPSOverLimit``.
    - ``latency``: seconds slept per API request, in the handler thread.
    - ``fault_rate`` (0..1), ``fault_kinds`` (subset of :data:`FAULT_KINDS`, default all),
      ``fault_seed``, ``max_consecutive_faults`` (default 3), ``retry_after`` (seconds
      sent as ``Retry-After`` on 429s; default none).
    - ``anomalies``: ``{user_id or "*": kind}`` with kinds from :data:`ANOMALY_KINDS`.
    - ``reorder_data_type0``: DataType-0 pages make later conversations jump to the front.
    - ``clock_offset``: seconds added to the server clock (for ``InvalidTimestamp``).
    - ``verify_signatures`` (default True): False accepts any request, signed or not, with
      no credential, token or timestamp check. **Benchmark-only** (comparing the hook
      with an unsigned client over the same pages); never use it to test signing.
    - ``verbose``: log every request to stderr.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: int = 3,
        conversations_per_user: int = 45,
        seed: int = 0,
        data: Mapping[str, Any] | str | None = None,
        app_ids: Iterable[int] | None = None,
        access_key_id: str = DEFAULT_ACCESS_KEY_ID,
        secret_access_key: str = DEFAULT_SECRET_ACCESS_KEY,
        session_token: str | None = None,
        region: str = DEFAULT_REGION,
        qps_limit: float | None = 100,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[str] | str | None = None,
        fault_seed: int = 0,
        max_consecutive_faults: int = 3,
        retry_after: float | None = None,
        anomalies: Mapping[Any, str] | None = None,
        reorder_data_type0: bool = False,
        clock_offset: float = 0.0,
        verify_signatures: bool = True,
        verbose: bool = False,
    ) -> None:
        if users < 0 or conversations_per_user < 0:
            raise ValueError("users and conversations_per_user must be >= 0")
        self.host = host
        self._requested_port = int(port)
        self.seed = int(seed)
        self.access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self.region = region
        self._lock = threading.Lock()
        self._qps_lock = threading.Lock()
        self._admitted: deque[float] = deque()
        self._request_ids = itertools.count(1)
        ids = [int(a) for a in app_ids] if app_ids is not None else []
        if data is not None:
            file_apps, user_data = load_data(data)
            ids = ids or file_apps
            self.app_ids = ids or [DEFAULT_APP_ID]
        else:
            self.app_ids = ids or [DEFAULT_APP_ID]
            user_data = generate(
                users=users,
                conversations_per_user=conversations_per_user,
                seed=self.seed,
                app_id=self.app_ids[0],
            )
        self._store = ConversationStore(user_data, default_app_id=self.app_ids[0])
        self._codec = CursorCodec(_hash64("cursor-salt", self.seed))
        self._reorder_counts: Counter[int] = Counter()
        self._fault_seen: Counter[tuple] = Counter()
        self._fault_consecutive: Counter[tuple] = Counter()
        self._server: _Server | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        # options changeable at runtime
        self.session_token = session_token
        self.qps_limit = qps_limit
        self.latency = 0.0
        self.fault_rate = 0.0
        self.fault_kinds: tuple[str, ...] = FAULT_KINDS
        self.fault_seed = 0
        self.max_consecutive_faults = 3
        self.retry_after = retry_after
        self.anomalies: dict[Any, str] = {}
        self.reorder_data_type0 = False
        self.clock_offset = 0.0
        self.verify_signatures = bool(verify_signatures)
        self.verbose = verbose
        self.configure(
            latency=latency,
            fault_rate=fault_rate,
            fault_kinds=fault_kinds,
            fault_seed=fault_seed,
            max_consecutive_faults=max_consecutive_faults,
            anomalies=anomalies,
            reorder_data_type0=reorder_data_type0,
            clock_offset=clock_offset,
            qps_limit=qps_limit,
        )
        self.reset_stats()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Emulator:
        """Bind and serve in a daemon thread; returns self. Idempotent."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self._requested_port), self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"rtcim-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_all_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (kept after :meth:`stop`)."""
        if self._port is None:
            raise RuntimeError("the emulator has not been started: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def secret_access_key(self) -> str:
        return self._secret_access_key

    @property
    def app_id(self) -> int:
        return self.app_ids[0]

    @property
    def credentials(self) -> Credentials:
        """Credentials for :func:`airflow_provider_rtcim.core.signing.sign_request`."""
        return Credentials(
            access_key_id=self.access_key_id,
            secret_access_key=self._secret_access_key,
            region=self.region,
            service=SERVICE,
            session_token=self.session_token,
        )

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"Emulator({where}, app_id={self.app_id}, users={len(self.user_ids)})"

    # ------------------------------------------------------------------ configuration
    def configure(self, **options: Any) -> None:
        """Change runtime options (see the class docstring). Unknown names raise ``ValueError``.

        Changing any fault option resets the per-request fault history.
        """
        unknown = sorted(set(options) - set(_CONFIG_KEYS))
        if unknown:
            raise ValueError(f"configure: unknown option(s) {unknown}; allowed: {', '.join(_CONFIG_KEYS)}")
        with self._lock:
            if "latency" in options:
                latency = float(options["latency"] or 0)
                if latency < 0:
                    raise ValueError("latency must be >= 0 seconds")
                self.latency = latency
            if "qps_limit" in options:
                q = options["qps_limit"]
                if q is not None and float(q) < 0:
                    raise ValueError("qps_limit must be > 0, or None/0 for unlimited")
                self.qps_limit = float(q) if q else None
            if "fault_rate" in options:
                rate = float(options["fault_rate"] or 0)
                if not 0 <= rate <= 1:
                    raise ValueError("fault_rate must be between 0 and 1")
                self.fault_rate = rate
            if "fault_kinds" in options:
                self.fault_kinds = _normalize_fault_kinds(options["fault_kinds"])
            if "fault_seed" in options:
                self.fault_seed = int(options["fault_seed"] or 0)
            if "max_consecutive_faults" in options:
                mcf = int(options["max_consecutive_faults"])
                if mcf < 0:
                    raise ValueError("max_consecutive_faults must be >= 0")
                self.max_consecutive_faults = mcf
            if options.keys() & {"fault_rate", "fault_kinds", "fault_seed", "max_consecutive_faults"}:
                self._fault_seen.clear()
                self._fault_consecutive.clear()
            if "retry_after" in options:
                ra = options["retry_after"]
                self.retry_after = None if ra is None else float(ra)
            if "anomalies" in options:
                self.anomalies = _normalize_anomalies(options["anomalies"])
            if "reorder_data_type0" in options:
                self.reorder_data_type0 = bool(options["reorder_data_type0"])
            if "clock_offset" in options:
                self.clock_offset = float(options["clock_offset"] or 0)
            if "session_token" in options:
                self.session_token = options["session_token"] or None
            if "verify_signatures" in options:
                self.verify_signatures = bool(options["verify_signatures"])
            if "verbose" in options:
                self.verbose = bool(options["verbose"])

    @property
    def config(self) -> dict[str, Any]:
        """The runtime options (the session token shown only as set/not set)."""
        return {
            "latency": self.latency,
            "qps_limit": self.qps_limit,
            "fault_rate": self.fault_rate,
            "fault_kinds": list(self.fault_kinds),
            "fault_seed": self.fault_seed,
            "max_consecutive_faults": self.max_consecutive_faults,
            "retry_after": self.retry_after,
            "anomalies": {str(k): v for k, v in self.anomalies.items()},
            "reorder_data_type0": self.reorder_data_type0,
            "clock_offset": self.clock_offset,
            "session_token_set": self.session_token is not None,
            "verify_signatures": self.verify_signatures,
            "verbose": self.verbose,
        }

    # ------------------------------------------------------------------ data API
    @property
    def user_ids(self) -> list[int]:
        with self._lock:
            return self._store.user_ids

    def conversations(
        self, user_id: int, data_type: int = 1, inbox_type: int = 0, app_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Ground truth: every conversation the API lists for these parameters, in API order."""
        if data_type not in DATA_TYPES:
            raise ValueError(f"data_type must be one of {DATA_TYPES}")
        with self._lock:
            return self._store.snapshot(int(user_id), app_id or self.app_id, data_type, int(inbox_type))

    def add_conversation(self, user_id: int, **fields: Any) -> dict[str, Any]:
        """Add a conversation (API field names; missing ones generated) created and active "now".

        It lands last in DataType 1 and first in DataType 0. Returns a copy of what is stored.
        """
        with self._lock:
            return dict(self._store.add_new(int(user_id), fields))

    def remove_conversation(self, user_id: int, conversation_short_id: int | None = None) -> dict[str, Any]:
        """Remove one conversation (default: the user's newest); returns it. ``KeyError`` if absent."""
        with self._lock:
            sid = None if conversation_short_id is None else int(conversation_short_id)
            return dict(self._store.remove(int(user_id), sid))

    # ------------------------------------------------------------------ stats
    def reset_stats(self) -> None:
        with self._lock:
            self._stats: dict[str, Any] = {
                "requests": 0,
                "by_status": Counter(),
                "by_code": Counter(),
                "throttled": 0,
                "faults_injected": Counter(),
                "signature_failures": 0,
                "admin_requests": 0,
            }

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot: ``requests`` (API calls), ``by_status`` ({int: n}), ``by_code`` ({Code: n}),
        ``throttled`` (429s from the QPS limiter), ``faults_injected`` ({kind: n}),
        ``faults_total``, ``signature_failures`` (all 401s and InvalidTimestamp), ``admin_requests``."""
        with self._lock:
            s = self._stats
            return {
                "requests": s["requests"],
                "by_status": dict(s["by_status"]),
                "by_code": dict(s["by_code"]),
                "throttled": s["throttled"],
                "faults_injected": dict(s["faults_injected"]),
                "faults_total": sum(s["faults_injected"].values()),
                "signature_failures": s["signature_failures"],
                "admin_requests": s["admin_requests"],
            }

    # ------------------------------------------------------------------ Airflow helpers
    def connection_json(self, **overrides: Any) -> str:
        """An Airflow JSON connection for this emulator.

        Keys ``conn_type``, ``login``, ``password``, ``host``, ``port``, ``schema`` and
        ``description`` override the top level; any other key goes into ``extra``
        (e.g. ``max_qps=20``, ``app_id=...``); a ``None`` value removes the key.
        """
        conn: dict[str, Any] = {
            "conn_type": "rtcim",
            "login": self.access_key_id,
            "password": self._secret_access_key,
            "host": self.url,
        }
        extra: dict[str, Any] = {"app_id": self.app_id, "region": self.region, "endpoint_url": self.url}
        if self.session_token:
            extra["session_token"] = self.session_token
        for key, value in overrides.items():
            target = (
                conn
                if key in ("conn_type", "login", "password", "host", "port", "schema", "description")
                else extra
            )
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
        conn["extra"] = extra
        return json.dumps(conn)

    def airflow_env(self, conn_id: str = "rtcim_default", **overrides: Any) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<CONN_ID>": connection_json(**overrides)}``."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(**overrides)}

    # ------------------------------------------------------------------ request handling
    def _count(self, status: int | None, code: str | None) -> None:
        s = self._stats
        if status is not None:
            s["by_status"][status] += 1
        if code:
            s["by_code"][code] += 1

    def _meta(self, action: str, version: str) -> dict[str, Any]:
        return {
            "RequestId": f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}{next(self._request_ids):012X}",
            "Action": action,
            "Version": version,
            "Service": SERVICE,
            "Region": self.region,
        }

    def _error(self, meta: dict[str, Any], status: int, code: str, message: str) -> _Reply:
        meta = dict(meta, Error={"Code": code, "Message": message})
        headers = {}
        if status == 429 and self.retry_after is not None:
            headers["Retry-After"] = f"{self.retry_after:g}"
        with self._lock:
            self._count(status, code)
        return _Reply(status, _dumps({"ResponseMetadata": meta}), headers=headers)

    def _verify(
        self, method: str, path: str, query: list[tuple[str, str]], headers: Any, body: bytes
    ) -> None:
        auth = headers.get("Authorization")
        if not auth:
            raise _ApiError(401, "MissingSignature", "the request is not signed: no Authorization header")
        try:
            parsed = parse_authorization(auth)
        except ValueError as exc:
            raise _ApiError(401, "SignatureDoesNotMatch", f"malformed Authorization header: {exc}") from None
        if parsed.access_key_id != self.access_key_id:
            raise _ApiError(401, "InvalidAccessKey", "the Access Key ID does not exist")
        x_date = headers.get("X-Date")
        try:
            when = parse_x_date(x_date or "")
        except ValueError:
            raise _ApiError(400, "InvalidTimestamp", "X-Date is missing or not YYYYMMDDTHHMMSSZ") from None
        skew = when.timestamp() - (time.time() + self.clock_offset)
        if abs(skew) > TIMESTAMP_WINDOW:
            raise _ApiError(
                400,
                "InvalidTimestamp",
                f"X-Date {x_date} is {skew:+.0f} s from the server clock (allowed: {TIMESTAMP_WINDOW} s)",
            )
        if self.session_token is not None:
            token = headers.get("X-Security-Token")
            if token is None or not hmac.compare_digest(token.encode(), self.session_token.encode()):
                raise _ApiError(401, "InvalidSecretToken", "the security token is missing or invalid")
        body_hash = sha256_hex(body)
        sent_hash = headers.get("X-Content-Sha256")
        if sent_hash is not None and sent_hash != body_hash:
            raise _ApiError(401, "SignatureDoesNotMatch", "X-Content-Sha256 does not match the request body")
        signed = self._signed_headers(parsed.signed_headers, headers)
        signature, names, _scope = compute_signature(
            secret_access_key=self._secret_access_key,
            method=method,
            path=path,
            query=query,
            headers=signed,
            body_hash=body_hash,
            x_date=x_date or "",
            region=self.region,
            service=SERVICE,
        )
        if (
            parsed.short_date != (x_date or "")[:8]
            or names != ";".join(parsed.signed_headers)
            or not hmac.compare_digest(signature, parsed.signature)
        ):
            raise _ApiError(
                401,
                "SignatureDoesNotMatch",
                "the request signature we calculated does not match the signature you provided",
            )

    @staticmethod
    def _signed_headers(listed: tuple[str, ...], headers: Any) -> dict[str, str]:
        """The headers to verify, after checking that SignedHeaders covers the request.

        Like a strict gateway: SignedHeaders must name ``host`` and ``x-date`` and every
        signable header the request carries (``Content-Type``, ``Content-Md5``, ``Host``,
        every ``X-*``), each exactly once in the request; it must not name a header that
        is absent or not signable. Anything else is 401 ``SignatureDoesNotMatch``.
        """
        present: dict[str, int] = {}
        for name in headers:  # every field, repeats included (email.message.Message)
            if is_signed_header(name):
                present[name.lower()] = present.get(name.lower(), 0) + 1
        listed_set = set(listed)
        problems: list[str] = []
        required = sorted(({"host", "x-date"} | set(present)) - listed_set)
        if required:
            problems.append("headers not in SignedHeaders: " + ", ".join(required))
        absent = sorted(n for n in listed_set if n not in present and is_signed_header(n))
        if absent:
            problems.append("SignedHeaders names headers not in the request: " + ", ".join(absent))
        unsignable = sorted(n for n in listed_set if not is_signed_header(n))
        if unsignable:
            problems.append(
                "SignedHeaders names headers that are never signed: "
                + ", ".join(unsignable)
                + " (signed: content-type, content-md5, host, x-*)"
            )
        repeated = sorted(n for n, count in present.items() if count > 1)
        if repeated:
            problems.append("signed headers sent more than once: " + ", ".join(repeated))
        if problems:
            raise _ApiError(401, "SignatureDoesNotMatch", "; ".join(problems))
        return {name: headers.get(name) for name in listed}

    def _admit(self) -> bool:
        limit = self.qps_limit
        if not limit:
            return True
        now = time.monotonic()
        with self._qps_lock:
            window = self._admitted
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True

    def _handle_api(self, method: str, path: str, query_string: str, headers: Any, body: bytes) -> _Reply:
        query = parse_qsl(query_string, keep_blank_values=True)
        q = dict(query)
        action, version = q.get("Action", ""), q.get("Version", "")
        meta = self._meta(action, version)
        with self._lock:
            self._stats["requests"] += 1
        try:
            if self.verify_signatures:
                self._verify(method, path, query, headers, body)
        except _ApiError as err:
            with self._lock:
                self._stats["signature_failures"] += 1
            return self._error(meta, err.status, err.code, err.message)
        if not self._admit():
            with self._lock:
                self._stats["throttled"] += 1
            return self._error(
                meta, 429, "FlowLimitExceeded.QPSOverLimit", "request rate exceeds the account's QPS limit"
            )
        try:
            if action != ACTION or version != VERSION or path not in ("/", ""):
                raise _ApiError(
                    404, "InvalidActionOrVersion", f"unknown Action {action!r} or Version {version!r}"
                )
            if method != "POST":
                raise _ApiError(404, "InvalidActionOrVersion", f"{ACTION} is called with POST, not {method}")
            params = self._parse_params(body)
            return self._get_user_conversations(meta, params)
        except _ApiError as err:
            return self._error(meta, err.status, err.code, err.message)

    @staticmethod
    def _parse_params(body: bytes) -> dict[str, Any]:
        if not body.strip():
            raise _ApiError(400, "InvalidParameter.BodyIsEmpty", "the request body is empty")
        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _ApiError(400, "InvalidParameter.Unmarshal", "the request body is not valid JSON") from None
        if not isinstance(req, dict):
            raise _ApiError(400, "InvalidParameter.Unmarshal", "the request body must be a JSON object")

        def integer(name: str, value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _ApiError(400, "InvalidParameter.Unmarshal", f"{name} must be an integer")
            return value

        uid_str = req.get("ParticipantUserIdStr")
        for name in ("AppId", "ParticipantUserId", "Cursor", "Limit"):
            if req.get(name) is None and not (name == "ParticipantUserId" and uid_str):
                raise _ApiError(400, "MissingParameter", f"the required parameter {name} is missing")
        app_id = integer("AppId", req["AppId"])
        if not 0 < app_id < 2**31:
            raise _ApiError(400, "InvalidParameter.IllegalAppId", f"AppId {app_id} is not a valid AppId")
        if req.get("ParticipantUserId") is not None:
            uid = integer("ParticipantUserId", req["ParticipantUserId"])
        else:
            if not isinstance(uid_str, str) or not uid_str.isdigit():
                raise _ApiError(400, "InvalidParameter", "ParticipantUserIdStr must be a string of digits")
            uid = int(uid_str)
        cursor = integer("Cursor", req["Cursor"])
        limit = integer("Limit", req["Limit"])
        if not 1 <= limit <= MAX_LIMIT:
            raise _ApiError(400, "InvalidParameter", f"Limit must be between 1 and {MAX_LIMIT}, got {limit}")
        data_type = integer("DataType", req.get("DataType", 0) if req.get("DataType") is not None else 0)
        if data_type not in DATA_TYPES:
            raise _ApiError(400, "InvalidParameter", f"DataType must be 0, 1 or 2, got {data_type}")
        inbox = req.get("InboxType")
        inbox = 0 if inbox is None else integer("InboxType", inbox)
        if inbox < 0:
            raise _ApiError(400, "InvalidParameter", f"InboxType must be >= 0, got {inbox}")
        skip = req.get("SkipMemberCount", False)
        if skip is None:
            skip = False
        if not isinstance(skip, bool):
            raise _ApiError(400, "InvalidParameter.Unmarshal", "SkipMemberCount must be true or false")
        return {
            "app_id": app_id,
            "uid": uid,
            "cursor": cursor,
            "limit": limit,
            "data_type": data_type,
            "inbox": inbox,
            "skip": skip,
        }

    def _decide_fault(self, key: tuple) -> str | None:
        """Deterministic per request key and attempt; never more than N faults in a row. Holds the lock."""
        seen = self._fault_seen[key]
        self._fault_seen[key] = seen + 1
        if self.fault_rate > 0 and self._fault_consecutive[key] < self.max_consecutive_faults:
            u = (_hash64(self.fault_seed, "fault", key, seen) >> 11) / float(1 << 53)
            if u < self.fault_rate:
                kind = self.fault_kinds[_hash64(self.fault_seed, "kind", key, seen) % len(self.fault_kinds)]
                self._fault_consecutive[key] += 1
                self._stats["faults_injected"][kind] += 1
                return kind
        self._fault_consecutive.pop(key, None)
        return None

    def _fault_reply(self, meta: dict[str, Any], kind: str) -> _Reply:
        if kind in _FAULT_STATUS:
            status, code, message = _FAULT_STATUS[kind]
            return self._error(meta, status, code, message)
        if kind == "reset":
            return _Reply(0, b"", kind="reset")
        if kind == "badjson":
            with self._lock:
                self._count(200, None)
            return _Reply(200, b"<html><body><h1>502 Bad Gateway</h1>upstream said: {</body></html>")
        # truncate: a response whose body stops half way
        body = _dumps({"ResponseMetadata": meta, "Result": {"ConversationInfos": [], "HasMore": False}})
        return _Reply(200, body + b" " * 64, kind="truncate")

    def _get_user_conversations(self, meta: dict[str, Any], p: dict[str, Any]) -> _Reply:
        app_id, uid, cursor, limit = p["app_id"], p["uid"], p["cursor"], p["limit"]
        data_type, inbox = p["data_type"], p["inbox"]
        if app_id not in self.app_ids:
            raise _ApiError(400, "InvalidParameter.NotExistAppId", f"AppId {app_id} does not exist")
        scope = (uid, app_id, data_type, inbox)
        with self._lock:
            fault = self._decide_fault((app_id, uid, cursor, limit, data_type, inbox))
        if fault:
            return self._fault_reply(meta, fault)
        with self._lock:
            if cursor == 0:
                offset, page, flag = 0, 0, 0
            else:
                decoded = self._codec.decode(scope, cursor)
                if decoded is None:
                    self._count(400, "InvalidParameter")
                    return self._error_unlocked(meta, 400, "InvalidParameter", f"invalid Cursor {cursor}")
                offset, page, flag = decoded
            anomaly = self.anomalies.get(uid) or self.anomalies.get("*")
            if anomaly == "endless_empty" or flag == _ENDLESS_FLAG:
                return self._endless_empty_page(meta, scope, cursor, offset, page, flag, anomaly)
            items = self._store.listing(*scope)
            total = len(items)
            if anomaly == "empty_pages" and page >= 1 and flag == 0 and offset < total:
                chosen: list[dict[str, Any]] = []
                has_more, next_cursor = True, self._codec.encode(scope, offset, page + 1, 1)
            elif anomaly == "repeated_page" and page == 1 and flag == 0:
                chosen = items[max(0, offset - limit) : offset]
                has_more, next_cursor = True, self._codec.encode(scope, offset, page + 1, 1)
            else:
                chosen = items[offset : offset + limit]
                end = offset + len(chosen)
                has_more = end < total
                next_cursor = self._codec.encode(scope, end, page + 1) if has_more else -1
                if anomaly == "stuck_cursor" and page >= 1:
                    has_more, next_cursor = True, cursor
                elif anomaly == "negative_cursor" and has_more:
                    next_cursor = -1
            out = [dict(c) for c in chosen]
            if data_type == 0 and self.reorder_data_type0 and has_more:
                self._reorder(uid, items, offset + len(chosen))
            self._count(200, None)
        if p["skip"]:
            for c in out:
                c.pop("MemberCount", None)
        result = {"ConversationInfos": out, "HasMore": has_more, "NextCursor": next_cursor}
        return _Reply(200, _dumps({"ResponseMetadata": meta, "Result": result}))

    def _endless_empty_page(
        self,
        meta: dict[str, Any],
        scope: tuple,
        cursor: int,
        offset: int,
        page: int,
        flag: int,
        anomaly: str | None,
    ) -> _Reply:
        """The ``endless_empty`` anomaly: an empty page, HasMore, a new valid cursor, forever.

        The page counter n is packed into the cursor's offset and page fields with its own
        flag, so every cursor differs and stays valid for 2**38 pages; any other cursor
        (0, or one issued before the anomaly was set) starts the run. A cursor of that kind
        sent with the anomaly off is invalid. Holds the lock.
        """
        if anomaly != "endless_empty":
            self._count(400, "InvalidParameter")
            return self._error_unlocked(meta, 400, "InvalidParameter", f"invalid Cursor {cursor}")
        n = (offset << _PAGE_BITS) | page if flag == _ENDLESS_FLAG else 0
        n += 1
        next_cursor = self._codec.encode(scope, n >> _PAGE_BITS, n & ((1 << _PAGE_BITS) - 1), _ENDLESS_FLAG)
        self._count(200, None)
        result = {"ConversationInfos": [], "HasMore": True, "NextCursor": next_cursor}
        return _Reply(200, _dumps({"ResponseMetadata": meta, "Result": result}))

    def _error_unlocked(self, meta: dict[str, Any], status: int, code: str, message: str) -> _Reply:
        meta = dict(meta, Error={"Code": code, "Message": message})
        return _Reply(status, _dumps({"ResponseMetadata": meta}))

    def _reorder(self, uid: int, items: list[dict[str, Any]], end: int) -> None:
        """Bump up to two not-yet-listed conversations to the front of DataType 0. Holds the lock."""
        rest = items[end:]
        if not rest:
            return
        n = self._reorder_counts[uid]
        self._reorder_counts[uid] = n + 1
        picks = []
        for i in range(min(2, len(rest))):
            idx = _hash64(self.seed, "reorder", uid, n, i) % len(rest)
            sid = rest[idx]["ConversationShortId"]
            if sid not in picks:
                picks.append(sid)
        for sid in picks:
            self._store.touch(uid, sid)

    # ------------------------------------------------------------------ admin endpoints
    def _handle_admin(self, method: str, path: str, query_string: str, body: bytes) -> tuple[int, Any]:
        with self._lock:
            self._stats["admin_requests"] += 1
        parts = [p for p in path.split("/") if p][1:]  # drop "_emulator"
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return 400, {"error": "the body is not valid JSON"}
        try:
            if parts == ["health"]:
                return 200, {
                    "status": "ok",
                    "url": self.url,
                    "app_ids": self.app_ids,
                    "user_ids": self.user_ids,
                }
            if parts == ["stats"] and method == "GET":
                s = self.stats
                s["by_status"] = {str(k): v for k, v in s["by_status"].items()}
                return 200, s
            if parts in (["stats"], ["stats", "reset"]) and method in ("POST", "DELETE"):
                self.reset_stats()
                return 200, {"status": "ok"}
            if parts == ["config"]:
                if method == "POST":
                    if not isinstance(payload, dict):
                        return 400, {"error": "the body must be a JSON object of options"}
                    self.configure(**payload)
                return 200, self.config
            if parts == ["users"]:
                return 200, {"user_ids": self.user_ids}
            if len(parts) in (3, 4) and parts[0] == "users" and parts[2] == "conversations":
                uid = int(parts[1])
                sid = int(parts[3]) if len(parts) == 4 else None
                if method == "GET" and sid is None:
                    q = {k: v[0] for k, v in parse_qs(query_string).items()}
                    return 200, {
                        "ConversationInfos": self.conversations(
                            uid,
                            data_type=int(q.get("data_type", 1)),
                            inbox_type=int(q.get("inbox_type", 0)),
                            app_id=int(q["app_id"]) if "app_id" in q else None,
                        )
                    }
                if method == "POST" and sid is None:
                    if not isinstance(payload, dict):
                        return 400, {"error": "the body must be a JSON object of ConversationInfo fields"}
                    return 201, self.add_conversation(uid, **payload)
                if method == "DELETE":
                    return 200, self.remove_conversation(uid, sid)
            return 404, {"error": f"no admin endpoint {method} {path}"}
        except KeyError as exc:
            return 404, {"error": str(exc.args[0]) if exc.args else "not found"}
        except (ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
