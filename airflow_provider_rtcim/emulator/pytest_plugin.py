"""pytest fixtures that run the RTC IM emulator.

Enable with ``pytest_plugins = ["airflow_provider_rtcim.emulator.pytest_plugin"]`` in a
``conftest.py`` (or ``-p airflow_provider_rtcim.emulator.pytest_plugin``).

- ``rtcim_emulator``: a running :class:`~airflow_provider_rtcim.emulator.Emulator`, new for
  each test. Options come from ``@pytest.mark.rtcim_emulator(**kwargs)``.
- ``rtcim_connection``: the same emulator, with ``AIRFLOW_CONN_RTCIM_DEFAULT`` pointing at it
  (set through ``monkeypatch``, undone after the test).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_rtcim.emulator.server import Emulator


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "rtcim_emulator(**options): keyword options for the rtcim_emulator fixture's Emulator",
    )


@pytest.fixture
def rtcim_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A running emulator on 127.0.0.1 (a free port), stopped after the test."""
    options: dict = {}
    for marker in reversed(list(request.node.iter_markers("rtcim_emulator"))):
        options.update(marker.kwargs)
    with Emulator(**options) as emu:
        yield emu


@pytest.fixture
def rtcim_connection(rtcim_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The running emulator, with ``AIRFLOW_CONN_RTCIM_DEFAULT`` set to a connection to it."""
    for name, value in rtcim_emulator.airflow_env().items():
        monkeypatch.setenv(name, value)
    yield rtcim_emulator
