"""Shared test set-up.

Airflow reads AIRFLOW_HOME when it is first imported, so this module points it at a
throw-away folder before anything imports airflow. The emulator fixtures come from the
package's own pytest plugin (the same one users can enable in their projects).
"""

from __future__ import annotations

import os
import tempfile

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="rtcim-test-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(_AIRFLOW_HOME, "dags")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

import pytest  # noqa: E402

pytest_plugins = ["airflow_provider_rtcim.emulator.pytest_plugin"]


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A fresh SQLite metadata database, made once per session, for dag.test() and friends."""
    from airflow.utils import db

    db.resetdb()
    return _AIRFLOW_HOME
