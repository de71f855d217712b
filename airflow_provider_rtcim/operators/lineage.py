"""OpenLineage for the listing operators: what a run read and what it wrote.

The operators' ``get_openlineage_facets_on_complete`` calls :func:`operator_lineage`, which
reports (see ``docs/lineage.md``):

* **inputs**: the IM API the run read (namespace ``rtcim://<endpoint host[:port]>``, name
  ``<AppId>/<Action>``, e.g. ``rtcim://rtc.volcengineapi.com`` + ``100001/GetUserConversations``),
  and the file of keys (the operator's ``*_from`` argument: ``conversations_from``,
  ``participant_user_ids_from`` or ``users_from``) when one was given;
* **outputs**: the published output file with an ``outputStatistics`` facet (``rowCount``:
  the rows written, ``size``: the file's bytes as stored, compressed when gzip). A run to XCom
  has no output dataset.

Files are named as OpenLineage's naming spec says: a local path is namespace ``file`` and the
absolute path as name; an object store URL is ``<scheme>://<bucket>`` and the object key
(``s3://bkt`` + ``rtcim/x.jsonl.gz``); a connection id in the URL (``s3://conn@bkt/...``) is
not part of the data's identity and is dropped.

OpenLineage classes are imported inside :func:`operator_lineage` only: the package imports
and runs without the OpenLineage provider (install the ``[openlineage]`` extra to report).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import OperatorLineage

log = logging.getLogger(__name__)

API_SCHEME = "rtcim"
"""The scheme of the IM API's dataset namespace: ``rtcim://<endpoint host[:port]>``."""

_LOCAL_SCHEMES = frozenset({"", "file", "local"})
_LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME_ALIASES = {"gcs": "gs"}  # the spec's GCS namespace is gs://{bucket}


def file_dataset_id(path: Any) -> tuple[str, str]:
    """``(namespace, name)`` of a file path or URL, after OpenLineage's naming spec.

    ``/data/x.jsonl`` and ``file:///data/x.jsonl`` -> ``("file", "/data/x.jsonl")``;
    ``file://host/data/x.jsonl`` (another host) -> ``("file://host", "/data/x.jsonl")``;
    ``s3://conn@bkt/a/x.jsonl.gz`` -> ``("s3://bkt", "a/x.jsonl.gz")``; likewise any
    ``<scheme>://<bucket>/<key>``; a URL with no bucket -> ``("<scheme>", "/<path>")``.
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    text = text.strip()
    if not text:
        raise ValueError("a dataset needs a path, got an empty one")
    scheme, sep, rest = text.partition("://")
    if not sep or "/" in scheme:  # a plain local path (no URL scheme before its first "/")
        return "file", text
    scheme = scheme.lower()
    authority, _, key = rest.partition("/")
    host = authority.rpartition("@")[2]  # an Airflow connection id (conn@bucket) is not identity
    if scheme in _LOCAL_SCHEMES:
        name = "/" + key
        return ("file", name) if host.lower() in _LOCAL_HOSTS else (f"file://{host}", name)
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    if not host:
        return scheme, "/" + key
    return f"{scheme}://{host}", key


def api_dataset_id(endpoint: str, app_id: int | str, action: str) -> tuple[str, str]:
    """``(namespace, name)`` of what a run read from the IM API.

    The namespace names the API service, ``rtcim://<host>`` (``:<port>`` only when it is not
    the scheme's default), without any user info; the name is ``<AppId>/<Action>``.
    """
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"the endpoint has no host: {endpoint!r}")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return f"{API_SCHEME}://{host}", f"{app_id}/{action}"


def file_size(path: Any) -> int | None:
    """The stored size in bytes of the file at ``path``; None when it cannot be found out."""
    try:
        from airflow_provider_rtcim.storage import to_storage_path

        target = to_storage_path(path, field="path")
        return int(target.fs.size(target.path))
    except Exception as exc:
        log.debug("OpenLineage: no size for %s: %s", path, exc)
        return None


def _api_dataset(operator: Any) -> tuple[str, str] | None:
    """The API input of ``operator``'s run, or None (logged) when the connection cannot tell it."""
    try:
        return api_dataset_id(operator.hook.endpoint, operator._resolve_app_id(), operator.action.name)
    except Exception as exc:
        log.warning("OpenLineage: the IM API input of %s is not reported: %s", operator.task_id, exc)
        return None


def operator_lineage(operator: Any, summary: Mapping[str, Any] | None) -> OperatorLineage:
    """What a finished run of a listing operator read and wrote, as an ``OperatorLineage``.

    ``summary`` is the summary the run returned when it wrote a file (None for a run to XCom):
    its ``path`` is the output dataset and its ``count`` the ``rowCount``; the ``size`` is the
    published file's, read from the store.
    """
    # OperatorLineage first: without the OpenLineage provider this raises ImportError (the
    # common-compat facet module would hand out no-op placeholders instead)
    try:
        from airflow_provider_rtcim.compat import OperatorLineage
    except ImportError as exc:
        raise ImportError(
            "OpenLineage reporting needs the OpenLineage provider: "
            "pip install 'airflow-provider-rtcim[openlineage]'"
        ) from exc
    from airflow_provider_rtcim.compat import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )

    inputs = []
    api = _api_dataset(operator)
    if api is not None:
        inputs.append(InputDataset(namespace=api[0], name=api[1]))
    keys_from = getattr(operator, operator.keys_from_field, None)
    if keys_from is not None and not (isinstance(keys_from, str) and not keys_from.strip()):
        namespace, name = file_dataset_id(keys_from)
        inputs.append(InputDataset(namespace=namespace, name=name))
    outputs = []
    if operator.output_path is not None and summary and summary.get("path"):
        namespace, name = file_dataset_id(summary["path"])
        stats = OutputStatisticsOutputDatasetFacet(
            rowCount=int(summary.get("count", 0)), size=file_size(summary["path"])
        )
        outputs.append(
            OutputDataset(namespace=namespace, name=name, outputFacets={"outputStatistics": stats})
        )
    return OperatorLineage(inputs=inputs, outputs=outputs)
