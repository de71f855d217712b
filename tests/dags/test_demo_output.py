"""scripts/show_output.py, the last step of `make demo`: what it checks and what it explains."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from airflow_provider_rtcim.emulator import Emulator

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "show_output.py"


def _show_output():
    spec = importlib.util.spec_from_file_location("show_output", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _write_sync(path: Path, emu: Emulator, users: list[int]) -> None:
    """What the example sync writes: each user's InboxType-0 conversations."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for uid in users:
            for conv in emu.conversations(uid):
                out.write(json.dumps({**conv, "ParticipantUserId": uid}) + "\n")


def test_the_demo_says_why_the_sync_holds_fewer_conversations_than_the_emulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show_output = _show_output()
    with Emulator(users=3, conversations_per_user=57, seed=2026) as emu:  # what `make demo` starts
        users = emu.user_ids
        _write_sync(tmp_path / "out" / "conversations.jsonl", emu, users)
        inbox0 = [len(emu.conversations(uid)) for uid in users]
        inbox1 = [len(emu.conversations(uid, inbox_type=1)) for uid in users]
        assert sum(inbox1) > 0 and not any(emu.conversations(uid, inbox_type=2) for uid in users)
        assert show_output.main(str(tmp_path / "out"), emu.url, users) == 0
    out = capsys.readouterr().out
    words = " ".join(out.split())
    for uid, synced, other in zip(users, inbox0, inbox1, strict=True):
        assert f"{uid:>12} | {synced:>7} | {synced:>17} | {other:>13}" in out
    assert (
        f"The emulator holds 57 conversations a user ({57 * len(users)} in all), but the sync lists "
        f"InboxType 0 only (the operator's default inbox_type): the other {sum(inbox1)} "
        f"({sum(inbox1)} in inbox 1) are not in this file."
    ) in words, out
    assert "inbox_type=1" in words
    (explanation,) = [p for p in out.split("\n\n") if p.startswith("The emulator holds")]
    assert max(map(len, explanation.splitlines())) <= 92  # wrapped for a terminal


def test_the_demo_still_fails_on_a_missing_conversation(tmp_path: Path) -> None:
    show_output = _show_output()
    with Emulator(users=2, conversations_per_user=20, seed=1) as emu:
        users = emu.user_ids
        path = tmp_path / "out" / "conversations.jsonl"
        _write_sync(path, emu, users)
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[1:]) + "\n")
        assert show_output.main(str(tmp_path / "out"), emu.url, users) == 1
