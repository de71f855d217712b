"""The ``rtcim`` connection's settings: parsed and validated once (see :mod:`~airflow_provider_rtcim.hooks.rtcim`).

A ``Connection`` is read through its attributes (``login``, ``password``, ``host``,
``port``, ``extra_dejson``, or an ``extra`` mapping given by the caller: a trigger fetches it
the async way), so every way of building a hook shares this one parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_rtcim.core.defaults import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_QPS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_REGION,
    DEFAULT_TIMEOUT,
    DEFAULT_USER_ID_TYPE,
)
from airflow_provider_rtcim.core.errors import (
    CODE_CONFIG,
    CODE_CONNECTION,
    CODE_TIMEOUT,
    CODE_TRUNCATED,
    RtcImError,
    hint_for,
)
from airflow_provider_rtcim.core.validation import (
    parse_proxies,
    parse_verify,
    region_note,
    resolve_endpoint,
    to_max_qps,
    to_non_negative_int,
    to_positive_float,
    validate_app_id,
    validate_region,
    validate_user_id_type,
)
from airflow_provider_rtcim.exceptions import RtcImApiError, RtcImConnectionNotFound, RtcImFatalError

__all__ = ["RtcImConnectionSettings", "config_error", "explain_failure", "parse_connection"]


@dataclass(frozen=True)
class RtcImConnectionSettings:
    """A connection's parsed and validated settings. ``repr`` never shows a secret."""

    conn_id: str
    access_key_id: str | None
    secret_access_key: str | None = field(repr=False)
    session_token: str | None = field(repr=False)
    region: str
    endpoint: str
    app_id: int | None
    timeout: float
    max_qps: float | None
    max_retries: int
    proxies: dict[str, str] | None = field(repr=False)
    verify: bool | str
    user_id_type: str = DEFAULT_USER_ID_TYPE


def config_error(conn_id: str, message: str) -> RtcImApiError:
    """``Connection 'x' has no AppId: ...`` (a missing field) or ``Connection 'x': extra.timeout ...`` (a bad value)."""
    separator = " " if message.startswith("has ") else ": "
    # fatal (an AirflowFailException): the task's retries would all fail the same way
    return RtcImFatalError(f"Connection {conn_id!r}{separator}{message}", code=CODE_CONFIG)


def parse_connection(
    conn: Any,
    *,
    extra: Mapping[str, Any] | None = None,
    conn_id: str | None = None,
) -> RtcImConnectionSettings:
    """Parse an Airflow ``Connection`` (login, password, host, port, extra) into settings.

    ``extra`` replaces ``conn.extra_dejson`` (inside a trigger, pass ``await conn.aextra_dejson()``).
    Raises :class:`RtcImApiError` (code ``MisconfiguredConnection``) naming the connection
    and the field for any invalid value. Missing credentials are not an error here (see
    :meth:`RtcImHook.credentials`).
    """
    cid = conn_id or getattr(conn, "conn_id", None) or DEFAULT_CONN_ID
    if extra is None:
        extra = conn.extra_dejson
    if not isinstance(extra, Mapping):
        raise config_error(cid, f"extra must be a JSON object, got {type(extra).__name__}")

    def get(name: str) -> Any:
        value = extra.get(name)
        return None if (isinstance(value, str) and not value.strip()) else value

    try:
        region = validate_region(get("region") or DEFAULT_REGION, "extra.region")
        endpoint = resolve_endpoint(
            conn.host, port=conn.port, region=region, endpoint_url=get("endpoint_url"), field="host"
        )
        app_id = get("app_id")
        app_id = None if app_id is None else validate_app_id(app_id, "extra.app_id")
        timeout = get("timeout")
        timeout = DEFAULT_TIMEOUT if timeout is None else to_positive_float(timeout, "extra.timeout")
        # Absent, null or "" (a form field left empty): the default; only 0 turns the cap off.
        max_qps = get("max_qps")
        max_qps = DEFAULT_MAX_QPS if max_qps is None else to_max_qps(max_qps, "extra.max_qps")
        max_retries = get("max_retries")
        max_retries = (
            DEFAULT_MAX_RETRIES
            if max_retries is None
            else to_non_negative_int(max_retries, "extra.max_retries")
        )
        proxies = parse_proxies(get("proxies"), "extra.proxies")
        verify = parse_verify(extra.get("verify"), "extra.verify")
        session_token = get("session_token")
        if session_token is not None and not isinstance(session_token, str):
            raise ValueError("extra.session_token must be a string")
        user_id_type = get("user_id_type")
        user_id_type = (
            DEFAULT_USER_ID_TYPE
            if user_id_type is None
            else validate_user_id_type(user_id_type, "extra.user_id_type")
        )
    except ValueError as exc:
        raise config_error(cid, str(exc)) from None
    login = (conn.login or "").strip() or None
    password = conn.password or None
    return RtcImConnectionSettings(
        conn_id=cid,
        access_key_id=login,
        secret_access_key=password,
        session_token=session_token,
        region=region,
        endpoint=endpoint,
        app_id=app_id,
        timeout=timeout,
        max_qps=max_qps,
        max_retries=max_retries,
        proxies=proxies,
        verify=verify,
        user_id_type=user_id_type,
    )


def explain_failure(exc: RtcImError, *, conn_id: str, settings: RtcImConnectionSettings | None) -> str:
    """The Test button's text for a failure: what to fix, in the connection's own terms.

    Airflow tests a temporary copy of the connection under a random id, so the text names the
    Access Key ID, the endpoint, the region and the AppId, never ``conn_id``.
    """
    code = exc.code or ""
    if isinstance(exc, RtcImConnectionNotFound):
        return exc.message  # only outside the Test button: the id is all there is to name
    if code == CODE_CONFIG:
        detail = exc.message.removeprefix(f"Connection {conn_id!r}").lstrip(": ")
        return f"Invalid connection setting: {detail}."
    if settings is None:  # pragma: no cover - settings are loaded before any call
        return str(exc)
    key, endpoint, region = settings.access_key_id, settings.endpoint, settings.region
    rid = f" [RequestId {exc.request_id}]" if exc.request_id else ""
    # What was rejected, in the connection's own terms; what to fix comes from FIX_HINTS,
    # the one place those hints live (the errors the hook raises carry the same ones).
    subjects = {
        "InvalidAccessKey": f"The Access Key ID {key!r} is unknown to {endpoint}",
        "SignatureDoesNotMatch": f"{endpoint} rejected the signature of Access Key ID {key!r} (region {region})",
        "InvalidParameter.NotExistAppId": f"AppId {settings.app_id} is not known to the account of Access Key ID {key!r}",
        "InvalidParameter.IllegalAppId": f"AppId {settings.app_id} is not valid for the account of Access Key ID {key!r}",
        "InvalidTimestamp": f"{endpoint} rejected the request time",
        "InvalidSecretToken": f"The session token of Access Key ID {key!r} was rejected",
    }
    if code in subjects:
        hint = hint_for(code)
        if code == "SignatureDoesNotMatch":
            note = region_note(endpoint, region, "the Region field (extra.region)")
            if note is not None:
                hint = f"{note}; if the region is right, {hint}"
        return f"{subjects[code]} ({code}): {hint}.{rid}"
    if code in (CODE_CONNECTION, CODE_TIMEOUT, CODE_TRUNCATED, "SSLError"):
        return f"Cannot reach the API: {exc.message}" + ("" if exc.message.endswith(("?", ".")) else ".")
    return f"{exc} (endpoint {endpoint}, region {region}, Access Key ID {key!r}, AppId {settings.app_id})"
