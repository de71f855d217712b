"""``locked_cached_property``: built once on first use, even when threads race for it (pure).

The hook's settings and HTTP client and the client's ``requests.Session`` are each built on
first use and shared by every thread. ``functools.cached_property`` does not lock (since
Python 3.12), so two threads could build two sessions; this one does, with one re-entrant
lock per instance (building the hook's client reads its settings: the same thread may come
back in). Reading a built value takes no lock. ``del obj.name`` (or
``obj.__dict__.pop(name)``) forgets it; the next read builds it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")

_LOCK_ATTR = "_lazy_lock"


def _lock_of(obj: Any) -> threading.RLock:
    lock = obj.__dict__.get(_LOCK_ATTR)
    if lock is None:
        # dict.setdefault is atomic: racing threads all get the one lock stored first
        lock = obj.__dict__.setdefault(_LOCK_ATTR, threading.RLock())
    return lock


def lazy_lock(obj: Any) -> threading.RLock:
    """The lock ``obj``'s lazy values are built under (hold it to forget one safely)."""
    return _lock_of(obj)


class locked_cached_property(Generic[T]):
    """A ``cached_property`` whose first computation holds the instance's lock."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, cls: type | None = None) -> locked_cached_property[T]: ...

    @overload
    def __get__(self, obj: object, cls: type | None = None) -> T: ...

    def __get__(self, obj: Any, cls: type | None = None) -> Any:
        if obj is None:
            return self
        cache = obj.__dict__
        try:
            return cache[self.name]
        except KeyError:
            pass
        with _lock_of(obj):
            if self.name not in cache:
                cache[self.name] = self.func(obj)
            return cache[self.name]


__all__ = ["lazy_lock", "locked_cached_property"]
