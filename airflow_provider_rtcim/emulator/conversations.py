"""The conversation store: users, conversations, members and messages. Pure, no HTTP, no lock.

One :class:`Conversation` record per ``ConversationShortId``, shared by every user who lists
it (its *listers*, who are always among its members). Members and messages are generated
lazily and deterministically, so a conversation with 100,000 messages costs a few integers
until it is read:

- members: the conversation's *core* members (creator, owner, listers, the other user of a
  one-to-one) then ``fill`` generated ones; the list of user keys is built on first access
  and only then kept (plus the fields given to :meth:`ConversationStore.add_participant`);
- messages: ``msg_generated`` messages computed from (seed, ConversationShortId, index) on
  demand, followed by the stored ones (added at run time or loaded from a data file).

A *user key* is an ``int`` (an int user, e.g. ``1000001``) or a ``str`` (a string user, e.g.
``"007"``): ``"123"`` and ``123`` are different users. Not thread-safe on its own: the
backend (:mod:`.models`) holds one lock around every call.

Usage (the :class:`~airflow_provider_rtcim.emulator.Emulator` does this for you)::

    store = ConversationStore(default_app_id=100001, seed=0)
    conv = store.add_conversation(1000001, {"ConversationType": 2, "Name": "新群"})
    sid = conv["ConversationShortId"]
    store.add_participant(sid, "007")
    store.add_message(sid, sender="007", content="你好 👋")
    store.participants(sid), store.messages(sid)
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from airflow_provider_rtcim.emulator.records import (
    BASE_TIME,
    LIVE_GROUP,
    MARKS,
    MAX_MEMBERS,
    MAX_MESSAGES,
    MESSAGE_ID_BASE,
    MESSAGE_INDEX_SPAN,
    MSG_TYPES,
    PEOPLE,
    SHORT_ID_BASE,
    TEXTS,
    USER_FIELDS,
    Conversation,
    complete_info,
    sort_key,
)
from airflow_provider_rtcim.emulator.utils import (
    UserKey,
    check_user_key,
    fill_user_field,
    hash64,
    key_of,
    user_fields,
)


class ConversationStore:
    """Every conversation (one record per id), who lists which, and the ground-truth queries."""

    def __init__(self, *, default_app_id: int, seed: int = 0) -> None:
        self.default_app_id = default_app_id
        self.seed = seed
        self.users: dict[UserKey, dict[int, None]] = {}  # user -> the conversation ids it lists
        self.convs: dict[int, Conversation] = {}
        self._cache: dict[UserKey, dict[tuple[int, int, int], list[dict[str, Any]]]] = {}
        self._clock = BASE_TIME
        self._max_sid = SHORT_ID_BASE + 10**12
        self._ordinals = 0
        self.generation = 0  # bumped by every change of conversations or members (for derived caches)

    # ------------------------------------------------------------------ building
    def add_record(
        self,
        info: dict[str, Any],
        listers: Iterable[UserKey],
        *,
        core: Iterable[UserKey] = (),
        fill: int = 0,
        string_fill: bool | None = None,
        messages: int = 0,
        explicit: Mapping[UserKey, Mapping[str, Any]] | None = None,
        stored_messages: Iterable[Mapping[str, Any]] | None = None,
    ) -> Conversation:
        """Register a new conversation (``info`` must be complete); its listers join it first."""
        sid = info["ConversationShortId"]
        if sid in self.convs:
            raise ValueError(f"conversation {sid} already exists")
        self._ordinals += 1
        self.generation += 1
        conv = Conversation(info, self._ordinals)
        core_keys = list(dict.fromkeys(core))
        listers = list(listers)
        for key in listers:
            if key in conv.listers:
                continue
            conv.listers.append(key)
            self.users.setdefault(key, {})[sid] = None
            self._cache.pop(key, None)
            if key not in core_keys:
                core_keys.append(key)
        conv.core = tuple(core_keys)
        conv.fill = max(0, int(fill))
        if string_fill is None:
            string_fill = bool(conv.core) and isinstance(conv.core[0], str)
        conv.string_fill = string_fill
        conv.explicit = {k: dict(v) for k, v in explicit.items()} if explicit else None
        conv.msg_generated = int(messages)
        self.convs[sid] = conv
        self._max_sid = max(self._max_sid, sid)
        self._clock = max(self._clock, int(info.get("CreateTime", 0)), int(info.get("ModifyTime", 0)))
        for raw in stored_messages or ():
            self._append_message(conv, dict(raw), now_ms=None)
        return conv

    def add_lister(self, sid: int, key: UserKey) -> None:
        """``key`` lists conversation ``sid`` too (and is one of its members)."""
        conv = self.convs[sid]
        if key in conv.listers:
            return
        self.generation += 1
        conv.listers.append(key)
        self.users.setdefault(key, {})[sid] = None
        self._cache.pop(key, None)
        if conv.members is None:
            if key not in conv.core:
                if conv.fill == 0:
                    conv.core = (*conv.core, key)
                else:
                    self._join(conv, key, {})
        elif key not in conv.joined:  # type: ignore[operator]
            self._join(conv, key, {})
        self._sync_member_count(conv)

    # ------------------------------------------------------------------ conversations
    @property
    def user_ids(self) -> list[int]:
        return [k for k in self.users if isinstance(k, int)]

    @property
    def string_user_ids(self) -> list[str]:
        return [k for k in self.users if isinstance(k, str)]

    def listing(self, uid: UserKey, app_id: int, data_type: int, inbox_type: int) -> list[dict[str, Any]]:
        """The conversations ``uid`` sees, in API order (cached; do not mutate the result)."""
        per_user = self._cache.get(uid)
        if per_user is not None:
            cached = per_user.get((app_id, data_type, inbox_type))
            if cached is not None:
                return cached
        default_app = self.default_app_id
        infos = [
            info
            for info in (self.convs[sid].info for sid in self.users.get(uid, ()))
            if int(info.get("InboxType", 0)) == inbox_type and int(info.get("AppId", default_app)) == app_id
        ]
        if data_type == 2:
            infos = [
                c
                for c in infos
                if int(c.get("ConversationType", 0)) == LIVE_GROUP and key_of(c, "CreatorUserId") == uid
            ]
        infos.sort(key=sort_key(data_type))
        self._cache.setdefault(uid, {})[(app_id, data_type, inbox_type)] = infos
        return infos

    def snapshot(self, uid: UserKey, app_id: int, data_type: int, inbox_type: int) -> list[dict[str, Any]]:
        return copy.deepcopy(self.listing(uid, app_id, data_type, inbox_type))

    def get(self, sid: int, app_id: int | None = None) -> Conversation | None:
        """The record, or None (also when it belongs to another AppId than ``app_id``)."""
        conv = self.convs.get(sid)
        if conv is None or (app_id is not None and self.app_of(conv) != app_id):
            return None
        return conv

    def app_of(self, conv: Conversation) -> int:
        return int(conv.info.get("AppId", self.default_app_id))

    def conversation_ids(self, app_id: int | None = None) -> list[int]:
        return sorted(s for s, c in self.convs.items() if app_id is None or self.app_of(c) == app_id)

    def batch(self, short_ids: Iterable[int], app_id: int, skip_member_count: bool) -> list[dict[str, Any]]:
        """What BatchGetConversations returns: known, not dissolved, in request order, once each."""
        out = []
        for sid in dict.fromkeys(short_ids):
            conv = self.get(sid, app_id)
            if conv is None or conv.info.get("Status") == 1:
                continue
            info = dict(conv.info)
            if skip_member_count:
                info.pop("MemberCount", None)
            out.append(info)
        return out

    def _invalidate(self, conv: Conversation) -> None:
        for key in conv.listers:
            self._cache.pop(key, None)

    def add_conversation(self, uid: UserKey, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Add a conversation ``uid`` lists, created and active "now" (after every other one).

        With the ``ConversationShortId`` of an existing conversation: ``uid`` lists it too and
        ``fields`` update it (ModifyTime "now" unless given).
        """
        check_user_key(uid)
        fields = dict(fields)
        sid = fields.get("ConversationShortId")
        if sid is not None and (isinstance(sid, bool) or not isinstance(sid, int)):
            raise ValueError("ConversationShortId must be an integer")
        if sid is not None and sid in self.convs:
            conv = self.convs[sid]
            self.generation += 1
            fields.setdefault("ModifyTime", max(int(time.time()), self._clock + 1))
            conv.info.update(fields)
            for name in USER_FIELDS:
                if name in fields or f"{name}Str" in fields:
                    fill_user_field(conv.info, name, None)
            self._clock = max(self._clock, int(conv.info["ModifyTime"]))
            self.add_lister(sid, uid)
            self._invalidate(conv)
            return conv.info
        info = fields
        if sid is None:
            info["ConversationShortId"] = sid = self._max_sid + 1
        now = max(int(time.time()), self._clock + 1)  # after every seeded time, like its messages
        if info.get("CreateTime") is None:
            info["CreateTime"] = now
        info.setdefault("ModifyTime", max(now, int(info["CreateTime"])))
        kind = info.setdefault("ConversationType", 1)
        if kind == 1:  # a one-to-one: two members, the other one named like seeded ones
            other = key_of(info, "OtherUserId")
            if other is None:
                other = self._new_partner(uid, sid)
                info.update(user_fields("OtherUserId", other))
            low, high = sorted([str(uid), str(other)]) if isinstance(uid, str) else sorted([uid, other])  # type: ignore[type-var]
            info.setdefault("ConversationId", f"0:1:{low}:{high}")
        elif isinstance(kind, int) and not isinstance(kind, bool):
            info.setdefault("ConversationId", f"{kind}:{sid:x}")
        complete_info(info, uid, self.default_app_id)
        core = [k for k in (key_of(info, "CreatorUserId"), key_of(info, "OwnerUserId")) if k is not None]
        other = key_of(info, "OtherUserId")
        core += [uid] + ([other] if other is not None else [])
        core = list(dict.fromkeys(core))
        fill = 0
        if isinstance(info.get("MemberCount"), int):
            fill = max(0, min(int(info["MemberCount"]), MAX_MEMBERS) - len(core))
        else:
            info["MemberCount"] = len(core)
        self.add_record(info, [uid], core=core, fill=fill, string_fill=isinstance(uid, str))
        return info

    def _new_partner(self, uid: UserKey, sid: int) -> UserKey:
        """The other user of an added one-to-one: an id like the seeded partners' (not ``uid``)."""
        n = 10_000_000_000 + hash64(self.seed, "partner", sid) % 89_999_999_999
        return f"u_{n:x}" if isinstance(uid, str) else n

    def remove_conversation(self, uid: UserKey, sid: int | None = None) -> dict[str, Any]:
        """``uid`` stops listing one conversation (default: its newest by creation); KeyError if none.

        The record goes away with its last lister; the user stays one of its members otherwise.
        """
        listed = self.users.get(uid)
        if not listed:
            raise KeyError(f"user {uid!r} has no conversations")
        if sid is None:
            sid = max((self.convs[s].info for s in listed), key=sort_key(1))["ConversationShortId"]
        if sid not in listed:
            raise KeyError(f"user {uid!r} has no conversation {sid}")
        conv = self.convs[sid]
        self.generation += 1
        del listed[sid]
        conv.listers.remove(uid)
        self._cache.pop(uid, None)
        if not conv.listers:
            del self.convs[sid]
        return conv.info

    def touch(self, sid: int) -> None:
        """Make a conversation the most recently active one (ModifyTime = now-ish, increasing)."""
        conv = self.convs[sid]
        self._clock += 1
        conv.info["ModifyTime"] = self._clock
        self._invalidate(conv)

    # ------------------------------------------------------------------ members
    def member_keys(self, conv: Conversation) -> list[UserKey]:
        """The members' keys in join order (built on first access)."""
        if conv.members is None:
            keys: list[UserKey] = []
            joined: dict[UserKey, int] = {}
            base = int(conv.info.get("CreateTime", BASE_TIME))
            for j in range(conv.generated_member_count):
                key = conv.generated_member(j)
                if key in joined:
                    continue
                keys.append(key)
                given = (conv.explicit or {}).get(key, {}).get("CreateTime")
                joined[key] = int(given) if isinstance(given, int) else base + 60 * j
            conv.members, conv.joined = keys, joined
        return conv.members

    def is_member(self, conv: Conversation, key: UserKey) -> bool:
        self.member_keys(conv)
        return key in conv.joined  # type: ignore[operator]

    def online_keys(self, conv: Conversation, mark: str | None) -> list[UserKey]:
        """Live groups: the first ``OnlineCount`` members (join order); with ``mark``, those carrying it."""
        cached = conv.online_cache.get(mark) if conv.online_cache is not None else None
        if cached is not None:
            return cached
        if int(conv.info.get("ConversationType", 0)) != LIVE_GROUP:
            keys: list[UserKey] = []
        else:
            members = self.member_keys(conv)
            keys = members[: max(0, int(conv.info.get("OnlineCount") or 0))]
            if mark is not None:
                keys = [k for k in keys if mark in self.render_participant(conv, k)["Marks"]]
        if conv.online_cache is None:
            conv.online_cache = {}
        conv.online_cache[mark] = keys
        return keys

    def render_participant(self, conv: Conversation, key: UserKey, only_ids: bool = False) -> dict[str, Any]:
        sid = conv.short_id
        if only_ids:
            return {"ConversationShortId": sid, **user_fields("ParticipantUserId", key)}
        info = conv.info
        h = hash64(self.seed, "p", sid, key)
        owner, creator = key_of(info, "OwnerUserId"), key_of(info, "CreatorUserId")
        group = int(info.get("ConversationType", 1)) != 1
        role = 1 if key == owner else (2 if group and h % 11 == 0 else 0)
        joined = conv.joined[key] if conv.joined is not None and key in conv.joined else 0
        part: dict[str, Any] = {
            "ConversationShortId": sid,
            **user_fields("ParticipantUserId", key),
            "Role": role,
            **user_fields("Operator", creator if creator is not None and key != creator else key),
            "AvatarUrl": f"https://example.com/u/{quote(str(key), safe='')}.png",
        }
        if h % 3:
            part["NickName"] = PEOPLE[(h >> 4) % len(PEOPLE)]
        part["CreateTime"] = joined
        part["BlockTime"] = joined + 7 * 86_400 if group and h % 23 == 0 else 0
        part["Ext"] = {"title": "版主 🛡️"} if role == 2 else {}
        part["Level"] = (h >> 8) % 5
        part["Marks"] = [m for i, m in enumerate(MARKS) if (h >> (16 + 4 * i)) % (3 + 2 * i) == 0]
        part["Status"] = 0
        extra = conv.explicit.get(key) if conv.explicit else None
        if extra:
            part.update(extra)
        return part

    def participants(self, sid: int, reverse: bool = False) -> list[dict[str, Any]]:
        conv = self.convs.get(sid)
        if conv is None:
            return []
        keys = self.member_keys(conv)
        return [self.render_participant(conv, k) for k in (reversed(keys) if reverse else keys)]

    def _join(self, conv: Conversation, key: UserKey, fields: Mapping[str, Any]) -> None:
        members = self.member_keys(conv)
        last = max(conv.joined.values(), default=0)  # type: ignore[union-attr]
        given = fields.get("CreateTime")
        joined = int(given) if isinstance(given, int) else max(int(time.time()), last + 1)
        members.append(key)
        self.generation += 1
        conv.joined[key] = joined  # type: ignore[index]
        if fields:
            conv.member_fields(key).update(fields)
        conv.changed()

    def _sync_member_count(self, conv: Conversation) -> None:
        if "MemberCount" in conv.info:
            count = len(conv.members) if conv.members is not None else conv.generated_member_count
            conv.info["MemberCount"] = count
            if "OnlineCount" in conv.info:
                conv.info["OnlineCount"] = min(int(conv.info["OnlineCount"] or 0), count)

    def add_participant(self, sid: int, key: UserKey, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Add a member (or update the fields of one); a known user also lists the conversation."""
        check_user_key(key)
        conv = self.convs.get(sid)
        if conv is None:
            raise KeyError(f"no conversation {sid}")
        fields = {k: v for k, v in fields.items() if k not in ("ParticipantUserId", "ParticipantUserIdStr")}
        if self.is_member(conv, key):
            if fields:
                conv.member_fields(key).update(fields)
                conv.changed()
        else:
            self._join(conv, key, fields)
        if key in self.users and key not in conv.listers:
            self.add_lister(sid, key)
        self._sync_member_count(conv)
        return self.render_participant(conv, key)

    def remove_participant(self, sid: int, key: UserKey) -> dict[str, Any]:
        """Remove a member; if it listed the conversation, it no longer does. KeyError if absent."""
        conv = self.convs.get(sid)
        if conv is None:
            raise KeyError(f"no conversation {sid}")
        if not self.is_member(conv, key):
            raise KeyError(f"{key!r} is not a member of conversation {sid}")
        part = self.render_participant(conv, key)
        self.generation += 1
        conv.members.remove(key)  # type: ignore[union-attr]
        del conv.joined[key]  # type: ignore[union-attr]
        if conv.explicit:
            conv.explicit.pop(key, None)
        conv.changed()
        if key in conv.listers:
            conv.listers.remove(key)
            self.users[key].pop(sid, None)
            self._cache.pop(key, None)
        self._sync_member_count(conv)
        return part

    # ------------------------------------------------------------------ messages
    def _generated_time_ms(self, conv: Conversation, index: int, h: int) -> int:
        return int(conv.info.get("CreateTime", BASE_TIME)) * 1000 + index * 45_000 + (h >> 20) % 30_000

    def message_id(self, conv: Conversation, index: int) -> int:
        return MESSAGE_ID_BASE + conv.ordinal * MESSAGE_INDEX_SPAN + index

    def _msg_type(self, sid: int, index: int) -> int:
        return MSG_TYPES[hash64(self.seed, "m", sid, index) % len(MSG_TYPES)]

    def generated_message(self, conv: Conversation, index: int) -> dict[str, Any]:
        """Message ``index`` (1-based) of the lazily generated ones, computed from the seed."""
        info, sid = conv.info, conv.short_id
        h = hash64(self.seed, "m", sid, index)
        mtype = MSG_TYPES[h % len(MSG_TYPES)]
        count = conv.generated_member_count
        sender = conv.generated_member((h >> 8) % min(count, 64)) if count else 0
        text = TEXTS[(h >> 12) % len(TEXTS)]
        if mtype == 10001:
            content: dict[str, Any] = {"text": f"{text} #{index}"}
        elif mtype == 10012:
            content = {"type": "card", "title": f"分享卡片 {index} 🎁", "data": {"n": index}}
        else:
            content = {
                "url": f"https://example.com/media/{sid}/{index}",
                "name": f"文件-{index}",
                "size": h % 10**6,
            }
        msg: dict[str, Any] = {
            "AppId": int(info.get("AppId", self.default_app_id)),
            "ConversationShortId": sid,
            "ConversationType": int(info.get("ConversationType", 1)),
            "MessageId": self.message_id(conv, index),
            "IndexInConversation": index,
            "Content": json.dumps(content, ensure_ascii=False, separators=(",", ":")),
            "MsgType": mtype,
            **user_fields("Sender", sender),
            "Status": 0,
            "CreateTime": self._generated_time_ms(conv, index, h),
            "Ext": {"client": ("ios", "android", "web")[(h >> 40) % 3]} if (h >> 36) % 4 == 0 else {},
        }
        if index > 1 and (h >> 44) % 7 == 0:
            ref = index - 1 - (h >> 48) % min(index - 1, 5)
            msg["RefMsgInfo"] = {
                "Hint": f"引用 #{ref}",
                "ReferencedMessageId": self.message_id(conv, ref),
                "ReferencedMessageType": self._msg_type(sid, ref),
                "Status": 0,
            }
        return msg

    def message_at(self, conv: Conversation, index: int) -> dict[str, Any]:
        """Message ``index`` (1..message_count), a fresh dict."""
        if index <= conv.msg_generated:
            return self.generated_message(conv, index)
        return copy.deepcopy(conv.msg_stored[index - conv.msg_generated - 1])  # type: ignore[index]

    def messages(self, sid: int, reverse: bool = False) -> list[dict[str, Any]]:
        conv = self.convs.get(sid)
        if conv is None:
            return []
        indexes = range(1, conv.message_count + 1)
        return [self.message_at(conv, i) for i in (reversed(indexes) if reverse else indexes)]

    def _last_time_ms(self, conv: Conversation) -> int:
        if conv.msg_stored:
            return int(conv.msg_stored[-1].get("CreateTime", 0))
        if conv.msg_generated:
            n = conv.msg_generated
            return self._generated_time_ms(conv, n, hash64(self.seed, "m", conv.short_id, n))
        return 0

    def _append_message(self, conv: Conversation, msg: dict[str, Any], now_ms: int | None) -> dict[str, Any]:
        info = conv.info
        index = conv.message_count + 1
        if msg.get("IndexInConversation") not in (None, index):
            raise ValueError(f"IndexInConversation is assigned: the next one is {index}")
        sender = msg.pop("_sender", None)
        if sender is None:
            sender = key_of(msg, "Sender")
        if sender is None:
            count = conv.generated_member_count
            sender = conv.generated_member(index % min(count, 64)) if count else 0
        content = msg.get("Content")
        if content is None:
            content = {"text": f"{TEXTS[index % len(TEXTS)]} #{index}"}
        if not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        last = self._last_time_ms(conv)
        given = msg.get("CreateTime")
        if isinstance(given, int) and not isinstance(given, bool):
            created = given
        else:
            created = max(now_ms if now_ms is not None else last + 1000, last + 1)
        out: dict[str, Any] = {
            "AppId": int(info.get("AppId", self.default_app_id)),
            "ConversationShortId": conv.short_id,
            "ConversationType": int(info.get("ConversationType", 1)),
            "MessageId": self.message_id(conv, index),
            "IndexInConversation": index,
            "Content": content,
            "MsgType": 10001,
            **user_fields("Sender", sender),
            "Status": 0,
            "CreateTime": created,
            "Ext": {},
        }
        for name, value in msg.items():
            if name not in ("Content", "CreateTime", "Sender", "SenderStr", "IndexInConversation"):
                out[name] = value
        if conv.msg_stored is None:
            conv.msg_stored = []
        conv.msg_stored.append(out)
        return out

    def add_message(
        self, sid: int, *, sender: UserKey | None = None, content: Any = None, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Append one message at the next IndexInConversation, "now"; KeyError if no such conversation."""
        conv = self.convs.get(sid)
        if conv is None:
            raise KeyError(f"no conversation {sid}")
        msg = dict(fields)
        if sender is not None:
            check_user_key(sender, "sender")
            msg["_sender"] = sender
        if content is not None:
            msg["Content"] = content
        return copy.deepcopy(self._append_message(conv, msg, now_ms=int(time.time() * 1000)))

    def add_messages(self, sid: int, n: int) -> list[dict[str, Any]]:
        """Append ``n`` generated messages (senders are members), "now"."""
        conv = self.convs.get(sid)
        if conv is None:
            raise KeyError(f"no conversation {sid}")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_MESSAGES - conv.message_count:
            raise ValueError(f"add_messages: n must be an int between 0 and {MAX_MESSAGES}, got {n!r}")
        out = []
        now_ms = int(time.time() * 1000)
        for _ in range(n):
            index = conv.message_count + 1
            template = self.generated_message(conv, index)
            template.pop("CreateTime")
            out.append(copy.deepcopy(self._append_message(conv, template, now_ms=now_ms)))
        return out

    def set_message_count(self, sid: int, n: int) -> None:
        """The conversation holds exactly ``n`` lazily generated messages (stored ones are dropped)."""
        conv = self.convs.get(sid)
        if conv is None:
            raise KeyError(f"no conversation {sid}")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_MESSAGES:
            raise ValueError(f"set_message_count: n must be an int between 0 and {MAX_MESSAGES}, got {n!r}")
        conv.msg_generated = n
        conv.msg_stored = None

    def stored_message_count(self) -> int:
        """How many message dicts are held in memory (generated ones are not)."""
        return sum(len(c.msg_stored) for c in self.convs.values() if c.msg_stored)
