"""The emulator's backend (moto's ``models.py``): all state behind public, locked methods.

:class:`EmulatorBackend` owns the data (a :class:`~.conversations.ConversationStore`) and the
cursor codec, and holds one lock around every read and mutation. Two kinds of methods:

- the ground truth and mutations the Python API and the admin API use (``conversations``,
  ``participants``, ``add_message``, ...): each returns copies;
- one query per action the response handlers call (``user_conversations_page``,
  ``participants_page``, ...): each takes the validated request values and the anomaly in
  force and returns the action's ``Result`` dict.

Usage::

    backend = EmulatorBackend(app_ids=[], default_app_id=100001, seed=0, users=3, conversations_per_user=45)
    backend.user_conversations_page(1000001, 100001, data_type=1, inbox_type=0, cursor=0, limit=20)
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from airflow_provider_rtcim.emulator import data as _data
from airflow_provider_rtcim.emulator.conversations import ConversationStore
from airflow_provider_rtcim.emulator.cursors import CursorCodec
from airflow_provider_rtcim.emulator.exceptions import invalid
from airflow_provider_rtcim.emulator.paging import message_page, opaque_page
from airflow_provider_rtcim.emulator.records import DATA_TYPES, Conversation
from airflow_provider_rtcim.emulator.social import BLOCK_ACTIONS, SocialStore
from airflow_provider_rtcim.emulator.utils import UserKey, check_int_user, check_user_key, hash64

USER_LISTINGS = {"friends": ("friends", "FriendInfos"), "blacklist": ("blacklist", "BlackListInfos")}
"""A user's listings: ``{listing: (SocialStore method, Result field)}``."""


