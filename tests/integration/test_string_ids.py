"""String user ids (``user_id_type="str"``) through every entry point, over HTTP to the emulator.

The data set puts int users and string users that look alike side by side (int ``7`` and
string ``"007"``, int ``123`` and string ``"123"``) with different conversations, so a test
passes only if the id really went out verbatim as ``ParticipantUserIdStr`` (a client that
turned "007" into 7, or trimmed "user 7 ", would get another user's rows). Unicode ids
("用户-王芳", "🦊fox", "zoë") and an id with a space inside ("user 7") come along. Nothing is
mocked; the few spies only record what the hook sends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_rtcim.compat import TaskDeferred, task_state_store
from airflow_provider_rtcim.core.keys import parse_key_list
from airflow_provider_rtcim.core.validation import validate_str_user_id
from airflow_provider_rtcim.emulator import Emulator
from airflow_provider_rtcim.exceptions import RtcImInvalidArgument
from airflow_provider_rtcim.hooks.rtcim import RtcImApiError, RtcImHook
from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator as Op
from airflow_provider_rtcim.operators.rtcim import combine_summaries
from airflow_provider_rtcim.sensors.rtcim import BASELINE_STATE_KEY, RtcImConversationCountSensor
from airflow_provider_rtcim.triggers.rtcim import RtcImConversationCountTrigger

BIG = 2**62 + 5000  # int64 beyond 2**53


def _convs(first: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "ConversationShortId": BIG + first + i,
            "ConversationType": 2,
            "CreateTime": 1_700_000_000 + first + i,
            "Name": f"群聊 {first + i} 🚀",
            "FutureField": {"kept": [1, 2]},
        }
        for i in range(n)
    ]


# Look-alike ids on purpose: "007" is not 7 and "123" is not 123.
DATA = {
    "users": {"7": _convs(0, 3), "123": _convs(100, 4)},
    "string_users": {
        "007": _convs(1000, 25),  # two pages of 20
        "123": _convs(2000, 5),
        "用户-王芳": _convs(3000, 6),
        "🦊fox": _convs(4000, 2),
        "user 7": _convs(5000, 3),  # a space inside: part of the id
        "zoë": _convs(6000, 1),
    },
}
STRING_USERS = ["007", "123", "用户-王芳", "🦊fox", "user 7", "zoë"]
FAST = {"retry_backoff": 0.001, "retry_backoff_max": 0.01}


def _set_conn(monkeypatch: pytest.MonkeyPatch, emu: Emulator, **extra: Any) -> None:
    for name, value in emu.airflow_env(**extra).items():
        monkeypatch.setenv(name, value)


def _ids(items: list[dict[str, Any]]) -> list[int]:
    return [c["ConversationShortId"] for c in items]


def _rows(emu: Emulator, users: list[str]) -> list[dict[str, Any]]:
    """Expected operator rows for string users: the API's rows plus ParticipantUserIdStr."""
    return [{**c, "ParticipantUserIdStr": uid} for uid in users for c in emu.conversations(uid)]


