"""Opaque, validated cursors (GetUserConversations, ScanConversationParticipantList, anomalies).

Usage::

    codec = CursorCodec(salt=42)
    cursor = codec.encode(("user", 1000001), offset=20, page=1)
    codec.decode(("user", 1000001), cursor)   # (20, 1, 0)
    codec.decode(("user", 1000002), cursor)   # None: bound to its listing
"""

from __future__ import annotations

from airflow_provider_rtcim.emulator.utils import hash64

_MASK62 = (1 << 62) - 1
_MULT = 0x2545F4914F6CDD1D & _MASK62 | 1
_MULT_INV = pow(_MULT, -1, 1 << 62)
_XOR = 0x1B873593_5BD1E995 & _MASK62
OFFSET_BITS, PAGE_BITS, FLAG_BITS, CHECK_BITS = 22, 16, 2, 22

FLAG_NORMAL, FLAG_ANOMALY, FLAG_ENDLESS = 0, 1, 2
"""Cursor flags: a normal cursor, one issued by an anomaly, and the endless_empty page counter."""


class CursorCodec:
    """Opaque, validated cursors: a permuted int64 packing (offset, page, flag, checksum).

    The checksum binds a cursor to a scope (e.g. user, app, data type, inbox) and a
    per-emulator salt, so a made-up value, a plain offset or another listing's cursor is
    rejected.
    """

    def __init__(self, salt: int) -> None:
        self.salt = salt

    def _check(self, scope: tuple, offset: int, page: int, flag: int) -> int:
        return hash64(self.salt, scope, offset, page, flag) & ((1 << CHECK_BITS) - 1)

    def encode(self, scope: tuple, offset: int, page: int, flag: int = FLAG_NORMAL) -> int:
        offset &= (1 << OFFSET_BITS) - 1
        page = min(page, (1 << PAGE_BITS) - 1)
        packed = offset
        packed = (packed << PAGE_BITS) | page
        packed = (packed << FLAG_BITS) | flag
        packed = (packed << CHECK_BITS) | self._check(scope, offset, page, flag)
        value = ((packed * _MULT) & _MASK62) ^ _XOR
        return value or 1  # never 0 (the start) and never negative

    def decode(self, scope: tuple, cursor: int) -> tuple[int, int, int] | None:
        """``(offset, page, flag)`` or None when the cursor is not one we issued for ``scope``."""
        if cursor <= 0 or cursor > _MASK62:
            return None
        packed = ((cursor ^ _XOR) * _MULT_INV) & _MASK62
        check = packed & ((1 << CHECK_BITS) - 1)
        packed >>= CHECK_BITS
        flag = packed & ((1 << FLAG_BITS) - 1)
        packed >>= FLAG_BITS
        page = packed & ((1 << PAGE_BITS) - 1)
        offset = packed >> PAGE_BITS
        if check != self._check(scope, offset, page, flag):
            return None
        return offset, page, flag

    def encode_counter(self, scope: tuple, n: int) -> int:
        """The endless_empty anomaly's cursor for page ``n`` (valid for 2**38 pages)."""
        return self.encode(scope, n >> PAGE_BITS, n & ((1 << PAGE_BITS) - 1), FLAG_ENDLESS)

    @staticmethod
    def counter_of(offset: int, page: int) -> int:
        return (offset << PAGE_BITS) | page
