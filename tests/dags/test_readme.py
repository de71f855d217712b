"""The documentation's examples are the tested ones: README.md and every docs/*.md page.

Each page's code blocks are collected and the tests are parametrized by page and block
(``docs/hook.md#python-0``), so a failure names both. The rules, the same on every page:

* ``python`` blocks run against a live emulator (default data: users 1000001..., AppId
  100001, as the examples assume) with ``AIRFLOW_CONN_RTCIM_DEFAULT`` pointing at it. Plain
  blocks are exec'd. A block defining ``test_`` functions is written to a file and run by
  pytest in a subprocess with the emulator plugin (so its markers really configure its
  emulator). A block defining DAGs is parsed from a file with ``DagBag`` (an ``s3://my-bucket``
  swapped for a local directory) and every DAG of it that has tasks is run with
  ``dag.test()``; the Operator page's ``rtcim_export`` example is also checked against the
  emulator's ground truth.
* ``bash`` blocks: every ``export AIRFLOW_CONN_...='...'`` value, every ``airflow connections
  add`` command and every JSON body posted to ``/api/v2/connections/test`` is parsed into an
  Airflow ``Connection`` and through the hook's own connection parsing, without a request.
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
from typing import Any

import pytest

from airflow_provider_rtcim.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES: list[Path] = [README, *sorted(DOCS.glob("*.md"))]
FUTURE_PAGES = ("incremental.md", "string-user-ids.md", "deployment-tests.md")
"""Pages other changes add; the index and the README link them already."""


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _blocks(page: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


def _is_test_block(block: str) -> bool:
    return re.search(r"^def test_", block, flags=re.M) is not None


def _is_dag_block(block: str) -> bool:
    return re.search(r"\bDAG\(", block) is not None and not _is_test_block(block)


PY = [(page, i, block) for page in PAGES for i, block in enumerate(_blocks(page, "python"))]
BASH = [(page, i, block) for page in PAGES for i, block in enumerate(_blocks(page, "bash"))]


def _params(items: list[tuple[Path, int, str]], lang: str) -> list[Any]:
    return [pytest.param(page, block, id=f"{_name(page)}#{lang}-{i}") for page, i, block in items]


PLAIN_BLOCKS = _params([b for b in PY if not _is_test_block(b[2]) and not _is_dag_block(b[2])], "python")
TEST_BLOCKS = _params([b for b in PY if _is_test_block(b[2])], "python")
DAG_BLOCKS = _params([b for b in PY if _is_dag_block(b[2])], "python")


# ---------------------------------------------------------------------------------------
# the pages themselves
# ---------------------------------------------------------------------------------------


def test_readme_opens_with_the_two_setup_commands():
    first_block = _blocks(README, "bash")[0]
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make demo" in ci


def test_the_docs_have_python_examples():
    assert len(PY) >= 5
    assert _blocks(README, "python"), "the README keeps a short taste of the API"
    for page in ("hook.md", "operators.md", "sensor.md", "emulator.md"):
        assert _blocks(DOCS / page, "python"), page


def test_the_reference_pages_exist_and_are_linked_from_the_index_and_the_readme():
    expected = {
        "connection.md",
        "hook.md",
        "operators.md",
        "sensor.md",
        "emulator.md",
        "scaling.md",
        "troubleshooting.md",
        "benchmarks.md",
        "development.md",
    }
    present = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert expected <= present
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    for name in present | set(FUTURE_PAGES):
        assert f"]({name})" in index, f"docs/index.md does not link {name}"
        assert f"](docs/{name})" in readme, f"README.md does not link docs/{name}"
    assert "](docs/index.md)" in readme


def test_relative_links_between_pages_resolve():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:") or Path(target).name in FUTURE_PAGES:
                continue
            assert (page.parent / target).exists(), f"{_name(page)} links to a missing {target}"


def test_the_benchmark_table_stays_where_make_bench_writes_it():
    """benchmarks/run.py rewrites the table between these markers in README.md."""
    readme = README.read_text(encoding="utf-8")
    assert readme.count("<!-- BENCH-TABLE -->") == 1 and readme.count("<!-- /BENCH-TABLE -->") == 1


# ---------------------------------------------------------------------------------------
# python blocks
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("page", "block"), PLAIN_BLOCKS)
def test_python_example_runs(page, block, rtcim_connection):
    namespace: dict = {"__name__": "docs_block"}
    exec(compile(block, f"{_name(page)} python block", "exec"), namespace)  # noqa: S102
    assert not [name for name in namespace if name.startswith("test_")], "a test block: run it with pytest"


# Appended to a test example (as its conftest): records, for each test that uses the plugin's
# fixtures, what the emulator it got looks like while the test runs.
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


def _is_plugin_example(block: str) -> bool:
    return "@pytest.mark.rtcim_emulator(" in block and "def test_my_code_survives_faults" in block


def test_the_pytest_plugin_example_is_on_the_emulator_page():
    assert any(_is_plugin_example(block) for block in _blocks(DOCS / "emulator.md", "python"))


@pytest.mark.parametrize(("page", "block"), TEST_BLOCKS)
def test_test_example_runs_under_pytest_with_its_markers(page, block, tmp_path):
    """A test example is a test file: pytest runs it, and its markers configure the emulator."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # rootdir here, not this repo's config
    (tmp_path / "conftest.py").write_text(_RECORDING_CONFTEST)
    (tmp_path / "test_docs_example.py").write_text(block)
    record = tmp_path / "record.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow_home"), "RTCIM_README_RECORD": str(record)})
    command = [sys.executable, "-m", "pytest", "-q", "--strict-markers", "-p", "no:cacheprovider"]
    command += ["-p", "airflow_provider_rtcim.emulator.pytest_plugin", "test_docs_example.py"]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    tests = re.findall(r"^def (test_\w+)", block, flags=re.M)
    assert re.search(rf"\b{len(tests)} passed\b", run.stdout), run.stdout[-2000:]
    if _is_plugin_example(block):
        _check_plugin_example(record)


