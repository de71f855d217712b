"""Users' profiles, friends and blacklists, and each conversation's read positions and mute/block
lists: derived deterministically from the seed and the conversation store, plus what the admin
API sets. Pure, no HTTP, no lock (the backend in :mod:`.models` holds its lock around every call).

The rules that keep it consistent with the conversations:

- *registered users* (BatchGetUser finds them): every int user who is an emulator user, a
  member of a conversation (listers, creators, owners, one-to-one partners, generated and added
  members) or added with :meth:`SocialStore.add_user`. Users never deregister. String users
  have no profile: BatchGetUser, ListFriend and GetBlackList name users by int64 only.
- *acquaintances*: two int users are acquainted when both are emulator users within three places
  of each other (in :attr:`~.conversations.ConversationStore.user_ids` order) or when they are
  the two members of a one-to-one conversation. Seeded friendships (symmetric: one decision per
  pair) and blacklist entries (per direction) are drawn among acquaintances only, so every entry
  names a registered user.
- read positions: a member's seeded ReadIndex is drawn from the conversation's generated
  messages and never exceeds its last IndexInConversation; members who read nothing are not
  listed (ReadIndex 0).
- mute list (BlockAction 0): the members whose participant ``BlockTime`` is set (the same value
  ScanConversationParticipantList shows); block list (BlockAction 1): seeded group members plus
  those added. Both only ever list current members.

Times: profile, friend and blacklist times are milliseconds; mute/block times seconds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from airflow_provider_rtcim.emulator.conversations import ConversationStore
from airflow_provider_rtcim.emulator.records import BASE_TIME, FILLER_USER_BASE, PEOPLE, Conversation
from airflow_provider_rtcim.emulator.utils import UserKey, hash64, user_fields

MUTE, BLOCK = 0, 1
BLOCK_ACTIONS = (MUTE, BLOCK)
NEIGHBOURS = 3  # emulator users within this many places of each other are acquainted
DAY_MS = 86_400_000
_TAGS = ("vip", "beta", "cn", "sg", "creator", "新用户")
_ALIASES = ("老同学", "Boss", "表哥", "Gym buddy", "同事 🧑‍💻", "Neighbour")


def _now_ms() -> int:
    return int(time.time() * 1000)


class SocialStore:
    """Profiles, friends, blacklists, read positions and mute/block lists over a conversation store."""

    def __init__(self, store: ConversationStore, seed: int) -> None:
        self.store = store
        self.seed = seed
        self.profiles: dict[int, dict[str, Any]] = {}  # fields set with add_user
        self.friend_edits: dict[tuple[int, int], dict[str, Any] | None] = {}  # (lo, hi) -> fields / None
        self.black_edits: dict[tuple[int, int], dict[str, Any] | None] = {}  # (owner, other) -> ...
        self.read_edits: dict[int, dict[UserKey, int]] = {}  # sid -> member -> ReadIndex
        self.block_edits: dict[int, dict[UserKey, dict[str, Any] | None]] = {}  # sid -> member -> ...
        self.mute_times: dict[int, dict[UserKey, int]] = {}  # sid -> member -> when muted (s)
        self._index_generation = -1
        self._people: set[int] = set()
        self._ordinals: dict[int, Conversation] = {}
        self._partners: dict[int, set[int]] = {}
        self._users: list[int] = []
        self._positions: dict[int, int] = {}

    # ------------------------------------------------------------------ indexes
    def _index(self) -> None:
        """Registered users and one-to-one partners, rebuilt when the conversations changed."""
        store = self.store
        if self._index_generation == store.generation:
            return
        people: set[int] = {k for k in store.users if isinstance(k, int)}
        partners: dict[int, set[int]] = {}
        ordinals: dict[int, Conversation] = {}
        for conv in store.convs.values():
            ordinals[conv.ordinal] = conv
            keys = conv.members if conv.members is not None else conv.core
            people.update(k for k in keys if isinstance(k, int))
            if conv.explicit:
                people.update(k for k in conv.explicit if isinstance(k, int))
            if int(conv.info.get("ConversationType", 1)) == 1 and len(keys) == 2:
                a, b = keys
                if isinstance(a, int) and isinstance(b, int):
                    partners.setdefault(a, set()).add(b)
                    partners.setdefault(b, set()).add(a)
        self._people, self._partners, self._ordinals = people, partners, ordinals
        self._users = store.user_ids
        self._positions = {uid: i for i, uid in enumerate(self._users)}
        self._index_generation = store.generation

    def registered(self, uid: int) -> bool:
        self._index()
        if uid in self._people or uid in self.profiles:
            return True
        ordinal, j = divmod(uid - FILLER_USER_BASE, 10_000_000)
        conv = self._ordinals.get(ordinal) if uid >= FILLER_USER_BASE else None
        return conv is not None and not conv.string_fill and j < conv.fill

    def acquaintances(self, uid: int) -> list[int]:
        self._index()
        users = self._users
        out: set[int] = set(self._partners.get(uid, ()))
        i = self._positions.get(uid)
        if i is not None:
            out.update(users[max(0, i - NEIGHBOURS) : i] + users[i + 1 : i + 1 + NEIGHBOURS])
        out.discard(uid)
        return sorted(out)

    # ------------------------------------------------------------------ profiles
    def profile(self, uid: int, app_id: int) -> dict[str, Any]:
        """BatchGetUser's user record (call :meth:`registered` first)."""
        h = hash64(self.seed, "user", uid)
        created = (BASE_TIME - 86_400 * (1 + (h >> 16) % 365)) * 1000 + (h >> 32) % 1000
        user: dict[str, Any] = {
            "AppId": app_id,
            "UserId": uid,
            "NickName": PEOPLE[h % len(PEOPLE)],
            "Portrait": f"https://example.com/u/{quote(str(uid), safe='')}.png",
            "Ext": {"city": ("北京", "上海", "Singapore")[(h >> 10) % 3]} if (h >> 8) % 3 == 0 else {},
            "CreateTime": created,
            "ModifyTime": created + (h >> 40) % (30 * DAY_MS),
        }
        if (h >> 48) % 2 == 0:
            user["Tags"] = [t for i, t in enumerate(_TAGS) if (h >> (50 + i)) % 3 == 0]
        if (h >> 56) % 3:
            user["IsRobot"] = h % 17 == 0
        user.update(self.profiles.get(uid, {}))
        return user

    def add_user(self, uid: int, fields: Mapping[str, Any]) -> None:
        """Register ``uid`` "now", or update the profile of a registered user (ModifyTime "now")."""
        fields = {k: v for k, v in fields.items() if k not in ("UserId", "AppId")}
        now = _now_ms()
        if not self.registered(uid):
            self.profiles[uid] = {"CreateTime": now, "ModifyTime": now}
        elif fields:
            fields.setdefault("ModifyTime", now)
        self.profiles.setdefault(uid, {}).update(fields)

    # ------------------------------------------------------------------ friends
    def _seeded_friend(self, lo: int, hi: int) -> bool:
        h = hash64(self.seed, "friend", lo, hi)
        return h % 4 != 0 if hi in self._partners.get(lo, ()) else h % 3 != 0

    def _friend_record(self, uid: int, other: int, inbox: int = 0) -> dict[str, Any] | None:
        """``uid``'s friend record for ``other`` in ``inbox``, or None when they are not friends."""
        pair = (min(uid, other), max(uid, other))
        edit = self.friend_edits.get(pair, False)
        if edit is None:
            return None
        if edit is False:
            if inbox != 0 or other not in self.acquaintances(uid) or not self._seeded_friend(*pair):
                return None
            h = hash64(self.seed, "friend", *pair)
            applied = BASE_TIME * 1000 + (h >> 8) % (30 * DAY_MS)
            base: dict[str, Any] = {
                "ApplyTime": applied,
                "CreateTime": applied + (h >> 40) % DAY_MS,
            }
            base["ModifyTime"] = base["CreateTime"] + (h >> 20) % (7 * DAY_MS)
        else:
            if int(edit.get("InboxType", 0)) != inbox:  # type: ignore[union-attr]
                return None
            base = dict(edit)  # type: ignore[arg-type]
            base.pop("InboxType", None)
        d = hash64(self.seed, "alias", uid, other)
        record = {
            "FriendUserId": other,
            "Alias": _ALIASES[(d >> 4) % len(_ALIASES)] if d % 3 == 0 else "",
            "ApplyTime": base.pop("ApplyTime"),
            "CreateTime": base.pop("CreateTime"),
            "ModifyTime": base.pop("ModifyTime"),
        }
        if (d >> 12) % 4 == 0:
            record["Ext"] = {"source": ("qr", "search", "group")[(d >> 16) % 3]}
        record.update(base.pop("sides", {}).get(str(uid), {}))
        record.update(base)
        return record

    def friends(self, uid: int, inbox: int = 0) -> list[dict[str, Any]]:
        """``uid``'s friends, the first one added first (ListFriend order)."""
        others = set(self.acquaintances(uid))
        others.update(b if a == uid else a for a, b in self.friend_edits if uid in (a, b))
        records = [r for o in others if o != uid and (r := self._friend_record(uid, o, inbox)) is not None]
        records.sort(key=lambda r: (r["CreateTime"], r["FriendUserId"]))
        return records

    def add_friend(self, uid: int, other: int, fields: Mapping[str, Any], inbox: int) -> dict[str, Any]:
        """Make ``uid`` and ``other`` friends "now" (both sides); ``fields`` (Alias, Ext) are ``uid``'s side."""
        if uid == other:
            raise ValueError("a user cannot be its own friend")
        now = _now_ms()
        pair = (min(uid, other), max(uid, other))
        side = {k: v for k, v in fields.items() if k not in ("FriendUserId", "UserId")}
        edit = {"ApplyTime": now, "CreateTime": now, "ModifyTime": now, "InboxType": inbox, "sides": {}}
        current = self._friend_record(uid, other, inbox)
        if current is not None:  # already friends: keep the times, update this side
            edit.update({k: current[k] for k in ("ApplyTime", "CreateTime")}, ModifyTime=now)
            old = self.friend_edits.get(pair)
            edit["sides"] = dict(old["sides"]) if old else {}
        edit["sides"][str(uid)] = side
        for key in (uid, other):
            if not self.registered(key):
                self.add_user(key, {})
        self.friend_edits[pair] = edit
        return self._friend_record(uid, other, inbox)  # type: ignore[return-value]

    def remove_friend(self, uid: int, other: int) -> dict[str, Any]:
        pair = (min(uid, other), max(uid, other))
        edit = self.friend_edits.get(pair)
        inbox = int(edit.get("InboxType", 0)) if edit else 0
        record = self._friend_record(uid, other, inbox)
        if record is None:
            raise KeyError(f"{other} is not a friend of {uid}")
        self.friend_edits[pair] = None
        return record

    # ------------------------------------------------------------------ blacklists
    def _black_record(self, uid: int, other: int, inbox: int) -> dict[str, Any] | None:
        edit = self.black_edits.get((uid, other), False)
        if edit is None:
            return None
        h = hash64(self.seed, "black", uid, other)
        if edit is False:
            if inbox != 0 or h % 5 != 0 or other not in self.acquaintances(uid):
                return None
            created = BASE_TIME * 1000 + 31 * DAY_MS + (h >> 8) % (60 * DAY_MS)
            record: dict[str, Any] = {
                "BlackListUserId": other,
                "CreateTime": created,
                "ModifyTime": created + (h >> 32) % DAY_MS,
            }
            if (h >> 40) % 2 == 0:
                record["BlackListUserExt"] = {"reason": ("spam", "骚扰", "other")[(h >> 44) % 3]}
        else:
            if int(edit.get("InboxType", 0)) != inbox:  # type: ignore[union-attr]
                return None
            record = {"BlackListUserId": other, **{k: v for k, v in edit.items() if k != "InboxType"}}  # type: ignore[union-attr]
        friend = self._friend_record(uid, other, inbox)
        if friend is not None:
            record["FriendUserInfo"] = friend
        return record

    def blacklist(self, uid: int, inbox: int = 0) -> list[dict[str, Any]]:
        """``uid``'s blacklist, the entry added last first (GetBlackList order)."""
        others = set(self.acquaintances(uid)) | {b for a, b in self.black_edits if a == uid}
        records = [r for o in others if (r := self._black_record(uid, o, inbox)) is not None]
        records.sort(key=lambda r: (-r["CreateTime"], -r["BlackListUserId"]))
        return records

    def add_to_blacklist(self, uid: int, other: int, fields: Mapping[str, Any], inbox: int) -> dict[str, Any]:
        if uid == other:
            raise ValueError("a user cannot blacklist itself")
        now = _now_ms()
        edit = {"CreateTime": now, "ModifyTime": now, "InboxType": inbox}
        edit.update({k: v for k, v in fields.items() if k not in ("BlackListUserId", "UserId", "InboxType")})
        if not self.registered(other):
            self.add_user(other, {})
        self.black_edits[(uid, other)] = edit
        return self._black_record(uid, other, inbox)  # type: ignore[return-value]

    def remove_from_blacklist(self, uid: int, other: int) -> dict[str, Any]:
        edit = self.black_edits.get((uid, other))
        record = self._black_record(uid, other, int(edit.get("InboxType", 0)) if edit else 0)
        if record is None:
            raise KeyError(f"{other} is not in the blacklist of {uid}")
        self.black_edits[(uid, other)] = None
        return record

    # ------------------------------------------------------------------ read positions
    def read_index_of(self, conv: Conversation, key: UserKey) -> int:
        edits = self.read_edits.get(conv.short_id)
        if edits is not None and key in edits:
            index = edits[key]
        else:
            h = hash64(self.seed, "read", conv.short_id, key)
            index = 0 if h % 4 == 0 or not conv.msg_generated else 1 + (h >> 8) % conv.msg_generated
        return min(index, conv.message_count)

    def read_indexes(self, conv: Conversation) -> list[dict[str, Any]]:
        """GetParticipantReadIndex's items: members who read something, in join order."""
        out = []
        for key in self.store.member_keys(conv):
            index = self.read_index_of(conv, key)
            if index > 0:
                out.append({**user_fields("ParticipantUserId", key), "ReadIndex": index})
        return out

    def set_read_index(self, conv: Conversation, key: UserKey, index: int) -> dict[str, Any]:
        if not self.store.is_member(conv, key):
            raise ValueError(f"{key!r} is not a member of conversation {conv.short_id}")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= conv.message_count:
            raise ValueError(
                f"read_index must be an int between 0 and the last IndexInConversation "
                f"({conv.message_count}), got {index!r}"
            )
        self.read_edits.setdefault(conv.short_id, {})[key] = index
        return {**user_fields("ParticipantUserId", key), "ReadIndex": index}

    # ------------------------------------------------------------------ mute and block lists
    def _block_entry(self, conv: Conversation, key: UserKey, action: int) -> dict[str, Any] | None:
        """``(BlockTime, CreateTime)`` fields of a member on the list, or None."""
        sid = conv.short_id
        h = hash64(self.seed, "block", sid, key)
        joined = conv.joined.get(key, 0) if conv.joined is not None else 0
        if action == MUTE:
            until = self.store.render_participant(conv, key)["BlockTime"]
            if not until:
                return None
            since = self.mute_times.get(sid, {}).get(key, joined + (h >> 8) % 86_400)
            return {"BlockTime": until, "CreateTime": since}
        edit = self.block_edits.get(sid, {}).get(key, False)
        if edit is None:
            return None
        if edit is False:
            group = int(conv.info.get("ConversationType", 1)) != 1
            if not group or h % 29 != 0:
                return None
            since = joined + (h >> 8) % 86_400
            return {"BlockTime": since + 365 * 86_400, "CreateTime": since}
        return dict(edit)  # type: ignore[arg-type]

    def block_list(self, conv: Conversation, action: int) -> list[tuple[UserKey, dict[str, Any]]]:
        """The members on the mute (0) or block (1) list, in join order, with their entry times."""
        out = []
        for key in self.store.member_keys(conv):
            entry = self._block_entry(conv, key, action)
            if entry is not None:
                out.append((key, entry))
        return out

    def render_block(self, conv: Conversation, key: UserKey, entry: Mapping[str, Any]) -> dict[str, Any]:
        part = self.store.render_participant(conv, key)
        return {
            **user_fields("ParticipantUserId", key),
            "NickName": part.get("NickName", ""),
            "AvatarUrl": part["AvatarUrl"],
            "BlockTime": entry["BlockTime"],
            "CreateTime": entry["CreateTime"],
            "Ext": part.get("Ext", {}),
            "Marks": part.get("Marks", []),
        }

    def set_block(self, conv: Conversation, key: UserKey, action: int, until: int | None) -> dict[str, Any]:
        """Mute (0) or block (1) a member "now" until ``until`` (s; default: in 7 days)."""
        if not self.store.is_member(conv, key):
            raise ValueError(f"{key!r} is not a member of conversation {conv.short_id}")
        now = int(time.time())
        if until is None:
            until = now + 7 * 86_400
        if isinstance(until, bool) or not isinstance(until, int) or until <= 0:
            raise ValueError(f"block_time must be a Unix time in seconds > 0, got {until!r}")
        sid = conv.short_id
        if action == MUTE:
            self.store.add_participant(sid, key, {"BlockTime": until})
            self.mute_times.setdefault(sid, {})[key] = now
        else:
            self.block_edits.setdefault(sid, {})[key] = {"BlockTime": until, "CreateTime": now}
        return self.render_block(conv, key, self._block_entry(conv, key, action))  # type: ignore[arg-type]

    def remove_block(self, conv: Conversation, key: UserKey, action: int) -> dict[str, Any]:
        entry = self._block_entry(conv, key, action) if self.store.is_member(conv, key) else None
        if entry is None:
            kind = "muted" if action == MUTE else "blocked"
            raise KeyError(f"{key!r} is not {kind} in conversation {conv.short_id}")
        rendered = self.render_block(conv, key, entry)
        if action == MUTE:
            self.store.add_participant(conv.short_id, key, {"BlockTime": 0})
            self.mute_times.get(conv.short_id, {}).pop(key, None)
        else:
            self.block_edits.setdefault(conv.short_id, {})[key] = None
        return rendered
