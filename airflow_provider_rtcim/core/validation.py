"""Input checks that run before any request: every failure is a ``ValueError`` naming the field.

Pure (no Airflow, no ``requests``), so the hook, operators, sensors and triggers can check
their arguments at import-free cost. Also holds the parsing of the connection's settings
(endpoint, proxies, verify, numbers), which is equally pure.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from airflow_provider_rtcim.core.defaults import DEFAULT_REGION

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
MAX_LIMIT = 20
DATA_TYPES: frozenset[int] = frozenset({0, 1, 2})

REGION_ENDPOINTS: dict[str, str] = {
    "cn-north-1": "https://rtc.volcengineapi.com",
    "ap-southeast-1": "https://open-ap-singapore-1.volcengineapi.com",
}
"""The API endpoint of each region the official SDKs know."""

_REGION_RE = re.compile(r"^[a-z]+(-[a-z]+)*-[0-9]+$")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_URL_USERINFO = re.compile(r"(://)[^/\s'\"]*@")


def redact_userinfo(text: str) -> str:
    """``text`` with the ``user:password@`` of every ``scheme://`` URL in it replaced by ``***@``."""
    return _URL_USERINFO.sub(r"\1***@", text)


def redact_url(url: str) -> str:
    """One URL (scheme or not) with its ``user:password@`` replaced by ``***@``, for messages."""
    if "://" in url:
        return redact_userinfo(url)
    _, at, tail = url.rpartition("@")
    return f"***@{tail}" if at else url


def url_passwords(url: str | None) -> list[str]:
    """The password in a URL's userinfo, as written and percent-decoded: what to mask."""
    if not url or "@" not in url:
        return []
    try:
        raw = urlsplit(url if "://" in url else f"//{url}").password
    except ValueError:
        return []
    if not raw:
        return []
    decoded = unquote(raw)
    return [raw] if decoded == raw else [raw, decoded]


