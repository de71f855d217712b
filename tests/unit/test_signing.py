"""The V4 signer: published known answers, and agreement with the official SDK's signer.

The official ``volcengine`` package (test-only dependency) is the oracle: hypothesis
generates many requests (query keys and values with spaces, unicode and reserved
characters; empty and non-ASCII bodies; hosts with and without ports; with and without
a session token) and both signers must produce the same Authorization header.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_rtcim.core.signing import (
    Credentials,
    canonical_request,
    format_x_date,
    parse_authorization,
    parse_x_date,
    sha256_hex,
    sign_request,
)

URL = "https://rtc.volcengineapi.com/?Action=GetUserConversations&Version=2020-12-01"
BODY = b'{"AppId":123,"ParticipantUserId":10001,"Cursor":0,"Limit":20}'
X_DATE = "20260102T030405Z"


def test_known_answer_without_session_token() -> None:
    creds = Credentials(access_key_id="AKLTtest", secret_access_key="c2VjcmV0")
    headers = sign_request(
        creds,
        method="POST",
        url=URL,
        headers={"Content-Type": "application/json"},
        body=BODY,
        x_date=X_DATE,
    )
    assert headers["X-Content-Sha256"] == "68335bf7f3d4afa4c3c2c5ae11dda2609ea064f817fb5493a9fae7b4bbc8e78f"
    creq, _ = canonical_request(
        "POST",
        "/",
        [("Action", "GetUserConversations"), ("Version", "2020-12-01")],
        headers,
        headers["X-Content-Sha256"],
    )
    assert sha256_hex(creq.encode()) == "9132947dca73d2159b74e647f893fc5f7a6cb93a1d90316b219f22da90b6e10b"
    assert headers["Authorization"] == (
        "HMAC-SHA256 Credential=AKLTtest/20260102/cn-north-1/rtc/request, "
        "SignedHeaders=content-type;host;x-content-sha256;x-date, "
        "Signature=84ef4bd51ffad366738fc1aad0c341724769ba310ceeadb2280002f9ed293d92"
    )
    assert headers["Host"] == "rtc.volcengineapi.com"
    assert headers["X-Date"] == X_DATE


def test_known_answer_with_session_token() -> None:
    creds = Credentials(access_key_id="AKLTtest", secret_access_key="c2VjcmV0", session_token="tok123")
    headers = sign_request(
        creds, method="POST", url=URL, headers={"Content-Type": "application/json"}, body=BODY, x_date=X_DATE
    )
    parsed = parse_authorization(headers["Authorization"])
    assert headers["X-Security-Token"] == "tok123"
    assert parsed.signed_headers == ("content-type", "host", "x-content-sha256", "x-date", "x-security-token")
    assert parsed.signature == "ce0a617e8a1de3e130984b80cfdac0348b9afd244faa8858dbee8282f5684fe7"


def test_known_answer_volcengine_documented_example() -> None:
    creds = Credentials(
        access_key_id="AKLTMjI2ODVlYzI3ZGY1NGU4ZjhjYWRjMTlmNTM5OTZkYzE",
        secret_access_key="TnpCak5XWXpZV1U0WkRaaE5ERmxaR0ZpTmpjeVkyUXlZek0wTWpJMU1qWQ==",
        region="cn-north-1",
        service="iam",
    )
    headers = sign_request(
        creds,
        method="GET",
        url="https://iam.volcengineapi.com/?Action=ListUsers&Version=2018-01-01&Limit=10&Offset=0",
        headers={
            "Host": "iam.volcengineapi.com",
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        },
        body=b"",
        x_date="20201230T081805Z",
    )
    assert parse_authorization(headers["Authorization"]).signature == (
        "28eeabbbd726b87002e0fe58ad8c1c768e619b06e2646f35b6ad7ed029a6d8a7"
    )


def test_secret_not_in_credentials_repr() -> None:
    creds = Credentials(access_key_id="AKLTtest", secret_access_key="s3cr3t-value", session_token="tok-value")
    assert "s3cr3t-value" not in repr(creds)
    assert "tok-value" not in repr(creds)


def test_parse_authorization_round_trip() -> None:
    creds = Credentials(access_key_id="AKLTxyz", secret_access_key="sk", region="ap-southeast-1")
    headers = sign_request(creds, method="POST", url=URL, body=b"{}", x_date=X_DATE)
    parsed = parse_authorization(headers["Authorization"])
    assert (parsed.access_key_id, parsed.short_date, parsed.region, parsed.service) == (
        "AKLTxyz",
        "20260102",
        "ap-southeast-1",
        "rtc",
    )
    assert parsed.signed_headers == ("host", "x-content-sha256", "x-date")
    rebuilt = (
        f"HMAC-SHA256 Credential={parsed.access_key_id}/{parsed.short_date}/{parsed.region}/"
        f"{parsed.service}/request, SignedHeaders={';'.join(parsed.signed_headers)}, "
        f"Signature={parsed.signature}"
    )
    assert rebuilt == headers["Authorization"]
    assert parsed.signature not in repr(parsed)


@pytest.mark.parametrize(
    "value",
    [
        "Bearer abc",
        "HMAC-SHA256 SignedHeaders=host, Signature=ab",
        "HMAC-SHA256 Credential=AK/20260102/cn-north-1/rtc, SignedHeaders=host, Signature=ab",
        "HMAC-SHA256 Credential=AK/20260102/cn-north-1/rtc/request, Signature=ab",
    ],
)
def test_parse_authorization_rejects_malformed(value: str) -> None:
    with pytest.raises(ValueError):
        parse_authorization(value)


def test_x_date_round_trip() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert format_x_date(when) == X_DATE
    assert parse_x_date(X_DATE) == when
    with pytest.raises(ValueError):
        parse_x_date("2026-01-02T03:04:05Z")


# ---------------------------------------------------------------------------------------
# Property tests against the official SDK signer
# ---------------------------------------------------------------------------------------

# A plain import, never importorskip: the SDK is in the [test] extra, and the comparison
# with it must fail loudly rather than skip silently when it is missing.
import volcengine.auth.SignerV4 as volc_signer  # noqa: E402
from volcengine.auth.SignParam import SignParam  # noqa: E402
from volcengine.Credentials import Credentials as VolcCredentials  # noqa: E402

_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"),  # no surrogates / control characters
    ),
    max_size=12,
)
_reserved = st.sampled_from([" ", "+", "&", "=", "/", "?", "#", "%", "~", "*", ":", ",", ";", "@", "'", "!"])
_query_text = st.lists(st.one_of(_text, _reserved), max_size=4).map("".join)
_query = st.dictionaries(
    keys=st.one_of(_query_text, st.sampled_from(["Action", "Version", "Limit"])).filter(bool),
    values=_query_text,
    max_size=5,
)
_host = st.sampled_from(
    [
        "rtc.volcengineapi.com",
        "rtc.volcengineapi.com:443",
        "rtc.volcengineapi.com:80",
        "127.0.0.1:8080",
        "localhost:18443",
        "open-ap-singapore-1.volcengineapi.com",
    ]
)
_body = st.one_of(
    st.just(b""),
    st.binary(max_size=64),
    st.text(max_size=40).map(lambda s: s.encode("utf-8")),
    st.just('{"Name":"群聊 ✓","Ext":{"k":"v"}}'.encode()),
)
_secret = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
_token = st.one_of(
    st.none(), st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789+/=", min_size=1, max_size=30)
)
_when = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    query=_query,
    host=_host,
    body=_body,
    secret=_secret,
    token=_token,
    when=_when,
    method=st.sampled_from(["POST", "GET"]),
    region=st.sampled_from(["cn-north-1", "ap-southeast-1"]),
    content_type=st.sampled_from([None, "application/json", "application/json; charset=utf-8"]),
)
def test_agrees_with_official_sdk(
    query, host, body, secret, token, when, method, region, content_type
) -> None:
    # Official SDK: sign_only with a fixed date.
    headers: OrderedDict[str, str] = OrderedDict()
    headers["Host"] = host
    if content_type:
        headers["Content-Type"] = content_type
    param = SignParam()
    param.set_method(method)
    param.set_host(host)
    param.set_path("/")
    param.set_query(OrderedDict(query))
    param.set_body(body)
    param.set_header_list(headers)
    param.set_date(when)
    volc_creds = VolcCredentials("AKLTprop", secret, "rtc", region, token or "")
    expected = volc_signer.SignerV4.sign_only(param, volc_creds)

    # Ours: the same request expressed as a URL.
    url = f"https://{host}/"
    if query:
        url += "?" + urlencode(query, quote_via=quote)
    ours = sign_request(
        Credentials(access_key_id="AKLTprop", secret_access_key=secret, region=region, session_token=token),
        method=method,
        url=url,
        headers={"Content-Type": content_type} if content_type else {},
        body=body,
        x_date=format_x_date(when),
    )
    assert ours["X-Content-Sha256"] == expected.xContextSha256
    assert ours["X-Date"] == expected.xdate
    assert ours["Authorization"] == expected.authorization
    assert ("X-Security-Token" in ours) == bool(token)
