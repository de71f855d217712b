"""The admin API (``/_emulator/...``, unsigned JSON): a route table, one small handler per route.

Each route is ``(methods, path pattern, handler)``; ``{name}`` in a pattern matches one path
segment. A handler gets the emulator and an :class:`AdminRequest` and returns ``(status,
payload)``. ``KeyError`` becomes 404, ``ValueError``/``TypeError`` 400. See the package
docstring for the endpoints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from airflow_provider_rtcim.emulator.models import EmulatorBackend


class AdminTarget(Protocol):
    """What the admin API reads and changes (the :class:`~airflow_provider_rtcim.emulator.Emulator`)."""

    backend: EmulatorBackend

    @property
    def url(self) -> str: ...

    @property
    def stats(self) -> dict[str, Any]: ...

    @property
    def config(self) -> dict[str, Any]: ...

    def reset_stats(self) -> None: ...

    def configure(self, **options: Any) -> None: ...


@dataclass
class AdminRequest:
    method: str
    path: str
    params: dict[str, str]  # the pattern's {name} segments
    query: dict[str, str]  # first value of each query parameter
    payload: Any  # the JSON body ({} when empty)

    def flag(self, name: str) -> bool:
        return self.query.get(name, "0").lower() in ("1", "true")

    def object_body(self, shape: str) -> dict[str, Any]:
        """The body as a dict, else ``ValueError`` naming the expected ``shape``."""
        if not isinstance(self.payload, dict):
            raise ValueError(f"the body must be a JSON object {shape}")
        return dict(self.payload)


AdminHandler = Callable[[AdminTarget, AdminRequest], tuple[int, Any]]
ROUTES: list[tuple[frozenset[str] | None, re.Pattern[str], AdminHandler]] = []


def route(methods: Iterable[str] | None, pattern: str) -> Callable[[AdminHandler], AdminHandler]:
    """Register a handler for ``methods`` (None: any) and ``pattern`` (after ``/_emulator``)."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

    def register(fn: AdminHandler) -> AdminHandler:
        ROUTES.append((frozenset(methods) if methods is not None else None, regex, fn))
        return fn

    return register


def handle_admin(emu: AdminTarget, method: str, path: str, query_string: str, body: bytes) -> tuple[int, Any]:
    parts = [p for p in path.split("/") if p][1:]  # drop "_emulator"
    tail = "/" + "/".join(parts)
    query = {k: v[0] for k, v in parse_qs(query_string).items()}
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError:
        return 400, {"error": "the body is not valid JSON"}
    for methods, regex, handler in ROUTES:
        match = regex.match(tail)
        if match is None or (methods is not None and method not in methods):
            continue
        try:
            return handler(emu, AdminRequest(method, tail, match.groupdict(), query, payload))
        except KeyError as exc:
            return 404, {"error": str(exc.args[0]) if exc.args else "not found"}
        except (ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
    return 404, {"error": f"no admin endpoint {method} {path}"}


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} must be an integer, got {text!r}") from None


def _app_id(req: AdminRequest) -> int | None:
    return _int(req.query["app_id"], "app_id") if "app_id" in req.query else None


