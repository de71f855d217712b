"""Kill a real process at a chosen step: it prints a marker line when it reaches the step and
then stalls; the test SIGKILLs it there (nothing is timed)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


def stall_then_kill(args: list[str], marker: str, env: dict[str, str], log: Path) -> None:
    """Run ``python *args``, wait for the stdout line ``marker``, then SIGKILL the process.

    Its stderr goes to ``log``. Fails when the process finishes (prints a JSON summary) or
    exits before the marker.
    """
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=err)
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode().strip()
                if line == marker:
                    break
                assert not line.startswith("{"), f"the process finished instead of stalling at {marker}"
            else:
                raise AssertionError(f"the process exited before {marker}: " + log.read_text()[-3000:])
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
