"""The README's examples are the tested ones: every Python block runs, every connection example parses.

Python blocks run in a fresh namespace with ``AIRFLOW_CONN_RTCIM_DEFAULT`` pointing at a live
emulator (default data: users 1000001..., AppId 100001, as the examples assume). The
connection examples in bash blocks are parsed into Airflow Connections and through the hook's
own connection parsing, without a request.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("index", range(len(PY_BLOCKS)))
def test_python_example_runs(index, rtcim_connection, monkeypatch, capsys):
    block = PY_BLOCKS[index]
    namespace: dict = {"__name__": f"readme_block_{index}"}
    exec(compile(block, f"README.md python block {index}", "exec"), namespace)  # noqa: S102
    # a block that defines tests (the pytest plugin example) must define runnable ones
    for name, fn in list(namespace.items()):
        if name.startswith("test_") and callable(fn):
            fn(rtcim_connection)


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
