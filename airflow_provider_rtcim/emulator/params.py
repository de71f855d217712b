"""Request-body validation shared by the action handlers: each raises :class:`ApiError` with the
real error code (``MissingParameter``, ``InvalidParameter.Unmarshal``, ``InvalidParameter`` ...).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_rtcim.emulator.exceptions import ApiError, invalid, unmarshal
from airflow_provider_rtcim.emulator.utils import UserKey


def require(req: dict[str, Any], *names: str) -> None:
    for name in names:
        if req.get(name) is None:
            raise ApiError(400, "MissingParameter", f"the required parameter {name} is missing")


def integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise unmarshal(f"{name} must be an integer")
    return value


def optional_int(req: dict[str, Any], name: str, default: int) -> int:
    value = req.get(name)
    return default if value is None else integer(name, value)


def boolean(req: dict[str, Any], name: str, default: bool) -> bool:
    value = req.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise unmarshal(f"{name} must be true or false")
    return value


def app_id_of(req: dict[str, Any]) -> int:
    app_id = integer("AppId", req["AppId"])
    if not 0 < app_id < 2**31:
        raise ApiError(400, "InvalidParameter.IllegalAppId", f"AppId {app_id} is not a valid AppId")
    return app_id


def check_app_exists(app_ids: list[int], app_id: int) -> None:
    if app_id not in app_ids:
        raise ApiError(400, "InvalidParameter.NotExistAppId", f"AppId {app_id} does not exist")


def limit_of(req: dict[str, Any], maximum: int, default: int | None = None) -> int:
    value = req.get("Limit")
    limit = default if value is None and default is not None else integer("Limit", value)
    if not 1 <= limit <= maximum:
        raise invalid(f"Limit must be between 1 and {maximum}, got {limit}")
    return limit


def conversation_paging(req: dict[str, Any], maximum: int) -> tuple[int, int, int, int]:
    """``(AppId, ConversationShortId, Cursor, Limit)`` of a paged conversation action, all required."""
    require(req, "AppId", "ConversationShortId", "Cursor", "Limit")
    app_id = app_id_of(req)
    sid = integer("ConversationShortId", req["ConversationShortId"])
    return app_id, sid, integer("Cursor", req["Cursor"]), limit_of(req, maximum)


def choice(req: dict[str, Any], name: str, allowed: dict[int, str], default: int = 0) -> int:
    """An optional int field that must be one of ``allowed`` (``{value: meaning}``)."""
    value = optional_int(req, name, default)
    if value not in allowed:
        names = " or ".join(f"{k} ({v})" for k, v in allowed.items())
        raise invalid(f"{name} must be {names}, got {value}")
    return value


def inbox_of(req: dict[str, Any]) -> int:
    inbox = optional_int(req, "InboxType", 0)
    if inbox < 0:
        raise invalid(f"InboxType must be >= 0, got {inbox}")
    return inbox


def id_list(req: dict[str, Any], name: str, maximum: int) -> list[int]:
    """An array of 1..``maximum`` int64s."""
    ids = req[name]
    if not isinstance(ids, list):
        raise unmarshal(f"{name} must be an array of integers")
    ids = [integer(name, i) for i in ids]
    if not 1 <= len(ids) <= maximum:
        raise invalid(f"{name} must hold 1 to {maximum} ids, got {len(ids)}")
    return ids


def user_of(req: dict[str, Any], name: str) -> UserKey:
    """A user named by ``name`` (int64) or its ``nameStr`` twin: ``name`` > 0 names an int user;
    otherwise a non-empty ``nameStr`` names a string user, verbatim (the Go SDK sends ``name: 0``
    beside it)."""
    text = req.get(f"{name}Str")
    if req.get(name) is None and not text:
        raise ApiError(400, "MissingParameter", f"the required parameter {name} is missing")
    value = integer(name, req[name]) if req.get(name) is not None else None
    if text is not None and not isinstance(text, str):
        raise unmarshal(f"{name}Str must be a string")
    if value is not None and (value > 0 or not text):
        return value
    return text  # type: ignore[return-value]
