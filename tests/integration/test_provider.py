"""The installed package registers itself with Airflow: provider, hook, connection form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_provider_info_is_consistent_with_the_package():
    from importlib.metadata import entry_points, version

    from airflow_provider_rtcim import __version__
    from airflow_provider_rtcim.get_provider_info import get_provider_info

    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-rtcim" == "airflow-provider-rtcim".lower()
    assert info["versions"][0] == __version__ == version("airflow-provider-rtcim")
    (ep,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_provider_rtcim")
    ]
    assert ep.load() is get_provider_info
    (conn,) = info["connection-types"]
    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

    assert conn["hook-class-name"] == f"{RtcImHook.__module__}.{RtcImHook.__qualname__}"
    assert (RtcImHook.conn_type, RtcImHook.default_conn_name, RtcImHook.hook_name) == (
        "rtcim",
        "rtcim_default",
        "RTC IM (Volcengine)",
    )


def test_providers_manager_knows_the_hook_and_its_form():
    from airflow.providers_manager import ProvidersManager
    from airflow_compat import runtime_hooks

    pm = ProvidersManager()
    assert "airflow-provider-rtcim" in pm.providers
    hook = runtime_hooks()["rtcim"]  # what BaseHook.get_hook() resolves
    assert hook is not None and hook.hook_class_name == "airflow_provider_rtcim.hooks.rtcim.RtcImHook"
    widgets = pm.connection_form_widgets
    assert {"extra__rtcim__app_id", "extra__rtcim__region", "extra__rtcim__session_token"} <= set(widgets)
    assert widgets["extra__rtcim__session_token"].is_sensitive
    assert not widgets["extra__rtcim__app_id"].is_sensitive
    behaviour = pm.field_behaviours["rtcim"]
    assert behaviour["relabeling"] == {
        "login": "Access Key ID",
        "password": "Secret Access Key",
        "host": "Endpoint",
    }
    assert set(behaviour["hidden_fields"]) == {"schema", "port"}
    # the 3.3 UI renders no placeholder in an extra field: only the standard fields keep theirs
    assert set(behaviour["placeholders"]) == {"login", "password", "host"}


def test_every_extra_field_has_a_label_and_a_description_with_an_example():
    from airflow_provider_rtcim.get_provider_info import get_provider_info

    (conn,) = get_provider_info()["connection-types"]
    fields = conn["conn-fields"]
    labels = {name: field["label"] for name, field in fields.items()}
    assert labels == {
        "app_id": "AppId",
        "region": "Region",
        "session_token": "Session Token (STS)",
        "endpoint_url": "Endpoint URL",
        "timeout": "Timeout (seconds)",
        "max_qps": "Max requests per second",
        "max_retries": "Max retries",
        "proxies": "Proxy",
        "verify": "TLS verify",
        "user_id_type": "User id type",
    }
    examples = {
        "app_id": "123456",
        "region": "cn-north-1",
        "session_token": "STS",
        "endpoint_url": "http://127.0.0.1:8080",
        "timeout": "30",
        "max_qps": "95",
        "max_retries": "5",
        "proxies": "http://proxy.example.com:3128",
        "verify": "/etc/ssl/certs/company-ca.pem",
        "user_id_type": '"007"',
    }
    for name, example in examples.items():
        assert example in fields[name]["description"], name
    assert set(conn["ui-field-behaviour"]["placeholders"]) <= {"login", "password", "host", "port", "schema"}
    assert fields["session_token"]["schema"]["format"] == "password"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("list", "airflow-provider-rtcim"),
        ("hooks", "airflow_provider_rtcim.hooks.rtcim.RtcImHook"),
        ("widgets", "extra__rtcim__app_id"),
        ("behaviours", "rtcim"),
    ],
)
def test_airflow_providers_cli_shows_it(command, expected, tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run(
        [AIRFLOW, "providers", command, "--output", "plain"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert expected in out.stdout


def test_the_form_offers_user_id_type_as_a_select_of_int_and_str():
    from airflow.providers_manager import ProvidersManager

    from airflow_provider_rtcim.get_provider_info import get_provider_info

    (conn,) = get_provider_info()["connection-types"]
    schema = conn["conn-fields"]["user_id_type"]["schema"]
    # An enum renders as a select in the 3.3 UI; None lets a saved, empty field be null.
    assert schema["enum"] == ["int", "str", None] and schema["default"] == "int"
    widget = ProvidersManager().connection_form_widgets["extra__rtcim__user_id_type"]
    assert not widget.is_sensitive
    # What the UI's form is built from: conn-fields on 3.2+, the hook's wtforms fields before.
    extra_fields = _ui_extra_fields()
    field = extra_fields["user_id_type"]
    assert field["value"] == "int"
    if isinstance(widget.field, dict):  # 3.2+: conn-fields as declared
        assert field["schema"]["enum"] == ["int", "str", None]
    else:  # 3.0, 3.1: the 3.0 UI fails on a null choice, so the select offers the two values
        assert field["schema"]["enum"] == ["int", "str"]
    assert field["schema"]["title"] == "User id type"
    assert extra_fields["session_token"]["schema"]["format"] == "password"
    assert "format" not in extra_fields["app_id"]["schema"]
    assert set(extra_fields) == set(conn["conn-fields"])


def _ui_extra_fields() -> dict:
    """The extra fields the API server sends the UI's connection form for ``rtcim``.

    Asked in a fresh process, as the API server does: before 3.2 Airflow builds them once per
    process, under mocked wtforms classes, which a process that already loaded the real
    widgets would not redo.
    """
    code = (
        "import json\n"
        "from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService\n"
        "(meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == 'rtcim']\n"
        "print('EXTRA_FIELDS=' + json.dumps(meta.extra_fields))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    (line,) = [line for line in out.stdout.splitlines() if line.startswith("EXTRA_FIELDS=")]
    return json.loads(line.removeprefix("EXTRA_FIELDS="))
