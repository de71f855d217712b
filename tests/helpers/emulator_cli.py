"""Start the emulator's command line (``python -m airflow_provider_rtcim.emulator``) for a test."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def start_cli_emulator(
    ready: Path, *args: str, timeout: float = 15
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Run the CLI with ``--ready-file ready`` and ``args``; return the process and its ready file's JSON."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_rtcim.emulator", *args, "--ready-file", str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the emulator exited early: {proc.communicate()}")
        if time.monotonic() >= deadline:
            proc.kill()
            proc.communicate()
            raise AssertionError("the emulator did not write its ready file")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())


def stop_cli_emulator(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM, then the process's stdout and stderr."""
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=10)
