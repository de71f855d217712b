"""Deployment tests: one real Airflow for the whole session (see harness.py, docs/deployment-tests.md).

They run only through ``make e2e`` (``scripts/e2e.sh``), which sets ``RTCIM_E2E=1`` and runs
``.venv-e2e/bin/pytest tests/e2e --confcutdir=tests/e2e``. A plain ``make test`` / ``pytest``
collects nothing here: this file is all it reads of the folder.
"""

from __future__ import annotations

import atexit
import os
import signal
from pathlib import Path

if os.environ.get("RTCIM_E2E") != "1":
    collect_ignore_glob = ["*.py"]
else:
    import pytest
    from harness import REPO, Deployment

    def _sigterm(signum, frame):  # CI's or the wrapper's SIGTERM: run the fixtures' teardown
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _sigterm)

    def pytest_collection_modifyitems(items):
        for item in items:
            item.add_marker(pytest.mark.e2e)

    @pytest.fixture(scope="session")
    def artifacts() -> Path:
        path = Path(os.environ.get("RTCIM_E2E_ARTIFACTS") or REPO / "e2e-artifacts")
        path.mkdir(parents=True, exist_ok=True)
        return path

    @pytest.fixture(scope="session")
    def deployment(tmp_path_factory):
        workdir = Path(os.environ.get("RTCIM_E2E_WORKDIR") or tmp_path_factory.mktemp("deployment"))
        d = Deployment(workdir)
        atexit.register(d.stop)
        try:
            d.start()
            yield d
        finally:
            d.stop()

    @pytest.fixture(scope="session")
    def api(deployment):
        return deployment.api
