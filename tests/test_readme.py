"""The README's examples are the tested ones: every Python block runs, every connection example parses.

Python blocks run against a live emulator (default data: users 1000001..., AppId 100001, as
the examples assume) with ``AIRFLOW_CONN_RTCIM_DEFAULT`` pointing at it: plain blocks are
exec'd; the pytest-plugin block is written to a file and run by pytest in a subprocess (so its
marker really configures its emulator); the Operator block's DAG is parsed from a file and run
with ``dag.test()``, its S3 bucket swapped for a local directory, and its files checked
against the emulator's ground truth. The connection examples in bash blocks are parsed into
Airflow Connections and through the hook's own connection parsing, without a request.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_rtcim.emulator import Emulator

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
PY_BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", TEXT, flags=re.S)


def test_readme_opens_with_the_two_setup_commands():
    first_block = BASH_BLOCKS[0]
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci and "make demo" in ci


def test_readme_has_python_examples():
    assert len(PY_BLOCKS) >= 5


PLUGIN_BLOCK = next(i for i, b in enumerate(PY_BLOCKS) if "@pytest.mark.rtcim_emulator(" in b)
OPERATOR_BLOCK = next(i for i, b in enumerate(PY_BLOCKS) if 'DAG("rtcim_export"' in b)
PLAIN_BLOCKS = [i for i in range(len(PY_BLOCKS)) if i not in (PLUGIN_BLOCK, OPERATOR_BLOCK)]


@pytest.mark.parametrize("index", PLAIN_BLOCKS)
def test_python_example_runs(index, rtcim_connection):
    block = PY_BLOCKS[index]
    namespace: dict = {"__name__": f"readme_block_{index}"}
    exec(compile(block, f"README.md python block {index}", "exec"), namespace)  # noqa: S102
    assert not [name for name in namespace if name.startswith("test_")], "a test block: run it with pytest"


# Appended to the plugin example (as its conftest): records, for each test that uses the
# plugin's fixtures, what the emulator it got looks like while the test runs.
_RECORDING_CONFTEST = """
import json
import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    emu = item.funcargs.get("rtcim_emulator") or item.funcargs.get("rtcim_connection")
    if emu is not None:
        record = {
            "test": item.name,
            "config": emu.config,
            "users": len(emu.user_ids),
            "conversations": [len(emu.conversations(uid)) for uid in emu.user_ids],
            "connection_set": os.environ.get("AIRFLOW_CONN_RTCIM_DEFAULT") == emu.connection_json(),
        }
        with open(os.environ["RTCIM_README_RECORD"], "a") as out:
            out.write(json.dumps(record) + "\\n")
    yield
"""


def test_pytest_plugin_example_runs_under_pytest_with_its_marker(tmp_path):
    """The plugin example is a test file: pytest runs it, and its marker configures the emulator."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # rootdir here, not this repo's config
    (tmp_path / "conftest.py").write_text(_RECORDING_CONFTEST)
    (tmp_path / "test_readme_plugin_example.py").write_text(PY_BLOCKS[PLUGIN_BLOCK])
    record = tmp_path / "record.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow_home"), "RTCIM_README_RECORD": str(record)})
    command = [sys.executable, "-m", "pytest", "-q", "--strict-markers", "-p", "no:cacheprovider"]
    command += ["-p", "airflow_provider_rtcim.emulator.pytest_plugin", "test_readme_plugin_example.py"]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"\b2 passed\b", run.stdout), run.stdout[-2000:]
    got = {r["test"]: r for r in map(json.loads, record.read_text().splitlines())}
    assert set(got) == {"test_my_sync_dag", "test_my_code_survives_faults"}

    def listed_per_user(**options):  # what the API lists per user (InboxType 0) for these options
        with Emulator(**options) as emu:
            return [len(emu.conversations(uid)) for uid in emu.user_ids]

    default, marked = listed_per_user(), listed_per_user(conversations_per_user=100)
    assert default != marked
    # the marker applied to the test it decorates ...
    faulty = got["test_my_code_survives_faults"]
    assert faulty["config"]["fault_rate"] == 0.3
    assert faulty["conversations"] == marked
    # ... and only to it; rtcim_connection set the connection to its emulator
    plain = got["test_my_sync_dag"]
    assert plain["config"]["fault_rate"] == 0
    assert plain["conversations"] == default
    assert plain["connection_set"] is True


