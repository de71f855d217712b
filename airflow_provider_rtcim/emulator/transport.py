"""The HTTP side: a ThreadingHTTPServer whose handler hands every request to the emulator.

It knows nothing about the API: ``/_emulator/...`` goes to ``app.handle_admin``, everything
else to ``app.handle_api`` (then ``app.latency`` is slept), and the
:class:`Reply` it gets back is sent, reset (RST, no response) or truncated (a
Content-Length larger than the body, then close).
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit


class Reply:
    """What the handler sends: ``kind`` is "normal", "reset" or "truncate"."""

    __slots__ = ("body", "headers", "kind", "status")

    def __init__(
        self, status: int, body: bytes, *, kind: str = "normal", headers: dict[str, str] | None = None
    ) -> None:
        self.status, self.body, self.kind, self.headers = status, body, kind, headers or {}


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class HttpApp(Protocol):
    """What the server serves (the :class:`~airflow_provider_rtcim.emulator.Emulator`)."""

    @property
    def latency(self) -> float: ...

    @property
    def verbose(self) -> bool: ...

    def handle_api(self, method: str, path: str, query_string: str, headers: Any, body: bytes) -> Reply: ...

    def handle_admin(self, method: str, path: str, query_string: str, body: bytes) -> tuple[int, Any]: ...


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: HttpApp) -> None:
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, Handler)

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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rtcim-emulator"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    disable_nagle_algorithm = True
    server: Server

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
            status, payload = emu.handle_admin(self.command, parts.path, parts.query, body)
            self._send(Reply(status, dumps(payload)))
            return
        reply = emu.handle_api(self.command, parts.path, parts.query, self.headers, body)
        latency = emu.latency
        if latency > 0:
            time.sleep(latency)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
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