def _check_plugin_example(record: Path) -> None:
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


def test_the_operator_example_is_on_the_operators_page():
    assert any('DAG("rtcim_export"' in block for block in _blocks(DOCS / "operators.md", "python"))


@pytest.mark.dagrun
@pytest.mark.parametrize(("page", "block"), DAG_BLOCKS)
def test_dag_example_parses_and_runs(page, block, airflow_db, rtcim_connection, tmp_path):
    """Every DAG of the example, run for real (an S3 bucket swapped for a local directory)."""
    from airflow_compat import dagbag_class
    from dagrun_helpers import run_dag, task_states

    bucket = tmp_path / "my-bucket"
    text = block
    for s3 in ("s3://aws_default@my-bucket", "s3://my-bucket"):
        text = text.replace(s3, f"file://{bucket}")
    assert "s3://" not in text, "only s3://my-bucket is swapped for a local directory"
    dag_file = tmp_path / "dags" / "docs_dag_example.py"
    dag_file.parent.mkdir()
    dag_file.write_text(text)
    bag = dagbag_class()(dag_folder=str(dag_file))
    assert bag.import_errors == {}
    assert bag.dag_ids
    runs = {}
    for dag_id in bag.dag_ids:
        dag = bag.get_dag(dag_id)
        if not dag.task_dict:
            continue  # a consumer sketched as "..."
        run = runs[dag_id] = run_dag(dag)
        assert run.state == "success", (dag_id, task_states(run))
    assert runs, "no DAG of the example has a task"
    if 'DAG("rtcim_export"' in block:
        assert set(bag.dag_ids) == {"rtcim_export", "rtcim_consume"}
        _check_operator_example(runs["rtcim_export"], rtcim_connection, bucket)


def _check_operator_example(run: Any, emu: Emulator, bucket: Path) -> None:
    from dagrun_helpers import asset_events, task_states, xcom_value

    states = task_states(run)
    assert states == {
        ("export_all", -1): "success",
        ("export_batches", 0): "success",
        ("export_batches", 1): "success",
        ("publish", -1): "success",
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

    # one event per sync on the Asset rtcim_consume is scheduled on: the single task's, and
    # the one `publish` emits for both mapped tasks together (none from the mapped tasks)
    events = asset_events(f"file://{bucket}/rtcim")
    got = sorted((e["source_task_id"], e["source_map_index"], e["extra"]["count"]) for e in events)
    batches = [len(rows(u)) for key, (_, u) in files.items() if key[0] == "export_batches"]
    assert got == [("export_all", -1, len(rows([1000001, 1000002, 1000003]))), ("publish", -1, sum(batches))]
    (published,) = [e for e in events if e["source_task_id"] == "publish"]
    assert [p.rsplit("/", 1)[-1] for p in published["extra"]["paths"]] == [
        "part-0.jsonl.gz",
        "part-1.jsonl.gz",
    ]


# ---------------------------------------------------------------------------------------
# connection examples in bash blocks
# ---------------------------------------------------------------------------------------


def _commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.split("  #", 1)[0].strip() for line in joined.splitlines() if line.strip()]


