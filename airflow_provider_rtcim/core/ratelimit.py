"""A thread-safe client-side rate limiter: request starts at least ``1 / max_qps`` apart.

A next-slot scheduler (GCRA with no burst): each :meth:`RateLimiter.acquire` books the
next free slot under a lock, then sleeps until it outside the lock. Slots are kept in
integer nanoseconds and spaced by ``ceil(1e9 / floor(max_qps))``, so any half-open
one-second window holds at most ``max_qps`` slots however many threads share the limiter. The API
allows 100 requests per second per account, shared by all its AppIds.

:meth:`RateLimiter.pause_until` pushes the next free slot to a deadline: when one thread
draws a 429, every thread sharing the limiter backs off, not just that one (this works
with limiting disabled too).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

_NS = 1_000_000_000


class RateLimiter:
    """Space request starts at least ``1 / max_qps`` seconds apart, across threads.

    :param max_qps: the cap; ``None`` or ``0`` disables limiting (``acquire`` returns at once).
    :param clock: monotonic clock in seconds (injectable for tests).
    :param sleep: the sleep function (injectable for tests).
    """

    def __init__(
        self,
        max_qps: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_qps is not None and (
            isinstance(max_qps, bool) or not isinstance(max_qps, (int, float)) or not max_qps >= 0
        ):
            raise ValueError(f"max_qps must be a number > 0, or None / 0 to disable, got {max_qps!r}")
        self.max_qps: float | None = float(max_qps) if max_qps else None
        # A fractional cap rounds down (33.3 -> 33): spacing 1/33.3 s would fit 34 starts in
        # some one-second windows. Below 1 request per second the spacing is 1/max_qps.
        per_second = math.floor(self.max_qps) if self.max_qps and self.max_qps >= 1 else self.max_qps
        self._interval_ns = math.ceil(_NS / per_second) if per_second else 0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot_ns: int | None = None

    @property
    def enabled(self) -> bool:
        return self.max_qps is not None

    def reserve(self) -> float:
        """Book the next slot and return how many seconds to wait for it (no sleeping)."""
        if not self._interval_ns and self._next_slot_ns is None:
            return 0.0  # disabled and never paused
        with self._lock:
            now = int(self._clock() * _NS)
            slot = now if self._next_slot_ns is None or self._next_slot_ns <= now else self._next_slot_ns
            if self._interval_ns:
                self._next_slot_ns = slot + self._interval_ns
        return (slot - now) / _NS

    def pause_until(self, deadline: float) -> None:
        """No slot before ``deadline`` (a time on this limiter's clock, seconds), for every thread.

        Slots already handed out are not taken back; an earlier deadline than the next free
        slot changes nothing.
        """
        deadline_ns = math.ceil(deadline * _NS)
        with self._lock:
            if self._next_slot_ns is None or self._next_slot_ns < deadline_ns:
                self._next_slot_ns = deadline_ns

    def pause(self, seconds: float) -> None:
        """:meth:`pause_until` ``seconds`` from now (on this limiter's clock)."""
        if seconds > 0:
            self.pause_until(self._clock() + seconds)

    def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited (0.0 when disabled or free)."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def __repr__(self) -> str:
        return f"RateLimiter(max_qps={self.max_qps})"
