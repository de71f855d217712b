"""The fan-out engine: one listing per key, many keys at once, results handed back in key order.

Pure (threads only; no Airflow, no network). The operators give it their keys (any iterable,
streamed) and a ``work(slot, key)`` function; it runs ``work`` on ``max_workers`` threads and
calls ``on_done(slot, key, result)`` on the calling thread strictly in key order. Memory and
open files stay bounded by the workers, not by the keys: a key is taken from the iterable only
when a worker is free and fewer than ``window`` finished results wait for their turn, so a
million keys never sit in memory at once. The first failure stops everything: the other
workers are told to stop (``stop`` is set by the failing worker itself, before the
coordinator wakes), no further key is started, results not yet handed on are given to
``discard``, and the failure is raised.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

K = TypeVar("K")
R = TypeVar("R")


class Cancelled(Exception):
    """Raised inside a worker when the run is stopping (another key failed, or the task is killed)."""


class StoppedError(Exception):
    """The run was stopped from outside (``stop`` set without a failure): the task is being killed."""


class FanOut(Generic[K, R]):
    """Run ``work`` for every key on a bounded pool; see the module docstring.

    :param work: ``work(slot, key) -> result``, on a worker thread; raise :class:`Cancelled`
        when :attr:`stop` is set (check :meth:`check_stop` between pages).
    :param on_done: ``on_done(slot, key, result)``, on the calling thread, in slot order.
    :param discard: ``discard(result)`` for results that will not be handed on (after a failure).
    :param max_workers: threads.
    :param window: the most finished results waiting for an earlier key (default
        ``max(64, 8 * max_workers)``).
    :param on_tick: called on the calling thread every ``tick`` seconds while waiting.
    """

    def __init__(
        self,
        *,
        work: Callable[[int, K], R],
        on_done: Callable[[int, K, R], None],
        discard: Callable[[R], None] = lambda result: None,
        max_workers: int,
        window: int | None = None,
        on_tick: Callable[[], None] | None = None,
        tick: float = 1.0,
        thread_name_prefix: str = "rtcim-list",
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self._work = work
        self._on_done = on_done
        self._discard = discard
        self.max_workers = max_workers
        self.window = window if window is not None else max(64, 8 * max_workers)
        self._on_tick = on_tick
        self._tick = tick
        self._prefix = thread_name_prefix
        self.stop = threading.Event()
        self._failures: list[BaseException] = []
        self._failure_lock = threading.Lock()
        self.keys_started = 0
        self.keys_done = 0
        self.peak_in_flight = 0
        self.peak_waiting = 0

    def check_stop(self) -> None:
        """Raise :class:`Cancelled` when the run is stopping (call it from ``work``)."""
        if self.stop.is_set():
            raise Cancelled

    def fail(self, exc: BaseException) -> None:
        """Record the first real failure and stop every worker."""
        with self._failure_lock:
            if not self._failures:
                self._failures.append(exc)
        self.stop.set()

    def _run_one(self, slot: int, key: K) -> R:
        try:
            self.check_stop()
            return self._work(slot, key)
        except Cancelled:
            raise
        except BaseException as exc:
            self.fail(exc)  # before this future completes: no idle worker starts another key
            raise

    def run(self, keys: Iterable[K]) -> int:
        """Run every key; returns how many were done. Raises the first failure."""
        done_q: queue.SimpleQueue[tuple[int, K, bool, Any]] = queue.SimpleQueue()
        held: dict[int, tuple[K, R]] = {}
        iterator = iter(keys)
        exhausted = False
        next_slot = 0  # the next slot to hand to on_done
        slot = 0  # the next slot to start
        in_flight = 0

        def finished(s: int, k: K, future: Any) -> None:
            exc = future.exception()
            done_q.put((s, k, exc is None, exc if exc is not None else future.result()))

        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix=self._prefix) as pool:
            try:
                while True:
                    while (
                        not exhausted
                        and not self.stop.is_set()
                        and in_flight < self.max_workers
                        and slot - next_slot < self.window
                    ):
                        try:
                            key = next(iterator)
                        except StopIteration:
                            exhausted = True
                            break
                        future = pool.submit(self._run_one, slot, key)
                        future.add_done_callback(lambda f, s=slot, k=key: finished(s, k, f))
                        slot += 1
                        in_flight += 1
                        self.keys_started = slot
                        self.peak_in_flight = max(self.peak_in_flight, in_flight)
                    if in_flight == 0:
                        break
                    try:
                        s, k, ok, value = done_q.get(timeout=self._tick)
                    except queue.Empty:
                        if self._on_tick is not None:
                            self._on_tick()
                        continue
                    in_flight -= 1
                    if not ok:
                        if not isinstance(value, Cancelled):
                            self.fail(value)
                        continue
                    if self.stop.is_set():
                        self._discard(value)
                        continue
                    held[s] = (k, value)
                    self.peak_waiting = max(self.peak_waiting, len(held))
                    while next_slot in held:
                        k2, v2 = held.pop(next_slot)
                        self._on_done(next_slot, k2, v2)
                        next_slot += 1
                        self.keys_done = next_slot
                if self.stop.is_set():
                    raise self._why_stopped()
            except BaseException:
                self.stop.set()
                # drain the workers still running, discarding what they return
                while in_flight > 0:
                    _s, _k, ok, value = done_q.get()
                    in_flight -= 1
                    if ok:
                        self._discard(value)
                for _k, value in held.values():
                    self._discard(value)
                held.clear()
                raise
        return next_slot

    def _why_stopped(self) -> BaseException:
        with self._failure_lock:
            if self._failures:
                return self._failures[0]
        return StoppedError("the listing was stopped (the task is being killed)")


__all__ = ["Cancelled", "FanOut", "StoppedError"]
