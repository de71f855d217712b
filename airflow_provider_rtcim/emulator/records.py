"""The emulator's records and constants: one :class:`Conversation` per ``ConversationShortId``.

Generated ids and times are fixed offsets from the constants below; :func:`complete_info` fills
the fields every ConversationInfo has. Pure, no HTTP, no locks.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_rtcim.emulator.utils import UserKey, fill_user_field, key_of

SHORT_ID_BASE = 7_000_000_000_000_000_000
"""Generated ``ConversationShortId`` values are ``SHORT_ID_BASE + n`` (well above 2**53)."""
USER_ID_BASE = 1_000_000
"""Generated int user ids are ``USER_ID_BASE + 1``, ``+ 2``, ..."""
MESSAGE_ID_BASE = 7_300_000_000_000_000_000
"""``MessageId`` = ``MESSAGE_ID_BASE + ordinal * MESSAGE_INDEX_SPAN + IndexInConversation``."""
MESSAGE_INDEX_SPAN = 1_000_000_000
MAX_MESSAGES = MESSAGE_INDEX_SPAN - 1
MAX_MEMBERS = 4_000_000
FILLER_USER_BASE = 9_000_000_000_000
"""Generated members that are not emulator users: ``FILLER_USER_BASE + ordinal * 10**7 + j``."""
BASE_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z: generated times are fixed, not "now"

LIVE_GROUP = 100
DATA_TYPES = (0, 1, 2)
USER_FIELDS = ("CreatorUserId", "OwnerUserId", "OtherUserId")

PEOPLE = ["张伟", "王芳", "李娜", "Alex", "María", "Søren", "小明 😀", "Zoë", "陈静", "Ivan"]
TEXTS = [
    "你好 👋",
    "今晚一起吃饭吗 🍜",
    "收到 马上处理 ✅",
    "Meeting moved to 3pm",
    "哈哈哈 😂",
    "周报已发群文件 📎",
    "Ship it 🚀",
    "好的 明天见",
    "¿Qué tal? 🌮",
    "👍",
]
# MsgType weights: mostly text; 10003 image, 10004 video, 10005 file, 10006 audio, 10012 custom
MSG_TYPES = (10001,) * 14 + (10003, 10003, 10004, 10005, 10006, 10012)
MARKS = ("vip", "speaker", "guest")


def sort_key(data_type: int):
    if data_type == 0:
        return lambda c: (-int(c.get("ModifyTime", 0)), -int(c["ConversationShortId"]))
    if data_type == 2:
        return lambda c: (-int(c.get("CreateTime", 0)), -int(c["ConversationShortId"]))
    return lambda c: (int(c.get("CreateTime", 0)), int(c["ConversationShortId"]))


class Conversation:
    """One conversation: its ConversationInfo, listers, lazily built members and messages."""

    __slots__ = (
        "core",
        "explicit",
        "fill",
        "info",
        "joined",
        "listers",
        "members",
        "msg_generated",
        "msg_stored",
        "online_cache",
        "ordinal",
        "string_fill",
        "version",
    )

    def __init__(self, info: dict[str, Any], ordinal: int) -> None:
        self.info = info
        self.ordinal = ordinal
        # Containers stay None until needed: a data set may hold 200,000+ conversations.
        self.listers: list[UserKey] = []  # usually one user
        self.core: tuple[UserKey, ...] = ()  # the first members, in join order
        self.fill = 0  # generated members after the core ones
        self.string_fill = False  # generated members are string users
        self.explicit: dict[UserKey, dict[str, Any]] | None = None  # per-member fields given explicitly
        self.members: list[UserKey] | None = None  # built on first access
        self.joined: dict[UserKey, int] | None = None  # join time (s) of each member
        self.msg_generated = 0  # messages 1..msg_generated are computed on demand
        self.msg_stored: list[dict[str, Any]] | None = None  # then these, by IndexInConversation
        self.version = 0
        self.online_cache: dict[str | None, list[UserKey]] | None = None

    def member_fields(self, key: UserKey) -> dict[str, Any]:
        """The fields given explicitly for a member (a new dict to fill if there are none)."""
        if self.explicit is None:
            self.explicit = {}
        return self.explicit.setdefault(key, {})

    def changed(self) -> None:
        self.version += 1
        self.online_cache = None

    @property
    def short_id(self) -> int:
        return self.info["ConversationShortId"]

    @property
    def generated_member_count(self) -> int:
        return len(self.core) + self.fill

    def generated_member(self, j: int) -> UserKey:
        """The member at join position ``j`` of the generated list (no materialization)."""
        if j < len(self.core):
            return self.core[j]
        j -= len(self.core)
        if self.string_fill:
            return f"m{self.ordinal:x}-{j}"
        return FILLER_USER_BASE + self.ordinal * 10_000_000 + j

    @property
    def message_count(self) -> int:
        return self.msg_generated + (len(self.msg_stored) if self.msg_stored else 0)


def complete_info(info: dict[str, Any], uid: UserKey, default_app_id: int) -> dict[str, Any]:
    """Fill the fields a ConversationInfo always has (for a conversation listed by ``uid``)."""
    sid = info["ConversationShortId"]
    if isinstance(sid, bool) or not isinstance(sid, int):
        raise ValueError("ConversationShortId must be an integer")
    info.setdefault("AppId", default_app_id)
    info.setdefault("ConversationType", 1)
    info.setdefault("InboxType", 0)
    info.setdefault("ConversationId", str(sid))
    fill_user_field(info, "CreatorUserId", uid)
    fill_user_field(info, "OwnerUserId", key_of(info, "CreatorUserId"))
    fill_user_field(info, "OtherUserId", None)
    return info
