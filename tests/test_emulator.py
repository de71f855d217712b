"""The emulator, over real HTTP: requests signed with core.signing, sent with requests."""

from __future__ import annotations

import json
from typing import Any

import requests

from airflow_provider_rtcim.core.signing import Credentials, sign_request
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
    import os

    conn = json.loads(os.environ["AIRFLOW_CONN_RTCIM_DEFAULT"])
    assert conn["host"] == rtcim_connection.url
    assert conn["extra"]["app_id"] == rtcim_connection.app_id