def test_operator_example_runs_as_a_dag(airflow_db, rtcim_connection, tmp_path):
    """The Operator example's DAG, run for real (its S3 bucket swapped for a local directory)."""
    from airflow.dag_processing.dagbag import DagBag
    from dagrun_helpers import asset_events, run_dag, task_states, xcom_value

    emu = rtcim_connection
    bucket = tmp_path / "my-bucket"
    text = PY_BLOCKS[OPERATOR_BLOCK]
    for s3 in ("s3://aws_default@my-bucket", "s3://my-bucket"):
        assert s3 in text
        text = text.replace(s3, f"file://{bucket}")
    dag_file = tmp_path / "dags" / "readme_operator_example.py"
    dag_file.parent.mkdir()
    dag_file.write_text(text)
    bag = DagBag(dag_folder=str(dag_file))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"rtcim_export", "rtcim_consume"}

    run = run_dag(bag.get_dag("rtcim_export"))
    states = task_states(run)
    assert run.state == "success", states
    assert states == {
        ("export_all", -1): "success",
        ("export_batches", 0): "success",
        ("export_batches", 1): "success",
    }

    def rows(users):
        return [{**c, "ParticipantUserId": uid} for uid in users for c in emu.conversations(uid)]

    out = bucket / "rtcim" / run.run_after.strftime("%Y-%m-%d")
    assert sorted(p.name for p in out.iterdir()) == [
        "conversations.jsonl.gz",
        "part-0.jsonl.gz",
        "part-1.jsonl.gz",
    ]
    files = {
        ("export_all", -1): (out / "conversations.jsonl.gz", [1000001, 1000002, 1000003]),
        ("export_batches", 0): (out / "part-0.jsonl.gz", [1000001, 1000002]),
        ("export_batches", 1): (out / "part-1.jsonl.gz", [1000003]),
    }
    for (task_id, map_index), (path, users) in files.items():
        expected = rows(users)
        assert expected  # the default emulator has these users
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
        assert [json.loads(line) for line in lines] == expected, path.name
        summary = xcom_value(run, task_id, map_index=map_index)
        pages = sum(-(-len(emu.conversations(uid)) // 20) or 1 for uid in users)
        assert summary["path"].endswith(str(path))
        assert {k: summary[k] for k in ("count", "users", "pages", "requests", "retries")} == {
            "count": len(expected),
            "users": len(users),
            "pages": pages,
            "requests": pages,
            "retries": 0,
        }, (task_id, map_index, summary)

    # the three tasks' Asset is the one rtcim_consume is scheduled on
    events = asset_events(f"file://{bucket}/rtcim")
    assert sorted((e["source_task_id"], e["source_map_index"]) for e in events) == sorted(files)
    assert sorted(e["extra"]["count"] for e in events) == sorted(len(rows(u)) for _, u in files.values())


def _exported(name: str) -> str:
    """The value of ``export NAME='...'`` in the README's bash blocks (first occurrence)."""
    for block in BASH_BLOCKS:
        match = re.search(rf"export {name}=('.*?')\n", block, flags=re.S)
        if match:
            return shlex.split(match.group(1))[0]
    raise AssertionError(f"no export {name}= in README")


def _uri_example() -> str:
    for block in BASH_BLOCKS:
        for match in re.finditer(r"export AIRFLOW_CONN_RTCIM_DEFAULT=('rtcim://.*?')\n", block):
            return shlex.split(match.group(1))[0]
    raise AssertionError("no URI-form connection example in README")


def test_json_connection_example_parses_to_the_default_endpoint(monkeypatch):
    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

    value = _exported("AIRFLOW_CONN_RTCIM_DEFAULT")
    assert json.loads(value)["conn_type"] == "rtcim"
    monkeypatch.setenv("AIRFLOW_CONN_RTCIM_DEFAULT", value)
    hook = RtcImHook()
    assert hook.endpoint == "https://rtc.volcengineapi.com"
    assert hook.app_id == 123456
    assert "your-secret-access-key" not in repr(hook)


def test_uri_connection_example_parses_to_the_region_endpoint(monkeypatch):
    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

    monkeypatch.setenv("AIRFLOW_CONN_RTCIM_DEFAULT", _uri_example())
    hook = RtcImHook()
    assert hook.endpoint == "https://open-ap-singapore-1.volcengineapi.com"
    assert hook.app_id == 123456
    assert hook.settings.region == "ap-southeast-1"