def _spy_bodies(hook: RtcImHook) -> list[dict[str, Any]]:
    """Record every request body the hook sends (the call still goes to the emulator)."""
    bodies: list[dict[str, Any]] = []
    client = hook.client
    real = client.call

    def call(action: str, body: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        bodies.append(dict(body))
        return real(action, body, *args, **kwargs)

    client.call = call  # type: ignore[method-assign]
    return bodies


def _read(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


# ---------------------------------------------------------------------------------------
# The emulator really tells the look-alikes apart (else every test below could pass by luck)
# ---------------------------------------------------------------------------------------


@pytest.mark.rtcim_emulator(data=DATA)
def test_the_data_set_has_distinct_look_alike_users(rtcim_emulator: Emulator) -> None:
    emu = rtcim_emulator
    assert sorted(emu.string_user_ids) == sorted(STRING_USERS) and sorted(emu.user_ids) == [7, 123]
    assert set(_ids(emu.conversations("007"))).isdisjoint(_ids(emu.conversations(7)))
    assert set(_ids(emu.conversations("123"))).isdisjoint(_ids(emu.conversations(123)))
    first = emu.conversations("007")[0]
    assert (first["OwnerUserId"], first["OwnerUserIdStr"]) == (0, "007")


# ---------------------------------------------------------------------------------------
# Hook
# ---------------------------------------------------------------------------------------


@pytest.mark.rtcim_emulator(data=DATA)
def test_hook_methods_send_the_id_verbatim_and_list_exactly(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    hook = RtcImHook(**FAST)
    bodies = _spy_bodies(hook)
    page = hook.get_user_conversations("007", user_id_type="str")
    assert bodies[-1]["ParticipantUserId"] == 0 and bodies[-1]["ParticipantUserIdStr"] == "007"
    assert _ids(page["ConversationInfos"]) == _ids(emu.conversations("007"))[:20] and page["HasMore"]
    page2 = hook.get_user_conversations("007", cursor=page["NextCursor"], user_id_type="str")
    assert page["ConversationInfos"] + page2["ConversationInfos"] == emu.conversations("007")
    assert page2["HasMore"] is False
    for uid in STRING_USERS:
        assert list(hook.iter_user_conversations(uid, user_id_type="str")) == emu.conversations(uid)
        assert hook.count_user_conversations(uid, user_id_type="str") == len(emu.conversations(uid))
    assert {b["ParticipantUserIdStr"] for b in bodies} == set(STRING_USERS)
    assert all(b["ParticipantUserId"] == 0 for b in bodies)
    # The int path is untouched: the int 7 and the numeric string "007" are both the int user 7.
    sent = len(bodies)
    assert list(hook.iter_user_conversations("007")) == emu.conversations(7)
    assert hook.count_user_conversations(123) == len(emu.conversations(123)) == 4
    assert all("ParticipantUserIdStr" not in b for b in bodies[sent:])
    assert [b["ParticipantUserId"] for b in bodies[sent:]] == [7, 123]


@pytest.mark.rtcim_emulator(data=DATA)
def test_the_connection_sets_the_kind_and_a_call_overrides_it(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = rtcim_emulator
    _set_conn(monkeypatch, emu, user_id_type="str")
    hook = RtcImHook(**FAST)
    assert hook.settings.user_id_type == "str"
    assert list(hook.iter_user_conversations("123")) == emu.conversations("123")
    assert hook.count_user_conversations("用户-王芳") == 6
    assert list(hook.iter_user_conversations(123, user_id_type="int")) == emu.conversations(123)
    # A saved but empty form field (null, or "") is the default "int"; case and spaces are forgiven.
    for value, kind in ((None, "int"), ("", "int"), (" STR ", "str")):
        conn = json.loads(emu.connection_json())
        conn["extra"]["user_id_type"] = value
        monkeypatch.setenv("AIRFLOW_CONN_RTCIM_DEFAULT", json.dumps(conn))
        assert RtcImHook().settings.user_id_type == kind


@pytest.mark.rtcim_emulator(data=DATA, anomalies={"str:007": "repeated_page"})
def test_duplicates_of_a_string_users_listing_are_dropped(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    listing = RtcImHook(**FAST).iter_user_conversations("007", user_id_type="str")
    assert list(listing) == emu.conversations("007")
    assert listing.duplicates == 20  # page 2 repeated page 1


@pytest.mark.rtcim_emulator(data=DATA, anomalies={"str:007": "stuck_cursor"})
def test_a_pagination_anomaly_names_the_string_user_quoted(rtcim_connection: Emulator) -> None:
    with pytest.raises(RtcImApiError, match=r"GetUserConversations for user '007' \(AppId") as info:
        list(RtcImHook(**FAST).iter_user_conversations("007", user_id_type="str"))
    assert info.value.code == "PaginationAnomaly"


@pytest.mark.parametrize(
    ("conn_kind", "call", "pattern"),
    [
        (None, lambda h: h.get_user_conversations("alice"), r'set extra\.user_id_type .*user_id_type="str"'),
        ("int", lambda h: h.count_user_conversations("u_8f3a"), r'user_id_type="str"'),
        ("str", lambda h: h.get_user_conversations(7), r'as a string \("7"\), or use user_id_type="int"'),
        ("str", lambda h: h.iter_user_conversations(" 007"), r"surrounding whitespace.*never trimmed"),
        ("str", lambda h: h.iter_user_conversations("007\n"), r"surrounding whitespace"),
        ("str", lambda h: h.count_user_conversations(""), r"non-empty string"),
        ("str", lambda h: h.get_user_conversations(None), r"participant_user_id must be a string"),
        (
            None,
            lambda h: h.get_user_conversations("007", user_id_type="string"),
            r'user_id_type must be "int" or "str"',
        ),
        (None, lambda h: h.iter_user_conversations("x", user_id_type=1), r"user_id_type must be"),
    ],
)
def test_wrong_ids_fail_before_any_request_and_say_what_to_do(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, conn_kind: str | None, call: Any, pattern: str
) -> None:
    _set_conn(monkeypatch, rtcim_emulator, **({"user_id_type": conn_kind} if conn_kind else {}))
    hook = RtcImHook()
    with pytest.raises(ValueError, match=pattern):
        call(hook)
    assert rtcim_emulator.stats["requests"] == 0


def test_a_bad_connection_kind_names_the_connection_field_and_the_choices(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_conn(monkeypatch, rtcim_emulator, user_id_type="string")
    with pytest.raises(
        RtcImApiError, match=r"'rtcim_default': extra\.user_id_type must be \"int\" or \"str\""
    ):
        RtcImHook().get_user_conversations("007")
    assert rtcim_emulator.stats["requests"] == 0


# ---------------------------------------------------------------------------------------
# The rule for rendered strings (pure) and the key file
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rendered", "keys"),
    [
        ("007", ["007"]),
        ("alice,bob", ["alice,bob"]),  # commas never split an opaque id
        ('["007", "123"]', ["007", "123"]),  # a JSON list
        ("['007', '用户-王芳']", ["007", "用户-王芳"]),  # what Jinja renders from a list of strings
        ("[007", ["[007"]),  # not written as a list: one id
        ("user 7", ["user 7"]),
    ],
)
def test_a_rendered_string_is_a_list_only_when_written_as_one(rendered: str, keys: list[str]) -> None:
    assert parse_key_list(rendered, field="f", validate=validate_str_user_id, opaque=True) == keys


@pytest.mark.parametrize(
    ("rendered", "pattern"),
    [
        ("[1, 2]", r'f\[0\] must be a string with user_id_type="str", got the integer 1'),
        ("[x]", r"looks like a list.*pass it inside a list"),
        ("[]", r"at least one id"),
        (" 007", r"surrounding whitespace"),
    ],
)
def test_a_rendered_string_that_cannot_be_ids_is_an_error(rendered: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        parse_key_list(rendered, field="f", validate=validate_str_user_id, opaque=True)


# ---------------------------------------------------------------------------------------
# Operator
# ---------------------------------------------------------------------------------------


@pytest.mark.rtcim_emulator(data=DATA)
def test_operator_to_xcom_with_the_connections_kind(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = rtcim_emulator
    _set_conn(monkeypatch, emu, user_id_type="str")
    users = ["007", "123", "007", "用户-王芳", "zoë"]  # "007" twice: listed once
    rows = Op(task_id="t", participant_user_id=users).execute({})
    assert rows == _rows(emu, ["007", "123", "用户-王芳", "zoë"])
    assert all("ParticipantUserId" not in r or r["ParticipantUserId"] == 0 for r in rows)
    assert rows[0]["OwnerUserIdStr"] == "007" and rows[0]["FutureField"] == {"kept": [1, 2]}
    assert len({(r["ParticipantUserIdStr"], r["ConversationShortId"]) for r in rows}) == len(rows)
    # The task overrides the connection: the int users 7 and 123, rows keyed by ParticipantUserId.
    ints = Op(task_id="t2", participant_user_id="007,123", user_id_type="int").execute({})
    assert ints == [{**c, "ParticipantUserId": u} for u in (7, 123) for c in emu.conversations(u)]


@pytest.mark.rtcim_emulator(data=DATA)
def test_operator_to_a_file_from_a_file_of_ids(rtcim_connection: Emulator, tmp_path: Path) -> None:
    emu = rtcim_connection
    ids = tmp_path / "users.txt"
    # Only the line ending goes: "user 7" keeps its space; a blank line is skipped; a BOM is no id.
    ids.write_bytes("\ufeff007\r\nuser 7\n\n🦊fox\n123\n007\n".encode())
    target = tmp_path / "out" / "conversations.jsonl.gz"
    events: dict[Any, Any] = {}

    class _Events(dict):
        def __getitem__(self, asset: Any) -> Any:
            return events.setdefault(asset.uri, SimpleNamespace(extra={}))

    op = Op(
        task_id="t",
        participant_user_ids_from=str(ids),
        output_path=str(target),
        user_id_type="str",  # on an int connection
    )
    summary = op.execute({"outlet_events": _Events()})
    order = ["007", "user 7", "🦊fox", "123"]
    assert _read(target) == _rows(emu, order)
    assert (summary["count"], summary["users"], summary["user_id_type"]) == (
        25 + 3 + 2 + 5,
        4,
        "str",
    )
    (event,) = events.values()
    assert event.extra["user_id_type"] == "str" and event.extra["users"] == 4
    assert combine_summaries([summary, summary])["user_id_type"] == "str"
    # key_range slices the distinct string ids, as for ints
    part = Op(task_id="p", participant_user_ids_from=str(ids), key_range=[1, 3], user_id_type="str").execute(
        {}
    )
    assert part == _rows(emu, ["user 7", "🦊fox"])


@pytest.mark.rtcim_emulator(data=DATA)
@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"participant_user_id": ["alice"]}, r'participant_user_id\[0\] .*user_id_type="str"'),
        ({"participant_user_id": [7], "user_id_type": "str"}, r'as a string \("7"\)'),
        ({"participant_user_id": ["007", " 123"], "user_id_type": "str"}, r"\[1\] ' 123' has surrounding"),
        ({"participant_user_id": "", "user_id_type": "str"}, r"non-empty"),
        ({"participant_user_ids_from": "FILE", "user_id_type": "str"}, r"users.txt' line 2 ' alice' has"),
    ],
)
def test_operator_checks_every_id_before_any_request(
    rtcim_connection: Emulator, tmp_path: Path, kwargs: dict[str, Any], pattern: str
) -> None:
    path = tmp_path / "users.txt"
    path.write_text("007\n alice\n", encoding="utf-8")
    if kwargs.get("participant_user_ids_from") == "FILE":
        kwargs = {**kwargs, "participant_user_ids_from": str(path)}
    with pytest.raises(RtcImInvalidArgument, match=pattern):
        Op(task_id="t", **kwargs).execute({})
    assert rtcim_connection.stats["requests"] == 0


def test_operator_refuses_an_unknown_kind_at_parse_time() -> None:
    with pytest.raises(ValueError, match=r'user_id_type must be "int" or "str"'):
        Op(task_id="t", participant_user_id="007", user_id_type="text")


@pytest.mark.dagrun
@pytest.mark.rtcim_emulator(data=DATA)
def test_dag_templating_mapping_file_and_asset_with_the_connections_kind(
    airflow_db: str, rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dagrun_helpers import asset_events, run_dag, task_states, xcom_value

    emu = rtcim_emulator
    _set_conn(monkeypatch, emu, user_id_type="str")
    out = tmp_path / "exports"
    with DAG(
        "t_rtcim_string_ids",
        schedule=None,
        start_date=dt.datetime(2024, 1, 1),
        params={"users": ["007", "用户-王芳"]},
        render_template_as_native_obj=False,
    ) as dag:
        Op(
            task_id="templated",
            participant_user_id="{{ params.users }}",  # renders "['007', '用户-王芳']"
            output_path=str(out / "conversations.jsonl"),
        )
        Op.partial(task_id="mapped").expand(participant_user_id=["123", "user 7"])
    run = run_dag(dag)
    assert task_states(run) == {
        ("templated", -1): "success",
        ("mapped", 0): "success",
        ("mapped", 1): "success",
    }
    assert _read(out / "conversations.jsonl") == _rows(emu, ["007", "用户-王芳"])
    assert xcom_value(run, "templated")["user_id_type"] == "str"
    assert xcom_value(run, "mapped", map_index=0) == _rows(emu, ["123"])
    assert xcom_value(run, "mapped", map_index=1) == _rows(emu, ["user 7"])
    (event,) = asset_events(f"file://{out / 'conversations.jsonl'}")
    assert event["extra"]["user_id_type"] == "str" and event["extra"]["count"] == 31


# ---------------------------------------------------------------------------------------
# Sensor and trigger
# ---------------------------------------------------------------------------------------


def _add(emu: Emulator, uid: int | str) -> None:
    emu.add_conversation(uid, AppId=emu.app_id, InboxType=0)


def _run_trigger(trigger: RtcImConversationCountTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(collect(), timeout=30))


_SCRIPTS: dict[str, dict[str, Any]] = {}


class _ScriptedSensor(RtcImConversationCountSensor):
    """Runs a scripted action after poke N and records what each poke started from."""

    def poke(self, context: Any) -> Any:
        script = _SCRIPTS[self.task_id]
        store = task_state_store(context)  # 3.3's, or the Variable-backed fallback
        script["pokes"].append(
            {
                "instance_baseline": self._baseline,
                "stored": store.get(BASELINE_STATE_KEY) if store is not None else None,
            }
        )
        result = super().poke(context)
        action = script["actions"].get(len(script["pokes"]))
        if action is not None:
            action()
        return result


def _script(task_id: str, actions: dict[int, Any]) -> dict[str, Any]:
    _SCRIPTS[task_id] = {"actions": actions, "pokes": []}
    return _SCRIPTS[task_id]


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False)


def _states(run: Any) -> dict[str, str]:
    from dagrun_helpers import task_states

    return {task_id: state for (task_id, _), state in task_states(run).items()}


@pytest.mark.rtcim_emulator(data=DATA)
def test_sensor_poke_counts_the_string_user_set_on_the_connection(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = rtcim_emulator
    _set_conn(monkeypatch, emu, user_id_type="str")
    sensor = RtcImConversationCountSensor(task_id="s", participant_user_id="007", direction="increase")
    assert sensor.poke({}) is False
    _add(emu, 7)  # the int user 7 is another user: no change for "007"
    assert sensor.poke({}) is False
    _add(emu, "007")
    assert sensor.poke({}).xcom_value == {"baseline_count": 25, "count": 26}


@pytest.mark.rtcim_emulator(data=DATA)
def test_sensor_kind_from_the_connection_is_checked_at_the_first_poke(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = rtcim_emulator
    # No I/O in __init__: a non-numeric id waits for the connection's kind...
    sensor = RtcImConversationCountSensor(task_id="s", participant_user_id="alice")
    assert "hook" not in sensor.__dict__
    # ...which, on an int connection, rejects it at the first poke, before any request.
    _set_conn(monkeypatch, emu)
    with pytest.raises(ValueError, match=r'user_id_type="str"'):
        sensor.poke({})
    _set_conn(monkeypatch, emu, user_id_type="str")
    with pytest.raises(ValueError, match=r'as a string \("7"\)'):
        RtcImConversationCountSensor(task_id="s2", participant_user_id=7).poke({})
    assert emu.stats["requests"] == 0
    # A task-level kind is checked at once.
    with pytest.raises(ValueError, match="surrounding whitespace"):
        RtcImConversationCountSensor(task_id="s3", participant_user_id="007 ", user_id_type="str")
    with pytest.raises(ValueError, match=r'as a string \("5"\)'):
        RtcImConversationCountSensor(task_id="s4", participant_user_id=5, user_id_type="str")
    with pytest.raises(ValueError, match=r'user_id_type must be "int" or "str"'):
        RtcImConversationCountSensor(task_id="s5", participant_user_id="007", user_id_type="s")


@pytest.mark.rtcim_emulator(data=DATA)
def test_deferrable_sensor_hands_the_kind_to_a_json_able_trigger(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    sensor = RtcImConversationCountSensor(
        task_id="s", participant_user_id="123", user_id_type="str", deferrable=True, timeout=600
    )
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    classpath, kwargs = info.value.trigger.serialize()
    assert (kwargs["participant_user_id"], kwargs["user_id_type"]) == ("123", "str")
    assert kwargs["baseline_count"] == 5 == len(emu.conversations("123"))  # not the int 123's 4
    rebuilt = RtcImConversationCountTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    # The trigger counts the string user over HTTP: one more conversation is success.
    _add(emu, "123")
    rebuilt.end_time = time.time() + 30
    (event,) = _run_trigger(rebuilt)
    assert (event["status"], event["count"], event["participant_user_id"]) == ("success", 6, "123")
    assert "user '123' moved from 5 to 6" in event["message"]
    assert sensor.execute_complete({}, event) == {"baseline_count": 5, "count": 6}


@pytest.mark.rtcim_emulator(data=DATA)
def test_a_trigger_serialized_before_user_id_type_counts_int_users(rtcim_connection: Emulator) -> None:
    emu = rtcim_connection
    old = {"participant_user_id": 7, "baseline_count": 0, "end_time": time.time() + 30}
    trigger = RtcImConversationCountTrigger(**old)
    assert trigger.user_id_type == "int"
    (event,) = _run_trigger(trigger)
    assert event["count"] == len(emu.conversations(7)) == 3


@pytest.mark.rtcim_emulator(data=DATA, app_ids=[100001])
def test_a_failed_count_names_the_string_user_quoted(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_rtcim.exceptions import RtcImFatalError

    emu = rtcim_emulator
    _set_conn(monkeypatch, emu, user_id_type="str")
    with pytest.raises(RtcImFatalError) as poked:
        RtcImConversationCountSensor(task_id="s", participant_user_id="007", app_id=987_654).poke({})
    assert "participant_user_id='007'" in str(poked.value)
    trigger = RtcImConversationCountTrigger(
        participant_user_id="007",
        user_id_type="str",
        baseline_count=0,
        end_time=time.time() + 30,
        app_id=987_654,
    )
    (event,) = _run_trigger(trigger)
    with pytest.raises(RtcImFatalError) as deferred:
        RtcImConversationCountSensor(task_id="s", participant_user_id="007").execute_complete({}, event)
    assert "participant_user_id='007'" in str(deferred.value)


@pytest.mark.dagrun
@pytest.mark.rtcim_emulator(data=DATA)
def test_dagrun_reschedule_keeps_a_unicode_string_users_baseline(
    airflow_db: str, rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagrun_helpers import run_dag, xcom_value

    emu = rtcim_emulator
    _set_conn(monkeypatch, emu, user_id_type="str")  # the connection's kind
    uid = "用户-王芳"
    start = len(emu.conversations(uid))
    script = _script("wait_str_resched", {1: lambda: _add(emu, uid)})
    with _dag("rtcim_string_sensor_reschedule") as dag:
        _ScriptedSensor(
            task_id="wait_str_resched",
            participant_user_id=uid,
            direction="increase",
            mode="reschedule",
            poke_interval=0.2,
            timeout=60,
        )
    run = run_dag(dag)
    assert _states(run) == {"wait_str_resched": "success"}
    assert xcom_value(run, "wait_str_resched") == {"baseline_count": start, "count": start + 1}
    pokes = script["pokes"]
    assert len(pokes) == 2 and pokes[1]["instance_baseline"] is None  # a real reschedule
    assert pokes[1]["stored"]["baseline_count"] == start
    assert pokes[1]["stored"]["identity"]["participant_user_id"] == uid


@pytest.mark.dagrun
@pytest.mark.rtcim_emulator(data=DATA)
def test_dagrun_poke_and_deferrable_modes_with_a_task_level_kind(
    airflow_db: str, rtcim_connection: Emulator
) -> None:
    from dagrun_helpers import run_dag, xcom_value

    emu = rtcim_connection  # an int connection: the tasks say "str"
    timers: list[threading.Timer] = []

    def add_later(uid: str) -> None:
        timers.append(threading.Timer(0.3, _add, (emu, uid)))
        timers[-1].start()

    _script("str_poke", {1: lambda: _add(emu, "007")})
    deferred = _script("str_deferred", {1: lambda: add_later("🦊fox")})
    with _dag("rtcim_string_sensor_modes") as dag:
        _ScriptedSensor(
            task_id="str_poke",
            participant_user_id="007",
            user_id_type="str",
            direction="increase",
            poke_interval=0.2,
            timeout=60,
        )
        _ScriptedSensor(
            task_id="str_deferred",
            participant_user_id="🦊fox",
            user_id_type="str",
            direction="increase",
            deferrable=True,
            poke_interval=0.2,
            timeout=60,
        )
    try:
        run = run_dag(dag)
    finally:
        for timer in timers:
            timer.cancel()
    assert _states(run) == {"str_poke": "success", "str_deferred": "success"}
    assert xcom_value(run, "str_poke") == {"baseline_count": 25, "count": 26}
    assert xcom_value(run, "str_deferred") == {"baseline_count": 2, "count": 3}
    assert len(deferred["pokes"]) == 1  # the rest of the wait happened in the trigger
    assert len(emu.conversations(7)) == 3  # the int look-alike was never touched


# ---------------------------------------------------------------------------------------
# The docs page's examples are the tested ones
# ---------------------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "string-user-ids.md"


@pytest.mark.rtcim_emulator(string_users=3)  # "007", "123", "alice"
def test_the_docs_pages_examples_run(rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    import shlex

    text = DOCS.read_text(encoding="utf-8")
    (bash,) = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    example = json.loads(shlex.split(bash.split("=", 1)[1])[0])
    assert example["extra"]["user_id_type"] == "str"
    emu = rtcim_emulator
    conn = json.loads(emu.connection_json())
    conn["extra"]["user_id_type"] = example["extra"]["user_id_type"]
    monkeypatch.setenv("AIRFLOW_CONN_RTCIM_DEFAULT", json.dumps(conn))
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    before = emu.stats["requests"]
    exec(compile(block, str(DOCS), "exec"), {"__name__": "docs_string_user_ids"})  # noqa: S102
    assert emu.stats["requests"] > before + 1
    assert emu.conversations("007") and emu.conversations("alice")


@pytest.mark.rtcim_emulator(data=DATA)
@pytest.mark.parametrize(
    ("kind", "who"),
    [("str", {"ParticipantUserId": 0, "ParticipantUserIdStr": "1"}), ("int", {"ParticipantUserId": 1})],
)
def test_the_test_button_asks_about_a_user_of_the_connections_kind(
    rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, kind: str, who: dict[str, Any]
) -> None:
    _set_conn(monkeypatch, rtcim_emulator, user_id_type=kind)
    hook = RtcImHook(**FAST)
    bodies = _spy_bodies(hook)
    ok, message = hook.test_connection()
    assert ok, message
    (body,) = bodies
    assert {k: body[k] for k in body if k.startswith("ParticipantUserId")} == who
    assert body["Limit"] == 1 and body["SkipMemberCount"] is True
