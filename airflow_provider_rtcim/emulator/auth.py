"""Signature verification with a strict gateway's rules (V4, HMAC-SHA256).

Usage::

    verify_request(method, path, query_pairs, headers, body, access_key_id="AK...",
                   secret_access_key="...", region="cn-north-1", session_token=None,
                   clock_offset=0.0)      # raises ApiError (401 / 400 InvalidTimestamp)
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from airflow_provider_rtcim.core.signing import (
    compute_signature,
    is_signed_header,
    parse_authorization,
    parse_x_date,
    sha256_hex,
)
from airflow_provider_rtcim.emulator.exceptions import ApiError

SERVICE = "rtc"
TIMESTAMP_WINDOW = 900  # seconds either side of the server clock


def verify_request(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: Any,
    body: bytes,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    session_token: str | None,
    clock_offset: float,
) -> None:
    """Raise :class:`ApiError` unless the request is signed with these credentials."""
    auth = headers.get("Authorization")
    if not auth:
        raise ApiError(401, "MissingSignature", "the request is not signed: no Authorization header")
    try:
        parsed = parse_authorization(auth)
    except ValueError as exc:
        raise ApiError(401, "SignatureDoesNotMatch", f"malformed Authorization header: {exc}") from None
    if parsed.access_key_id != access_key_id:
        raise ApiError(401, "InvalidAccessKey", "the Access Key ID does not exist")
    x_date = headers.get("X-Date")
    try:
        when = parse_x_date(x_date or "")
    except ValueError:
        raise ApiError(400, "InvalidTimestamp", "X-Date is missing or not YYYYMMDDTHHMMSSZ") from None
    skew = when.timestamp() - (time.time() + clock_offset)
    if abs(skew) > TIMESTAMP_WINDOW:
        raise ApiError(
            400,
            "InvalidTimestamp",
            f"X-Date {x_date} is {skew:+.0f} s from the server clock (allowed: {TIMESTAMP_WINDOW} s)",
        )
    if session_token is not None:
        token = headers.get("X-Security-Token")
        if token is None or not hmac.compare_digest(token.encode(), session_token.encode()):
            raise ApiError(401, "InvalidSecretToken", "the security token is missing or invalid")
    body_hash = sha256_hex(body)
    sent_hash = headers.get("X-Content-Sha256")
    if sent_hash is not None and sent_hash != body_hash:
        raise ApiError(401, "SignatureDoesNotMatch", "X-Content-Sha256 does not match the request body")
    signed = signed_headers(parsed.signed_headers, headers)
    signature, names, _scope = compute_signature(
        secret_access_key=secret_access_key,
        method=method,
        path=path,
        query=query,
        headers=signed,
        body_hash=body_hash,
        x_date=x_date or "",
        region=region,
        service=SERVICE,
    )
    if (
        parsed.short_date != (x_date or "")[:8]
        or names != ";".join(parsed.signed_headers)
        or not hmac.compare_digest(signature, parsed.signature)
    ):
        raise ApiError(
            401,
            "SignatureDoesNotMatch",
            "the request signature we calculated does not match the signature you provided",
        )


def signed_headers(listed: tuple[str, ...], headers: Any) -> dict[str, str]:
    """The headers to verify, after checking that SignedHeaders covers the request.

    Like a strict gateway: SignedHeaders must name ``host`` and ``x-date`` and every
    signable header the request carries (``Content-Type``, ``Content-Md5``, ``Host``,
    every ``X-*``), each exactly once in the request; it must not name a header that
    is absent or not signable. Anything else is 401 ``SignatureDoesNotMatch``.
    """
    present: dict[str, int] = {}
    for name in headers:  # every field, repeats included (email.message.Message)
        if is_signed_header(name):
            present[name.lower()] = present.get(name.lower(), 0) + 1
    listed_set = set(listed)
    problems: list[str] = []
    required = sorted(({"host", "x-date"} | set(present)) - listed_set)
    if required:
        problems.append("headers not in SignedHeaders: " + ", ".join(required))
    absent = sorted(n for n in listed_set if n not in present and is_signed_header(n))
    if absent:
        problems.append("SignedHeaders names headers not in the request: " + ", ".join(absent))
    unsignable = sorted(n for n in listed_set if not is_signed_header(n))
    if unsignable:
        problems.append(
            "SignedHeaders names headers that are never signed: "
            + ", ".join(unsignable)
            + " (signed: content-type, content-md5, host, x-*)"
        )
    repeated = sorted(n for n, count in present.items() if count > 1)
    if repeated:
        problems.append("signed headers sent more than once: " + ", ".join(repeated))
    if problems:
        raise ApiError(401, "SignatureDoesNotMatch", "; ".join(problems))
    return {name: headers.get(name) for name in listed}
