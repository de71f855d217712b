"""The emulator's data: generated or loaded conversations, listing orders and opaque cursors.

Pure Python, no I/O except :func:`load_data` reading a JSON file. Not thread-safe on its
own: the server holds one lock around every :class:`ConversationStore` call.

Data file / dict format (``Emulator(data=...)`` or ``--data-file``)::

    {
      "app_ids": [100001],                       # optional; default: the emulator's app ids
      "users": {
        "1000001": [                             # user id (string or int key)
          {"ConversationShortId": 7000000000000000001,   # required, int64
           "ConversationType": 1,                # optional (default 1)
           "CreateTime": 1700000000,             # optional (default: after the previous one)
           "ModifyTime": 1700000100,             # optional (default: CreateTime)
           "InboxType": 0,                       # optional (default 0)
           "AppId": 100001,                      # optional (default: first app id)
           "Name": "...", "Ext": {"k": "v"}, "MemberCount": 2, ...}   # anything else kept verbatim
        ]
      }
    }

Missing ``ConversationId``, ``CreatorUserId`` and ``OwnerUserId`` are filled in (the
user id) along with their ``*Str`` twins. Unknown fields are served as given.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
from collections.abc import Iterable, Mapping
from typing import Any

SHORT_ID_BASE = 7_000_000_000_000_000_000
"""Generated ``ConversationShortId`` values are ``SHORT_ID_BASE + n`` (well above 2**53)."""
USER_ID_BASE = 1_000_000
"""Generated participant user ids are ``USER_ID_BASE + 1``, ``+ 2``, ..."""
BASE_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z: generated times are fixed, not "now"

LIVE_GROUP = 100
DATA_TYPES = (0, 1, 2)

_GROUP_NAMES = [
    "产品讨论群",
    "周末爬山 ⛰️",
    "Backend on-call 🚨",
    "家人们 👨‍👩‍👧",
    "读书会 📚",
    "Design review",
    "深夜食堂 🍜",
    "Release train 🚂",
    "羽毛球小分队 🏸",
    "Ωmega testers",
]
_LIVE_NAMES = ["直播间 🎤", "Live Q&A 🎥", "新品发布会 🚀", "音乐现场 🎸", "Coding live 💻"]
_PEOPLE = ["张伟", "王芳", "李娜", "Alex", "María", "Søren", "小明 😀", "Zoë", "陈静", "Ivan"]


def _hash64(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _add_str_twins(conv: dict[str, Any]) -> None:
    for key in ("CreatorUserId", "OwnerUserId", "OtherUserId"):
        if key in conv and conv[key] is not None and f"{key}Str" not in conv:
            conv[f"{key}Str"] = str(conv[key])


def generate(
    *, users: int, conversations_per_user: int, seed: int, app_id: int
) -> dict[int, list[dict[str, Any]]]:
    """Deterministic data: ``users`` users (ids ``1000001``...), each with its own conversations.

    About 1 in 9 conversations is in inbox 1 (the rest in inbox 0); types are mixed one-to-one
    (1), group (2) and live group (100), some of which the user created (DataType 2).
    """
    rng = random.Random(seed)
    out: dict[int, list[dict[str, Any]]] = {}
    serial = 0
    for u in range(users):
        uid = USER_ID_BASE + u + 1
        convs: list[dict[str, Any]] = []
        t = BASE_TIME + rng.randrange(0, 3600)
        for i in range(conversations_per_user):
            serial += 1
            t += rng.randrange(60, 86_400)
            kind = rng.choices([1, 2, LIVE_GROUP], weights=[40, 35, 25])[0]
            short_id = SHORT_ID_BASE + serial * 1_000 + rng.randrange(1_000)
            inbox = 1 if i % 9 == 8 else 0
            conv: dict[str, Any] = {
                "AppId": app_id,
                "ConversationShortId": short_id,
                "ConversationType": kind,
                "CreateTime": t,
                "ModifyTime": t + rng.randrange(0, 60 * 86_400),
                "InboxType": inbox,
                "Status": 1 if rng.random() < 0.08 else 0,
            }
            if kind == 1:
                other = rng.randrange(10_000_000_000, 99_999_999_999)
                creator = rng.choice([uid, other])
                conv.update(
                    ConversationId=f"0:1:{min(uid, other)}:{max(uid, other)}",
                    CreatorUserId=creator,
                    OwnerUserId=creator,
                    OtherUserId=other,
                    Name=rng.choice(_PEOPLE),
                    MemberCount=2,
                )
            else:
                creator = uid if rng.random() < 0.5 else rng.randrange(10_000_000_000, 99_999_999_999)
                owner = creator if rng.random() < 0.8 else rng.randrange(10_000_000_000, 99_999_999_999)
                names = _LIVE_NAMES if kind == LIVE_GROUP else _GROUP_NAMES
                conv.update(
                    ConversationId=f"{kind}:{short_id:x}",
                    CreatorUserId=creator,
                    OwnerUserId=owner,
                    Name=f"{rng.choice(names)} #{i + 1}",
                    Description=rng.choice(["", "每周同步", "Weekly sync ✅", "公告见群文件"]),
                    Notice=rng.choice(["", "请文明发言 🙏", "Be kind."]),
                    AvatarUrl=f"https://example.com/avatar/{short_id}.png",
                    MemberCount=rng.randrange(3, 500) if kind == 2 else rng.randrange(50, 100_000),
                )
                if kind == LIVE_GROUP:
                    conv["OnlineCount"] = rng.randrange(0, conv["MemberCount"])
            if rng.random() < 0.5:
                conv["Ext"] = {"source": rng.choice(["app", "web", "小程序"]), "seq": str(i)}
            _add_str_twins(conv)
            convs.append(conv)
        out[uid] = convs
    return out


def load_data(data: Mapping[str, Any] | str | os.PathLike[str]) -> tuple[list[int], dict[int, list[dict]]]:
    """Read the data format documented above from a dict or a JSON file path.

    Returns ``(app_ids, {user_id: [conversation, ...]})``; ``app_ids`` may be empty.
    Raises ``ValueError`` naming the problem when the data is malformed.
    """
    if not isinstance(data, Mapping):
        with open(data, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, Mapping):
            raise ValueError("emulator data must be a JSON object with 'users'")
    app_ids = [int(a) for a in data.get("app_ids", [])]
    raw_users = data.get("users")
    if not isinstance(raw_users, Mapping):
        raise ValueError("emulator data needs 'users': {user_id: [ConversationInfo, ...]}")
    users: dict[int, list[dict]] = {}
    for key, convs in raw_users.items():
        try:
            uid = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"emulator data: user id {key!r} is not an integer") from None
        if not isinstance(convs, list):
            raise ValueError(f"emulator data: users[{key!r}] must be a list of ConversationInfo objects")
        users[uid] = [dict(c) for c in convs]
    return app_ids, users


# ----------------------------------------------------------------------------- cursors
_MASK62 = (1 << 62) - 1
_MULT = 0x2545F4914F6CDD1D & _MASK62 | 1
_MULT_INV = pow(_MULT, -1, 1 << 62)
_XOR = 0x1B873593_5BD1E995 & _MASK62
_OFFSET_BITS, _PAGE_BITS, _FLAG_BITS, _CHECK_BITS = 22, 16, 2, 22


class CursorCodec:
    """Opaque, validated cursors: a permuted int64 packing (offset, page, flag, checksum).

    The checksum binds a cursor to (user, app, data type, inbox) and a per-emulator salt,
    so a made-up value, a plain offset or another listing's cursor is rejected.
    """

    def __init__(self, salt: int) -> None:
        self.salt = salt

    def _check(self, scope: tuple, offset: int, page: int, flag: int) -> int:
        return _hash64(self.salt, scope, offset, page, flag) & ((1 << _CHECK_BITS) - 1)

    def encode(self, scope: tuple, offset: int, page: int, flag: int = 0) -> int:
        offset &= (1 << _OFFSET_BITS) - 1
        page = min(page, (1 << _PAGE_BITS) - 1)
        packed = offset
        packed = (packed << _PAGE_BITS) | page
        packed = (packed << _FLAG_BITS) | flag
        packed = (packed << _CHECK_BITS) | self._check(scope, offset, page, flag)
        value = ((packed * _MULT) & _MASK62) ^ _XOR
        return value or 1  # never 0 (the start) and never negative

    def decode(self, scope: tuple, cursor: int) -> tuple[int, int, int] | None:
        """``(offset, page, flag)`` or None when the cursor is not one we issued for ``scope``."""
        if cursor <= 0 or cursor > _MASK62:
            return None
        packed = ((cursor ^ _XOR) * _MULT_INV) & _MASK62
        check = packed & ((1 << _CHECK_BITS) - 1)
        packed >>= _CHECK_BITS
        flag = packed & ((1 << _FLAG_BITS) - 1)
        packed >>= _FLAG_BITS
        page = packed & ((1 << _PAGE_BITS) - 1)
        offset = packed >> _PAGE_BITS
        if check != self._check(scope, offset, page, flag):
            return None
        return offset, page, flag


# ----------------------------------------------------------------------------- the store
def _sort_key(data_type: int):
    if data_type == 0:
        return lambda c: (-int(c.get("ModifyTime", 0)), -int(c["ConversationShortId"]))
    if data_type == 2:
        return lambda c: (-int(c.get("CreateTime", 0)), -int(c["ConversationShortId"]))
    return lambda c: (int(c.get("CreateTime", 0)), int(c["ConversationShortId"]))


class ConversationStore:
    """Every user's conversations, with cached listing orders (invalidated on change)."""

    def __init__(self, users: Mapping[int, Iterable[Mapping[str, Any]]], *, default_app_id: int) -> None:
        self.default_app_id = default_app_id
        self._users: dict[int, dict[int, dict[str, Any]]] = {}
        self._cache: dict[tuple[int, int, int, int], list[dict[str, Any]]] = {}
        self._next_serial = 0
        self._clock = BASE_TIME
        for uid, convs in users.items():
            self._users.setdefault(int(uid), {})
            for conv in convs:
                self.add(int(uid), dict(conv))

    # -- reading
    @property
    def user_ids(self) -> list[int]:
        return list(self._users)

    def listing(self, uid: int, app_id: int, data_type: int, inbox_type: int) -> list[dict[str, Any]]:
        """The conversations ``uid`` sees, in API order (cached; do not mutate the result)."""
        key = (uid, app_id, data_type, inbox_type)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        convs = [
            c
            for c in self._users.get(uid, {}).values()
            if int(c.get("InboxType", 0)) == inbox_type and int(c.get("AppId", self.default_app_id)) == app_id
        ]
        if data_type == 2:
            convs = [
                c
                for c in convs
                if int(c.get("ConversationType", 0)) == LIVE_GROUP and c.get("CreatorUserId") == uid
            ]
        convs.sort(key=_sort_key(data_type))
        self._cache[key] = convs
        return convs

    def get(self, uid: int, short_id: int) -> dict[str, Any] | None:
        return self._users.get(uid, {}).get(short_id)

    # -- writing
    def _invalidate(self, uid: int) -> None:
        for key in [k for k in self._cache if k[0] == uid]:
            del self._cache[key]

    def add(self, uid: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Add (or replace, same ``ConversationShortId``) one conversation; fills defaults."""
        conv = dict(fields)
        self._next_serial += 1
        if conv.get("ConversationShortId") is None:
            existing = [sid for convs in self._users.values() for sid in convs]
            conv["ConversationShortId"] = max([SHORT_ID_BASE + 10**12, *existing]) + 1
        short_id = conv["ConversationShortId"]
        if isinstance(short_id, bool) or not isinstance(short_id, int):
            raise ValueError("ConversationShortId must be an integer")
        conv.setdefault("AppId", self.default_app_id)
        conv.setdefault("ConversationType", 1)
        conv.setdefault("InboxType", 0)
        if conv.get("CreateTime") is None:
            conv["CreateTime"] = self._clock + 1
        conv.setdefault("ModifyTime", conv["CreateTime"])
        self._clock = max(self._clock, int(conv["CreateTime"]), int(conv["ModifyTime"]))
        conv.setdefault("ConversationId", str(short_id))
        conv.setdefault("CreatorUserId", uid)
        conv.setdefault("OwnerUserId", conv["CreatorUserId"])
        _add_str_twins(conv)
        self._users.setdefault(uid, {})[short_id] = conv
        self._invalidate(uid)
        return conv

    def add_new(self, uid: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Add a conversation created "now": after every other one in creation and activity order."""
        fields = dict(fields)
        if fields.get("CreateTime") is None:
            fields["CreateTime"] = self._clock + 1
        fields.setdefault("ModifyTime", max(self._clock + 1, int(fields["CreateTime"])))
        return self.add(uid, fields)

    def remove(self, uid: int, short_id: int | None = None) -> dict[str, Any]:
        """Remove one conversation (default: the user's newest by creation); KeyError if none."""
        convs = self._users.get(uid)
        if not convs:
            raise KeyError(f"user {uid} has no conversations")
        if short_id is None:
            short_id = max(convs.values(), key=_sort_key(1))["ConversationShortId"]
        if short_id not in convs:
            raise KeyError(f"user {uid} has no conversation {short_id}")
        conv = convs.pop(short_id)
        self._invalidate(uid)
        return conv

    def touch(self, uid: int, short_id: int) -> None:
        """Make a conversation the most recently active one (ModifyTime = now-ish, increasing)."""
        conv = self._users[uid][short_id]
        self._clock += 1
        conv["ModifyTime"] = self._clock
        self._invalidate(uid)

    def snapshot(self, uid: int, app_id: int, data_type: int, inbox_type: int) -> list[dict[str, Any]]:
        return copy.deepcopy(self.listing(uid, app_id, data_type, inbox_type))
