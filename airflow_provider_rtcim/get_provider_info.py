"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Kept import-free: Airflow reads the connection form from here without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_rtcim import __version__

CONN_TYPE = "rtcim"
HOOK_NAME = "RTC IM (Volcengine)"


def get_provider_info() -> dict[str, Any]:
    """Return the provider's info dict (package, components, and the ``rtcim`` connection form)."""
    return {
        "package-name": "airflow-provider-rtcim",
        "name": HOOK_NAME,
        "description": "Volcengine RTC IM OpenAPI: export an app's IM data (conversations, members, "
        "messages and more; messages incrementally) to JSON Lines on any object store, and wait "
        "for changes with a sensor.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": HOOK_NAME,
                "external-doc-url": "https://www.volcengine.com/docs/6348/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": HOOK_NAME, "python-modules": ["airflow_provider_rtcim.hooks.rtcim"]}],
        "operators": [
            {"integration-name": HOOK_NAME, "python-modules": ["airflow_provider_rtcim.operators.rtcim"]}
        ],
        "sensors": [
            {"integration-name": HOOK_NAME, "python-modules": ["airflow_provider_rtcim.sensors.rtcim"]}
        ],
        "triggers": [
            {"integration-name": HOOK_NAME, "python-modules": ["airflow_provider_rtcim.triggers.rtcim"]}
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider_rtcim.hooks.rtcim.RtcImHook",
                "hook-name": HOOK_NAME,
                "conn-fields": {
                    "app_id": {
                        "label": "AppId",
                        "description": "The RTC IM application's AppId, an integer such as 123456. "
                        "A task's app_id= overrides it.",
                        "schema": {"type": ["integer", "null"]},
                    },
                    "region": {
                        "label": "Region",
                        "description": "cn-north-1 (default) or ap-southeast-1. Picks the endpoint when "
                        "Endpoint is empty, and is part of the signature: it must be the endpoint's region.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["cn-north-1", "ap-southeast-1", None],
                            "default": "cn-north-1",
                        },
                    },
                    "user_id_type": {
                        "label": "User id type",
                        "description": "int (default): user ids are integers. str: user ids are opaque "
                        'strings ("007", "alice"), sent verbatim as ParticipantUserIdStr. '
                        "A task may override it.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["int", "str", None],
                            "default": "int",
                        },
                    },
                    "session_token": {
                        "label": "Session Token (STS)",
                        "description": "Optional: a temporary (STS) credential's session token, sent as "
                        "X-Security-Token and signed. Leave empty for a long-term Access Key.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "endpoint_url": {
                        "label": "Endpoint URL",
                        "description": "Full URL with scheme (and port) of the API, e.g. http://127.0.0.1:8080; "
                        "overrides Endpoint. Use it in URI-form connections, where the host cannot "
                        "carry a scheme.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Per-request connect and read timeout in seconds, e.g. 30 (the default).",
                        "schema": {"type": ["number", "null"], "default": 30},
                    },
                    "max_qps": {
                        "label": "Max requests per second",
                        "description": "Client-side rate limit for one hook, e.g. 95 (the default; the API "
                        "allows 100 per account). Split the account's budget across parallel tasks; "
                        "0 turns the limit off.",
                        "schema": {"type": ["number", "null"], "default": 95},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries of a read call on 429, 5xx, timeouts and dropped connections, "
                        "e.g. 5 (the default).",
                        "schema": {"type": ["integer", "null"], "default": 5},
                    },
                    "proxies": {
                        "label": "Proxy",
                        "description": "A proxy URL for every scheme, e.g. http://proxy.example.com:3128, or a "
                        'JSON object such as {"https": "http://proxy:3128"}. Empty: HTTP(S)_PROXY.',
                        "schema": {"type": ["string", "null"]},
                    },
                    "verify": {
                        "label": "TLS verify",
                        "description": "true (the default), false, or the path of a CA bundle file, e.g. "
                        "/etc/ssl/certs/company-ca.pem (for TLS inspection).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "login": "Access Key ID",
                        "password": "Secret Access Key",
                        "host": "Endpoint",
                    },
                    # Only the standard fields: the 3.3 UI shows no placeholder in an extra field,
                    # so each extra field's description carries its example instead.
                    "placeholders": {
                        "login": "AKLT...",
                        "password": "Secret Access Key",
                        "host": "https://rtc.volcengineapi.com (empty: the region's endpoint)",
                    },
                },
            }
        ],
    }
