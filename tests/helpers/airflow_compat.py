"""Airflow internals the tests reach into, wherever the Airflow 3 under test keeps them.

The package's own Airflow names come from ``airflow_provider_rtcim.compat``; this module is
for what only the tests use (DAG bags, the metadata models, the secrets masker ...), which
moved between Airflow 3.0 and 3.3. Each helper tries the newest place first.
"""

from __future__ import annotations

import importlib
import json
from typing import Any


def _first(*places: tuple[str, str]) -> Any:
    error: Exception | None = None
    for module, name in places:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            error = exc
    raise ImportError(f"none of {places}") from error


def dagbag_class() -> type:
    """``DagBag``: ``airflow.dag_processing.dagbag`` from 3.2, ``airflow.models.dagbag`` before."""
    return _first(("airflow.dag_processing.dagbag", "DagBag"), ("airflow.models.dagbag", "DagBag"))


def sync_bag(bag: Any, bundle_name: str) -> None:
    """Write a DagBag's DAGs to the metadata DB as the DAG processor does (3.0: ``bag.sync_to_db``)."""
    try:
        sync_bag_to_db = _first(
            ("airflow.dag_processing.dagbag", "sync_bag_to_db"), ("airflow.models.dagbag", "sync_bag_to_db")
        )
    except ImportError:  # 3.0
        for dag in bag.dags.values():
            if dag.relative_fileloc is None:  # what 3.0's DagBag sets for a DAG it parsed from a file
                dag.relative_fileloc = dag.fileloc
        bag.sync_to_db(bundle_name, None)
    else:
        sync_bag_to_db(bag, bundle_name, None)


def import_string(path: str) -> Any:
    """Airflow's ``import_string`` (as the triggerer imports a trigger's class path)."""
    return _first(
        ("airflow.sdk._shared.module_loading", "import_string"),
        ("airflow.utils.module_loading", "import_string"),
    )(path)


def redact(value: Any) -> Any:
    """What the task log's secrets masker makes of ``value``."""
    return _first(
        ("airflow.sdk._shared.secrets_masker", "redact"),
        ("airflow.sdk.execution_time.secrets_masker", "redact"),
    )(value)


def connection_from_uri(uri: str, *, conn_id: str) -> Any:
    """A Connection parsed from an ``AIRFLOW_CONN_*`` URI (3.0's SDK Connection has no ``from_uri``)."""
    from airflow.sdk import Connection

    if hasattr(Connection, "from_uri"):
        return Connection.from_uri(uri, conn_id=conn_id)
    from airflow.models.connection import Connection as DbConnection

    return DbConnection(conn_id=conn_id, uri=uri)


def connection_as_json(**kwargs: Any) -> str:
    """A Connection's ``AIRFLOW_CONN_*`` JSON (3.0's SDK Connection has no ``as_json``)."""
    from airflow.sdk import Connection

    if hasattr(Connection, "as_json"):
        return Connection(**kwargs).as_json()
    from airflow.models.connection import Connection as DbConnection

    return DbConnection(**kwargs).as_json()


def runtime_hooks() -> Any:
    """The hooks registry ``BaseHook.get_hook()`` resolves a connection type with in a task."""
    try:
        runtime = importlib.import_module("airflow.sdk.providers_manager_runtime")
    except ImportError:  # < 3.2: the one ProvidersManager serves tasks too
        from airflow.providers_manager import ProvidersManager

        return ProvidersManager().hooks
    return runtime.ProvidersManagerTaskRuntime().hooks


def stored_task_state(dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    """``{key: value}`` of the task state a task instance left behind.

    Airflow 3.3: the ``task_state_store`` rows. Before: the Variables the package's fallback
    (``airflow_provider_rtcim.compat.VariableTaskStateStore``) keeps it in.
    """
    from airflow.utils.session import create_session

    try:
        from airflow.models.task_state_store import TaskStateStoreModel
    except ImportError:
        return variable_task_state(dag_id, run_id, task_id)
    with create_session() as session:
        rows = session.query(TaskStateStoreModel).filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id)
        return {row.key: row.value for row in rows}


def variable_task_state(dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    """``{key: value}`` of the task state a task instance keeps in Variables (the < 3.3 fallback)."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from airflow_provider_rtcim.compat import VARIABLE_PREFIX

    state: dict[str, Any] = {}
    with create_session() as session:
        for row in session.query(Variable).filter(Variable.key.startswith(VARIABLE_PREFIX)):
            stored = json.loads(row.val)
            scope = stored["scope"]
            if (scope["dag_id"], scope["run_id"], scope["task_id"]) == (dag_id, run_id, task_id):
                state[stored["key"]] = stored["value"]
    return state
