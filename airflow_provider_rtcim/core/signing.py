"""Volcengine HMAC-SHA256 ("V4") request signing, as the official SDKs and the gateway do it.

Pure and dependency-free, so that the hook, the emulator (which verifies signatures) and
the tests share one implementation. Usage::

    from airflow_provider_rtcim.core.signing import Credentials, sign_request

    creds = Credentials(access_key_id="AKLT...", secret_access_key="...", region="cn-north-1")
    body = b'{"AppId":123,"ParticipantUserId":10001,"Cursor":0,"Limit":20}'
    headers = sign_request(
        creds,
        method="POST",
        url="https://rtc.volcengineapi.com/?Action=GetUserConversations&Version=2020-12-01",
        headers={"Content-Type": "application/json"},
        body=body,
    )
    # headers now holds Host, X-Date, X-Content-Sha256, (X-Security-Token,) Authorization.

The signature covers the exact ``body`` bytes: send those bytes, never re-serialize.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlsplit

from airflow_provider_rtcim.core.defaults import DEFAULT_REGION, DEFAULT_SERVICE

ALGORITHM = "HMAC-SHA256"
X_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_UNRESERVED = "-_.~"


@dataclass(frozen=True)
class Credentials:
    """What a request is signed with. ``repr`` never shows the secret or the token."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str = DEFAULT_REGION
    service: str = DEFAULT_SERVICE
    session_token: str | None = field(default=None, repr=False)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def format_x_date(when: _dt.datetime | None = None) -> str:
    """``when`` (default: now) as the compact UTC ``X-Date`` form, e.g. ``20260102T030405Z``."""
    if when is None:
        return time.strftime(X_DATE_FORMAT, time.gmtime())
    if when.tzinfo is not None:
        when = when.astimezone(_dt.timezone.utc)
    return when.strftime(X_DATE_FORMAT)


