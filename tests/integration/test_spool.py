"""Local spool directories (``rtcim-spool-*``): a run removes those whose owner was killed.

The owner holds a ``flock`` on the directory's ``.owner.lock``; a SIGKILLed process loses it,
a live one keeps it, whatever pid the next process gets. The owners here are real processes
killed with SIGKILL (nothing is timed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from airflow_provider_rtcim.core.sink import remove_orphan_spools, spool_directory
from airflow_provider_rtcim.emulator import Emulator
from airflow_provider_rtcim.operators.rtcim import RtcImGetUserConversationsOperator

OWNER = """
import sys, time
from airflow_provider_rtcim.core.sink import spool_directory
with spool_directory(sys.argv[1]) as path:
    open(path + "/key-1.jsonl", "wb").write(b"{}\\n")
    print(path, flush=True)
    while True:
        time.sleep(60)
"""


def _owner(base: Path) -> tuple[subprocess.Popen[bytes], Path]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(base)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    assert line, "the owner process exited before making its spool directory"
    return proc, Path(line)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.timeout(120)
def test_the_spool_directory_of_a_killed_process_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    killed, orphan = _owner(tmp_path)
    alive, busy = _owner(tmp_path)
    try:
        assert orphan.name.startswith(f"rtcim-spool-{killed.pid}-")
        _kill(killed)
        assert (orphan / "key-1.jsonl").exists()  # SIGKILL: nothing cleaned up
        with spool_directory(str(tmp_path)) as mine:
            assert not orphan.exists()
            assert busy.exists() and (busy / "key-1.jsonl").exists()  # its owner is alive
            assert Path(mine).is_dir()
            assert remove_orphan_spools(str(tmp_path)) == []  # mine is locked too
        assert not Path(mine).exists()
        _kill(alive)
        assert remove_orphan_spools(str(tmp_path)) == [str(busy)]
    finally:
        for proc in (killed, alive):
            proc.kill()
            proc.wait(timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_spool_directory_without_an_owner_lock_is_removed_only_when_a_day_old(tmp_path: Path) -> None:
    old = tmp_path / "rtcim-spool-legacy"  # made by a version before the lock
    old.mkdir()
    (old / "key-1.jsonl").write_bytes(b"{}\n")
    unrelated = tmp_path / "other-dir"
    unrelated.mkdir()
    assert remove_orphan_spools(str(tmp_path), now=time.time() + 3600) == []
    assert old.exists()
    assert remove_orphan_spools(str(tmp_path), now=time.time() + 25 * 3600) == [str(old)]
    assert not old.exists() and unrelated.exists()


@pytest.mark.timeout(120)
@pytest.mark.rtcim_emulator(users=2, conversations_per_user=3)
def test_an_operator_run_removes_the_spool_directories_killed_tasks_left(
    rtcim_connection: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spools = tmp_path / "tmp"
    spools.mkdir()
    killed, orphan = _owner(spools)
    try:
        _kill(killed)
    finally:
        killed.kill()
        killed.wait(timeout=60)
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    summary = RtcImGetUserConversationsOperator(
        task_id="c", participant_user_id=rtcim_connection.user_ids, output_path=str(tmp_path / "c.jsonl")
    ).execute({})
    assert summary["count"] == 6
    assert not orphan.exists()
    assert list(spools.iterdir()) == []  # its own is gone too
    assert os.path.exists(tmp_path / "c.jsonl")