class EmulatorBackend:
    """The data of one emulator: generated from a seed (``users``, ``conversations_per_user``,
    ``string_users``) or loaded from ``data`` (a dict or a JSON file path, see :mod:`.data`).
    Thread-safe: every public method takes the lock."""

    def __init__(
        self,
        *,
        app_ids: list[int],
        default_app_id: int,
        seed: int = 0,
        data: Mapping[str, Any] | str | None = None,
        users: int = 3,
        conversations_per_user: int = 45,
        string_users: int = 0,
        messages_per_conversation: int | None = None,
        participants_per_conversation: int | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.seed = seed
        if data is not None:
            dataset = _data.load_data(data)
            self.app_ids = app_ids or dataset.app_ids or [default_app_id]
        else:
            dataset = None
            self.app_ids = app_ids or [default_app_id]
        self.store = ConversationStore(default_app_id=self.app_ids[0], seed=seed)
        if dataset is not None:
            _data.populate(
                self.store,
                dataset,
                messages_per_conversation=messages_per_conversation,
                participants_per_conversation=participants_per_conversation,
            )
        else:
            _data.generate(
                self.store,
                users=users,
                conversations_per_user=conversations_per_user,
                seed=seed,
                app_id=self.app_ids[0],
                string_users=string_users,
                messages_per_conversation=messages_per_conversation,
                participants_per_conversation=participants_per_conversation,
            )
        self.social = SocialStore(self.store, seed)
        self.codec = CursorCodec(hash64("cursor-salt", seed))
        self._reorder_counts: Counter[UserKey] = Counter()

    @property
    def app_id(self) -> int:
        return self.app_ids[0]

    # ------------------------------------------------------------------ ground truth
    @property
    def user_ids(self) -> list[int]:
        """The int users (generated ``1000001``..., or a data file's ``users``)."""
        with self.lock:
            return self.store.user_ids

    @property
    def string_user_ids(self) -> list[str]:
        """The string users (``string_users=N``, or a data file's ``string_users``)."""
        with self.lock:
            return self.store.string_user_ids

    def conversations(
        self, user_id: int | str, data_type: int = 1, inbox_type: int = 0, app_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Every conversation GetUserConversations lists for these parameters, in API order.

        ``user_id``: an int names an int user, a str a string user (``"123"`` is not ``123``).
        """
        if data_type not in DATA_TYPES:
            raise ValueError(f"data_type must be one of {DATA_TYPES}")
        key = check_user_key(user_id)
        with self.lock:
            return self.store.snapshot(key, app_id or self.app_id, data_type, int(inbox_type))

    def conversation_ids(self, app_id: int | None = None) -> list[int]:
        """Every conversation's ConversationShortId, sorted (of one AppId when given)."""
        with self.lock:
            return self.store.conversation_ids(app_id)

    def conversation(self, short_id: int) -> dict[str, Any] | None:
        """A conversation's details (every ConversationInfo field), or None."""
        with self.lock:
            conv = self.store.get(int(short_id))
            return copy.deepcopy(conv.info) if conv is not None else None

    def batch_conversations(
        self, short_ids: Iterable[int], skip_member_count: bool = True, app_id: int | None = None
    ) -> list[dict[str, Any]]:
        """What BatchGetConversations returns: known, not dissolved (Status 1), in request order."""
        with self.lock:
            return copy.deepcopy(
                self.store.batch([int(s) for s in short_ids], app_id or self.app_id, skip_member_count)
            )

    def participants(self, short_id: int, reverse: bool = False) -> list[dict[str, Any]]:
        """Every member, in ScanConversationParticipantList order (join time; ``reverse``: newest first)."""
        with self.lock:
            return self.store.participants(int(short_id), reverse)

    def online_participants(self, short_id: int, mark: str | None = None) -> list[dict[str, Any]]:
        """A live group's online members (``ScanOnlineParticipant``), optionally those carrying ``mark``."""
        with self.lock:
            conv = self.store.get(int(short_id))
            if conv is None:
                return []
            return [self.store.render_participant(conv, k) for k in self.store.online_keys(conv, mark)]

    def messages(self, short_id: int, reverse: bool = False) -> list[dict[str, Any]]:
        """Every message by IndexInConversation (``reverse``: newest first). Materializes them all."""
        with self.lock:
            return self.store.messages(int(short_id), reverse)

    def message_count(self, short_id: int) -> int:
        """How many messages a conversation holds (0 when unknown)."""
        with self.lock:
            conv = self.store.get(int(short_id))
            return conv.message_count if conv is not None else 0

    @property
    def data_stats(self) -> dict[str, int]:
        """Sizes of the data model: ``conversations``, ``users``, ``string_users``, ``stored_messages``
        (message dicts held in memory; generated ones are not) and ``materialized_members``."""
        with self.lock:
            s = self.store
            return {
                "conversations": len(s.convs),
                "users": len(s.user_ids),
                "string_users": len(s.string_user_ids),
                "stored_messages": s.stored_message_count(),
                "materialized_members": sum(
                    len(c.members) for c in s.convs.values() if c.members is not None
                ),
            }

    def resolve_user(self, segment: str, kind: str | None, short_id: int | None = None) -> UserKey:
        """A user in an admin URL: ``?kind=str`` / ``?kind=int`` decide; otherwise a canonical
        decimal naming a known int user (or member of ``short_id``) is that int user, a known
        string user is that string user, any other canonical decimal is an int user and anything
        else a string user. ``KeyError`` when ``short_id`` names no conversation."""
        text = unquote(segment)
        if kind == "str":
            return text
        if kind == "int":
            return int(text)
        if kind:
            raise ValueError(f"kind must be 'int' or 'str', got {kind!r}")
        with self.lock:
            if short_id is None:
                known: Any = self.store.users
            else:
                conv = self.store.get(short_id)
                if conv is None:
                    raise KeyError(f"no conversation {short_id}")
                known = set(self.store.member_keys(conv))
            canonical = text.lstrip("-").isdigit() and str(int(text)) == text
            if canonical and int(text) in known:
                return int(text)
            if text in known:
                return text
        return int(text) if canonical else text

    # ------------------------------------------------------------------ mutations
    def add_conversation(self, user_id: int | str, **fields: Any) -> dict[str, Any]:
        """Add a conversation (API field names; missing ones generated) created and active "now".

        It lands last in DataType 1 and first in DataType 0. Its members: the user, the creator,
        the owner and the other user (then generated ones up to ``MemberCount`` if given); no
        messages. With an existing ``ConversationShortId``, the user lists that conversation too
        and ``fields`` update it. Returns a copy of what is stored.
        """
        with self.lock:
            return copy.deepcopy(self.store.add_conversation(check_user_key(user_id), fields))

    def remove_conversation(
        self, user_id: int | str, conversation_short_id: int | None = None
    ) -> dict[str, Any]:
        """The user stops listing one conversation (default: its newest); returns it. ``KeyError`` if absent.

        The conversation itself is removed with its last lister.
        """
        with self.lock:
            sid = None if conversation_short_id is None else int(conversation_short_id)
            return copy.deepcopy(self.store.remove_conversation(check_user_key(user_id), sid))

    def add_participant(self, short_id: int, user_id: int | str, **fields: Any) -> dict[str, Any]:
        """Add a member (joined "now", last in join order) with optional participant fields (Role,
        NickName, Marks, ...), or update the fields of a member. A user the emulator knows also
        lists the conversation. MemberCount follows. ``KeyError`` for an unknown conversation."""
        with self.lock:
            return self.store.add_participant(int(short_id), check_user_key(user_id), fields)

    def remove_participant(self, short_id: int, user_id: int | str) -> dict[str, Any]:
        """Remove a member (who then no longer lists it); returns it. ``KeyError`` if absent."""
        with self.lock:
            return self.store.remove_participant(int(short_id), check_user_key(user_id))

    def add_message(
        self, short_id: int, *, sender: int | str | None = None, content: Any = None, **fields: Any
    ) -> dict[str, Any]:
        """Append a message at the next IndexInConversation with a new MessageId, sent "now" (ms).

        ``sender``: a member (default: one picked deterministically); ``content``: a str sent
        verbatim or any JSON value (serialized); ``fields``: other message fields (MsgType, Ext,
        RefMsgInfo, ...). ``KeyError`` if the conversation does not exist, ``ValueError`` if the
        sender is not a member.
        """
        with self.lock:
            sid = int(short_id)
            conv = self.store.get(sid)
            if conv is None:
                raise KeyError(f"no conversation {sid}")
            if sender is not None and not self.store.is_member(conv, check_user_key(sender, "sender")):
                raise ValueError(
                    f"sender {sender!r} is not a member of conversation {sid}: add_participant first"
                )
            return self.store.add_message(sid, sender=sender, content=content, fields=fields)

    def add_messages(self, short_id: int, n: int) -> list[dict[str, Any]]:
        """Append ``n`` generated messages (senders are members); returns them."""
        with self.lock:
            return self.store.add_messages(int(short_id), n)

    def set_message_count(self, short_id: int, n: int) -> None:
        """Make a conversation hold exactly ``n`` messages, generated lazily (cheap even for
        ``n = 100_000``; messages added or loaded before are dropped)."""
        with self.lock:
            self.store.set_message_count(int(short_id), n)

    # ------------------------------------------------------------------ users, friends, blacklists
    def _conv(self, short_id: int) -> Conversation:
        conv = self.store.get(int(short_id))
        if conv is None:
            raise KeyError(f"no conversation {short_id}")
        return conv

    def user(self, user_id: int, app_id: int | None = None) -> dict[str, Any] | None:
        """A registered int user's profile (BatchGetUser's record), or None."""
        uid = check_int_user(user_id, "user_id")
        with self.lock:
            return self.social.profile(uid, app_id or self.app_id) if self.social.registered(uid) else None

    def batch_users(self, user_ids: Iterable[int], app_id: int | None = None) -> dict[str, Any]:
        """What BatchGetUser returns: ``{"Users": [...], "NotFoundUsers": [...]}`` in request order."""
        ids = [check_int_user(u, "user_ids item") for u in user_ids]
        return self.users_page(app_id or self.app_id, ids)

    def add_user(self, user_id: int, **fields: Any) -> dict[str, Any]:
        """Register an int user (registered "now" unless known) or update its profile fields
        (NickName, Portrait, Ext, Tags, IsRobot, CreateTime, ...); returns the profile."""
        uid = check_int_user(user_id, "user_id")
        with self.lock:
            self.social.add_user(uid, fields)
            return self.social.profile(uid, self.app_id)

    def friends(self, user_id: int, inbox_type: int = 0) -> list[dict[str, Any]]:
        """Every friend of ``user_id`` in ListFriend order (the first one added first)."""
        uid = check_int_user(user_id, "user_id")
        with self.lock:
            return self.social.friends(uid, int(inbox_type))

    def add_friend(self, user_id: int, friend_id: int, inbox_type: int = 0, **fields: Any) -> dict[str, Any]:
        """Make two int users friends "now" (both lists); ``fields`` (Alias, Ext) are ``user_id``'s side."""
        uid, other = check_int_user(user_id, "user_id"), check_int_user(friend_id, "friend user_id")
        with self.lock:
            return self.social.add_friend(uid, other, fields, int(inbox_type))

    def remove_friend(self, user_id: int, friend_id: int) -> dict[str, Any]:
        """End a friendship (both lists); returns ``user_id``'s record. ``KeyError`` if they are not friends."""
        uid, other = check_int_user(user_id, "user_id"), check_int_user(friend_id, "friend user_id")
        with self.lock:
            return self.social.remove_friend(uid, other)

    def blacklist(self, user_id: int, inbox_type: int = 0) -> list[dict[str, Any]]:
        """``user_id``'s blacklist in GetBlackList order (the entry added last first)."""
        uid = check_int_user(user_id, "user_id")
        with self.lock:
            return self.social.blacklist(uid, int(inbox_type))

    def add_to_blacklist(
        self, user_id: int, other_id: int, inbox_type: int = 0, **fields: Any
    ) -> dict[str, Any]:
        """``user_id`` blacklists ``other_id`` "now" (``fields``: BlackListUserExt, ...)."""
        uid, other = check_int_user(user_id, "user_id"), check_int_user(other_id, "blacklisted user_id")
        with self.lock:
            return self.social.add_to_blacklist(uid, other, fields, int(inbox_type))

    def remove_from_blacklist(self, user_id: int, other_id: int) -> dict[str, Any]:
        """Remove a blacklist entry; returns it. ``KeyError`` if absent."""
        uid, other = check_int_user(user_id, "user_id"), check_int_user(other_id, "blacklisted user_id")
        with self.lock:
            return self.social.remove_from_blacklist(uid, other)

    # ------------------------------------------------------------------ read positions, mute/block lists
    def read_indexes(self, short_id: int) -> list[dict[str, Any]]:
        """GetParticipantReadIndex's ``ReadIndexes``: members who read something (others: 0), join order."""
        with self.lock:
            return self.social.read_indexes(self._conv(short_id))

    def set_read_index(self, short_id: int, user_id: int | str, read_index: int) -> dict[str, Any]:
        """Set how far a member has read (0..the last IndexInConversation)."""
        key = check_user_key(user_id)
        with self.lock:
            return self.social.set_read_index(self._conv(short_id), key, read_index)

    def block_participants(self, short_id: int, block_action: int = 0) -> list[dict[str, Any]]:
        """BatchGetBlockParticipants' items: the muted (0) or blocked (1) members, in join order."""
        action = _block_action(block_action)
        with self.lock:
            conv = self._conv(short_id)
            return [self.social.render_block(conv, k, e) for k, e in self.social.block_list(conv, action)]

    def set_block(
        self, short_id: int, user_id: int | str, block_action: int = 0, block_time: int | None = None
    ) -> dict[str, Any]:
        """Mute (0) or block (1) a member "now" until ``block_time`` (Unix s; default in 7 days).
        Muting sets the member's ``BlockTime``, as ScanConversationParticipantList shows it."""
        key, action = check_user_key(user_id), _block_action(block_action)
        with self.lock:
            return self.social.set_block(self._conv(short_id), key, action, block_time)

    def remove_block(self, short_id: int, user_id: int | str, block_action: int = 0) -> dict[str, Any]:
        """Unmute (0) or unblock (1) a member; returns the entry. ``KeyError`` if not on the list."""
        key, action = check_user_key(user_id), _block_action(block_action)
        with self.lock:
            return self.social.remove_block(self._conv(short_id), key, action)

    # ------------------------------------------------------------------ action queries
    def user_conversations_page(
        self,
        uid: UserKey,
        app_id: int,
        *,
        data_type: int,
        inbox_type: int,
        cursor: int,
        limit: int,
        skip_member_count: bool = False,
        anomaly: str | None = None,
        reorder: bool = False,
    ) -> dict[str, Any]:
        """GetUserConversations' Result; ``reorder``: DataType 0 order changes while paging."""
        scope = (uid, app_id, data_type, inbox_type)
        with self.lock:
            items = self.store.listing(*scope)
            pg = opaque_page(self.codec, scope, cursor, limit, len(items), anomaly)
            out = [dict(c) for c in items[pg.start : pg.stop]]
            if data_type == 0 and reorder and pg.has_more and not pg.endless:
                self._reorder(uid, items, pg.offset + (pg.stop - pg.start))
        if skip_member_count:
            for c in out:
                c.pop("MemberCount", None)
        return {"ConversationInfos": out, "HasMore": pg.has_more, "NextCursor": pg.next_cursor}

    def _reorder(self, uid: UserKey, items: list[dict[str, Any]], end: int) -> None:
        """Bump up to two not-yet-listed conversations to the front of DataType 0. Holds the lock."""
        rest = items[end:]
        if not rest:
            return
        n = self._reorder_counts[uid]
        self._reorder_counts[uid] = n + 1
        picks: list[int] = []
        for i in range(min(2, len(rest))):
            idx = hash64(self.seed, "reorder", uid, n, i) % len(rest)
            sid = rest[idx]["ConversationShortId"]
            if sid not in picks:
                picks.append(sid)
        for sid in picks:
            self.store.touch(sid)

    def participants_page(
        self,
        app_id: int,
        sid: int,
        *,
        cursor: int,
        limit: int,
        reverse: bool,
        only_ids: bool,
        online: bool,
        mark: str | None,
        anomaly: str | None = None,
        last_page_has_more: bool = False,
    ) -> dict[str, Any]:
        """ScanConversationParticipantList's Result (an unknown conversation: one empty last page)."""
        online = online or mark is not None
        if online:
            reverse = only_ids = False  # ignored for online scans
        scope = ("participants", app_id, sid, reverse, online, mark)
        store = self.store
        with self.lock:
            conv = store.get(sid, app_id)
            if conv is None:
                keys: list[UserKey] = []
            else:
                keys = store.online_keys(conv, mark) if online else store.member_keys(conv)
            total = len(keys)
            pg = opaque_page(self.codec, scope, cursor, limit, total, anomaly)
            chosen = (
                [keys[total - 1 - i] for i in range(pg.start, pg.stop)]
                if reverse
                else keys[pg.start : pg.stop]
            )
            parts = [store.render_participant(conv, k, only_ids) for k in chosen]  # type: ignore[arg-type]
        has_more = pg.has_more or (pg.ended and last_page_has_more)
        return {"Participants": parts, "HasMore": has_more, "NextCursor": pg.next_cursor}

    def messages_page(
        self, app_id: int, sid: int, *, cursor: int, limit: int, reverse: int, anomaly: str | None = None
    ) -> dict[str, Any]:
        """GetConversationMessages' Result (an unknown conversation: no messages, NewCursor 0)."""
        with self.lock:
            conv = self.store.get(sid, app_id)
            if conv is None:  # any cursor >= 0 accepted
                if cursor < 0:
                    raise invalid(f"invalid Cursor {cursor}: must be >= 0")
                return {"Messages": [], "HasMore": False, "NewCursor": 0}
            scope = ("messages", app_id, sid, reverse)
            indexes, has_more, new_cursor = message_page(
                self.codec, scope, cursor, limit, conv.message_count, bool(reverse), anomaly
            )
            messages = [self.store.message_at(conv, i) for i in indexes]
        return {"Messages": messages, "HasMore": has_more, "NewCursor": new_cursor}

    def batch_page(self, app_id: int, ids: list[int], skip_member_count: bool) -> dict[str, Any]:
        """BatchGetConversations' Result."""
        with self.lock:
            return {"ConversationCoreInfos": self.store.batch(ids, app_id, skip_member_count)}

    def users_page(self, app_id: int, ids: list[int]) -> dict[str, Any]:
        """BatchGetUser's Result: registered users once each, the others in NotFoundUsers."""
        users: list[dict[str, Any]] = []
        missing: list[int] = []
        with self.lock:
            for uid in dict.fromkeys(ids):
                if uid > 0 and self.social.registered(uid):
                    users.append(self.social.profile(uid, app_id))
                else:
                    missing.append(uid)
        return {"Users": users, "NotFoundUsers": missing}

    def user_listing_page(
        self,
        listing: str,
        uid: int,
        *,
        inbox_type: int,
        cursor: int,
        limit: int,
        need_total: bool,
        anomaly: str | None = None,
    ) -> dict[str, Any]:
        """ListFriend's (``listing="friends"``) or GetBlackList's (``"blacklist"``) Result;
        TotalCount is 0 unless ``need_total``. An unknown user (or 0) has an empty last page."""
        items_of, field = USER_LISTINGS[listing]
        with self.lock:
            items = getattr(self.social, items_of)(uid, inbox_type) if uid > 0 else []
            pg = opaque_page(self.codec, (listing, uid, inbox_type), cursor, limit, len(items), anomaly)
        return {
            field: items[pg.start : pg.stop],
            "HasMore": pg.has_more,
            "NextCursor": pg.next_cursor,
            "TotalCount": len(items) if need_total else 0,
        }

    def read_index_page(self, app_id: int, sid: int) -> dict[str, Any]:
        """GetParticipantReadIndex's Result (an unknown conversation: none)."""
        with self.lock:
            conv = self.store.get(sid, app_id)
            return {"ReadIndexes": self.social.read_indexes(conv) if conv is not None else []}

    def blocks_page(
        self, app_id: int, sid: int, *, block_action: int, cursor: int, limit: int, anomaly: str | None = None
    ) -> dict[str, Any]:
        """BatchGetBlockParticipants' Result (an unknown conversation: one empty last page)."""
        with self.lock:
            conv = self.store.get(sid, app_id)
            entries = self.social.block_list(conv, block_action) if conv is not None else []
            scope = ("blocks", app_id, sid, block_action)
            pg = opaque_page(self.codec, scope, cursor, limit, len(entries), anomaly)
            parts = [self.social.render_block(conv, k, e) for k, e in entries[pg.start : pg.stop]]  # type: ignore[arg-type]
        return {"Participants": parts, "HasMore": pg.has_more, "NextCursor": pg.next_cursor}


def _block_action(value: Any) -> int:
    if value in ("mute", "block"):
        return 0 if value == "mute" else 1
    if isinstance(value, bool) or value not in BLOCK_ACTIONS:
        raise ValueError(f"block_action must be 0 (mute) or 1 (block), got {value!r}")
    return int(value)
