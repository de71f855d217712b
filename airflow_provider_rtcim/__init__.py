"""Apache Airflow provider for the Volcengine RTC IM OpenAPI.

Components (import them from their modules; this package imports nothing heavy):

* ``airflow_provider_rtcim.hooks.rtcim.RtcImHook`` -- signed, retried, rate-limited calls.
* ``airflow_provider_rtcim.operators.rtcim.RtcImGetUserConversationsOperator`` -- every page
  of one or many users' conversations, to XCom or to JSON Lines in object storage.
* ``airflow_provider_rtcim.sensors.rtcim.RtcImConversationCountSensor`` -- waits until a
  user's conversation count changes (poke, reschedule or deferrable).
* ``airflow_provider_rtcim.emulator`` -- a local stand-in for the API, for tests and demos.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
