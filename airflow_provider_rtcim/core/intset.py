"""A compact set of int64 values, for deduplicating ids while a listing streams.

The one thing that grows while a user's conversations are streamed is the set of
``ConversationShortId`` values seen so far (it is what makes the listing duplicate-free). A
Python ``set`` of ints costs about 100 bytes an id (a 36-byte int object plus the hash table);
:class:`Int64Set` keeps the ids in an ``array('q')`` open-addressing table, 16 to 32 bytes an
id. A user with a million conversations then costs ~25 MB, not ~100 MB, and ten such users
listed at once fit on a small worker.
"""

from __future__ import annotations

from array import array

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EMPTY = _INT64_MIN  # marks a free slot; the value itself goes to the overflow set
_MIX = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: Fibonacci hashing spreads sequential ids
_MASK64 = 2**64 - 1


class Int64Set:
    """A set of ints with ``add`` (returns whether the value was new), ``in`` and ``len``.

    Values in the int64 range live in a linear-probing table kept at most half full; any
    other int (and ``-2**63``, the free-slot marker) goes to a small ordinary ``set``, so
    every int is accepted. Not thread-safe: one listing, one set.
    """

    __slots__ = ("_bits", "_keys", "_len", "_mask", "_overflow")

    def __init__(self) -> None:
        self._bits = 6
        self._keys = array("q", [_EMPTY]) * (1 << self._bits)
        self._mask = (1 << self._bits) - 1
        self._len = 0
        self._overflow: set[int] = set()

    def _slot(self, value: int) -> int:
        return ((value * _MIX) & _MASK64) >> (64 - self._bits)

    def add(self, value: int) -> bool:
        """Add ``value``; True if it was not in the set before."""
        if value <= _INT64_MIN or value > _INT64_MAX:
            if value in self._overflow:
                return False
            self._overflow.add(value)
            return True
        keys, mask = self._keys, self._mask
        i = ((value * _MIX) & _MASK64) >> (64 - self._bits)  # _slot, inlined: once per item listed
        while True:
            current = keys[i]
            if current == value:
                return False
            if current == _EMPTY:
                keys[i] = value
                self._len += 1
                if self._len * 2 > len(keys):
                    self._grow()
                return True
            i = (i + 1) & mask

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        if value <= _INT64_MIN or value > _INT64_MAX:
            return value in self._overflow
        keys, mask = self._keys, self._mask
        i = self._slot(value)
        while True:
            current = keys[i]
            if current == value:
                return True
            if current == _EMPTY:
                return False
            i = (i + 1) & mask

    def __len__(self) -> int:
        return self._len + len(self._overflow)

    def _grow(self) -> None:
        old = self._keys
        self._bits += 1
        self._keys = array("q", [_EMPTY]) * (1 << self._bits)
        self._mask = (1 << self._bits) - 1
        self._len = 0
        keys, mask = self._keys, self._mask
        for value in old:
            if value != _EMPTY:
                i = self._slot(value)
                while keys[i] != _EMPTY:
                    i = (i + 1) & mask
                keys[i] = value
                self._len += 1

    @property
    def nbytes(self) -> int:
        """Bytes held by the table (the overflow set aside)."""
        return self._keys.itemsize * len(self._keys)
