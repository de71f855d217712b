"""Shared helpers for the benchmarks: the emulator in its own process, Airflow env, result rows.

Nothing here imports Airflow: :func:`airflow_env` must be applied before Airflow is imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass
class Row:
    """One line of the results table. ``ratio`` is value / baseline unless stated otherwise."""

    benchmark: str
    measure: str
    value: str
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: str = "-"
    notes: list[str] = field(default_factory=list)


def emit(rows: list[Row], notes: list[str] | None = None) -> None:
    """Print the rows as the last line of stdout, for run.py to pick up."""
    payload = {"rows": [asdict(r) for r in rows], "notes": notes or []}
    print("BENCH-RESULT " + json.dumps(payload, ensure_ascii=False), flush=True)


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def yes_no(ok: bool) -> str:
    return "yes" if ok else "NO"


def airflow_env(home: str | None = None) -> dict[str, str]:
    """Environment variables that keep Airflow away from ~/airflow and the examples."""
    home = home or tempfile.mkdtemp(prefix="rtcim-bench-airflow-")
    return {
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": os.path.join(home, "dags"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def setup_airflow_env() -> str:
    """Apply :func:`airflow_env` to this process (call before importing airflow)."""
    env = airflow_env(os.environ.get("RTCIM_BENCH_AIRFLOW_HOME"))
    os.environ.update(env)
    return env["AIRFLOW_HOME"]


@dataclass
class EmulatorProcess:
    url: str
    access_key_id: str
    secret_access_key: str
    app_id: int
    region: str
    user_ids: list[int]
    pid: int
    startup_seconds: float

    def connection_json(self, **extra: Any) -> str:
        conn = {
            "conn_type": "rtcim",
            "login": self.access_key_id,
            "password": self.secret_access_key,
            "host": self.url,
            "extra": {"app_id": self.app_id, "region": self.region, "endpoint_url": self.url, **extra},
        }
        return json.dumps(conn)

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call an unsigned admin endpoint (``/_emulator/...``): GET, or POST when ``body`` is given."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/_emulator/{path}",
            data=data,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def stats(self) -> dict[str, Any]:
        return self.admin("stats")

    def reset_stats(self) -> None:
        self.admin("stats/reset", {})

    def credentials(self) -> Any:
        from airflow_provider_rtcim.core.signing import Credentials

        return Credentials(
            access_key_id=self.access_key_id, secret_access_key=self.secret_access_key, region=self.region
        )


@contextlib.contextmanager
def emulator_process(*args: str, timeout: float = 120.0) -> Iterator[EmulatorProcess]:
    """Run ``python -m airflow_provider_rtcim.emulator --port 0 ARGS`` until the block exits."""
    workdir = tempfile.mkdtemp(prefix="rtcim-bench-emu-")
    ready = os.path.join(workdir, "ready.json")
    log = open(os.path.join(workdir, "emulator.log"), "wb")  # noqa: SIM115 - closed in finally
    started = time.perf_counter()
    proc = subprocess.Popen(
        [PYTHON, "-m", "airflow_provider_rtcim.emulator", "--port", "0", "--ready-file", ready, *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready):
            if proc.poll() is not None:
                log.flush()
                text = Path(log.name).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"emulator exited with {proc.returncode}: {text}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"emulator not ready after {timeout}s")
            time.sleep(0.05)
        info = json.loads(Path(ready).read_text())
        yield EmulatorProcess(
            url=info["url"],
            access_key_id=info["access_key_id"],
            secret_access_key=info["secret_access_key"],
            app_id=int(info["app_id"]),
            region=info["region"],
            user_ids=[int(u) for u in info["user_ids"]],
            pid=proc.pid,
            startup_seconds=time.perf_counter() - started,
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def run_for_json(argv: list[str], prefix: str, *, env: dict[str, str], timeout: float, what: str) -> dict:
    """Run ``argv`` (cwd: the repo) and return the JSON of its stdout line ``<prefix> {...}``."""
    out = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    for line in out.stdout.splitlines():
        if line.startswith(prefix + " "):
            return json.loads(line[len(prefix) + 1 :])
    raise RuntimeError(f"{what} failed ({out.returncode}): {out.stderr[-3000:]}")


def run_sync(emu: EmulatorProcess, make_operator: Callable[[str], Any]) -> dict[str, Any]:
    """Run ``make_operator(output_path).execute({})`` against ``emu`` (stats reset first).

    Returns the wall time, the summary's ``requests``/``pages``/``retries``/``count``, the
    emulator's ``throttled`` (429s from its QPS window) and ``requests``, and the rates.
    """
    with tempfile.TemporaryDirectory(prefix="rtcim-bench-out-") as out:
        op = make_operator(os.path.join(out, "out.jsonl"))
        emu.reset_stats()
        started = time.perf_counter()
        summary = op.execute(context={})
        elapsed = time.perf_counter() - started
    stats = emu.stats()
    return {
        "elapsed": elapsed,
        "requests": summary["requests"],
        "pages": summary["pages"],
        "retries": summary["retries"],
        "count": summary["count"],
        "throttled": int(stats.get("throttled", 0)),
        "server_requests": int(stats.get("requests", 0)),
        "rate": summary["requests"] / elapsed,
        "page_rate": summary["pages"] / elapsed,
    }


class PeakSampler:
    """Samples this process's RSS (and open file descriptors) every ``interval`` seconds.

    ``with PeakSampler() as peak: ...`` then ``peak.baseline``, ``peak.rss`` (the highest RSS
    seen, bytes), ``peak.growth`` (``rss - baseline``) and ``peak.fds`` (the most open fds).
    The baseline is taken on entry, after a ``gc.collect()``.
    """

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.baseline = self.rss = 0
        self.fds = 0

    def _sample(self) -> None:
        self.rss = max(self.rss, self._proc.memory_info().rss)
        self.fds = max(self.fds, self._proc.num_fds())

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self._interval)

    def __enter__(self) -> PeakSampler:
        import gc

        gc.collect()
        self.baseline = self.rss = self._proc.memory_info().rss
        self.fds = self._proc.num_fds()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    @property
    def growth(self) -> int:
        return self.rss - self.baseline


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
