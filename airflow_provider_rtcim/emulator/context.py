"""What a response handler gets: a :class:`Call` (one API request) with the backend, the runtime
options and the ways to reply (``ok``, ``error``, ``fault``).

Usage (in a handler, see :mod:`.responses`)::

    fault = call.fault(("ListFriend", app_id, uid, cursor, limit), {"FriendInfos": [], "HasMore": False})
    if fault is not None:
        return fault
    return call.ok(call.backend.friends_page(...))
"""

from __future__ import annotations

from typing import Any

from airflow_provider_rtcim.emulator.exceptions import ApiError
from airflow_provider_rtcim.emulator.faults import FAULT_STATUS
from airflow_provider_rtcim.emulator.models import EmulatorBackend
from airflow_provider_rtcim.emulator.options import Options
from airflow_provider_rtcim.emulator.stats import Stats
from airflow_provider_rtcim.emulator.transport import Reply, dumps


class Call:
    """One API request: ``meta`` (its ResponseMetadata), ``backend``, ``options``, ``stats``."""

    __slots__ = ("backend", "meta", "options", "stats")

    def __init__(
        self, meta: dict[str, Any], *, backend: EmulatorBackend, options: Options, stats: Stats
    ) -> None:
        self.meta, self.backend, self.options, self.stats = meta, backend, options, stats

    @property
    def app_ids(self) -> list[int]:
        return self.backend.app_ids

    def anomaly_for(self, key: Any) -> str | None:
        return self.options.anomaly_for(key)

    def ok(self, result: dict[str, Any]) -> Reply:
        """A 200 with ``result``."""
        self.stats.reply(200)
        return Reply(200, dumps({"ResponseMetadata": self.meta, "Result": result}))

    def error(self, err: ApiError) -> Reply:
        """The error envelope for ``err`` (with ``Retry-After`` on a 429 when configured)."""
        meta = dict(self.meta, Error={"Code": err.code, "Message": err.message})
        headers = {}
        retry_after = self.options.retry_after
        if err.status == 429 and retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        self.stats.reply(err.status, err.code)
        return Reply(err.status, dumps({"ResponseMetadata": meta}), headers=headers)

    def fault(self, key: tuple, empty_result: dict[str, Any]) -> Reply | None:
        """A fault reply for this request key and attempt, or None to serve it."""
        faults = self.options.faults
        if not faults.rate:  # no history to keep: configure() resets it when the rate changes
            return None
        kind = faults.decide(key)
        if kind is None:
            return None
        self.stats.fault(kind)
        if kind in FAULT_STATUS:
            return self.error(ApiError(*FAULT_STATUS[kind]))
        if kind == "reset":
            return Reply(0, b"", kind="reset")
        if kind == "badjson":
            self.stats.reply(200)
            return Reply(200, b"<html><body><h1>502 Bad Gateway</h1>upstream said: {</body></html>")
        # truncate: a response whose body stops half way
        body = dumps({"ResponseMetadata": self.meta, "Result": empty_result})
        return Reply(200, body + b" " * 64, kind="truncate")
