"""docs/rows.md names every field a row carries: each operator runs against the emulator (int
users, then string users where the API has ``*Str`` fields) and every field of every row must be
in that operator's table; every field the page lists as always present is in every row."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_rtcim.emulator.server import Emulator
from airflow_provider_rtcim.operators import rtcim as operators

ROWS = Path(__file__).resolve().parents[2] / "docs" / "rows.md"


def _tables() -> dict[str, dict[str, str]]:
    """``{operator: {field: type column}}`` from the page's sections and tables."""
    tables: dict[str, dict[str, str]] = {}
    section = None
    for line in ROWS.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            tables[section] = {}
        elif section and (m := re.match(r"\| `(\w+)` \| ([^|]*) \|", line)):
            tables[section][m.group(1)] = m.group(2)
    return tables


def _run(operator: type, emu: Emulator, **kwargs: Any) -> list[dict[str, Any]]:
    rows = operator(task_id="rows", **kwargs).execute({})
    assert isinstance(rows, list) and rows, f"{operator.__name__} returned no rows: nothing to check"
    return rows


def _every_operator_rows(emu: Emulator, *, string_ids: bool) -> dict[str, list[dict[str, Any]]]:
    users = emu.string_user_ids if string_ids else emu.user_ids
    conversations = emu.conversation_ids()
    got = {
        "RtcImGetUserConversationsOperator": _run(
            operators.RtcImGetUserConversationsOperator, emu, participant_user_id=users
        ),
        "RtcImConversationParticipantsOperator": _run(
            operators.RtcImConversationParticipantsOperator, emu, conversation_short_id=conversations
        ),
        "RtcImConversationMessagesOperator": _run(
            operators.RtcImConversationMessagesOperator, emu, conversation_short_id=conversations
        ),
        "RtcImConversationReadIndexesOperator": _run(
            operators.RtcImConversationReadIndexesOperator, emu, conversation_short_id=conversations
        ),
        "RtcImConversationBlockListOperator": _run(
            operators.RtcImConversationBlockListOperator, emu, conversation_short_id=conversations
        ),
    }
    if not string_ids:  # the user actions take int64 user ids only
        members = sorted({m["ParticipantUserId"] for c in conversations for m in emu.participants(c)})
        got["RtcImUsersOperator"] = _run(operators.RtcImUsersOperator, emu, user_id=members)
        got["RtcImUserFriendsOperator"] = _run(operators.RtcImUserFriendsOperator, emu, user_id=members)
        got["RtcImUserBlacklistOperator"] = _run(operators.RtcImUserBlacklistOperator, emu, user_id=members)
    return got


def _check(got: dict[str, list[dict[str, Any]]], *, string_ids: bool) -> None:
    tables = _tables()
    for name, rows in got.items():
        documented = tables.get(name)
        assert documented, f"docs/rows.md has no section '## {name}'"
        seen = {field for row in rows for field in row}
        assert seen <= set(documented), (
            f"{name}: rows carry fields docs/rows.md does not name: {seen - set(documented)}"
        )
        if string_ids:
            continue
        always = {f for f, kind in documented.items() if "optional" not in kind and not f.endswith("Str")}
        for row in rows:
            assert always <= set(row), (
                f"{name}: a row lacks {always - set(row)}, which docs/rows.md says is always there"
            )


@pytest.mark.rtcim_emulator(users=3, conversations_per_user=4, participants_per_conversation=6)
def test_rows_doc_names_every_field_of_every_operators_rows(rtcim_connection: Emulator) -> None:
    got = _every_operator_rows(rtcim_connection, string_ids=False)
    listing = {
        name
        for name in operators.__all__
        if name.startswith("RtcIm") and name.endswith("Operator") and name != "RtcImListingOperator"
    }
    assert set(got) == listing, "a listing operator is missing from this test (and maybe from docs/rows.md)"
    assert set(_tables()) == listing, "docs/rows.md's sections are not exactly the listing operators"
    _check(got, string_ids=False)


@pytest.mark.rtcim_emulator(
    users=0, string_users=3, conversations_per_user=3, participants_per_conversation=4
)
def test_rows_doc_names_the_fields_of_string_user_rows(rtcim_emulator: Emulator, monkeypatch) -> None:
    for name, value in rtcim_emulator.airflow_env(user_id_type="str").items():
        monkeypatch.setenv(name, value)
    got = _every_operator_rows(rtcim_emulator, string_ids=True)
    assert any("ParticipantUserIdStr" in r for r in got["RtcImGetUserConversationsOperator"])
    _check(got, string_ids=True)
