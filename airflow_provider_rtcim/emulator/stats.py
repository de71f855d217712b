"""Request counters (``Emulator.stats``), behind their own lock."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """``requests``, ``by_status``, ``by_code``, ``by_action``, ``throttled``, ``faults_injected``,
    ``signature_failures`` and ``admin_requests``; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._by_status: Counter[int] = Counter()
            self._by_code: Counter[str] = Counter()
            self._by_action: Counter[str] = Counter()
            self._throttled = 0
            self._faults: Counter[str] = Counter()
            self._signature_failures = 0
            self._admin_requests = 0

    def api_request(self, action: str) -> None:
        with self._lock:
            self._requests += 1
            self._by_action[action] += 1

    def reply(self, status: int | None, code: str | None = None) -> None:
        """A reply sent (``status`` None: a reset or a truncated body)."""
        with self._lock:
            if status is not None:
                self._by_status[status] += 1
            if code:
                self._by_code[code] += 1

    def signature_failure(self) -> None:
        with self._lock:
            self._signature_failures += 1

    def throttle(self) -> None:
        with self._lock:
            self._throttled += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def admin_request(self) -> None:
        with self._lock:
            self._admin_requests += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "by_status": dict(self._by_status),
                "by_code": dict(self._by_code),
                "by_action": dict(self._by_action),
                "throttled": self._throttled,
                "faults_injected": dict(self._faults),
                "faults_total": sum(self._faults.values()),
                "signature_failures": self._signature_failures,
                "admin_requests": self._admin_requests,
            }
