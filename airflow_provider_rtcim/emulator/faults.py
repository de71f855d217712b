"""Fault injection, pagination anomalies and the QPS window (no HTTP, no data).

Usage::

    faults = FaultInjector()
    faults.rate, faults.kinds, faults.seed, faults.max_consecutive = 0.2, ("500", "reset"), 1, 3
    faults.decide(("GetConversationMessages", app_id, short_id, cursor, limit, reverse))  # "500" or None
    window = QpsWindow(); window.admit(limit=100)                                   # True / False
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_rtcim.emulator.utils import hash64

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
"""Pagination anomalies of every paginated action (GetUserConversations,
ScanConversationParticipantList, GetConversationMessages)."""

MESSAGE_ANOMALY_KINDS: tuple[str, ...] = ("cursor_restart", "cursor_repeat")
"""GetConversationMessages only (incremental sync): the last page's NewCursor is 0
(``cursor_restart``) or the index of that page's first message (``cursor_repeat``)."""

ALL_ANOMALY_KINDS: tuple[str, ...] = ANOMALY_KINDS + MESSAGE_ANOMALY_KINDS

STRING_KEY_PREFIX = "str:"
"""An anomaly key ``"str:007"`` names the string user ``"007"`` (``"007"`` alone is the int 7)."""

FAULT_STATUS = {
    "429": (429, "FlowLimitExceeded.QPSOverLimit", "request rate exceeds the account's QPS limit"),
    "500": (500, "InternalError", "internal error, please retry"),
    "502": (502, "FailToConnect", "the gateway failed to connect to the backend"),
    "503": (503, "ServiceUnavailableTemp", "service temporarily unavailable, please retry"),
    "504": (504, "InternalServiceTimeout", "the backend timed out"),
    "error200": (200, "InternalError", "internal error, please retry"),
}


def normalize_fault_kinds(kinds: Iterable[str] | str | None) -> tuple[str, ...]:
    if kinds is None:
        return FAULT_KINDS
    if isinstance(kinds, str):
        kinds = [k for k in kinds.split(",") if k.strip()]
    out = tuple(str(k).strip() for k in kinds)
    bad = [k for k in out if k not in FAULT_KINDS]
    if bad or not out:
        raise ValueError(f"fault_kinds: {bad or 'empty'} not allowed; choose from {', '.join(FAULT_KINDS)}")
    return out


def normalize_anomalies(anomalies: Mapping[Any, str] | None) -> dict[Any, str]:
    """Keys: ``"*"``, an int (a user id for GetUserConversations, a ConversationShortId for the
    conversation actions), a decimal string (the same int), ``"str:<id>"`` or any other
    non-integer string (a string user id, verbatim)."""
    out: dict[Any, str] = {}
    for key, kind in (anomalies or {}).items():
        if kind not in ALL_ANOMALY_KINDS:
            raise ValueError(f"anomalies: {kind!r} is not one of {', '.join(ALL_ANOMALY_KINDS)}")
        if key == "*":
            out["*"] = kind
        elif isinstance(key, str) and key.startswith(STRING_KEY_PREFIX) and key[len(STRING_KEY_PREFIX) :]:
            out[key[len(STRING_KEY_PREFIX) :]] = kind
        elif isinstance(key, bool) or not isinstance(key, int | str) or key == "":
            raise ValueError(f"anomalies: key {key!r} must be a user id, a ConversationShortId or '*'")
        elif isinstance(key, int):
            out[key] = kind
        else:
            try:
                out[int(key)] = kind
            except ValueError:
                out[key] = kind  # a string user id
    return out


def anomaly_keys_for_config(anomalies: Mapping[Any, str]) -> dict[str, str]:
    """JSON-safe keys that :func:`normalize_anomalies` reads back to the same dict."""
    out = {}
    for key, kind in anomalies.items():
        if isinstance(key, str) and key != "*":
            out[STRING_KEY_PREFIX + key] = kind
        else:
            out[str(key)] = kind
    return out


class FaultInjector:
    """Deterministic per request key and attempt; never more than N faults in a row for one key.

    Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rate = 0.0
        self.kinds: tuple[str, ...] = FAULT_KINDS
        self.seed = 0
        self.max_consecutive = 3
        self._seen: Counter[tuple] = Counter()
        self._consecutive: Counter[tuple] = Counter()

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
            self._consecutive.clear()

    def decide(self, key: tuple) -> str | None:
        """The fault for this attempt of ``key`` (a kind from :data:`FAULT_KINDS`), or None."""
        with self._lock:
            return self._decide(key)

    def _decide(self, key: tuple) -> str | None:
        seen = self._seen[key]
        self._seen[key] = seen + 1
        if self.rate > 0 and self._consecutive[key] < self.max_consecutive:
            u = (hash64(self.seed, "fault", key, seen) >> 11) / float(1 << 53)
            if u < self.rate:
                kind = self.kinds[hash64(self.seed, "kind", key, seen) % len(self.kinds)]
                self._consecutive[key] += 1
                return kind
        self._consecutive.pop(key, None)
        return None


class QpsWindow:
    """An account-wide sliding 1-second window over admitted requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._admitted: deque[float] = deque()

    def admit(self, limit: float | None) -> bool:
        if not limit:
            return True
        now = time.monotonic()
        with self._lock:
            window = self._admitted
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True