# ----------------------------------------------------------------------------- server
@route(None, "/health")
def health(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    backend = emu.backend
    return 200, {
        "status": "ok",
        "url": emu.url,
        "app_ids": backend.app_ids,
        "user_ids": backend.user_ids,
        "string_user_ids": backend.string_user_ids,
    }


@route({"GET"}, "/stats")
def get_stats(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    s = emu.stats
    s["by_status"] = {str(k): v for k, v in s["by_status"].items()}
    return 200, s


@route({"POST", "DELETE"}, "/stats")
@route({"POST", "DELETE"}, "/stats/reset")
def reset_stats(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    emu.reset_stats()
    return 200, {"status": "ok"}


@route(None, "/config")
def config(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    if req.method == "POST":
        if not isinstance(req.payload, dict):
            return 400, {"error": "the body must be a JSON object of options"}
        emu.configure(**req.payload)
    return 200, emu.config


# ----------------------------------------------------------------------------- users' conversations
@route({"GET"}, "/users")
def users(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    return 200, {"user_ids": emu.backend.user_ids, "string_user_ids": emu.backend.string_user_ids}


@route({"GET"}, "/users/{uid}/conversations")
def user_conversations(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    b = emu.backend
    uid = b.resolve_user(req.params["uid"], req.query.get("kind"))
    infos = b.conversations(
        uid,
        data_type=_int(req.query.get("data_type", "1"), "data_type"),
        inbox_type=_int(req.query.get("inbox_type", "0"), "inbox_type"),
        app_id=_app_id(req),
    )
    return 200, {"ConversationInfos": infos}


@route({"POST"}, "/users/{uid}/conversations")
def add_conversation(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    b = emu.backend
    uid = b.resolve_user(req.params["uid"], req.query.get("kind"))
    if not isinstance(req.payload, dict):
        return 400, {"error": "the body must be a JSON object of ConversationInfo fields"}
    return 201, b.add_conversation(uid, **req.payload)


@route({"DELETE"}, "/users/{uid}/conversations")
@route({"DELETE"}, "/users/{uid}/conversations/{sid}")
def remove_conversation(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    b = emu.backend
    uid = b.resolve_user(req.params["uid"], req.query.get("kind"))
    sid = _int(req.params["sid"], "ConversationShortId") if "sid" in req.params else None
    return 200, b.remove_conversation(uid, sid)


# ----------------------------------------------------------------------------- conversations
@route({"GET"}, "/conversations")
def conversation_ids(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    return 200, {"conversation_ids": emu.backend.conversation_ids(_app_id(req))}


def _known(emu: AdminTarget, req: AdminRequest) -> int:
    sid = _int(req.params["sid"], "ConversationShortId")
    if emu.backend.conversation(sid) is None:
        raise KeyError(f"no conversation {sid}")
    return sid


@route({"GET"}, "/conversations/{sid}")
def conversation(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    sid = _int(req.params["sid"], "ConversationShortId")
    info = emu.backend.conversation(sid)
    return (200, info) if info is not None else (404, {"error": f"no conversation {sid}"})


@route({"GET"}, "/conversations/{sid}/participants")
def participants(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    return 200, {"Participants": emu.backend.participants(_known(emu, req), req.flag("reverse"))}


@route({"POST"}, "/conversations/{sid}/participants")
def add_participant(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    sid = _int(req.params["sid"], "ConversationShortId")
    if not isinstance(req.payload, dict) or "user_id" not in req.payload:
        return 400, {"error": 'the body must be a JSON object {"user_id": ..., other fields}'}
    fields = dict(req.payload)
    return 201, emu.backend.add_participant(sid, fields.pop("user_id"), **fields)


@route({"DELETE"}, "/conversations/{sid}/participants/{uid}")
def remove_participant(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    sid = _int(req.params["sid"], "ConversationShortId")
    key = emu.backend.resolve_user(req.params["uid"], req.query.get("kind"), short_id=sid)
    return 200, emu.backend.remove_participant(sid, key)


@route({"GET"}, "/conversations/{sid}/messages")
def messages(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    return 200, {"Messages": emu.backend.messages(_known(emu, req), req.flag("reverse"))}


@route({"POST"}, "/conversations/{sid}/messages")
def add_messages(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    b = emu.backend
    sid = _known(emu, req)
    if not isinstance(req.payload, dict):
        return 400, {"error": 'the body must be a JSON object of message fields, or {"count": n}'}
    if "count" in req.payload:
        return 201, {"Messages": b.add_messages(sid, req.payload["count"])}
    if "message_count" in req.payload:
        b.set_message_count(sid, req.payload["message_count"])
        return 200, {"ConversationShortId": sid, "message_count": b.message_count(sid)}
    fields = dict(req.payload)
    sender = fields.pop("sender", None)
    content = fields.pop("content", None)
    return 201, b.add_message(sid, sender=sender, content=content, **fields)


# ----------------------------------------------------------------------------- users, friends, blacklists
def _int_user(text: str) -> int:
    """A user in a users/friends/blacklist URL: a canonical decimal int64 (these actions have no
    string user ids)."""
    if not (text.isdigit() and str(int(text)) == text):
        raise ValueError(
            f"user id {text!r} must be a decimal int64: BatchGetUser, ListFriend and GetBlackList "
            "name users by int64 only (no *Str field), so string users have none of these"
        )
    return int(text)


def _pop_user(req: AdminRequest, shape: str) -> tuple[Any, dict[str, Any]]:
    fields = req.object_body(shape)
    if "user_id" not in fields:
        raise ValueError(f"the body must be a JSON object {shape}")
    return fields.pop("user_id"), fields


def _inbox(req: AdminRequest, fields: dict[str, Any] | None = None) -> int:
    if fields is not None and "inbox_type" in fields:
        return int(fields.pop("inbox_type"))
    return _int(req.query.get("inbox_type", "0"), "inbox_type")


@route({"POST"}, "/users")
def add_user(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    uid, fields = _pop_user(req, '{"user_id": 7, other profile fields}')
    return 201, emu.backend.add_user(uid, **fields)


@route({"GET"}, "/users/{uid}")
def user(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    uid = _int_user(req.params["uid"])
    profile = emu.backend.user(uid)
    return (200, profile) if profile is not None else (404, {"error": f"no user {uid}"})


def _user_list_routes(segment: str, items: str, listing: str, add: str, remove: str, shape: str) -> None:
    """GET/POST ``/users/{uid}/<segment>`` and DELETE ``/users/{uid}/<segment>/{other}`` over the
    backend's ``listing``, ``add`` and ``remove`` methods (friends and blacklists)."""

    @route({"GET"}, f"/users/{{uid}}/{segment}")
    def get(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
        return 200, {items: getattr(emu.backend, listing)(_int_user(req.params["uid"]), _inbox(req))}

    @route({"POST"}, f"/users/{{uid}}/{segment}")
    def post(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
        uid = _int_user(req.params["uid"])
        other, fields = _pop_user(req, shape)
        return 201, getattr(emu.backend, add)(uid, other, _inbox(req, fields), **fields)

    @route({"DELETE"}, f"/users/{{uid}}/{segment}/{{other}}")
    def delete(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
        uid, other = _int_user(req.params["uid"]), _int_user(req.params["other"])
        return 200, getattr(emu.backend, remove)(uid, other)


_user_list_routes(
    "friends",
    "FriendInfos",
    "friends",
    "add_friend",
    "remove_friend",
    '{"user_id": 7, "inbox_type": 0, "Alias": ..., "Ext": {...}}',
)
_user_list_routes(
    "blacklist",
    "BlackListInfos",
    "blacklist",
    "add_to_blacklist",
    "remove_from_blacklist",
    '{"user_id": 7, "inbox_type": 0, "BlackListUserExt": {...}}',
)


# ----------------------------------------------------------------------------- read positions, mute/block lists
@route({"GET"}, "/conversations/{sid}/read_indexes")
def read_indexes(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    return 200, {"ReadIndexes": emu.backend.read_indexes(_int(req.params["sid"], "ConversationShortId"))}


@route({"POST"}, "/conversations/{sid}/read_indexes")
def set_read_index(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    sid = _int(req.params["sid"], "ConversationShortId")
    key, fields = _pop_user(req, '{"user_id": 7 or "007", "read_index": n}')
    if "read_index" not in fields:
        raise ValueError('the body must be a JSON object {"user_id": 7 or "007", "read_index": n}')
    return 200, emu.backend.set_read_index(sid, key, fields["read_index"])


def _action(req: AdminRequest, fields: dict[str, Any] | None = None) -> Any:
    if fields is not None and "block_action" in fields:
        return fields["block_action"]
    value = req.query.get("block_action", "0")
    return int(value) if value.isdigit() else value


@route({"GET"}, "/conversations/{sid}/blocks")
def block_participants(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    sid = _int(req.params["sid"], "ConversationShortId")
    return 200, {"Participants": emu.backend.block_participants(sid, _action(req))}


@route({"POST"}, "/conversations/{sid}/blocks")
def set_block(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    sid = _int(req.params["sid"], "ConversationShortId")
    key, fields = _pop_user(req, '{"user_id": 7 or "007", "block_action": 0 or 1, "block_time": s}')
    return 201, emu.backend.set_block(sid, key, _action(req, fields), fields.get("block_time"))


@route({"DELETE"}, "/conversations/{sid}/blocks/{uid}")
def remove_block(emu: AdminTarget, req: AdminRequest) -> tuple[int, Any]:
    sid = _int(req.params["sid"], "ConversationShortId")
    key = emu.backend.resolve_user(req.params["uid"], req.query.get("kind"), short_id=sid)
    return 200, emu.backend.remove_block(sid, key, _action(req))
