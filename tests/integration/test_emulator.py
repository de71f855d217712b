"""The emulator, over real HTTP: requests signed with core.signing, sent with requests."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import pytest
import requests
from emulator_cli import start_cli_emulator, stop_cli_emulator

from airflow_provider_rtcim.core.signing import (
    Credentials,
    compute_signature,
    format_x_date,
    sha256_hex,
    sign_request,
)
from airflow_provider_rtcim.emulator import Emulator

QUERY = "/?Action=GetUserConversations&Version=2020-12-01"


def call(
    emu: Emulator,
    body: dict[str, Any] | bytes,
    *,
    creds: Credentials | None = None,
    session: requests.Session | None = None,
    query: str = QUERY,
    x_date: str | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = emu.url + query
    signed = sign_request(
        creds or emu.credentials,
        method="POST",
        url=url,
        headers={"Content-Type": "application/json"},
        body=raw,
        x_date=x_date,
    )
    signed.update(headers or {})
    return (session or requests).post(url, data=raw, headers=signed, timeout=10)


def page(emu: Emulator, uid: int, cursor: int = 0, limit: int = 20, **extra: Any) -> dict[str, Any]:
    resp = call(
        emu, {"AppId": emu.app_id, "ParticipantUserId": uid, "Cursor": cursor, "Limit": limit, **extra}
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert "Error" not in data["ResponseMetadata"]
    return data["Result"]


def walk(emu: Emulator, uid: int, limit: int = 7, **extra: Any) -> list[int]:
    ids: list[int] = []
    cursor = 0
    for _ in range(100):
        result = page(emu, uid, cursor, limit, **extra)
        ids += [c["ConversationShortId"] for c in result["ConversationInfos"]]
        if not result["HasMore"]:
            assert result["NextCursor"] == -1
            return ids
        cursor = result["NextCursor"]
    raise AssertionError("listing did not end")


def test_full_walk_matches_ground_truth(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    uid = emu.user_ids[0]
    truth = [c["ConversationShortId"] for c in emu.conversations(uid, data_type=1)]
    assert len(truth) > 20
    assert walk(emu, uid, DataType=1) == truth
    assert all(sid > 2**53 for sid in truth)


def test_missing_signature(rtcim_emulator: Emulator) -> None:
    resp = requests.post(rtcim_emulator.url + QUERY, data=b"{}", timeout=10)
    assert resp.status_code == 401
    assert resp.json()["ResponseMetadata"]["Error"]["Code"] == "MissingSignature"


def test_connection_fixture_sets_env(rtcim_connection: Emulator) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_RTCIM_DEFAULT"])
    assert conn["host"] == rtcim_connection.url
    assert conn["extra"]["app_id"] == rtcim_connection.app_id


def error_of(resp: requests.Response) -> str:
    return resp.json()["ResponseMetadata"]["Error"]["Code"]


def body_for(emu: Emulator, uid: int, **extra: Any) -> dict[str, Any]:
    return {"AppId": emu.app_id, "ParticipantUserId": uid, "Cursor": 0, "Limit": 20, **extra}


# ----------------------------------------------------------------------------- data and listing
KNOWN = {
    "app_ids": [4242],
    "users": {
        "88": [
            {
                "ConversationShortId": 9_007_199_254_740_993,
                "ConversationType": 2,
                "CreateTime": 100,
                "ModifyTime": 900,
                "Name": "老朋友 🍻",
                "Ext": {"k": "值"},
                "MemberCount": 12,
                "FutureField": {"nested": [1, 2]},
            },
            {
                "ConversationShortId": 9_007_199_254_740_995,
                "ConversationType": 1,
                "CreateTime": 200,
                "ModifyTime": 300,
                "OtherUserId": 99,
            },
            {
                "ConversationShortId": 9_007_199_254_740_997,
                "ConversationType": 100,
                "CreateTime": 150,
                "CreatorUserId": 88,
                "InboxType": 3,
            },
        ]
    },
}


def test_known_data_round_trip_keeps_every_field() -> None:
    with Emulator(data=KNOWN) as emu:
        assert emu.app_id == 4242 and emu.user_ids == [88]
        result = page(emu, 88, DataType=1)
        first, second = result["ConversationInfos"]
        assert first["ConversationShortId"] == 9_007_199_254_740_993  # exact above 2**53
        assert first["Name"] == "老朋友 🍻" and first["Ext"] == {"k": "值"}
        assert first["FutureField"] == {"nested": [1, 2]}
        assert first["AppId"] == 4242 and first["InboxType"] == 0
        assert first["CreatorUserId"] == 88 and first["CreatorUserIdStr"] == "88"
        assert second["OtherUserId"] == 99 and second["OtherUserIdStr"] == "99"
        assert result["HasMore"] is False and result["NextCursor"] == -1
        assert [c["ConversationShortId"] for c in page(emu, 88, InboxType=3)["ConversationInfos"]] == [
            9_007_199_254_740_997
        ]
        assert page(emu, 12345)["ConversationInfos"] == []  # unknown user: nothing


def test_json_data_file(tmp_path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(KNOWN, ensure_ascii=False), encoding="utf-8")
    with Emulator(data=str(path)) as emu:
        assert [c["ConversationShortId"] for c in emu.conversations(88)] == [
            9_007_199_254_740_993,
            9_007_199_254_740_995,
        ]
    with pytest.raises(ValueError, match="users"):
        Emulator(data={"app_ids": [1]})


def test_envelope(rtcim_emulator: Emulator) -> None:
    resp = call(rtcim_emulator, body_for(rtcim_emulator, rtcim_emulator.user_ids[0]))
    meta = resp.json()["ResponseMetadata"]
    assert meta["Action"] == "GetUserConversations" and meta["Version"] == "2020-12-01"
    assert meta["Service"] == "rtc" and meta["Region"] == "cn-north-1" and meta["RequestId"]
    assert set(resp.json()["Result"]) == {"ConversationInfos", "HasMore", "NextCursor"}


def test_generated_data_is_deterministic_and_rich() -> None:
    a = Emulator(seed=7).conversations(1_000_001)
    assert a == Emulator(seed=7).conversations(1_000_001)
    assert a != Emulator(seed=8).conversations(1_000_001)
    both = Emulator(seed=7)
    all_convs = [c for uid in both.user_ids for it in (0, 1) for c in both.conversations(uid, inbox_type=it)]
    assert len(all_convs) == 3 * 45
    assert {c["ConversationType"] for c in all_convs} == {1, 2, 100}
    assert any(ord(ch) > 0x1F000 for c in all_convs for ch in c.get("Name", ""))
    assert all("OtherUserId" in c for c in all_convs if c["ConversationType"] == 1)
    assert len({c["ConversationShortId"] for c in all_convs}) == len(all_convs)


@pytest.mark.parametrize("data_type", [0, 1, 2])
def test_data_type_orders(rtcim_emulator: Emulator, data_type: int) -> None:
    emu = rtcim_emulator
    uid = emu.user_ids[1]
    truth = emu.conversations(uid, data_type=data_type)
    ids = walk(emu, uid, limit=6, DataType=data_type)
    assert ids == [c["ConversationShortId"] for c in truth]
    if data_type == 0:
        times = [c["ModifyTime"] for c in truth]
        assert times == sorted(times, reverse=True)
        assert len(truth) == len(emu.conversations(uid, data_type=1))
    elif data_type == 1:
        keys = [(c["CreateTime"], c["ConversationShortId"]) for c in truth]
        assert keys == sorted(keys)
    else:
        assert truth, "the generated user should own some live groups"
        assert all(c["ConversationType"] == 100 and c["CreatorUserId"] == uid for c in truth)
        times = [c["CreateTime"] for c in truth]
        assert times == sorted(times, reverse=True)
        assert len(truth) < len(emu.conversations(uid, data_type=1))


def test_default_data_type_is_0(rtcim_emulator: Emulator) -> None:
    uid = rtcim_emulator.user_ids[0]
    got = [c["ConversationShortId"] for c in page(rtcim_emulator, uid)["ConversationInfos"]]
    assert got == [c["ConversationShortId"] for c in rtcim_emulator.conversations(uid, data_type=0)[:20]]


def test_inbox_type_filters(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    uid = emu.user_ids[0]
    inbox1 = walk(emu, uid, InboxType=1, DataType=1)
    inbox0 = walk(emu, uid, InboxType=0, DataType=1)
    assert inbox1 == [c["ConversationShortId"] for c in emu.conversations(uid, inbox_type=1)]
    assert inbox1 and not set(inbox1) & set(inbox0)
    assert len(inbox0) + len(inbox1) == 45
    assert page(emu, uid, InboxType=5)["ConversationInfos"] == []


def test_skip_member_count(rtcim_emulator: Emulator) -> None:
    uid = rtcim_emulator.user_ids[0]
    with_count = page(rtcim_emulator, uid, SkipMemberCount=False)["ConversationInfos"]
    without = page(rtcim_emulator, uid, SkipMemberCount=True)["ConversationInfos"]
    assert all("MemberCount" in c for c in with_count)
    assert not any("MemberCount" in c for c in without)
    assert [c["ConversationShortId"] for c in with_count] == [c["ConversationShortId"] for c in without]


@pytest.mark.rtcim_emulator(conversations_per_user=101, qps_limit=None)
def test_every_conversation_exactly_once(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    for uid in emu.user_ids:
        for limit in (1, 20):
            ids = walk(emu, uid, limit=limit, DataType=1)
            assert len(ids) == len(set(ids)) == len(emu.conversations(uid))


def test_cursors_are_opaque_and_validated(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    a, b = emu.user_ids[:2]
    first = page(emu, a, limit=7, DataType=1)
    cursor = first["NextCursor"]
    assert first["HasMore"] and cursor > 0 and cursor not in (7, 8)
    for bad in (7, cursor + 1, -1, 2**63 - 1):
        resp = call(emu, body_for(emu, a, Cursor=bad, Limit=7, DataType=1))
        assert resp.status_code == 400 and error_of(resp) == "InvalidParameter", bad
    # bound to the listing: another user / data type cannot use it
    for other in (body_for(emu, b, Cursor=cursor, DataType=1), body_for(emu, a, Cursor=cursor, DataType=0)):
        assert error_of(call(emu, other)) == "InvalidParameter"


# ----------------------------------------------------------------------------- parameter errors
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"Limit": 0}, 400, "InvalidParameter"),
        ({"Limit": 21}, 400, "InvalidParameter"),
        ({"AppId": 999}, 400, "InvalidParameter.NotExistAppId"),
        ({"AppId": None}, 400, "MissingParameter"),
        ({"ParticipantUserId": None}, 400, "MissingParameter"),
        ({"Cursor": None}, 400, "MissingParameter"),
        ({"Limit": None}, 400, "MissingParameter"),
        ({"DataType": 3}, 400, "InvalidParameter"),
        ({"AppId": "100001"}, 400, "InvalidParameter.Unmarshal"),
    ],
)
def test_parameter_errors(rtcim_emulator: Emulator, body: dict, status: int, code: str) -> None:
    merged = {**body_for(rtcim_emulator, rtcim_emulator.user_ids[0]), **body}
    full = {k: v for k, v in merged.items() if v is not None}
    resp = call(rtcim_emulator, full)
    assert resp.status_code == status
    assert error_of(resp) == code
    assert "Result" not in resp.json()
    assert resp.json()["ResponseMetadata"]["Error"]["Message"]


def test_body_errors_and_unknown_action(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    assert error_of(call(emu, b"")) == "InvalidParameter.BodyIsEmpty"
    assert error_of(call(emu, b"{not json")) == "InvalidParameter.Unmarshal"
    body = body_for(emu, emu.user_ids[0])
    for query in ("/?Action=Nope&Version=2020-12-01", "/?Action=GetUserConversations&Version=2099-01-01"):
        resp = call(emu, body, query=query)
        assert resp.status_code == 404 and error_of(resp) == "InvalidActionOrVersion"


def test_participant_user_id_str(rtcim_emulator: Emulator) -> None:
    """ParticipantUserIdStr names a string user verbatim: "1000001" is not the int user 1000001."""
    emu = rtcim_emulator
    uid = emu.user_ids[0]
    body = {"AppId": emu.app_id, "ParticipantUserIdStr": str(uid), "Cursor": 0, "Limit": 5, "DataType": 1}
    assert call(emu, body).json()["Result"]["ConversationInfos"] == []
    with Emulator(string_users=3) as semu:
        assert semu.string_user_ids[:2] == ["007", "123"]
        for sent in (
            {"ParticipantUserIdStr": "007"},
            {"ParticipantUserId": 0, "ParticipantUserIdStr": "007"},
        ):
            got = call(semu, {"AppId": semu.app_id, "Cursor": 0, "Limit": 5, "DataType": 1, **sent})
            assert [c["ConversationShortId"] for c in got.json()["Result"]["ConversationInfos"]] == [
                c["ConversationShortId"] for c in semu.conversations("007")[:5]
            ]
        seven = {"AppId": semu.app_id, "ParticipantUserIdStr": "7", "Cursor": 0, "Limit": 5}
        assert call(semu, seven).json()["Result"]["ConversationInfos"] == []
        # ParticipantUserId > 0 names an int user, whatever the Str field says
        both = {**seven, "ParticipantUserId": semu.user_ids[0], "DataType": 1}
        assert [c["ConversationShortId"] for c in call(semu, both).json()["Result"]["ConversationInfos"]] == [
            c["ConversationShortId"] for c in semu.conversations(semu.user_ids[0])[:5]
        ]


# ----------------------------------------------------------------------------- signatures
def test_signature_errors(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    body = body_for(emu, emu.user_ids[0])
    wrong_secret = Credentials(access_key_id=emu.access_key_id, secret_access_key="not-the-secret")
    unknown_key = Credentials(access_key_id="AKLTnobody", secret_access_key=emu.secret_access_key)
    wrong_region = Credentials(emu.access_key_id, emu.secret_access_key, region="ap-southeast-1")
    cases = [
        (call(emu, body, creds=wrong_secret), "SignatureDoesNotMatch"),
        (call(emu, body, creds=unknown_key), "InvalidAccessKey"),
        (call(emu, body, creds=wrong_region), "SignatureDoesNotMatch"),
        # signed one query, sent another
        (call(emu, body, query=QUERY + "&Extra=1", headers={}), None),
    ]
    for resp, code in cases[:3]:
        assert resp.status_code == 401 and error_of(resp) == code
    assert cases[3][0].status_code == 200  # a signed extra query parameter is fine
    # tampered body: signed bytes differ from the bytes sent
    raw = json.dumps(body).encode()
    url = emu.url + QUERY
    headers = sign_request(emu.credentials, method="POST", url=url, headers={}, body=raw)
    tampered = raw.replace(b'"Limit": 20', b'"Limit": 19')
    resp = requests.post(url, data=tampered, headers=headers, timeout=10)
    assert resp.status_code == 401 and error_of(resp) == "SignatureDoesNotMatch"
    # a header added after signing but listed as signed
    headers = sign_request(emu.credentials, method="POST", url=url, headers={"X-Custom": "a"}, body=raw)
    headers["X-Custom"] = "b"
    resp = requests.post(url, data=raw, headers=headers, timeout=10)
    assert error_of(resp) == "SignatureDoesNotMatch"
    stats = emu.stats
    assert stats["signature_failures"] == 5
    assert stats["by_code"]["SignatureDoesNotMatch"] == 4 and stats["by_status"][401] == 5


@pytest.mark.rtcim_emulator(session_token="sts-token-abc")
def test_session_token_required(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    body = body_for(emu, emu.user_ids[0])
    no_token = Credentials(emu.access_key_id, emu.secret_access_key)
    bad_token = Credentials(emu.access_key_id, emu.secret_access_key, session_token="other")
    for creds in (no_token, bad_token):
        resp = call(emu, body, creds=creds)
        assert resp.status_code == 401 and error_of(resp) == "InvalidSecretToken"
    assert call(emu, body).status_code == 200  # emu.credentials carries the token
    assert json.loads(emu.connection_json())["extra"]["session_token"] == "sts-token-abc"


def signed_over(emu: Emulator, raw: bytes, send: dict[str, str], sign: tuple[str, ...]) -> dict[str, str]:
    """``send`` plus an Authorization whose SignedHeaders cover only the ``sign`` names."""
    to_sign = {k: v for k, v in send.items() if k.lower() in sign}
    signature, names, scope = compute_signature(
        secret_access_key=emu.secret_access_key,
        method="POST",
        path="/",
        query=[("Action", "GetUserConversations"), ("Version", "2020-12-01")],
        headers=to_sign,
        body_hash=sha256_hex(raw),
        x_date=send["X-Date"],
        region=emu.region,
        service="rtc",
    )
    listed = ";".join(sorted(sign))  # may name a header compute_signature leaves out
    assert set(names.split(";")) <= set(sign)
    auth = (
        f"HMAC-SHA256 Credential={emu.access_key_id}/{scope}, SignedHeaders={listed}, Signature={signature}"
    )
    return {**send, "Authorization": auth}


def full_headers(emu: Emulator, raw: bytes, **extra: str) -> dict[str, str]:
    return {
        "Host": emu.url.removeprefix("http://"),
        "Content-Type": "application/json",
        "X-Date": format_x_date(),
        "X-Content-Sha256": sha256_hex(raw),
        **extra,
    }


def message_of(resp: requests.Response) -> str:
    return resp.json()["ResponseMetadata"]["Error"]["Message"]


def test_signed_headers_must_cover_every_signable_header(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    url = emu.url + QUERY
    raw = json.dumps(body_for(emu, emu.user_ids[0])).encode()
    send = full_headers(emu, raw)
    everything = ("content-type", "host", "x-content-sha256", "x-date")
    # the control: the same helper, signing every signable header, is accepted
    ok = requests.post(url, data=raw, headers=signed_over(emu, raw, send, everything), timeout=10)
    assert ok.status_code == 200, ok.text
    # a valid signature over x-date alone: Host, Content-Type and X-Content-Sha256 unsigned
    resp = requests.post(url, data=raw, headers=signed_over(emu, raw, send, ("x-date",)), timeout=10)
    assert resp.status_code == 401 and error_of(resp) == "SignatureDoesNotMatch"
    assert "content-type, host, x-content-sha256" in message_of(resp)
    # each one left out on its own is named
    for left_out in everything:
        sign = tuple(n for n in everything if n != left_out)
        resp = requests.post(url, data=raw, headers=signed_over(emu, raw, send, sign), timeout=10)
        assert resp.status_code == 401 and error_of(resp) == "SignatureDoesNotMatch", left_out
        assert f"not in SignedHeaders: {left_out}" in message_of(resp)
    # an extra X-* header sent but not signed
    signed = sign_request(
        emu.credentials, method="POST", url=url, headers={"Content-Type": "application/json"}, body=raw
    )
    resp = requests.post(url, data=raw, headers={**signed, "X-Foo": "bar"}, timeout=10)
    assert resp.status_code == 401 and error_of(resp) == "SignatureDoesNotMatch"
    assert "not in SignedHeaders: x-foo" in message_of(resp)
    # a header named in SignedHeaders but not sent
    signed = sign_request(
        emu.credentials,
        method="POST",
        url=url,
        headers={"Content-Type": "application/json", "X-Foo": "bar"},
        body=raw,
    )
    del signed["X-Foo"]
    resp = requests.post(url, data=raw, headers=signed, timeout=10)
    assert resp.status_code == 401 and error_of(resp) == "SignatureDoesNotMatch"
    assert "not in the request: x-foo" in message_of(resp)
    # a header that is never signed, named in SignedHeaders
    resp = requests.post(
        url,
        data=raw,
        headers=signed_over(emu, raw, {**send, "User-Agent": "x"}, (*everything, "user-agent")),
        timeout=10,
    )
    assert resp.status_code == 401 and "never signed: user-agent" in message_of(resp)
    stats = emu.stats
    assert stats["by_status"][200] == 1 and stats["by_code"]["SignatureDoesNotMatch"] == 8


def test_x_content_sha256_must_match_the_body_and_be_signed(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    url = emu.url + QUERY
    raw = json.dumps(body_for(emu, emu.user_ids[0])).encode()
    # correctly signed, but the hash is of other bytes
    send = full_headers(emu, raw, **{"X-Content-Sha256": sha256_hex(b"other")})
    resp = requests.post(
        url,
        data=raw,
        headers=signed_over(emu, raw, send, ("content-type", "host", "x-content-sha256", "x-date")),
        timeout=10,
    )
    assert resp.status_code == 401 and error_of(resp) == "SignatureDoesNotMatch"
    assert "X-Content-Sha256 does not match" in message_of(resp)
    # the right hash, but left out of SignedHeaders
    send = full_headers(emu, raw)
    resp = requests.post(
        url, data=raw, headers=signed_over(emu, raw, send, ("content-type", "host", "x-date")), timeout=10
    )
    assert resp.status_code == 401 and "not in SignedHeaders: x-content-sha256" in message_of(resp)


@pytest.mark.rtcim_emulator(session_token="sts-token-abc")
def test_session_token_must_be_signed(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    url = emu.url + QUERY
    raw = json.dumps(body_for(emu, emu.user_ids[0])).encode()
    send = full_headers(emu, raw, **{"X-Security-Token": "sts-token-abc"})
    sign = ("content-type", "host", "x-content-sha256", "x-date")
    resp = requests.post(url, data=raw, headers=signed_over(emu, raw, send, sign), timeout=10)
    assert resp.status_code == 401 and error_of(resp) == "SignatureDoesNotMatch"
    assert "not in SignedHeaders: x-security-token" in message_of(resp)
    ok = signed_over(emu, raw, send, (*sign, "x-security-token"))
    assert requests.post(url, data=raw, headers=ok, timeout=10).status_code == 200


def test_repeated_signed_header_is_rejected(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    url = emu.url + QUERY
    raw = json.dumps(body_for(emu, emu.user_ids[0])).encode()
    signed = sign_request(
        emu.credentials,
        method="POST",
        url=url,
        headers={"Content-Type": "application/json", "X-Foo": "a"},
        body=raw,
    )
    lines = [f"POST {QUERY} HTTP/1.1", *(f"{k}: {v}" for k, v in signed.items())]
    lines += ["X-Foo: b", f"Content-Length: {len(raw)}", "Connection: close", "", ""]
    host, port = emu.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode() + raw)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401")
    error = json.loads(payload)["ResponseMetadata"]["Error"]
    assert error["Code"] == "SignatureDoesNotMatch" and "more than once: x-foo" in error["Message"]


def test_extra_unsignable_headers_are_fine(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    extra = {"User-Agent": "custom-agent/1.0", "Accept-Encoding": "identity", "Connection": "close"}
    resp = call(emu, body_for(emu, emu.user_ids[0]), headers=extra)
    assert resp.status_code == 200, resp.text
    assert resp.json()["Result"]["ConversationInfos"]
    assert "user-agent" not in resp.request.headers.get("Authorization", "x")
    assert resp.request.headers["User-Agent"] == "custom-agent/1.0"


@pytest.mark.parametrize(
    "token",
    [None, pytest.param("sts-token-abc", marks=pytest.mark.rtcim_emulator(session_token="sts-token-abc"))],
)
def test_official_sdk_signed_request_is_accepted(rtcim_emulator: Emulator, token: str | None) -> None:
    from volcengine.auth.SignerV4 import SignerV4 as signer  # in the [test] extra: never skip
    from volcengine.base.Request import Request as VolcRequest
    from volcengine.Credentials import Credentials as VolcCredentials

    emu = rtcim_emulator
    host = emu.url.removeprefix("http://")
    # as volcengine.base.Service.json builds, signs and sends a request
    req = VolcRequest()
    req.set_schema("http")
    req.set_method("POST")
    req.set_host(host)
    req.set_path("/")
    req.set_query({"Action": "GetUserConversations", "Version": "2020-12-01"})
    req.set_headers({"Host": host, "User-Agent": "volc-sdk-python/test", "Content-Type": "application/json"})
    req.set_body(json.dumps(body_for(emu, emu.user_ids[0])))
    signer.sign(
        req, VolcCredentials(emu.access_key_id, emu.secret_access_key, "rtc", emu.region, token or "")
    )
    assert "SignedHeaders=content-type;host;x-content-sha256;x-date" in req.headers["Authorization"]
    assert ("x-security-token" in req.headers["Authorization"]) == bool(token)
    resp = requests.post(req.build(), headers=req.headers, data=req.body, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["Result"]["ConversationInfos"]


def test_clock_skew_gives_invalid_timestamp(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    body = body_for(emu, emu.user_ids[0])
    assert call(emu, body).status_code == 200
    emu.configure(clock_offset=1000)
    resp = call(emu, body)
    assert resp.status_code == 400 and error_of(resp) == "InvalidTimestamp"
    emu.configure(clock_offset=-1000)
    assert error_of(call(emu, body)) == "InvalidTimestamp"
    emu.configure(clock_offset=600)  # inside the 900 s window
    assert call(emu, body).status_code == 200
    emu.configure(clock_offset=0)
    assert error_of(call(emu, body, x_date="20200101T000000Z")) == "InvalidTimestamp"


# ----------------------------------------------------------------------------- QPS limit
@pytest.mark.rtcim_emulator(qps_limit=1, retry_after=1)
def test_qps_limit(rtcim_emulator: Emulator) -> None:
    # With 1 request a second admitted, any two requests less than 1 s apart draw a 429:
    # send until one does (at most 60), so a slow, loaded machine cannot miss it.
    emu = rtcim_emulator
    body = body_for(emu, emu.user_ids[0], Limit=1)
    responses: list[requests.Response] = []
    with requests.Session() as s:
        while len(responses) < 60 and not any(r.status_code == 429 for r in responses):
            responses.append(call(emu, body, session=s))
    throttled = [r for r in responses if r.status_code == 429]
    assert throttled, "60 back-to-back requests must exceed 1 per second"
    assert all(error_of(r) == "FlowLimitExceeded.QPSOverLimit" for r in throttled)
    assert throttled[0].headers["Retry-After"] == "1"
    assert emu.stats["throttled"] == len(throttled)
    assert sum(r.status_code == 200 for r in responses) == len(responses) - len(throttled)
    # a bad signature is rejected before the limiter and does not count as throttled
    resp = call(emu, body, creds=Credentials(emu.access_key_id, "wrong"))
    assert resp.status_code == 401


# ----------------------------------------------------------------------------- faults
def fault_emulator(kind: str, **options: Any) -> Emulator:
    return Emulator(fault_rate=1.0, fault_kinds=[kind], qps_limit=None, **options)


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("429", 429, "FlowLimitExceeded.QPSOverLimit"),
        ("500", 500, "InternalError"),
        ("502", 502, "FailToConnect"),
        ("503", 503, "ServiceUnavailableTemp"),
        ("504", 504, "InternalServiceTimeout"),
        ("error200", 200, "InternalError"),
    ],
)
def test_status_faults(kind: str, status: int, code: str) -> None:
    with fault_emulator(kind) as emu, requests.Session() as s:
        body = body_for(emu, emu.user_ids[0])
        for _ in range(3):  # max_consecutive_faults
            resp = call(emu, body, session=s)
            assert resp.status_code == status and error_of(resp) == code
            assert "Result" not in resp.json()
        resp = call(emu, body, session=s)
        assert resp.status_code == 200 and "Error" not in resp.json()["ResponseMetadata"]
        assert emu.stats["faults_injected"] == {kind: 3}
        assert emu.stats["throttled"] == 0


@pytest.mark.parametrize(
    ("kind", "exc"),
    [
        ("reset", requests.exceptions.ConnectionError),
        ("truncate", requests.exceptions.ChunkedEncodingError),
        ("badjson", ValueError),
    ],
)
def test_transport_faults(kind: str, exc: type[Exception]) -> None:
    with fault_emulator(kind, max_consecutive_faults=2) as emu, requests.Session() as s:
        body = body_for(emu, emu.user_ids[0])
        for _ in range(2):
            with pytest.raises(exc):
                resp = call(emu, body, session=s)
                resp.json()
        resp = call(emu, body, session=s)
        assert resp.status_code == 200 and resp.json()["Result"]["ConversationInfos"]
        assert emu.stats["faults_injected"] == {kind: 2}


def outcomes(emu: Emulator, n_pages: int = 6) -> list[str]:
    seen = []
    with requests.Session() as s:
        for uid in emu.user_ids:
            for attempt in range(n_pages):
                body = body_for(emu, uid, Limit=5 + attempt % 2, DataType=1)
                try:
                    resp = call(emu, body, session=s)
                    data = resp.json()
                    seen.append(f"{resp.status_code}:{data['ResponseMetadata'].get('Error', {}).get('Code')}")
                except requests.RequestException as err:
                    seen.append(type(err).__name__)
                except ValueError:
                    seen.append("badjson")
    return seen


def test_faults_are_deterministic_and_bounded() -> None:
    options = {"fault_rate": 0.5, "fault_seed": 11, "qps_limit": None}
    with Emulator(**options) as a, Emulator(**options) as b:
        first, second = outcomes(a), outcomes(b)
    assert first == second
    assert len(set(first)) > 2  # a mix of faults and successes
    with Emulator(fault_rate=1.0, max_consecutive_faults=3, qps_limit=None) as emu:
        # even at fault_rate 1, with every kind of fault, the 4th try of each request goes through
        rounds = [outcomes(emu, n_pages=2) for _ in range(4)]
        assert not any(o == "200:None" for r in rounds[:3] for o in r)
        assert rounds[3] == ["200:None"] * 6
    with Emulator(fault_rate=1.0, fault_kinds="500", max_consecutive_faults=3, qps_limit=None) as emu:
        tries = outcomes(emu, n_pages=2)  # Limit 5, Limit 6: two keys per user
        assert tries.count("200:None") == 0 and emu.stats["faults_injected"] == {"500": 6}
        for _ in range(2):
            outcomes(emu, n_pages=2)
        assert outcomes(emu, n_pages=2).count("200:None") == 6  # attempt 4 of every key
    with pytest.raises(ValueError, match="fault_kinds"):
        Emulator(fault_kinds=["boom"])


# ----------------------------------------------------------------------------- anomalies
def naive_pages(emu: Emulator, uid: int, n: int, limit: int = 10, **extra: Any) -> list[dict[str, Any]]:
    """Up to ``n`` pages, following NextCursor blindly."""
    pages, cursor = [], 0
    for _ in range(n):
        result = page(emu, uid, cursor, limit, **extra)
        pages.append({"sent": cursor, **result})
        if not result["HasMore"]:
            break
        cursor = result["NextCursor"]
    return pages


def ids_of(result: dict[str, Any]) -> list[int]:
    return [c["ConversationShortId"] for c in result["ConversationInfos"]]


def test_stuck_cursor() -> None:
    with Emulator(anomalies={"*": "stuck_cursor"}, qps_limit=None) as emu:
        uid = emu.user_ids[0]
        pages = naive_pages(emu, uid, 6, DataType=1)
        assert len(pages) == 6  # never ends on its own
        assert pages[1]["NextCursor"] == pages[1]["sent"] != pages[0]["sent"]
        assert all(p["HasMore"] and p["NextCursor"] == p["sent"] for p in pages[1:])
        assert ids_of(pages[2]) == ids_of(pages[1])


def test_negative_cursor_only_for_that_user() -> None:
    with Emulator(anomalies={1_000_002: "negative_cursor"}) as emu:
        bad, good = emu.user_ids[1], emu.user_ids[0]
        first = page(emu, bad, limit=10, DataType=1)
        assert first["HasMore"] is True and first["NextCursor"] == -1
        assert page(emu, good, limit=10)["NextCursor"] > 0


def test_empty_pages_listing_still_complete() -> None:
    with Emulator(anomalies={"*": "empty_pages"}, qps_limit=None) as emu:
        uid = emu.user_ids[0]
        pages = naive_pages(emu, uid, 50, DataType=1)
        empties = [p for p in pages if not p["ConversationInfos"]]
        assert empties and all(p["HasMore"] for p in empties)
        assert pages[0]["ConversationInfos"] and not pages[1]["ConversationInfos"]
        collected = [sid for p in pages for sid in ids_of(p)]
        assert collected == [c["ConversationShortId"] for c in emu.conversations(uid)]


def test_repeated_page_then_continues() -> None:
    with Emulator(anomalies={"*": "repeated_page"}, qps_limit=None) as emu:
        uid = emu.user_ids[0]
        pages = naive_pages(emu, uid, 50, DataType=1)
        assert ids_of(pages[1]) == ids_of(pages[0]) and pages[1]["HasMore"]
        collected = [sid for p in pages for sid in ids_of(p)]
        truth = [c["ConversationShortId"] for c in emu.conversations(uid)]
        assert len(collected) == len(truth) + len(ids_of(pages[0]))
        assert list(dict.fromkeys(collected)) == truth


def test_endless_empty_pages_never_end_and_cursors_stay_new_and_valid() -> None:
    with Emulator(anomalies={1_000_001: "endless_empty"}, qps_limit=None) as emu:
        uid = emu.user_ids[0]
        cursors = [0]
        for _ in range(40):
            result = page(emu, uid, cursors[-1], 10, DataType=1)
            assert result["ConversationInfos"] == [] and result["HasMore"] is True
            assert result["NextCursor"] > 0
            cursors.append(result["NextCursor"])
        assert len(set(cursors)) == len(cursors)
        # opaque and validated: a made-up cursor is still rejected
        resp = call(emu, body_for(emu, uid, Cursor=cursors[-1] + 1, Limit=10, DataType=1))
        assert resp.status_code == 400 and error_of(resp) == "InvalidParameter"
        # other users are unaffected; with the anomaly off, its cursors are invalid
        assert walk(emu, emu.user_ids[1], DataType=1) == [
            c["ConversationShortId"] for c in emu.conversations(emu.user_ids[1])
        ]
        emu.configure(anomalies={})
        resp = call(emu, body_for(emu, uid, Cursor=cursors[5], Limit=10, DataType=1))
        assert resp.status_code == 400 and error_of(resp) == "InvalidParameter"


def test_anomaly_validation() -> None:
    with pytest.raises(ValueError, match="anomalies"):
        Emulator(anomalies={"*": "spin"})
    with pytest.raises(ValueError, match="unknown option"):
        Emulator().configure(bogus=1)


def test_reorder_data_type0_is_deterministic_and_moves_items() -> None:
    def naive(emu: Emulator) -> list[int]:
        return [sid for p in naive_pages(emu, emu.user_ids[0], 50, DataType=0) for sid in ids_of(p)]

    with Emulator(reorder_data_type0=True, qps_limit=None) as a, Emulator(reorder_data_type0=True) as b:
        before = [c["ConversationShortId"] for c in a.conversations(a.user_ids[0], data_type=0)]
        got = naive(a)
        assert got == naive(b)
        assert len(got) != len(set(got)) or set(got) != set(before)  # duplicates or misses
        assert set(got) < set(before) or len(got) > len(set(got))
        after = [c["ConversationShortId"] for c in a.conversations(a.user_ids[0], data_type=0)]
        assert after != before and sorted(after) == sorted(before)
        # DataType 1 is unaffected
        assert walk(a, a.user_ids[0], DataType=1) == [
            c["ConversationShortId"] for c in a.conversations(a.user_ids[0], data_type=1)
        ]


# ----------------------------------------------------------------------------- changing data
def test_add_and_remove_via_python(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    uid = emu.user_ids[0]
    added = emu.add_conversation(uid, Name="新群 🎉", ConversationType=2, Ext={"a": "b"})
    assert added["ConversationShortId"] > 2**53 and added["InboxType"] == 0
    assert walk(emu, uid, limit=20, DataType=1)[-1] == added["ConversationShortId"]
    assert page(emu, uid, limit=1, DataType=0)["ConversationInfos"][0]["Name"] == "新群 🎉"
    removed = emu.remove_conversation(uid, added["ConversationShortId"])
    assert removed["ConversationShortId"] == added["ConversationShortId"]
    assert added["ConversationShortId"] not in walk(emu, uid, limit=20, DataType=1)
    every = emu.conversations(uid, inbox_type=0) + emu.conversations(uid, inbox_type=1)
    newest = max(every, key=lambda c: (c["CreateTime"], c["ConversationShortId"]))["ConversationShortId"]
    assert emu.remove_conversation(uid)["ConversationShortId"] == newest
    with pytest.raises(KeyError):
        emu.remove_conversation(uid, 1)
    new_user = emu.add_conversation(42, ConversationShortId=7_100_000_000_000_000_001)
    assert (
        42 in emu.user_ids
        and page(emu, 42)["ConversationInfos"][0]["ConversationShortId"] == (new_user["ConversationShortId"])
    )


def test_admin_http_endpoints(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    uid = emu.user_ids[0]
    base = emu.url + "/_emulator"
    health = requests.get(base + "/health", timeout=10).json()
    assert health["status"] == "ok" and health["user_ids"] == emu.user_ids
    resp = requests.post(f"{base}/users/{uid}/conversations", json={"Name": "via HTTP"}, timeout=10)
    assert resp.status_code == 201
    sid = resp.json()["ConversationShortId"]
    assert sid in walk(emu, uid, limit=20, DataType=1)
    listed = requests.get(f"{base}/users/{uid}/conversations?data_type=0", timeout=10).json()
    assert listed["ConversationInfos"][0]["ConversationShortId"] == sid
    resp = requests.delete(f"{base}/users/{uid}/conversations/{sid}", timeout=10)
    assert resp.status_code == 200 and resp.json()["Name"] == "via HTTP"
    assert requests.delete(f"{base}/users/{uid}/conversations/{sid}", timeout=10).status_code == 404
    assert sid not in walk(emu, uid, limit=20, DataType=1)
    resp = requests.post(
        base + "/config", json={"latency": 0.01, "anomalies": {"*": "stuck_cursor"}}, timeout=10
    )
    assert resp.status_code == 200 and emu.latency == 0.01 and emu.anomalies == {"*": "stuck_cursor"}
    assert requests.post(base + "/config", json={"nope": 1}, timeout=10).status_code == 400
    stats = requests.get(base + "/stats", timeout=10).json()
    assert stats["requests"] == emu.stats["requests"] > 0 and stats["by_status"]["200"] > 0
    assert requests.post(base + "/stats/reset", timeout=10).status_code == 200
    assert emu.stats["requests"] == 0 and emu.stats["by_status"] == {}
    assert requests.get(base + "/nothing", timeout=10).status_code == 404


def test_connection_json_and_env(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    conn = json.loads(emu.connection_json(max_qps=20, region=None, login="AKLTother"))
    assert conn["conn_type"] == "rtcim" and conn["login"] == "AKLTother"
    assert conn["password"] == emu.secret_access_key and conn["host"] == emu.url
    assert conn["extra"] == {"app_id": emu.app_id, "endpoint_url": emu.url, "max_qps": 20}
    env = emu.airflow_env("my_conn")
    assert list(env) == ["AIRFLOW_CONN_MY_CONN"]
    assert "secret" not in repr(emu)


def test_stop_closes_keep_alive_connections() -> None:
    emu = Emulator().start()
    with requests.Session() as s:
        assert call(emu, body_for(emu, emu.user_ids[0]), session=s).status_code == 200
        emu.stop()
        with pytest.raises(requests.exceptions.ConnectionError):
            call(emu, body_for(emu, emu.user_ids[0]), session=s)


# ----------------------------------------------------------------------------- CLI
def test_cli_ready_file_signed_request_and_sigterm(tmp_path) -> None:
    ready = tmp_path / "ready.json"
    args = ["--port", "0", "--users", "2", "--conversations", "5", "--seed", "3"]
    args += ["--anomaly", "*=negative_cursor", "--no-auth"]
    proc, info = start_cli_emulator(ready, *args)
    try:
        assert info["pid"] == proc.pid and info["user_ids"] == [1_000_001, 1_000_002]
        creds = Credentials(info["access_key_id"], info["secret_access_key"], region=info["region"])
        raw = json.dumps(
            {"AppId": info["app_id"], "ParticipantUserId": 1_000_001, "Cursor": 0, "Limit": 2}
        ).encode()
        url = info["url"] + QUERY
        headers = sign_request(
            creds, method="POST", url=url, headers={"Content-Type": "application/json"}, body=raw
        )
        result = requests.post(url, data=raw, headers=headers, timeout=10).json()["Result"]
        assert len(result["ConversationInfos"]) == 2 and result["NextCursor"] == -1 and result["HasMore"]
        # --no-auth (benchmarks only): the same request unsigned is served too
        assert requests.post(url, data=raw, timeout=10).json()["Result"] == result
        assert (
            Emulator(users=2, conversations_per_user=5, seed=3).conversations(1_000_001, data_type=0)[:2]
            == (result["ConversationInfos"])
        )
    finally:
        out, err = stop_cli_emulator(proc)
    assert proc.returncode == 0, err
    assert f"listening on {info['url']}" in out
    assert "export AIRFLOW_CONN_RTCIM_DEFAULT='" in out
    assert "signatures are NOT verified" in out
    line = next(x for x in out.splitlines() if x.startswith("export "))
    conn = json.loads(line.split("=", 1)[1].strip("'"))
    assert conn["host"] == info["url"] and conn["extra"]["app_id"] == info["app_id"]
    assert not ready.exists()


# ----------------------------------------------------------------------------- no auth (benchmarks)
def test_verify_signatures_false_serves_unsigned_requests() -> None:
    with Emulator(verify_signatures=False, qps_limit=None) as emu:
        uid = emu.user_ids[0]
        resp = requests.post(emu.url + QUERY, json=body_for(emu, uid, DataType=1), timeout=10)
        assert resp.status_code == 200, resp.text
        assert resp.json()["Result"]["ConversationInfos"] == emu.conversations(uid)[:20]
        assert emu.config["verify_signatures"] is False
        assert emu.stats["signature_failures"] == 0
        emu.configure(verify_signatures=True)
        resp = requests.post(emu.url + QUERY, json=body_for(emu, uid), timeout=10)
        assert resp.status_code == 401 and error_of(resp) == "MissingSignature"


def test_signatures_are_verified_by_default(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    assert emu.verify_signatures is True
    resp = requests.post(emu.url + QUERY, json=body_for(emu, emu.user_ids[0]), timeout=10)
    assert resp.status_code == 401 and error_of(resp) == "MissingSignature"