def to_int(value: Any, field: str) -> int:
    """``value`` as an ``int``: ints and numeric strings (``"123"``) are accepted.

    ``bool``, ``float``, ``None`` and anything else are rejected with a ``ValueError``
    naming ``field``: a float cannot hold every int64 id exactly, so it is never guessed at.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field} must be an integer, got a bool ({value!r})")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if _INT_RE.match(text):
            return int(text)
        raise ValueError(f"{field} must be an integer or a string of digits, got {value!r}")
    raise ValueError(f"{field} must be an integer, got {type(value).__name__} {value!r}")


def _in_range(value: int, field: str, low: int, high: int, what: str) -> int:
    if not low <= value <= high:
        raise ValueError(f"{field} must be {what}, got {value}")
    return value


USER_ID_TYPES: tuple[str, ...] = ("int", "str")
"""The kinds of user id an app can use: ``"int"`` (int64, the default) or ``"str"`` (opaque text)."""

_STR_HINT = (
    'string user ids need user_id_type="str" (set extra.user_id_type on the connection, '
    'or pass user_id_type="str" to the task or hook call)'
)


def validate_user_id_type(value: Any, field: str = "user_id_type") -> str:
    """``"int"`` or ``"str"`` (any case, surrounding spaces ignored); anything else is an error."""
    if isinstance(value, str) and value.strip().lower() in USER_ID_TYPES:
        return value.strip().lower()
    raise ValueError(
        f'{field} must be "int" or "str" ("int": int64 user ids, the default; "str": opaque string '
        f"user ids, sent as ParticipantUserIdStr), got {value!r}"
    )


def validate_int_user_id(value: Any, field: str = "participant_user_id") -> int:
    """A user id of an ``"int"`` app: a positive int64 (int or numeric string)."""
    try:
        number = to_int(value, field)
    except ValueError as exc:
        if isinstance(value, str) and value.strip():
            raise ValueError(f"{exc}: {_STR_HINT}") from None
        raise
    return _in_range(number, field, 1, INT64_MAX, f"a positive integer (1..{INT64_MAX})")


def validate_str_user_id(value: Any, field: str = "participant_user_id") -> str:
    """A user id of a ``"str"`` app: opaque text, kept exactly as given ("007" is not 7).

    Empty strings and surrounding whitespace are errors (never trimmed: " alice" and "alice"
    would be two users); an int is an error that says what to do.
    """
    if isinstance(value, str):
        if not value:
            raise ValueError(f"{field} must be a non-empty string (user_id_type=\"str\"), got ''")
        if value != value.strip():
            raise ValueError(
                f"{field} {value!r} has surrounding whitespace: string user ids are opaque and "
                'are never trimmed (user_id_type="str"); remove it'
            )
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f'{field} must be a string with user_id_type="str", got the integer {value}: pass it '
            f'as a string ("{value}"), or use user_id_type="int" if this app\'s user ids are integers'
        )
    raise ValueError(
        f'{field} must be a string with user_id_type="str", got {type(value).__name__} {value!r}'
    )


def user_id_validator(user_id_type: str) -> Callable[[Any, str], int | str]:
    """The check for one user id of an app of ``user_id_type`` (``validate(value, field)``)."""
    return validate_str_user_id if validate_user_id_type(user_id_type) == "str" else validate_int_user_id


def check_user_id(value: Any, field: str, user_id_type: str) -> int | str:
    """One user id checked for an app of ``user_id_type`` (``"int"`` or ``"str"``)."""
    return user_id_validator(user_id_type)(value, field)


def validate_conversation_short_id(value: Any, field: str = "conversation_short_id") -> int:
    """A ``ConversationShortId``: a positive int64 (int or numeric string; never a float)."""
    return _in_range(to_int(value, field), field, 1, INT64_MAX, f"a positive integer (1..{INT64_MAX})")


def validate_app_id(value: Any, field: str = "app_id") -> int:
    """An AppId: a positive int32 (int or numeric string)."""
    return _in_range(to_int(value, field), field, 1, INT32_MAX, f"a positive integer (1..{INT32_MAX})")


def validate_page_size(value: Any, field: str = "page_size", *, maximum: int = MAX_LIMIT) -> int:
    """A page size (``Limit``): 1..``maximum`` (the action's largest page, 20 by default)."""
    return _in_range(to_int(value, field), field, 1, maximum, f"between 1 and {maximum}")


def to_positive_int(value: Any, field: str) -> int:
    """An integer >= 1 (int or numeric string): a count such as ``max_pages`` or ``batch_size``."""
    return _in_range(to_int(value, field), field, 1, INT64_MAX, "an integer >= 1")


def none_if_blank(value: Any, *, none_words: bool = False) -> Any:
    """A rendered template that says "nothing" read back as None: an empty or blank string
    (and, with ``none_words``, ``"None"`` / ``"null"``, what Jinja renders from None)."""
    if isinstance(value, str):
        text = value.strip()
        if not text or (none_words and text.lower() in ("none", "null")):
            return None
    return value


def validate_data_type(value: Any, field: str = "data_type") -> int:
    """``DataType``: 0 (cache, most recently active first), 1 (database, creation order), 2 (live groups)."""
    number = to_int(value, field)
    if number not in DATA_TYPES:
        raise ValueError(
            f"{field} must be one of 0 (cache, most recently active first), "
            f"1 (database, creation order), 2 (live groups created by the user); got {number}"
        )
    return number


def validate_inbox_type(value: Any, field: str = "inbox_type") -> int:
    """``InboxType``: an integer >= 0."""
    return _in_range(to_int(value, field), field, 0, INT64_MAX, "an integer >= 0")


def validate_cursor(value: Any, field: str = "cursor") -> int:
    """A ``Cursor`` to send: an int64 >= 0 (0 is the first page)."""
    return _in_range(to_int(value, field), field, 0, INT64_MAX, "an integer >= 0 (0 for the first page)")


def validate_bool(value: Any, field: str) -> bool:
    """A real ``bool`` (``True``/``False``), nothing else."""
    if not isinstance(value, bool):
        raise ValueError(f"{field} must be True or False, got {value!r}")
    return value


def validate_action(value: Any, field: str = "action") -> str:
    """An API action name such as ``GetUserConversations`` (letters and digits)."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", value):
        raise ValueError(f"{field} must be an API action name such as 'GetUserConversations', got {value!r}")
    return value


def validate_version(value: Any, field: str = "version") -> str:
    """An API version such as ``2020-12-01``."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError(f"{field} must be an API version such as '2020-12-01', got {value!r}")
    return value


# ---------------------------------------------------------------------------------------
# Settings (connection extras and hook kwargs)
# ---------------------------------------------------------------------------------------


def to_bool(value: Any, field: str) -> bool:
    """A bool, or the strings true/false/yes/no/1/0 (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
    raise ValueError(f"{field} must be true or false, got {value!r}")


def to_positive_float(value: Any, field: str, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (>= 0 with ``allow_zero``); numeric strings accepted, bool rejected."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{field} must be a number, got {value!r}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"{field} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{field} must be a finite number {bound}, got {value!r}")
    return number


def to_non_negative_int(value: Any, field: str) -> int:
    """An integer >= 0 (int or numeric string)."""
    return _in_range(to_int(value, field), field, 0, INT64_MAX, "an integer >= 0")


def to_max_qps(value: Any, field: str = "max_qps") -> float | None:
    """A request rate cap: a number > 0, or None / 0 for no client-side limit."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    number = to_positive_float(value, field, allow_zero=True)
    return number or None


def parse_verify(value: Any, field: str = "verify") -> bool | str:
    """TLS verification: a bool, ``"true"``/``"false"``, or the path of a CA bundle."""
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return True
        try:
            return to_bool(text, field)
        except ValueError:
            return text  # a CA bundle path
    raise ValueError(f"{field} must be true, false or a CA bundle path, got {value!r}")


def _has_host(url: str) -> bool:
    try:
        return bool(urlsplit(url if "://" in url else f"//{url}").hostname)
    except ValueError:
        return False


def parse_proxies(value: Any, field: str = "proxies") -> dict[str, str] | None:
    """Proxies: a URL string (for http and https), or a dict / JSON object ``{"https": url, ...}``."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{field} is not a valid JSON object: {exc.msg}") from None
        else:
            if "://" not in text or not _has_host(text):
                raise ValueError(
                    f"{field} must be a proxy URL such as 'http://proxy:3128', got {redact_url(text)!r}"
                )
            return {"http": text, "https": text}
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, url in value.items():
            if not isinstance(key, str) or not isinstance(url, str) or not _has_host(url):
                shown = redact_url(url) if isinstance(url, str) else redact_userinfo(repr(url))
                raise ValueError(f"{field} must map schemes to proxy URLs, got {key!r}: {shown!r}")
            out[key] = url
        return out or None
    raise ValueError(f"{field} must be a proxy URL or an object of scheme -> URL, got {type(value).__name__}")


def _known_regions() -> str:
    return ", ".join(f"{r} ({u})" for r, u in REGION_ENDPOINTS.items())


def validate_region(value: Any, field: str = "extra.region") -> str:
    """A region name such as ``cn-north-1``: lowercase letters and dashes, then a number.

    The region is part of every signature, so a malformed one is refused here instead of
    coming back as ``SignatureDoesNotMatch``. Any well-formed name is accepted (with an
    explicit endpoint, a region the SDKs do not know yet may be right).
    """
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string such as 'cn-north-1', got {value!r}")
    text = value.strip()
    if _REGION_RE.match(text):
        return text
    guess = re.sub(r"[\s_]+", "-", text.lower())
    suggestion = f"did you mean {guess!r}? " if guess in REGION_ENDPOINTS else ""
    raise ValueError(
        f"{field} must be a region name such as 'cn-north-1' (lowercase letters and dashes, then a "
        f"number), got {value!r}; {suggestion}known regions: {_known_regions()}"
    )


def region_of_endpoint(endpoint: str) -> str | None:
    """The region whose official endpoint has ``endpoint``'s host, or None."""
    host = urlsplit(endpoint).hostname
    for region, url in REGION_ENDPOINTS.items():
        if urlsplit(url).hostname == host:
            return region
    return None


def region_note(endpoint: str, region: str, field: str = "extra.region") -> str | None:
    """Why the region may be what a ``SignatureDoesNotMatch`` is about, or None when it looks right.

    The region is part of the signature. It is suspect when the endpoint is a known region's
    but another region is configured, or when the region is not one the SDKs know (which is
    only possible with an explicit endpoint). ``field`` is how the advice names the setting.
    """
    served = region_of_endpoint(endpoint)
    if served is not None and served != region:
        why = f"the endpoint {urlsplit(endpoint).hostname} is region {served}'s, not {region}'s"
    elif served is None and region not in REGION_ENDPOINTS:
        why = f"{region!r} is not a known region ({', '.join(REGION_ENDPOINTS)})"
    elif served is None and region != DEFAULT_REGION:
        # A custom endpoint (a proxy, a private deployment): which region it signs with is
        # unknown here, and a region other than the default is a choice that may be wrong.
        why = (
            f"{region!r} is configured, and the endpoint {urlsplit(endpoint).hostname} is not a known "
            f"region's, so it may sign with another region (the default is {DEFAULT_REGION})"
        )
    else:
        return None
    return f"the region may be the cause: {why}, and the region is part of the signature: check {field}"


def resolve_endpoint(
    host: str | None,
    *,
    port: int | None = None,
    region: str = DEFAULT_REGION,
    endpoint_url: str | None = None,
    field: str = "host",
) -> str:
    """The API endpoint (``scheme://host[:port][/path]``, no trailing slash).

    ``endpoint_url`` wins over ``host``. A full URL is used as it is; a bare host means
    https (with ``port`` when set); nothing at all means the region's endpoint.
    """
    if endpoint_url is not None and str(endpoint_url).strip():
        raw, field = str(endpoint_url).strip(), "extra.endpoint_url"
    elif host is not None and str(host).strip():
        raw = str(host).strip()
    else:
        if region not in REGION_ENDPOINTS:
            raise ValueError(
                f"region {region!r} has no known endpoint: set the connection's host or "
                f"extra.endpoint_url (known regions: {_known_regions()})"
            )
        return REGION_ENDPOINTS[region]
    if "://" not in raw:
        raw = f"https://{raw}"
        if port and not re.search(r":[0-9]+$", raw.split("/", 3)[2]):
            raw = f"{raw}:{int(port)}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{field} must be a URL such as 'https://rtc.volcengineapi.com', got {redact_url(raw)!r}"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError(f"{field} has an invalid port: {redact_url(raw)!r}") from None
    if parts.query or parts.fragment:
        raise ValueError(f"{field} must not have a query or fragment: {redact_url(raw)!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
