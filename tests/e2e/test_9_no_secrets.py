"""No secret anywhere a deployment keeps things: every log file under AIRFLOW_HOME (task logs,
trigger logs, the services' own output) and the whole metadata database.

Secrets: the connections' Secret Access Key, the form's session token, and every request
signature the hook sent (recorded by the pass-through proxy in front of the emulator).
Runs last, after every DAG run, the triggerer restart, the SIGKILL and the form tests.
"""

from __future__ import annotations

import re
import sqlite3

from test_5_connection_form import SESSION_TOKEN

HEX = re.compile(rb"[0-9a-fA-F]{64}")


def _secrets(deployment):
    return [deployment.emulator_info["secret_access_key"].encode(), SESSION_TOKEN.encode()]


def _leaks(blob: bytes, deployment) -> list[str]:
    found = [s.decode() for s in _secrets(deployment) if s in blob]
    signatures = {s.lower() for s in deployment.proxy.signatures}
    found += [h.decode() for h in {m.lower() for m in HEX.findall(blob)} if h.decode() in signatures]
    if re.search(rb"Signature=[0-9a-fA-F]{16}", blob):
        found.append("a 'Signature=<hex>' fragment")
    return found


def test_the_proxy_saw_the_signed_traffic(deployment):
    assert len(deployment.proxy.signatures) > 200, (
        "too few signatures recorded for this check to mean anything"
    )
    assert SESSION_TOKEN in deployment.proxy.tokens, "the connection test never sent the form's session token"


def test_no_secret_in_any_log_file(deployment):
    home = deployment.home
    files = [p for p in home.rglob("*") if p.is_file() and not p.name.startswith("airflow.db")]
    task_logs = [p for p in files if "dag_id=" in str(p)]
    assert len(task_logs) >= 10, f"expected the task logs under {home}/logs, found {task_logs}"
    assert any("trigger" in str(p) for p in files), "no trigger log was written"
    leaks = {}
    for path in files:
        found = _leaks(path.read_bytes(), deployment)
        if found:
            leaks[str(path.relative_to(home))] = found
    assert not leaks, f"secrets in files under AIRFLOW_HOME: {leaks}"


def test_no_secret_in_the_metadata_database(deployment):
    db = sqlite3.connect(f"file:{deployment.home / 'airflow.db'}?mode=ro", uri=True, timeout=30)
    try:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        leaks, rows = {}, 0
        for table in tables:
            for row in db.execute(f'select * from "{table}"'):  # noqa: S608 - names from sqlite_master
                rows += 1
                blob = "\x1f".join(
                    v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row if v is not None
                ).encode("utf-8", "replace")
                found = _leaks(blob, deployment)
                if found:
                    leaks.setdefault(table, []).extend(found)
        conn = db.execute(
            "select password, is_encrypted from connection where conn_id='rtcim_default'"
        ).fetchone()
    finally:
        db.close()
    assert rows > 100 and "xcom" in tables and "task_instance" in tables
    assert conn is not None and conn[1], "the connection's password is not encrypted (no Fernet key?)"
    assert not leaks, f"secrets in the metadata database: {leaks}"
