"""Run a DAG built in memory end to end with ``dag.test()``, and read back its results.

``dag.test()`` in Airflow 3.3 only runs a DAG whose serialized form is already in the
metadata DB ("Cannot create DagRun ... the dag is not serialized"). For a DAG defined in a
file of the DAGs folder that happens by parsing; a DAG built inside a test has no file, so
:func:`serialize_dag` writes it the way the DAG processor would (a ``DagBag`` holding just
this DAG, synced with ``sync_bag_to_db`` under the default ``dags-folder`` bundle).

Usage (needs the ``airflow_db`` fixture of ``tests/conftest.py``)::

    from dagrun_helpers import run_dag, task_states, xcom_value   # tests/ is on sys.path under pytest

    def test_something(airflow_db, rtcim_connection):
        with DAG("t_something", schedule=None) as dag:
            RtcImGetUserConversationsOperator(task_id="list", participant_user_id=1)
        run = run_dag(dag)                        # serializes, then dag.test()
        assert run.state == "success"
        assert task_states(run) == {("list", -1): "success"}
        rows = xcom_value(run, "list")            # map_index=-1; pass map_index=i for mapped tasks

Each call to ``dag.test()`` costs a few seconds: put several tasks in one DAG rather than
running many DAGs. Tasks run in this process, so ``monkeypatch.setenv`` connections
(``AIRFLOW_CONN_*``) and module state (e.g. ``attach("memory", ...)``) are visible to them.
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from airflow.sdk import DAG

BUNDLE_NAME = "dags-folder"
"""The bundle Airflow configures by default (the DAGs folder); ``dag.test()`` re-syncs it."""


def serialize_dag(dag: DAG) -> None:
    """Write ``dag`` (built in memory) to the metadata DB, as the DAG processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow_compat import dagbag_class, sync_bag

    DagBundlesManager().sync_bundles_to_db()
    with tempfile.TemporaryDirectory(prefix="rtcim-dagbag-") as empty:
        bag = dagbag_class()(dag_folder=empty, collect_dags=False)
    bag.bag_dag(dag)
    sync_bag(bag, BUNDLE_NAME)


def run_dag(dag: DAG, *, conf: dict[str, Any] | None = None, **test_kwargs: Any) -> DagRun:
    """Serialize ``dag`` then run it once with ``dag.test()``; returns the finished DagRun.

    ``test_kwargs`` go to ``dag.test()`` (``logical_date``, ``run_after`` ...). A failed task
    does not raise: check ``run.state`` and :func:`task_states`.
    """
    serialize_dag(dag)
    return dag.test(run_conf=conf, **test_kwargs)


def task_states(run: DagRun) -> dict[tuple[str, int], str]:
    """``{(task_id, map_index): state}`` for every task instance of the run."""
    from airflow.models.dagrun import DagRun as DagRunModel
    from airflow.utils.session import create_session

    with create_session() as session:
        fresh = session.get(DagRunModel, run.id)
        assert fresh is not None
        return {(ti.task_id, ti.map_index): str(ti.state) for ti in fresh.get_task_instances(session=session)}


def xcom_value(run: DagRun, task_id: str, *, map_index: int = -1, key: str = "return_value") -> Any:
    """The (deserialized) XCom a task instance of ``run`` pushed, or None."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, map_index=map_index, key=key)
            .one_or_none()
        )
        if row is None:
            return None
        return XComModel.deserialize_value(row)


def rendered_fields(run: DagRun, task_id: str, *, map_index: int = -1) -> dict[str, Any] | None:
    """The rendered template fields Airflow stored for a task instance (as the UI shows them)."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(RenderedTaskInstanceFields)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, map_index=map_index)
            .one_or_none()
        )
        return None if row is None else dict(row.rendered_fields)


def asset_events(uri: str) -> list[dict[str, Any]]:
    """``[{"extra", "source_task_id", "source_map_index", ...}]`` of the events of an Asset."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
            .all()
        )
        return [
            {
                "extra": dict(event.extra or {}),
                "source_dag_id": event.source_dag_id,
                "source_task_id": event.source_task_id,
                "source_run_id": event.source_run_id,
                "source_map_index": event.source_map_index,
            }
            for event in events
        ]