def _connection_examples(block: str) -> list[tuple[str, dict[str, Any]]]:
    """``(conn_id, Connection kwargs)`` for every connection the block defines or tests."""
    from airflow_compat import connection_from_uri

    found: list[tuple[str, dict[str, Any]]] = []
    for match in re.finditer(r"export AIRFLOW_CONN_(\w+)=('.*?')\n", block, flags=re.S):
        conn_id, value = match.group(1).lower(), shlex.split(match.group(2))[0]
        if value.lstrip().startswith("{"):
            data = json.loads(value)
            extra = data.get("extra")
            found.append(
                (conn_id, {**data, "extra": json.dumps(extra) if isinstance(extra, dict) else extra})
            )
        else:
            conn = connection_from_uri(value, conn_id=conn_id)
            kwargs = {k: getattr(conn, k) for k in ("conn_type", "host", "login", "password", "port")}
            found.append((conn_id, {**kwargs, "extra": conn.extra}))
    for command in _commands(block):
        if not command.startswith(("airflow connections add", "curl")):
            continue
        words = shlex.split(command)
        if words[:3] == ["airflow", "connections", "add"]:
            kwargs: dict[str, Any] = {}
            options = iter(words[4:])
            for option in options:
                assert option.startswith("--conn-"), command
                key = option.removeprefix("--conn-").replace("-", "_")
                kwargs[{"type": "conn_type"}.get(key, key)] = next(options)
            if "port" in kwargs:
                kwargs["port"] = int(kwargs["port"])
            found.append((words[3], kwargs))
        elif words[:1] == ["curl"] and "/api/v2/connections/test" in command:
            body = json.loads(words[words.index("-d") + 1])
            kwargs = {k: v for k, v in body.items() if k != "connection_id"}
            found.append((body["connection_id"], kwargs))
    return found


CONNECTION_EXAMPLES = [
    pytest.param(kwargs, id=f"{_name(page)}#bash-{i}-{conn_id}-{n}")
    for page, i, block in BASH
    for n, (conn_id, kwargs) in enumerate(_connection_examples(block))
]


def test_the_connection_page_has_json_uri_cli_and_rest_examples():
    kinds = []
    for block in _blocks(DOCS / "connection.md", "bash"):
        kinds += re.findall(r"export AIRFLOW_CONN_RTCIM_DEFAULT='(.)", block)
        kinds += ["cli"] * len(re.findall(r"airflow connections add", block))
        kinds += ["rest"] * len(re.findall(r"/api/v2/connections/test", block))
    assert {"{", "r", "cli", "rest"} <= set(kinds), kinds


@pytest.mark.parametrize("kwargs", CONNECTION_EXAMPLES)
def test_connection_example_parses(kwargs, monkeypatch):
    from airflow_compat import connection_as_json

    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

    assert kwargs["conn_type"] == "rtcim"
    monkeypatch.setenv("AIRFLOW_CONN_DOCS_EXAMPLE", connection_as_json(conn_id="docs_example", **kwargs))
    hook = RtcImHook("docs_example")
    settings = hook.settings  # parsed and validated; no request
    assert settings.endpoint.startswith(("https://", "http://"))
    assert not settings.endpoint.endswith(":0"), "a port of 0 is ignored"
    assert settings.app_id == 123456, "the examples use AppId 123456"
    assert (kwargs.get("password") or "x") not in repr(hook)
    assert hook.stats["requests"] == 0


def _exported(name: str) -> str:
    """The value of the first ``export NAME='...'`` of the connection page."""
    for block in _blocks(DOCS / "connection.md", "bash"):
        match = re.search(rf"export {name}=('.*?')\n", block, flags=re.S)
        if match:
            return shlex.split(match.group(1))[0]
    raise AssertionError(f"no export {name}= in docs/connection.md")


def _uri_example() -> str:
    for block in _blocks(DOCS / "connection.md", "bash"):
        for match in re.finditer(r"export AIRFLOW_CONN_RTCIM_DEFAULT=('rtcim://.*?')\n", block):
            return shlex.split(match.group(1))[0]
    raise AssertionError("no URI-form connection example in docs/connection.md")


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
