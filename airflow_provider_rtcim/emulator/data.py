"""The emulator's data sets: generated (seeded) or loaded from a dict / JSON file.

Data file / dict format (``Emulator(data=...)`` or ``--data-file``); every section but
``users`` is optional::

    {
      "app_ids": [100001],                       # default: the emulator's app ids
      "users": {                                 # int users: keys are decimal ints
        "1000001": [
          {"ConversationShortId": 7000000000000000001,   # required, int64
           "ConversationType": 1,                # optional (default 1)
           "CreateTime": 1700000000,             # optional (default: after the previous one)
           "ModifyTime": 1700000100,             # optional (default: CreateTime)
           "InboxType": 0,                       # optional (default 0)
           "AppId": 100001,                      # optional (default: first app id)
           "Name": "...", "Ext": {"k": "v"}, "MemberCount": 2, ...}   # anything else kept verbatim
        ]
      },
      "string_users": {                          # string users: keys are taken verbatim
        "007": [{"ConversationShortId": 7000000000000000009, "OtherUserIdStr": "alice"}]
      },
      "participants": {                          # members in join order, per conversation
        "7000000000000000001": [1000001, "007", {"ParticipantUserId": 99, "Role": 2, "NickName": "管理员"}]
      },
      "messages": {                              # messages in IndexInConversation order
        "7000000000000000001": [{"Sender": 1000001, "Content": "{\\"text\\":\\"你好\\"}"}, {"SenderStr": "007"}]
      }
    }

Rules:

- A conversation listed under several users is one record: its first occurrence gives the
  fields, later ones only fill in missing fields; every user listing it is one of its members.
- Missing ``ConversationId``, ``CreatorUserId`` and ``OwnerUserId`` are filled in (the
  listing user) with their ``*Str`` twins; for a string user the numeric fields are 0 and the
  ``*Str`` ones carry the id (``CreatorUserId: 0, CreatorUserIdStr: "007"``). Unknown fields
  are served as given.
- ``participants`` items: an int (int user), a str (string user, verbatim) or a participant
  object (``ParticipantUserId`` > 0 names an int user, else ``ParticipantUserIdStr`` a string
  user; other fields such as ``Role``, ``NickName``, ``CreateTime``, ``Marks`` are kept). Users
  listing the conversation but not named are appended. Without a ``participants`` entry the
  members are the listing users, the creator, the owner and the other user of a one-to-one,
  then generated members up to ``MemberCount`` when it is given.
- ``messages`` items: message objects; ``IndexInConversation`` (1, 2, ...) and ``MessageId``
  are assigned, ``CreateTime`` (ms) defaults to one second after the previous message,
  ``Sender``/``SenderStr`` to a member (a sender who is not a member joins); ``Content``
  may be a string or any JSON value (serialized). Without a ``messages`` entry a conversation
  gets ``messages_per_conversation`` generated messages.
- Conversation ids are JSON object keys, so they are strings of digits there; ints work in a
  Python dict too.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_rtcim.emulator.conversations import ConversationStore
from airflow_provider_rtcim.emulator.records import (
    BASE_TIME,
    LIVE_GROUP,
    MAX_MEMBERS,
    PEOPLE,
    SHORT_ID_BASE,
    USER_ID_BASE,
    complete_info,
)
from airflow_provider_rtcim.emulator.utils import UserKey, check_user_key, key_of

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

STRING_USER_POOL = (
    "007",
    "123",
    "alice",
    "用户-王芳",
    "zoë",
    "u_8f3a",
    "42",
    "bob.smith@example.com",
    "🦊fox",
    "0123",
    "Ωmega",
    "user 7",
)
"""The first generated string user ids, in order ("007" and "123" first); then ``u_<hex>``."""


def string_user_ids(n: int, seed: int) -> list[str]:
    """``n`` distinct opaque string ids: the pool above, then seeded ``u_<hex>`` ids."""
    out = list(STRING_USER_POOL[:n])
    rng = random.Random(f"string-users-{seed}")
    taken = set(out)
    while len(out) < n:
        uid = f"u_{rng.getrandbits(40):010x}"
        if uid not in taken:
            taken.add(uid)
            out.append(uid)
    return out


def _count(option: int | None, aux: random.Random, low: int, high: int) -> int:
    drawn = aux.randint(low, high)  # always drawn, so a fixed option keeps the other values
    return drawn if option is None else option


def _generate_user(
    backend: ConversationStore,
    rng: random.Random,
    aux: random.Random,
    uid: UserKey,
    conversations: int,
    serial: int,
    app_id: int,
    messages: int | None,
    participants: int | None,
) -> int:
    """One user's conversations; returns the serial reached. For int users the ``rng`` draws
    are exactly those of earlier releases, so ids, times, names and types stay the same."""
    string = isinstance(uid, str)

    def someone() -> UserKey:
        n = rng.randrange(10_000_000_000, 99_999_999_999)
        return f"u_{n:x}" if string else n

    t = BASE_TIME + rng.randrange(0, 3600)
    for i in range(conversations):
        serial += 1
        t += rng.randrange(60, 86_400)
        kind = rng.choices([1, 2, LIVE_GROUP], weights=[40, 35, 25])[0]
        short_id = SHORT_ID_BASE + serial * 1_000 + rng.randrange(1_000)
        conv: dict[str, Any] = {
            "AppId": app_id,
            "ConversationShortId": short_id,
            "ConversationType": kind,
            "CreateTime": t,
            "ModifyTime": t + rng.randrange(0, 60 * 86_400),
            "InboxType": 1 if i % 9 == 8 else 0,
            "Status": 1 if rng.random() < 0.08 else 0,
        }
        other: UserKey | None = None
        if kind == 1:
            other = someone()
            creator = rng.choice([uid, other])
            owner = creator
            low, high = sorted([str(uid), str(other)]) if string else (min(uid, other), max(uid, other))  # type: ignore[type-var]
            conv["ConversationId"] = f"0:1:{low}:{high}"
            conv["Name"] = rng.choice(PEOPLE)
            rng_members = 2
        else:
            creator = uid if rng.random() < 0.5 else someone()
            owner = creator if rng.random() < 0.8 else someone()
            names = _LIVE_NAMES if kind == LIVE_GROUP else _GROUP_NAMES
            conv["ConversationId"] = f"{kind}:{short_id:x}"
            conv["Name"] = f"{rng.choice(names)} #{i + 1}"
            conv["Description"] = rng.choice(["", "每周同步", "Weekly sync ✅", "公告见群文件"])
            conv["Notice"] = rng.choice(["", "请文明发言 🙏", "Be kind."])
            conv["AvatarUrl"] = f"https://example.com/avatar/{short_id}.png"
            rng_members = rng.randrange(3, 500) if kind == 2 else rng.randrange(50, 100_000)
            if kind == LIVE_GROUP:
                rng.randrange(0, rng_members)  # the old OnlineCount draw, kept for the sequence
        for name, key in (("CreatorUserId", creator), ("OwnerUserId", owner), ("OtherUserId", other)):
            if key is not None:
                conv.update({name: 0, f"{name}Str": key} if string else {name: key, f"{name}Str": str(key)})
        core = list(dict.fromkeys([creator, owner, uid] + ([other] if other is not None else [])))
        if kind == 1:
            count = 2
        elif kind == 2:
            count = max(len(core), _count(participants, aux, 3, 12))
        else:
            count = max(len(core), _count(participants, aux, 4, 20))
        conv["MemberCount"] = count
        if kind == LIVE_GROUP:
            conv["OnlineCount"] = aux.randint(0, count)
        if rng.random() < 0.5:
            conv["Ext"] = {"source": rng.choice(["app", "web", "小程序"]), "seq": str(i)}
        n_messages = _count(messages, aux, 0, 12)
        backend.add_record(
            conv, [uid], core=core, fill=count - len(core), string_fill=string, messages=n_messages
        )
    return serial


def generate(
    backend: ConversationStore,
    *,
    users: int,
    conversations_per_user: int,
    seed: int,
    app_id: int,
    string_users: int = 0,
    messages_per_conversation: int | None = None,
    participants_per_conversation: int | None = None,
) -> None:
    """Deterministic data: ``users`` int users (``1000001``...) then ``string_users`` string users.

    Each user has ``conversations_per_user`` conversations of its own; about 1 in 9 is in
    inbox 1, types are mixed one-to-one (1, two members), group (2) and live group (100, with
    ``OnlineCount`` online members), some created by the user (DataType 2). ``MemberCount``
    equals the number of members (``participants_per_conversation``, default 3..12 for groups
    and 4..20 for live groups, never fewer than the creator, owner and user); each conversation
    has ``messages_per_conversation`` messages (default 0..12), generated lazily.
    """
    rng = random.Random(seed)
    aux = random.Random(f"aux-{seed}")
    serial = 0
    for u in range(users):
        serial = _generate_user(
            backend,
            rng,
            aux,
            USER_ID_BASE + u + 1,
            conversations_per_user,
            serial,
            app_id,
            messages_per_conversation,
            participants_per_conversation,
        )
    srng = random.Random(f"string-{seed}")
    for uid in string_user_ids(string_users, seed):
        serial = _generate_user(
            backend,
            srng,
            aux,
            uid,
            conversations_per_user,
            serial,
            app_id,
            messages_per_conversation,
            participants_per_conversation,
        )


# ----------------------------------------------------------------------------- data files
@dataclass
class DataSet:
    """A data file, parsed: ``users`` keys are ints (int users) or strs (string users)."""

    app_ids: list[int] = field(default_factory=list)
    users: dict[UserKey, list[dict[str, Any]]] = field(default_factory=dict)
    participants: dict[int, list[Any]] = field(default_factory=dict)
    messages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


def _conv_id(key: Any, section: str) -> int:
    try:
        if isinstance(key, bool):
            raise ValueError
        return int(key)
    except (TypeError, ValueError):
        raise ValueError(f"emulator data: {section} key {key!r} is not a ConversationShortId") from None


def load_data(data: Mapping[str, Any] | str | os.PathLike[str]) -> DataSet:
    """Read the format documented above from a dict or a JSON file path.

    Raises ``ValueError`` naming the problem when the data is malformed.
    """
    if not isinstance(data, Mapping):
        with open(data, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, Mapping):
            raise ValueError("emulator data must be a JSON object with 'users'")
    out = DataSet(app_ids=[int(a) for a in data.get("app_ids", [])])
    raw_users = data.get("users")
    if not isinstance(raw_users, Mapping):
        raise ValueError("emulator data needs 'users': {user_id: [ConversationInfo, ...]}")
    raw_strings = data.get("string_users", {})
    if not isinstance(raw_strings, Mapping):
        raise ValueError("emulator data: 'string_users' must be an object {string_user_id: [...]}")
    for section, mapping in (("users", raw_users), ("string_users", raw_strings)):
        for key, convs in mapping.items():
            if section == "users":
                try:
                    uid: UserKey = int(key)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"emulator data: user id {key!r} is not an integer (put string users "
                        "under 'string_users')"
                    ) from None
            else:
                uid = check_user_key(str(key) if isinstance(key, str) else key, "string user id")
                if not isinstance(uid, str):
                    raise ValueError(f"emulator data: string_users key {key!r} must be a string")
            if not isinstance(convs, list):
                raise ValueError(
                    f"emulator data: {section}[{key!r}] must be a list of ConversationInfo objects"
                )
            out.users[uid] = [dict(c) for c in convs]
    for section in ("participants", "messages"):
        raw = data.get(section, {})
        if not isinstance(raw, Mapping):
            raise ValueError(f"emulator data: {section!r} must be an object {{ConversationShortId: [...]}}")
        target = getattr(out, section)
        for key, items in raw.items():
            if not isinstance(items, list):
                raise ValueError(f"emulator data: {section}[{key!r}] must be a list")
            target[_conv_id(key, section)] = list(items)
    return out


def _participant_item(item: Any, sid: int) -> tuple[UserKey, dict[str, Any]]:
    if isinstance(item, Mapping):
        fields = dict(item)
        uid = fields.pop("ParticipantUserId", None)
        text = fields.pop("ParticipantUserIdStr", None)
        if isinstance(uid, int) and not isinstance(uid, bool) and uid > 0:
            return uid, fields
        if isinstance(text, str) and text:
            return text, fields
        raise ValueError(f"emulator data: participants[{sid}] item {item!r} names no user")
    return check_user_key(item, f"participants[{sid}] item"), {}


def populate(
    backend: ConversationStore,
    dataset: DataSet,
    *,
    messages_per_conversation: int | None = None,
    participants_per_conversation: int | None = None,
) -> None:
    """Fill ``backend`` from a parsed data file (see the module docstring for the rules)."""
    del participants_per_conversation  # data files say their members explicitly or by MemberCount
    aux = random.Random("aux-data")
    infos: dict[int, dict[str, Any]] = {}
    listers: dict[int, list[UserKey]] = {}
    clock = BASE_TIME
    for uid, convs in dataset.users.items():
        backend.users.setdefault(uid, {})
        for raw in convs:
            sid = raw.get("ConversationShortId")
            if isinstance(sid, bool) or not isinstance(sid, int):
                raise ValueError(
                    f"emulator data: user {uid!r} has a conversation without an int ConversationShortId"
                )
            if sid in infos:
                for name, value in raw.items():
                    infos[sid].setdefault(name, value)
                if uid not in listers[sid]:
                    listers[sid].append(uid)
                continue
            info = dict(raw)
            if info.get("CreateTime") is None:
                info["CreateTime"] = clock + 1
            info.setdefault("ModifyTime", info["CreateTime"])
            clock = max(clock, int(info["CreateTime"]), int(info["ModifyTime"]))
            complete_info(info, uid, backend.default_app_id)
            infos[sid], listers[sid] = info, [uid]
    unknown = sorted((set(dataset.participants) | set(dataset.messages)) - set(infos))
    if unknown:
        raise ValueError(f"emulator data: participants/messages for unknown conversation(s) {unknown}")
    for sid, info in infos.items():
        explicit: dict[UserKey, dict[str, Any]] = {}
        if sid in dataset.participants:
            for item in dataset.participants[sid]:
                key, fields = _participant_item(item, sid)
                explicit[key] = fields
            core = list(explicit)
            fill = 0
        else:
            core = [info_key for name in ("CreatorUserId", "OwnerUserId") if (info_key := key_of(info, name))]
            core += listers[sid]
            other = key_of(info, "OtherUserId")
            if other is not None:
                core.append(other)
            core = list(dict.fromkeys(core))
            fill = 0
            count = info.get("MemberCount")
            if isinstance(count, int) and not isinstance(count, bool):
                fill = max(0, min(count, MAX_MEMBERS) - len(core))
        core += [key for key in listers[sid] if key not in core]  # every lister is a member
        raw_messages = dataset.messages.get(sid)
        if raw_messages is not None:
            for msg in raw_messages:
                if not isinstance(msg, Mapping):
                    raise ValueError(f"emulator data: messages[{sid}] items must be message objects")
                sender = key_of(msg, "Sender")
                if sender is not None and sender not in core:
                    core.append(sender)  # a sender who is not a member joins
            n_generated = 0
        else:
            n_generated = _count(messages_per_conversation, aux, 0, 12)
        backend.add_record(
            info,
            listers[sid],
            core=core,
            fill=fill,
            string_fill=isinstance(listers[sid][0], str),
            messages=n_generated,
            explicit=explicit,
            stored_messages=raw_messages,
        )
