"""RtcImConversationCountSensor and RtcImConversationCountTrigger against the emulator over HTTP.

The count is changed while the sensor waits: either from inside the sensor (a scripted
subclass that acts after poke N, so reschedules can be observed deterministically) or from a
``threading.Timer`` while the trigger polls. DAG runs use ``dag.test()``, which really
reschedules a reschedule-mode sensor and runs a deferred task's trigger in line.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk import DAG, BaseOperator
from dagrun_helpers import run_dag, task_states, xcom_value

from airflow_provider_rtcim.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
    task_state_store,
)
from airflow_provider_rtcim.core.errors import RtcImError
from airflow_provider_rtcim.exceptions import RtcImApiError, RtcImFatalError
from airflow_provider_rtcim.sensors.rtcim import BASELINE_STATE_KEY, RtcImConversationCountSensor
from airflow_provider_rtcim.triggers.rtcim import RtcImConversationCountTrigger, count_condition_met

UNKNOWN_APP_ID = 987_654


def _count(emu, uid: int) -> int:
    return len(emu.conversations(uid))


def _add(emu, uid: int) -> None:
    """Add a conversation the sensor counts (default AppId, InboxType 0)."""
    emu.add_conversation(uid, AppId=emu.app_id, InboxType=0)


def _remove(emu, uid: int) -> None:
    """Remove one conversation the sensor counts (the newest listed one)."""
    emu.remove_conversation(uid, emu.conversations(uid)[-1]["ConversationShortId"])


# ----------------------------------------------------------------------------- helpers
_SCRIPTS: dict[str, dict[str, Any]] = {}
"""Per task_id: actions to run after poke N, and what each poke saw (pokes run in this process)."""


class _ScriptedSensor(RtcImConversationCountSensor):
    """Records what each poke starts from and runs a scripted action after poke N."""

    def poke(self, context):
        script = _SCRIPTS[self.task_id]
        script["run_id"] = context["run_id"]
        number = len(script["pokes"]) + 1
        store = task_state_store(context)  # 3.3's, or the Variable-backed fallback
        script["pokes"].append(
            {
                "instance_baseline": self._baseline,
                "stored": store.get(BASELINE_STATE_KEY) if store is not None else None,
            }
        )
        result = super().poke(context)
        action = script["actions"].get(number)
        if action is not None:
            action()
        return result


def _script(task_id: str, actions: dict[int, Callable[[], Any]] | None = None) -> dict[str, Any]:
    _SCRIPTS[task_id] = {"actions": actions or {}, "pokes": []}
    return _SCRIPTS[task_id]


class _ReturnValue(BaseOperator):
    """Pushes a fixed XCom value: an upstream task for templated baselines."""

    def __init__(self, *, value: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value

    def execute(self, context):
        return self.value


def _new_dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False)


def _stored_state(dr, task_id: str) -> dict[str, str]:
    """The task state a task instance of ``dr`` left behind (task_state_store rows, or Variables < 3.3)."""
    from airflow_compat import stored_task_state

    return stored_task_state(dr.dag_id, dr.run_id, task_id)


def _states(dr) -> dict[str, str]:
    return {task_id: state for (task_id, _), state in task_states(dr).items()}


# ----------------------------------------------------------------------------- arguments
def test_defaults_and_templated_fields():
    sensor = RtcImConversationCountSensor(task_id="s", participant_user_id=1)
    assert sensor.baseline_count is None
    assert sensor.app_id is None
    assert (sensor.data_type, sensor.inbox_type) == (1, 0)
    assert (sensor.direction, sensor.min_delta) == ("any", 1)
    assert sensor.rtcim_conn_id == "rtcim_default"
    assert sensor.max_qps is None
    assert sensor.deferrable is False
    assert set(sensor.template_fields) == {
        "participant_user_id",
        "baseline_count",
        "app_id",
        "data_type",
        "inbox_type",
    }
    # No I/O in __init__: nothing has built the hook yet.
    assert "hook" not in sensor.__dict__


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"direction": "up"}, "direction", "any, increase, decrease"),
        ({"min_delta": 0}, "min_delta", ">= 1"),
        ({"min_delta": True}, "min_delta", ">= 1"),
        ({"min_delta": "0"}, "min_delta", ">= 1"),
        ({"min_delta": "two"}, "min_delta", ">= 1"),
        ({"min_delta": 1.5}, "min_delta", ">= 1"),
        ({"min_delta": "{{ params.d }}"}, "min_delta", "not templated"),
        ({"data_type": 3}, "data_type", "0 (cache"),
        ({"data_type": "3"}, "data_type", "0 (cache"),
        ({"inbox_type": -1}, "inbox_type", ">= 0"),
        ({"inbox_type": "-1"}, "inbox_type", "integer"),
        ({"max_qps": -1}, "max_qps", ">= 0"),
        ({"max_qps": "fast"}, "max_qps", "number"),
        # With no task-level user_id_type the connection decides (at the first poke): see
        # tests/test_string_ids.py. An int task rejects "abc" at once.
        ({"participant_user_id": "abc", "user_id_type": "int"}, "participant_user_id", "integer"),
        ({"participant_user_id": 0}, "participant_user_id", "positive"),
        ({"baseline_count": -1}, "baseline_count", ">= 0"),
        ({"baseline_count": 1.5}, "baseline_count", "integer"),
        ({"app_id": "x"}, "app_id", "integer"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, field, allowed):
    args = {"task_id": "s", "participant_user_id": 1, **kwargs}
    with pytest.raises(ValueError, match=field) as info:
        RtcImConversationCountSensor(**args)
    assert allowed in str(info.value)


def test_min_delta_accepts_numeric_strings():
    assert RtcImConversationCountSensor(task_id="s", participant_user_id=1, min_delta="2").min_delta == 2
    assert RtcImConversationCountSensor(task_id="s", participant_user_id=1, min_delta=" 3 ").min_delta == 3


def test_max_qps_is_validated_and_kept():
    assert RtcImConversationCountSensor(task_id="s", participant_user_id=1, max_qps="24").max_qps == 24.0
    assert RtcImConversationCountSensor(task_id="s", participant_user_id=1, max_qps=0).max_qps == 0.0


def test_positional_arguments_are_refused():
    with pytest.raises(TypeError):
        RtcImConversationCountSensor("s", 1)  # type: ignore[misc]


def test_templated_values_are_checked_once_rendered():
    sensor = RtcImConversationCountSensor(
        task_id="s",
        participant_user_id="{{ params.uid }}",
        baseline_count="{{ ti.xcom_pull(task_ids='b') }}",
        app_id="{{ params.app }}",
    )
    # Rendered strings: numbers are converted, "None"/"" mean no value.
    sensor.participant_user_id, sensor.baseline_count, sensor.app_id = " 42 ", "7", "None"
    assert sensor._resolved() == (42, None, 7, 1, 0)
    sensor.baseline_count, sensor.app_id = "", "1001"
    assert sensor._resolved() == (42, 1001, None, 1, 0)
    sensor.baseline_count = "seven"
    with pytest.raises(ValueError, match="baseline_count"):
        sensor._resolved()
    sensor.baseline_count, sensor.participant_user_id = None, "-3"
    with pytest.raises(ValueError, match="participant_user_id"):
        sensor._resolved()


def test_data_type_and_inbox_type_are_templated_and_checked_once_rendered():
    sensor = RtcImConversationCountSensor(
        task_id="s", participant_user_id=1, data_type="{{ params.dt }}", inbox_type="{{ params.it }}"
    )  # not checked yet: templates
    sensor.render_template_fields({"params": {"dt": 0, "it": 2}})
    assert (sensor.data_type, sensor.inbox_type) == ("0", "2")
    args = sensor._resolved()
    assert (args.data_type, args.inbox_type) == (0, 2)
    # The stored-baseline identity uses the rendered, converted values.
    assert sensor._state_identity(args)["data_type"] == 0
    sensor.data_type = "7"
    with pytest.raises(ValueError, match="data_type") as info:
        sensor._resolved()
    assert "0 (cache" in str(info.value)
    sensor.data_type, sensor.inbox_type = "1", "-2"
    with pytest.raises(ValueError, match="inbox_type"):
        sensor._resolved()


@pytest.mark.parametrize(
    ("direction", "baseline", "count", "min_delta", "expected"),
    [
        ("increase", 10, 11, 1, True),
        ("increase", 10, 9, 1, False),
        ("increase", 10, 11, 2, False),
        ("decrease", 10, 9, 1, True),
        ("decrease", 10, 11, 1, False),
        ("decrease", 10, 7, 3, True),
        ("any", 10, 8, 2, True),
        ("any", 10, 12, 2, True),
        ("any", 10, 11, 2, False),
        ("any", 10, 10, 1, False),
    ],
)
def test_count_condition(direction, baseline, count, min_delta, expected):
    assert (
        count_condition_met(baseline_count=baseline, count=count, direction=direction, min_delta=min_delta)
        is expected
    )


def test_importing_sensor_and_trigger_does_not_import_requests():
    code = (
        "import sys, airflow_provider_rtcim.sensors.rtcim, airflow_provider_rtcim.triggers.rtcim;"
        "print('requests' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


# ----------------------------------------------------------------------------- execute_complete
def _sensor(**kwargs: Any) -> RtcImConversationCountSensor:
    return RtcImConversationCountSensor(task_id="s", participant_user_id=1, **kwargs)


def test_execute_complete_success_returns_counts():
    event = {"status": "success", "baseline_count": 4, "count": 6, "message": "moved"}
    assert _sensor().execute_complete({}, event) == {"baseline_count": 4, "count": 6}


@pytest.mark.parametrize("event", [None, {}, {"status": "weird"}, "success"])
def test_execute_complete_rejects_missing_or_unknown_events(event):
    with pytest.raises(AirflowException) as info:
        _sensor().execute_complete({}, event)
    assert not isinstance(info.value, (AirflowFailException, AirflowSensorTimeout))


def test_execute_complete_timeout_is_a_sensor_timeout():
    with pytest.raises(AirflowSensorTimeout, match="not moved"):
        _sensor().execute_complete({}, {"status": "timeout", "message": "count 3, not moved"})


def test_execute_complete_error_fails_with_the_code():
    event = {
        "status": "error",
        "code": "AccessDenied",
        "http_status": 403,
        "request_id": "REQ-1",
        "action": "GetUserConversations",
        "retryable": False,
        "participant_user_id": 77,
        "message": "no",
    }
    with pytest.raises(RtcImFatalError, match="AccessDenied") as info:
        _sensor().execute_complete({}, event)
    assert isinstance(info.value, AirflowFailException) and isinstance(info.value, RtcImApiError)
    assert (info.value.code, info.value.request_id, info.value.http_status) == ("AccessDenied", "REQ-1", 403)
    text = str(info.value)
    assert text.count("permissions") == 1  # the fix hint, once
    assert text.count("REQ-1") == 1 and text.count("AccessDenied") == 1
    assert "participant_user_id=77" in text
    # A transient failure the hook gave up on stays retryable by the task's own retries.
    event = {
        **event,
        "code": "ServiceUnavailableTemp",
        "http_status": 503,
        "retryable": True,
        "message": "503",
    }
    with pytest.raises(RtcImError, match="ServiceUnavailableTemp") as info:
        _sensor().execute_complete({}, event)
    assert not isinstance(info.value, AirflowException)
    assert str(info.value).count("REQ-1") == 1


def test_soft_fail_does_not_skip_a_retryable_trigger_error():
    """Airflow's resume_execution turns any AirflowException into a skip under soft_fail.

    A transient error (poke mode: the task fails and is retried) must not become a skip
    after a deferral either: the real resume path raises the error itself.
    """
    event = {
        "status": "error",
        "code": "ServiceUnavailableTemp",
        "http_status": 503,
        "request_id": "REQ-2",
        "retryable": True,
        "participant_user_id": 1,
        "message": "service unavailable",
    }
    sensor = _sensor(soft_fail=True)
    with pytest.raises(RtcImError) as info:
        sensor.resume_execution("execute_complete", {"event": event}, {})
    assert not isinstance(info.value, (AirflowException, AirflowSkipException))
    assert info.value.code == "ServiceUnavailableTemp" and info.value.request_id == "REQ-2"
    # never_fail skips any failure in poke mode, so it does after a deferral too.
    with pytest.raises(AirflowSkipException):
        _sensor(never_fail=True).resume_execution("execute_complete", {"event": event}, {})


def test_soft_fail_turns_trigger_failures_into_a_skip():
    sensor = _sensor(soft_fail=True)
    for event in ({"status": "timeout", "message": "t"}, {"status": "error", "code": "AccessDenied"}):
        with pytest.raises(AirflowSkipException):
            sensor.resume_execution("execute_complete", {"event": event}, {})


# ----------------------------------------------------------------------------- trigger
def _trigger(**overrides: Any) -> RtcImConversationCountTrigger:
    kwargs: dict[str, Any] = {
        "participant_user_id": 10001,
        "baseline_count": 5,
        "end_time": time.time() + 30,
        "app_id": None,
        "data_type": 1,
        "inbox_type": 0,
        "direction": "increase",
        "min_delta": 2,
        "rtcim_conn_id": "rtcim_default",
        "poll_interval": 0.2,
        "max_qps": None,
    }
    kwargs.update(overrides)
    return RtcImConversationCountTrigger(**kwargs)


def test_trigger_serialize_round_trip():
    trigger = _trigger(app_id=1234, max_qps=24.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_rtcim.triggers.rtcim.RtcImConversationCountTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON-able
    from airflow_compat import import_string

    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert vars(rebuilt) == vars(trigger)
    assert kwargs["baseline_count"] == 5 and kwargs["app_id"] == 1234
    assert kwargs["max_qps"] == 24.0 and rebuilt.max_qps == 24.0


@pytest.mark.parametrize(("max_qps", "expected"), [(24.0, 24.0), (None, 95.0)])
def test_trigger_hook_has_the_qps_cap(rtcim_connection, max_qps, expected):
    hook = asyncio.run(_trigger(max_qps=max_qps)._build_hook())
    try:
        assert hook.client.rate_limiter.max_qps == expected  # None: the hook's default cap
    finally:
        hook.close()


def test_sensor_hook_has_the_qps_cap(rtcim_connection):
    sensor = RtcImConversationCountSensor(task_id="s", participant_user_id=1, max_qps=24)
    assert sensor.hook.client.rate_limiter.max_qps == 24.0
    default = RtcImConversationCountSensor(task_id="s2", participant_user_id=1)
    assert default.hook.client.rate_limiter.max_qps == 95.0


def _run_trigger(trigger: RtcImConversationCountTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(collect(), timeout=30))


def _assert_no_secret(emu, *values: Any) -> None:
    text = json.dumps(values, default=str)
    assert emu.secret_access_key not in text


def test_trigger_run_success_when_count_grows(rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[0]
    baseline = _count(emu, uid)
    timers = [
        threading.Timer(0.3, _add, (emu, uid)),
        threading.Timer(0.8, _add, (emu, uid)),
    ]
    for timer in timers:
        timer.start()
    trigger = _trigger(participant_user_id=uid, baseline_count=baseline, direction="increase", min_delta=2)
    try:
        events = _run_trigger(trigger)
    finally:
        for timer in timers:
            timer.cancel()
    assert len(events) == 1
    event = events[0]
    assert event["status"] == "success"
    assert (event["baseline_count"], event["count"]) == (baseline, baseline + 2)
    assert event["participant_user_id"] == uid
    _assert_no_secret(emu, event, trigger.serialize())
    assert _sensor().execute_complete({}, event) == {"baseline_count": baseline, "count": baseline + 2}


def test_trigger_counts_off_the_event_loop_thread(rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[0]
    threads: list[int] = []

    class Recording(RtcImConversationCountTrigger):
        def _count(self, hook):
            threads.append(threading.get_ident())
            return super()._count(hook)

    trigger = Recording(
        participant_user_id=uid, baseline_count=_count(emu, uid) + 1, end_time=time.time() + 30
    )
    events = _run_trigger(trigger)  # asyncio.run drives the loop in this (the main) thread
    assert events[0]["status"] == "success"  # one fewer than the baseline: moved by 1, "any"
    assert threads and threading.get_ident() not in threads


@pytest.mark.parametrize("async_extra", [True, False], ids=["aextra_dejson", "worker-thread"])
def test_trigger_fetches_its_connection_without_blocking_the_loop(rtcim_connection, monkeypatch, async_extra):
    """Airflow 3.3.2+ awaits aget_connection / aextra_dejson; older ones fetch in a worker thread."""
    from airflow_provider_rtcim import compat

    if async_extra and not compat._has_async_extra():
        async_extra = False  # this Airflow (< 3.3.2) has only the fallback: test that one
    monkeypatch.setattr(compat, "_has_async_extra", lambda: async_extra)
    threads: list[int] = []
    real_get_connection = compat.BaseHook.get_connection

    def get_connection(conn_id):
        threads.append(threading.get_ident())
        return real_get_connection(conn_id)

    monkeypatch.setattr(compat.BaseHook, "get_connection", get_connection)
    emu = rtcim_connection
    uid = emu.user_ids[0]
    trigger = _trigger(
        participant_user_id=uid, baseline_count=_count(emu, uid) + 1, direction="any", min_delta=1
    )
    events = _run_trigger(trigger)  # asyncio.run drives the loop in this (the main) thread
    assert events[0]["status"] == "success"
    assert events[0]["count"] == _count(emu, uid)
    if async_extra:
        assert threads == []  # the async path never calls the blocking one
    else:
        assert threads and threading.get_ident() not in threads


def test_trigger_run_error_event_for_unknown_app(rtcim_connection):
    emu = rtcim_connection
    trigger = _trigger(participant_user_id=emu.user_ids[0], app_id=UNKNOWN_APP_ID)
    events = _run_trigger(trigger)
    assert len(events) == 1
    event = events[0]
    assert event["status"] == "error"
    assert event["code"] == "InvalidParameter.NotExistAppId"
    assert event["retryable"] is False
    assert event["request_id"]  # the emulator's RequestIds are never empty
    assert event["action"] == "GetUserConversations"
    _assert_no_secret(emu, event)
    with pytest.raises(RtcImFatalError) as info:
        _sensor().execute_complete({}, event)
    _assert_names_the_failure(info.value, user_id=emu.user_ids[0], request_id=event["request_id"])


def _assert_names_the_failure(exc: BaseException, *, user_id: int, request_id: str) -> None:
    """A hopeless failure: fails without retries, text names user, Code, hint, RequestId once."""
    assert isinstance(exc, AirflowFailException) and isinstance(exc, RtcImApiError)
    assert exc.request_id == request_id and exc.code == "InvalidParameter.NotExistAppId"
    text = str(exc)
    assert f"participant_user_id={user_id}" in text
    assert text.count(request_id) == 1
    assert text.count("InvalidParameter.NotExistAppId") == 1
    assert text.count("the AppId does not exist for this account") == 1  # the fix hint


def test_trigger_run_error_event_for_missing_connection(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_RTCIM_NOPE", raising=False)
    events = _run_trigger(_trigger(rtcim_conn_id="rtcim_nope"))
    assert len(events) == 1
    assert events[0]["status"] == "error"
    assert "rtcim_nope" in events[0]["message"]
    # Not an API verdict: as in poke mode, the task's retries may have a go (no soft_fail skip).
    assert events[0]["retryable"] is True
    with pytest.raises(RtcImError, match="rtcim_nope") as info:
        _sensor(soft_fail=True).resume_execution("execute_complete", {"event": events[0]}, {})
    assert not isinstance(info.value, AirflowException)


def test_trigger_run_times_out_at_its_deadline(rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[0]
    baseline = _count(emu, uid)
    events = _run_trigger(
        _trigger(
            participant_user_id=uid, baseline_count=baseline, end_time=time.time() + 0.5, direction="any"
        )
    )
    assert len(events) == 1
    assert events[0]["status"] == "timeout"
    assert events[0]["count"] == baseline
    with pytest.raises(AirflowSensorTimeout):
        _sensor().execute_complete({}, events[0])


# ----------------------------------------------------------------------------- poke / execute directly
def test_poke_first_poke_baseline_then_done(rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[1]
    before = _count(emu, uid)
    sensor = RtcImConversationCountSensor(task_id="s", participant_user_id=uid, direction="decrease")
    assert sensor.poke({}) is False
    _remove(emu, uid)
    result = sensor.poke({})
    assert result.is_done
    assert result.xcom_value == {"baseline_count": before, "count": before - 1}


def test_poke_explicit_baseline_and_min_delta(rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[0]
    now = _count(emu, uid)
    # Moved by 2 from the explicit baseline, but 3 are needed.
    sensor = RtcImConversationCountSensor(
        task_id="s", participant_user_id=str(uid), baseline_count=str(now - 2), min_delta=3
    )
    assert sensor.poke({}) is False
    _add(emu, uid)
    assert sensor.poke({}).xcom_value == {"baseline_count": now - 2, "count": now + 1}


def test_poke_non_retryable_error_fails_with_the_code(rtcim_connection):
    emu = rtcim_connection
    sensor = RtcImConversationCountSensor(
        task_id="s", participant_user_id=emu.user_ids[0], app_id=UNKNOWN_APP_ID
    )
    with pytest.raises(RtcImFatalError) as info:
        sensor.poke({})
    assert emu.secret_access_key not in str(info.value)
    assert info.value.request_id  # the emulator's RequestIds are never empty
    _assert_names_the_failure(info.value, user_id=emu.user_ids[0], request_id=info.value.request_id)
    # soft_fail applies to AirflowFailException in 3.3: the task is skipped, not failed.
    soft = RtcImConversationCountSensor(
        task_id="s2", participant_user_id=emu.user_ids[0], app_id=UNKNOWN_APP_ID, soft_fail=True
    )
    with pytest.raises(AirflowSkipException):
        soft.execute({})


def test_same_failure_text_in_poke_and_deferrable_mode(rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[0]
    with pytest.raises(RtcImFatalError) as poked:
        RtcImConversationCountSensor(task_id="s", participant_user_id=uid, app_id=UNKNOWN_APP_ID).poke({})
    (event,) = _run_trigger(_trigger(participant_user_id=uid, app_id=UNKNOWN_APP_ID))
    with pytest.raises(RtcImFatalError) as deferred:
        _sensor().execute_complete({}, event)
    assert poked.value.request_id != deferred.value.request_id  # two requests
    assert str(poked.value).replace(poked.value.request_id, "R") == str(deferred.value).replace(
        deferred.value.request_id, "R"
    )


def test_transient_error_that_outlasts_retries_is_retried_not_skipped(rtcim_connection, monkeypatch):
    """soft_fail: a 503 the hook gave up on fails the task (retries apply) in both modes."""
    emu = rtcim_connection
    uid = emu.user_ids[0]
    monkeypatch.setenv("AIRFLOW_CONN_RTCIM_DEFAULT", emu.connection_json(max_retries=0))
    emu.configure(fault_rate=1.0, fault_kinds=["503"], max_consecutive_faults=100)
    poke_sensor = RtcImConversationCountSensor(task_id="s", participant_user_id=uid, soft_fail=True)
    with pytest.raises(RtcImApiError) as poked:
        poke_sensor.execute({})  # BaseSensorOperator.execute: soft_fail does not apply
    assert not isinstance(poked.value, AirflowFailException)
    (event,) = _run_trigger(_trigger(participant_user_id=uid))
    assert (event["status"], event["code"], event["retryable"]) == ("error", "ServiceUnavailableTemp", True)
    assert event["request_id"]
    with pytest.raises(RtcImError) as deferred:
        _sensor(soft_fail=True).resume_execution("execute_complete", {"event": event}, {})
    assert not isinstance(deferred.value, AirflowException)
    for exc in (poked.value, deferred.value):
        assert exc.code == "ServiceUnavailableTemp"
        assert str(exc).count(exc.request_id) == 1
        assert f"participant_user_id={uid}" in str(exc)


def test_execute_poke_mode_sensor_timeout(rtcim_connection):
    emu = rtcim_connection
    kwargs = {"participant_user_id": emu.user_ids[0], "poke_interval": 0.1, "timeout": 0.3}
    with pytest.raises(AirflowSensorTimeout):
        RtcImConversationCountSensor(task_id="s", **kwargs).execute({})
    with pytest.raises(AirflowSkipException):
        RtcImConversationCountSensor(task_id="s2", soft_fail=True, **kwargs).execute({})


def test_deferrable_execute_pokes_once_then_defers_with_the_baseline(rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[2]
    baseline = _count(emu, uid)
    sensor = RtcImConversationCountSensor(
        task_id="s",
        participant_user_id=str(uid),
        deferrable=True,
        direction="increase",
        min_delta=2,
        poke_interval=5,
        timeout=600,
        max_qps=24,
    )
    started = time.time()
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    deferred = info.value
    assert deferred.method_name == "execute_complete"
    trigger = deferred.trigger
    assert isinstance(trigger, RtcImConversationCountTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_rtcim.triggers.rtcim.RtcImConversationCountTrigger"
    assert kwargs["baseline_count"] == baseline
    assert kwargs["participant_user_id"] == uid  # rendered and converted to int
    assert (kwargs["direction"], kwargs["min_delta"], kwargs["poll_interval"]) == ("increase", 2, 5.0)
    assert kwargs["max_qps"] == 24.0
    assert started + 600 <= kwargs["end_time"] <= time.time() + 600
    assert deferred.timeout is not None and deferred.timeout.total_seconds() >= 600
    _assert_no_secret(emu, kwargs)


def test_deferrable_execute_finishes_without_deferring_when_already_satisfied(rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[0]
    now = _count(emu, uid)
    sensor = RtcImConversationCountSensor(
        task_id="s", participant_user_id=uid, baseline_count=now + 1, direction="decrease", deferrable=True
    )
    assert sensor.execute({}) == {"baseline_count": now + 1, "count": now}


# ----------------------------------------------------------------------------- dag.test()
def test_dagrun_poke_mode_templated_baseline(airflow_db, rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[0]
    start = _count(emu, uid)
    script = _script("wait_poke", {1: lambda: _add(emu, uid), 2: lambda: _add(emu, uid)})
    with _new_dag("rtcim_sensor_poke") as dag:
        baseline = _ReturnValue(task_id="baseline", value=start)
        sensor = _ScriptedSensor(
            task_id="wait_poke",
            participant_user_id=str(uid),
            baseline_count="{{ ti.xcom_pull(task_ids='baseline') }}",
            direction="increase",
            min_delta=2,
            poke_interval=0.2,
            timeout=60,
        )
        baseline >> sensor
    dr = run_dag(dag)
    assert _states(dr) == {"baseline": "success", "wait_poke": "success"}
    assert xcom_value(dr, "wait_poke") == {"baseline_count": start, "count": start + 2}
    assert len(script["pokes"]) == 3  # +1 after poke 1 is not enough for min_delta=2


def test_dagrun_reschedule_keeps_the_first_poke_baseline(airflow_db, rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[1]
    start = _count(emu, uid)
    script = _script("wait_resched", {1: lambda: _remove(emu, uid)})
    with _new_dag("rtcim_sensor_reschedule") as dag:
        _ScriptedSensor(
            task_id="wait_resched",
            participant_user_id=uid,
            direction="decrease",
            mode="reschedule",
            poke_interval=0.2,
            timeout=60,
        )
    dr = run_dag(dag)
    assert _states(dr) == {"wait_resched": "success"}
    assert xcom_value(dr, "wait_resched") == {"baseline_count": start, "count": start - 1}
    pokes = script["pokes"]
    assert len(pokes) == 2
    assert pokes[0]["stored"] is None
    # Poke 2 ran after a real reschedule: no in-memory baseline, the stored one was used.
    assert pokes[1]["instance_baseline"] is None
    assert pokes[1]["stored"]["baseline_count"] == start
    # Done: the stored baseline is dropped, so clearing and re-running the task starts afresh.
    assert _stored_state(dr, "wait_resched") == {}


class _NoStoreSensor(_ScriptedSensor):
    """Sees the context of an Airflow < 3.3, which has no ``task_state_store``."""

    def poke(self, context):
        return super().poke({key: value for key, value in context.items() if key != "task_state_store"})


def test_dagrun_reschedule_keeps_the_baseline_in_a_variable_without_task_state_store(
    airflow_db, rtcim_connection
):
    """The fallback of Airflow < 3.3 (the only path there; forced here on 3.3 too)."""
    from airflow_compat import variable_task_state

    emu = rtcim_connection
    uid = emu.user_ids[1]
    start = _count(emu, uid)
    during: list[dict[str, Any]] = []

    def remove_and_look() -> None:
        run_id = _SCRIPTS["wait_variable"]["run_id"]
        during.append(variable_task_state("rtcim_sensor_variable", run_id, "wait_variable"))
        _remove(emu, uid)

    script = _script("wait_variable", {1: remove_and_look})
    with _new_dag("rtcim_sensor_variable") as dag:
        _NoStoreSensor(
            task_id="wait_variable",
            participant_user_id=uid,
            direction="decrease",
            mode="reschedule",
            poke_interval=0.2,
            timeout=60,
        )
    dr = run_dag(dag)
    assert _states(dr) == {"wait_variable": "success"}
    assert xcom_value(dr, "wait_variable") == {"baseline_count": start, "count": start - 1}
    pokes = script["pokes"]
    assert len(pokes) == 2
    # After poke 1 the baseline sat in a Variable of this task instance ...
    assert [state[BASELINE_STATE_KEY]["baseline_count"] for state in during] == [start]
    # ... which poke 2, after a real reschedule (no in-memory baseline), read back.
    assert pokes[1]["instance_baseline"] is None
    assert pokes[1]["stored"]["baseline_count"] == start
    # Done: the Variable is deleted, so clearing and re-running the task starts afresh.
    assert variable_task_state(dr.dag_id, dr.run_id, "wait_variable") == {}


def test_dagrun_deferrable(airflow_db, rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[2]
    start = _count(emu, uid)
    timers: list[threading.Timer] = []

    def add_later() -> None:
        timers.append(threading.Timer(0.5, _add, (emu, uid)))
        timers[-1].start()

    script = _script("wait_deferred", {1: add_later})
    with _new_dag("rtcim_sensor_deferrable") as dag:
        _ScriptedSensor(
            task_id="wait_deferred",
            participant_user_id=uid,
            deferrable=True,
            poke_interval=0.2,
            timeout=60,
        )
    try:
        dr = run_dag(dag)
    finally:
        for timer in timers:
            timer.cancel()
    assert _states(dr) == {"wait_deferred": "success"}
    assert xcom_value(dr, "wait_deferred") == {"baseline_count": start, "count": start + 1}
    assert len(script["pokes"]) == 1  # the rest of the wait happened in the trigger


def test_dagrun_timeouts_fail_or_skip_with_soft_fail(airflow_db, rtcim_connection):
    emu = rtcim_connection
    uid = emu.user_ids[0]
    common = {"participant_user_id": uid, "poke_interval": 0.2, "timeout": 0.6}
    with _new_dag("rtcim_sensor_timeouts") as dag:
        RtcImConversationCountSensor(task_id="poke_timeout", **common)
        RtcImConversationCountSensor(task_id="poke_soft", soft_fail=True, **common)
        RtcImConversationCountSensor(task_id="defer_timeout", deferrable=True, **common)
        RtcImConversationCountSensor(task_id="defer_soft", deferrable=True, soft_fail=True, **common)
    dr = run_dag(dag)
    assert _states(dr) == {
        "poke_timeout": "failed",
        "poke_soft": "skipped",
        "defer_timeout": "failed",
        "defer_soft": "skipped",
    }
