"""tests/conftest.py cleans up after itself: no rtcim-test-airflow-* folder outlives a session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def test_the_session_airflow_home_is_removed_even_when_tests_fail(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(HERE / "conftest.py", suite / "conftest.py")
    (suite / "test_it.py").write_text(
        "import os, pathlib\n\n"
        "def test_uses_the_home():\n"
        "    home = pathlib.Path(os.environ['AIRFLOW_HOME'])\n"
        "    (home / 'some.log').write_text('x')\n"
        "    pathlib.Path(os.environ['RECORD']).write_text(str(home))\n\n"
        "def test_fails():\n"
        "    assert False\n"
    )
    (suite / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update({"TMPDIR": str(temp), "RECORD": str(tmp_path / "home.txt")})
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_it.py"],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]  # one test failed
    home = Path((tmp_path / "home.txt").read_text())
    assert home.parent == temp and home.name.startswith("rtcim-test-airflow-")
    assert not home.exists()
    assert not list(temp.glob("rtcim-test-airflow-*"))
