"""A real Airflow deployment for the end-to-end tests, started and stopped by the conftest.

Everything runs on 127.0.0.1 on free ports, in one temporary folder:

* the RTC IM emulator (``python -m airflow_provider_rtcim.emulator --port 0 --ready-file``),
  with its account QPS limit on (100),
* a recording pass-through proxy in front of it (this process, a thread): the connection
  points at it, so the tests know every signature the hook sent and can look for them in
  the logs and the metadata database,
* a real S3 API, moto's server (``python -m moto.server``) from the same venv, and the AWS
  connection ``rtcim_s3`` to it (``AIRFLOW_CONN_RTCIM_S3``), when that venv has moto, s3fs
  and the Amazon provider (otherwise ``s3_endpoint`` is None and ``s3_missing`` says why),
* Airflow from the project's venv (``.venv``): ``api-server``, ``scheduler`` (LocalExecutor),
  ``dag-processor`` and ``triggerer`` as separate processes, SQLite metadata database (allowed
  with LocalExecutor on Airflow 3), ``dags_examples/`` as the DAGs folder, the simple auth
  manager with one configured admin user.

Every process is started in its own session (process group); ``stop()`` ends each group and
every descendant (task processes included), SIGTERM first, then SIGKILL, with bounded waits.
The process ids are also written to ``pids`` in the run folder, so the shell wrapper can clean
up after a harness that was itself killed.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import http.server
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

REPO = Path(__file__).resolve().parents[2]
ADMIN_USER = "admin"
S3_CONN_ID = "rtcim_s3"
S3_REGION = "us-east-1"
S3_MODULES = ("moto.server", "s3fs", "airflow.providers.amazon")
SIGNATURE_RE = re.compile(r"Signature=([0-9a-fA-F]{16,})")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail clearly after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except (requests.RequestException, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# the recording proxy
# ---------------------------------------------------------------------------------------------


class RecordingProxy:
    """HTTP/1.1 pass-through to the emulator that records every request's signature.

    Keep-alive on both sides; bodies are forwarded byte for byte (the signature covers them).
    """

    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.signatures: set[str] = set()
        self.tokens: set[str] = set()
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 120

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                auth = self.headers.get("Authorization") or ""
                with proxy._lock:
                    proxy.requests += 1
                    proxy.signatures.update(SIGNATURE_RE.findall(auth))
                    if self.headers.get("X-Security-Token"):
                        proxy.tokens.add(self.headers["X-Security-Token"])
                conn = getattr(self, "_upstream", None)
                if conn is None:
                    conn = self._upstream = http.client.HTTPConnection(
                        proxy.upstream_host, proxy.upstream_port, timeout=120
                    )
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    self._upstream = None
                    self.close_connection = True
                    return  # the client sees a dropped connection, as it would from the emulator
                self.send_response_only(resp.status, resp.reason)
                for key, value in resp.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client went away (a killed task): nothing to answer
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = do_PUT = _forward

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away (a SIGKILLed task) is expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="rtcim-proxy", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# the REST client
# ---------------------------------------------------------------------------------------------


class AirflowApi:
    """``/api/v2`` with a JWT from the simple auth manager's ``POST /auth/token``, as the UI has."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.username, self.password = username, password
        self.session = requests.Session()
        self.token: str | None = None

    def login(self) -> str:
        r = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=30,
        )
        assert r.status_code in (200, 201), f"login failed: HTTP {r.status_code} {r.text[:300]}"
        self.token = r.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        return self.token

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kw: Any) -> Any:
        kw.setdefault("timeout", 60)
        r = self.session.request(method, f"{self.base_url}/api/v2{path}", **kw)
        if r.status_code == 401 and self.token is not None:
            self.login()
            r = self.session.request(method, f"{self.base_url}/api/v2{path}", **kw)
        assert r.status_code in expect, f"{method} {path}: HTTP {r.status_code} {r.text[:500]}"
        if not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            if r.status_code >= 500:  # an expected server error with a plain-text body
                return None
            raise

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> Any:
        return self.request("POST", path, json=body, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> Any:
        return self.request("PATCH", path, json=body, **kw)

    # conveniences ------------------------------------------------------------------------
    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "run_after"})["dag_runs"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        q = urllib.parse.quote(run_id, safe="")
        return self.get(f"/dags/{dag_id}/dagRuns/{q}/taskInstances", params={"limit": 1000})["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, key: str = "return_value"):
        q = urllib.parse.quote(run_id, safe="")
        entry = self.get(
            f"/dags/{dag_id}/dagRuns/{q}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"map_index": map_index, "deserialize": "true"},
        )
        value = entry["value"]
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return json.loads(value)
        return value

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.post(f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None

        try:
            return wait_for(done, timeout, f"DAG run {dag_id} / {run_id} to finish", interval=2)
        except AssertionError as exc:
            states = {(t["task_id"], t["map_index"]): t["state"] for t in self.task_instances(dag_id, run_id)}
            raise AssertionError(f"{exc}; task states: {states}") from None


# ---------------------------------------------------------------------------------------------
# the deployment
# ---------------------------------------------------------------------------------------------


class Deployment:
    SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")

    def __init__(self, workdir: Path, *, venv: Path | None = None, users: int = 20, conversations: int = 57):
        self.workdir = workdir
        self.venv = venv or Path(os.environ.get("RTCIM_E2E_AIRFLOW_VENV", REPO / ".venv"))
        self.bin = self.venv / "bin"
        self.home = workdir / "airflow_home"
        self.service_logs = self.home / "logs" / "services"
        self.output_dir = workdir / "output"
        self.users, self.conversations = users, conversations
        self.procs: dict[str, subprocess.Popen] = {}
        self.all_pids: set[int] = set()
        self.proxy: RecordingProxy | None = None
        self.emulator_info: dict[str, Any] = {}
        self.s3_endpoint: str | None = None  # moto's S3 server, when the venv has it
        self.s3_missing = ""
        self.admin_password = secrets.token_urlsafe(16)
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.api = AirflowApi(self.api_url, ADMIN_USER, self.admin_password)
        self._stopped = False

    # environment ---------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "PYTEST", "VIRTUAL_ENV")) and k != "PYTHONPATH"
        }
        fernet = self._fernet_key
        env = {
            **keep,
            "PATH": f"{self.bin}:{keep.get('PATH', '/usr/bin:/bin')}",
            "PYTHONPATH": str(REPO),  # the package from this checkout, whatever .venv's editable says
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags_examples"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__FERNET_KEY": fernet,
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            # GET xcomEntries?deserialize=true (AirflowApi.xcom): off by default on Airflow 3.0
            "AIRFLOW__API__ENABLE_XCOM_DESERIALIZE_SUPPORT": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": self._secret_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._trigger_log_port),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # OpenLineage (when its provider is installed): one JSON file per event (test_7)
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(self.workdir / "openlineage")}
            ),
        }
        if self.s3_endpoint:  # dummy keys: moto accepts any
            env[f"AIRFLOW_CONN_{S3_CONN_ID.upper()}"] = json.dumps(
                {
                    "conn_type": "aws",
                    "login": "testing",
                    "password": "testing",
                    "extra": {"endpoint_url": self.s3_endpoint, "region_name": S3_REGION},
                }
            )
        return env

    # processes -----------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], log_dir: Path | None = None) -> subprocess.Popen:
        log_dir = log_dir or self.service_logs
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - kept by Popen
        proc = subprocess.Popen(
            argv,
            env=self.env(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        self.all_pids.add(proc.pid)
        with open(self.workdir / "pids", "a") as fh:
            fh.write(f"{proc.pid}\n")
        return proc

    def _run(self, argv: list[str], timeout: float, what: str) -> str:
        try:
            out = subprocess.run(
                argv,
                env=self.env(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{what} did not finish within {timeout:.0f} s") from exc
        if out.returncode != 0:
            raise AssertionError(
                f"{what} failed (exit {out.returncode}):\n{out.stdout[-3000:]}{out.stderr[-3000:]}"
            )
        return out.stdout

    def start_service(self, name: str) -> subprocess.Popen:
        argv = [str(self.bin / "airflow"), name]
        if name == "api-server":
            argv += ["--host", "127.0.0.1", "--port", str(self.api_port)]
        return self._spawn(name, argv)

    def stop_process(self, name: str, timeout: float = 30) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            _terminate_tree(proc.pid, timeout)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def check_alive(self) -> None:
        dead = [n for n in self.procs if not self.alive(n)]
        if dead:
            tails = {n: _tail(self.service_logs / f"{n}.log") for n in dead}
            raise AssertionError(
                f"processes exited early: {dead}\n" + "\n".join(f"--- {n}:\n{t}" for n, t in tails.items())
            )

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.home.mkdir(parents=True)
        self.output_dir.mkdir()
        self._log_port, self._trigger_log_port = free_port(), free_port()
        self._secret_key, self._jwt_secret = secrets.token_hex(16), secrets.token_hex(32)
        # a Fernet key as Fernet.generate_key() makes it: 32 random bytes, urlsafe base64
        self._fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        (self.home / "passwords.json").write_text(json.dumps({ADMIN_USER: self.admin_password}))

        # the emulator, with its QPS limit on (the default, 100)
        ready = self.workdir / "emulator.json"
        self._spawn(
            "emulator",
            [
                str(self.bin / "python"),
                "-m",
                "airflow_provider_rtcim.emulator",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--users",
                str(self.users),
                "--conversations",
                str(self.conversations),
                "--seed",
                "2026",
                "--qps",
                "100",
                "--ready-file",
                str(ready),
            ],
            log_dir=self.workdir,  # outside AIRFLOW_HOME: the emulator prints its credentials on purpose
        )
        wait_for(lambda: ready.exists() and ready.stat().st_size > 0, 30, "the emulator's ready file", 0.2)
        self.emulator_info = json.loads(ready.read_text())
        self.proxy = RecordingProxy(self.emulator_info["url"])
        self.start_s3()

        self._run([str(self.bin / "airflow"), "db", "migrate"], 300, "airflow db migrate")
        for name in self.SERVICES:
            self.start_service(name)
        wait_for(self._api_up, 180, "the api-server to answer /api/v2/monitor/health", 1)
        self.api.login()
        self.wait_healthy(("scheduler", "triggerer", "dag_processor"), 180)
        self.configure()

    def start_s3(self) -> None:
        """moto's S3 server on a free port, if the venv has it (before the services: they get
        the connection in their environment)."""
        probe = subprocess.run(
            [str(self.bin / "python"), "-c", f"import {', '.join(S3_MODULES)}"],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["?"])[-1]
            self.s3_missing = f"{self.venv} cannot import {', '.join(S3_MODULES)}: {last}"
            return
        port = free_port()
        self._spawn("s3", [str(self.bin / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
        endpoint = f"http://127.0.0.1:{port}"

        def up() -> bool:
            self.check_alive()
            return requests.get(f"{endpoint}/moto-api/", timeout=5).status_code == 200

        wait_for(up, 60, "moto's S3 server to answer", 0.5)
        self.s3_endpoint = endpoint

    def _api_up(self) -> bool:
        self.check_alive()
        r = requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5)
        return r.status_code == 200

    def health(self) -> dict[str, Any]:
        return requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=10).json()

    def wait_healthy(self, components: tuple[str, ...], timeout: float) -> None:
        def ok() -> bool:
            self.check_alive()
            h = self.health()
            return all((h.get(c) or {}).get("status") == "healthy" for c in components)

        wait_for(ok, timeout, f"{components} to report healthy", 2)

    def configure(self) -> None:
        """The pool, the Variables the README asks for and the connection, through the REST API."""
        info = self.emulator_info
        api = self.api
        api.post(
            "/pools",
            {
                "name": "rtcim_api",
                "slots": 4,
                "description": "RTC IM OpenAPI: 96 of the account's 100 QPS, 24 QPS per slot",
            },
            expect=(200, 201),
        )
        variables = {
            "rtcim_user_ids": json.dumps(info["user_ids"]),
            "rtcim_output_base": f"file://{self.output_dir}",
            "rtcim_batch_size": "5",
            "rtcim_watch_user_id": str(info["user_ids"][0]),
        }
        for key, value in variables.items():
            api.post("/variables", {"key": key, "value": value}, expect=(200, 201))
        api.post(
            "/connections",
            {
                "connection_id": "rtcim_default",
                "conn_type": "rtcim",
                "login": info["access_key_id"],
                "password": info["secret_access_key"],
                "host": self.proxy.url,
                "extra": json.dumps({"app_id": info["app_id"], "region": info["region"]}),
            },
            expect=(200, 201),
        )

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for name in list(self.procs):
            with contextlib.suppress(Exception):
                self.stop_process(name)
        # anything left over (a task process that outlived its parent)
        for pid in list(self.all_pids):
            with contextlib.suppress(Exception):
                _terminate_tree(pid, 5)
        if self.proxy is not None:
            self.proxy.stop()

    # the emulator's admin API ---------------------------------------------------------------
    def emu(self, method: str, path: str, body: Any = None) -> Any:
        r = requests.request(method, self.emulator_info["url"] + path, json=body, timeout=30)
        assert r.status_code in (200, 201, 204), (
            f"emulator {method} {path}: HTTP {r.status_code} {r.text[:300]}"
        )
        return r.json() if r.content else None

    def truth(self, uid: int) -> list[dict[str, Any]]:
        got = self.emu("GET", f"/_emulator/users/{uid}/conversations?data_type=1&inbox_type=0")
        return got["ConversationInfos"]

    # processes of tasks ----------------------------------------------------------------------
    def task_process(self, ti_id: str) -> psutil.Process | None:
        """The task's own process: the supervisor's child titled ``airflow worker -- <ti id>``."""
        title = f"airflow worker -- {ti_id}"
        roots = [
            psutil.Process(p.pid) for n, p in self.procs.items() if n == "scheduler" and p.poll() is None
        ]
        for root in roots:
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if title in " ".join(child.cmdline()):
                        return child
        return None


def _terminate_tree(pid: int, timeout: float) -> None:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        procs = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError as exc:
        return f"({exc})"


def read_rows(url: str) -> list[dict[str, Any]]:
    import gzip

    local = url.removeprefix("file://")
    opener = gzip.open if local.endswith(".gz") else open
    with opener(local, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]