def parse_x_date(value: str) -> _dt.datetime:
    """Parse an ``X-Date`` value; raises ``ValueError`` if it is not in the compact form."""
    return _dt.datetime.strptime(value, X_DATE_FORMAT).replace(tzinfo=_dt.timezone.utc)


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Keys sorted; keys and values percent-encoded leaving only ``-_.~``; spaces as ``%20``."""
    items = sorted(pairs, key=lambda kv: kv[0])
    return "&".join(f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}" for k, v in items)


@functools.lru_cache(maxsize=64)
def _canonical_query_of(pairs: tuple[tuple[str, str], ...]) -> str:
    return canonical_query(pairs)


def canonical_path(path: str) -> str:
    """The URI path as the SDK normalizes it (``/`` when empty)."""
    return quote(path or "/").replace("%2F", "/")


def canonical_host(host: str) -> str:
    """``Host`` as signed: a ``:80`` or ``:443`` port is dropped, any other port kept."""
    name, sep, port = host.rpartition(":")
    if sep and port in ("80", "443") and "]" not in port:
        return name
    return host


def is_signed_header(name: str) -> bool:
    """``Content-Type``, ``Content-Md5``, ``Host`` and every ``X-*`` header are signed."""
    lower = name.lower()
    return lower in ("content-type", "content-md5", "host") or lower.startswith("x-")


@functools.lru_cache(maxsize=8)
def signing_key(secret_access_key: str, short_date: str, region: str, service: str) -> bytes:
    """``kDate = HMAC(secret, date)``, then HMAC with region, service and ``request``.

    The same for a whole day: kept for the few (key, date, region, service) in use.
    """
    k_date = _hmac(secret_access_key.encode("utf-8"), short_date)
    k_region = _hmac(k_date, region)
    k_service = _hmac(k_region, service)
    return _hmac(k_service, "request")


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body_hash: str,
) -> tuple[str, str]:
    """Return ``(canonical_request, signed_header_names)``.

    ``headers`` are the headers to sign (any case); non-signable ones are ignored.
    """
    signed: dict[str, str] = {}
    for name, value in headers.items():
        if is_signed_header(name):
            signed[name.lower()] = value
    if "host" in signed:
        signed["host"] = canonical_host(signed["host"])
    names = sorted(signed)
    header_block = "".join(f"{n}:{signed[n]}\n" for n in names)
    signed_names = ";".join(names)
    cquery = _canonical_query_of(query) if isinstance(query, tuple) else canonical_query(query)
    text = "\n".join([method.upper(), canonical_path(path), cquery, header_block, signed_names, body_hash])
    return text, signed_names


def compute_signature(
    *,
    secret_access_key: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body_hash: str,
    x_date: str,
    region: str,
    service: str,
) -> tuple[str, str, str]:
    """Return ``(signature_hex, signed_header_names, credential_scope)`` for one request.

    ``headers`` must already hold ``X-Date``, ``X-Content-Sha256`` (and ``X-Security-Token``).
    The emulator calls this to verify what a client sent.
    """
    short_date = x_date[:8]
    scope = f"{short_date}/{region}/{service}/request"
    creq, signed_names = canonical_request(method, path, query, headers, body_hash)
    string_to_sign = "\n".join([ALGORITHM, x_date, scope, sha256_hex(creq.encode("utf-8"))])
    key = signing_key(secret_access_key, short_date, region, service)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return signature, signed_names, scope


@functools.lru_cache(maxsize=64)
def _url_parts(url: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """``(netloc, path, query pairs)`` of a URL (a client calls a handful of URLs, again and again)."""
    parts = urlsplit(url)
    return parts.netloc, parts.path, tuple(parse_qsl(parts.query, keep_blank_values=True))


def sign_request(
    credentials: Credentials,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    x_date: str | None = None,
) -> dict[str, str]:
    """Sign one request and return the complete header set to send.

    ``url`` carries the query string (``?Action=...&Version=...``). ``headers`` may hold
    ``Content-Type`` and any ``X-*`` headers to sign; ``Host`` is taken from ``url`` when
    absent. ``x_date`` (``YYYYMMDDTHHMMSSZ``) defaults to now. The result includes
    ``Host``, ``X-Date``, ``X-Content-Sha256``, ``X-Security-Token`` (with a session
    token) and ``Authorization``.
    """
    netloc, path, query = _url_parts(url)
    out: dict[str, str] = dict(headers or {})
    if not any(k.lower() == "host" for k in out):
        out["Host"] = netloc
    body_hash = sha256_hex(body)
    out["X-Date"] = x_date or format_x_date()
    out["X-Content-Sha256"] = body_hash
    if credentials.session_token:
        out["X-Security-Token"] = credentials.session_token
    signature, signed_names, scope = compute_signature(
        secret_access_key=credentials.secret_access_key,
        method=method,
        path=path,
        query=query,
        headers=out,
        body_hash=body_hash,
        x_date=out["X-Date"],
        region=credentials.region,
        service=credentials.service,
    )
    out["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return out


@dataclass(frozen=True)
class ParsedAuthorization:
    """The three parts of an ``Authorization`` header."""

    access_key_id: str
    short_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)


def parse_authorization(value: str) -> ParsedAuthorization:
    """Parse ``HMAC-SHA256 Credential=AK/date/region/service/request, SignedHeaders=..., Signature=...``.

    Raises ``ValueError`` with a short reason when the header is malformed.
    """
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise ValueError(f"unsupported algorithm {algorithm!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    try:
        credential = fields["Credential"]
        signed = fields["SignedHeaders"]
        signature = fields["Signature"]
    except KeyError as exc:
        raise ValueError(f"missing {exc.args[0]}") from None
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "request":
        raise ValueError("malformed Credential scope")
    return ParsedAuthorization(
        access_key_id=scope[0],
        short_date=scope[1],
        region=scope[2],
        service=scope[3],
        signed_headers=tuple(h for h in signed.split(";") if h),
        signature=signature,
    )
