"""The region in a task (issue 19): a malformed one fails at once, a wrong one is named as a
possible cause of ``SignatureDoesNotMatch``. Over HTTP to the emulator (it signs as cn-north-1)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_rtcim.compat import AirflowFailException
from airflow_provider_rtcim.emulator import Emulator
from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator


def _with_region(emu: Emulator, monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    conn = json.loads(emu.airflow_env()["AIRFLOW_CONN_RTCIM_DEFAULT"])
    conn.setdefault("extra", {})["region"] = region
    monkeypatch.setenv("AIRFLOW_CONN_RTCIM_DEFAULT", json.dumps(conn))


@pytest.mark.parametrize("app_id", [None, 100001], ids=["app-id-from-connection", "app-id-of-the-task"])
def test_a_malformed_region_fails_the_task_at_once_before_any_request(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, app_id: int | None
) -> None:
    _with_region(rtcim_emulator, monkeypatch, "Mars")
    op = RtcImGetUserConversationsOperator(task_id="t", participant_user_id=[1000001], app_id=app_id)
    with pytest.raises(AirflowFailException) as caught:  # no task retries spent on it
        op.execute({})
    assert "extra.region must be a region name such as 'cn-north-1'" in str(caught.value)
    assert "got 'Mars'" in str(caught.value)
    assert rtcim_emulator.stats["requests"] == 0


def test_a_known_but_wrong_region_is_named_as_a_possible_cause(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_region(rtcim_emulator, monkeypatch, "ap-southeast-1")
    op = RtcImGetUserConversationsOperator(task_id="t", participant_user_id=[1000001])
    with pytest.raises(AirflowFailException) as caught:
        op.execute({})
    text = str(caught.value)
    assert "SignatureDoesNotMatch" in text
    assert "the region may be the cause: 'ap-southeast-1' is configured" in text
    assert "check extra.region" in text and "check the connection's password" in text
