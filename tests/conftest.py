"""Shared test set-up.

Airflow reads AIRFLOW_HOME when it is first imported, so this module points it at a
throw-away folder before anything imports airflow, and removes that folder when the session
ends, whether the tests passed or not. The emulator fixtures come from the package's own
pytest plugin (the same one users can enable in their projects).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

# The suites (unit/, integration/, dags/) import their shared helpers by module name
# (dagrun_helpers, emulator_cli): they live in tests/helpers/.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="rtcim-test-airflow-")


def _remove_airflow_home() -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


# pytest_unconfigure runs at the end of every session, failed or interrupted; atexit also
# catches whatever Airflow writes there while the interpreter shuts down.
atexit.register(_remove_airflow_home)
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(_AIRFLOW_HOME, "dags")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

import pytest  # noqa: E402

pytest_plugins = ["airflow_provider_rtcim.emulator.pytest_plugin"]


def pytest_unconfigure(config: pytest.Config) -> None:
    _remove_airflow_home()


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A fresh SQLite metadata database, made once per session, for dag.test() and friends."""
    from airflow.utils import db

    db.resetdb()
    return _AIRFLOW_HOME
