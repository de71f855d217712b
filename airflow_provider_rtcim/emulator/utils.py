"""Small helpers every part of the emulator shares: the seeded hash and user-id fields. No imports
from the rest of the emulator.

Usage::

    hash64(seed, "m", short_id, index)        # a stable 64-bit int for these parts
    user_fields("Sender", "007")              # {"Sender": 0, "SenderStr": "007"}
    key_of({"OwnerUserId": 0, "OwnerUserIdStr": "007"}, "OwnerUserId")   # "007"
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

UserKey = int | str
"""A user: an ``int`` (an int user, e.g. ``1000001``) or a ``str`` (a string user, e.g. ``"007"``)."""


def hash64(*parts: object) -> int:
    """A stable 64-bit hash of ``parts`` (their ``str`` joined by ``|``): the emulator's only
    source of seeded variation besides :mod:`random`."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def user_fields(name: str, key: UserKey) -> dict[str, Any]:
    """``{name: 7, nameStr: "7"}`` for an int user, ``{name: 0, nameStr: "007"}`` for a string one."""
    if isinstance(key, str):
        return {name: 0, f"{name}Str": key}
    return {name: key, f"{name}Str": str(key)}


def key_of(info: Mapping[str, Any], name: str) -> UserKey | None:
    """The user a record's ``name`` field names: its int, or its ``*Str`` twin when the int is 0."""
    value = info.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and value != 0:
        return value
    text = info.get(f"{name}Str")
    if value in (None, 0) and isinstance(text, str) and text:
        return text
    return None


def check_user_key(key: Any, what: str = "user id") -> UserKey:
    """An int (not bool) or a non-empty str, else ``ValueError``."""
    if isinstance(key, bool) or not isinstance(key, int | str) or key == "":
        raise ValueError(f"{what} must be an int (int user) or a non-empty str (string user), got {key!r}")
    return key


def check_int_user(key: Any, what: str) -> int:
    """An int user id > 0, else ``ValueError`` (for the actions whose fields have no ``*Str`` twin)."""
    if isinstance(key, bool) or not isinstance(key, int) or key <= 0:
        raise ValueError(
            f"{what} must be an int user id > 0, got {key!r}: the API names these users by int64 only "
            "(no *Str field), so string users have no profile, friends or blacklist here"
        )
    return key


def fill_user_field(info: dict[str, Any], name: str, default: UserKey | None) -> None:
    """Complete ``name`` and ``nameStr`` (the int, or 0 plus the string id for a string user)."""
    value, text = info.get(name), info.get(f"{name}Str")
    if isinstance(value, int) and not isinstance(value, bool) and value != 0:
        info.setdefault(f"{name}Str", str(value))
    elif isinstance(text, str) and text:
        info[name] = 0 if value is None else value
    elif value is None and default is not None:
        info.update(user_fields(name, default))
