"""Deferrable trigger for :class:`~airflow_provider_rtcim.sensors.rtcim.RtcImConversationCountSensor`.

The trigger polls a user's conversation count from the triggerer until it has moved from a
baseline by at least ``min_delta`` in the wanted direction, or until its own deadline
(``end_time``, an epoch timestamp) passes. Every blocking call (building the hook, the HTTP
requests) runs in a worker thread so the triggerer's event loop is never blocked.

Events (the payload of the single :class:`~airflow.triggers.base.TriggerEvent` it yields):

- ``{"status": "success", "baseline_count": b, "count": c, "participant_user_id": u, "message": ...}``
- ``{"status": "timeout", "baseline_count": b, "count": c_or_None, "participant_user_id": u, "message": ...}``
- ``{"status": "error", "code": ..., "http_status": ..., "request_id": ..., "action": ...,
  "retryable": bool, "participant_user_id": u, "message": ...}``: ``message`` is the error's
  own message (without code, hint or RequestId, which have their own keys), so the sensor
  rebuilds the same text as in poke mode. ``retryable`` is False only for an RTC IM error no
  retry can fix; anything else (a transient error the hook's retries outlasted, a missing
  connection, an unexpected error) is left to the task's ``retries``, as in poke mode.

Payloads and ``serialize()`` output never hold credentials: only ids, counts and the API's
own error code and message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.compat import BaseTrigger, TriggerEvent, to_thread
from airflow_provider_rtcim.core.defaults import DEFAULT_CONN_ID
from airflow_provider_rtcim.core.validation import validate_user_id_type

if TYPE_CHECKING:
    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

DIRECTIONS: tuple[str, ...] = ("any", "increase", "decrease")
"""Allowed values of ``direction``."""


def user_label(user_id: Any) -> str:
    """A user id for messages: an int as it is, a string id quoted (``'007'`` is not 7)."""
    return repr(user_id) if isinstance(user_id, str) else str(user_id)


def count_condition_met(*, baseline_count: int, count: int, direction: str, min_delta: int) -> bool:
    """Whether ``count`` has moved from ``baseline_count`` by at least ``min_delta`` in ``direction``.

    ``"increase"`` needs ``count - baseline >= min_delta``, ``"decrease"`` needs
    ``baseline - count >= min_delta`` and ``"any"`` needs ``|count - baseline| >= min_delta``.
    """
    delta = count - baseline_count
    if direction == "increase":
        return delta >= min_delta
    if direction == "decrease":
        return -delta >= min_delta
    if direction == "any":
        return abs(delta) >= min_delta
    raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")


class RtcImConversationCountTrigger(BaseTrigger):
    """Wait, without blocking the triggerer, for a user's conversation count to move from a baseline.

    :param participant_user_id: the user whose conversations are counted.
    :param baseline_count: the count to compare against (already established by the sensor).
    :param end_time: epoch seconds after which the trigger gives up with a ``"timeout"`` event
        (the sensor's ``timeout``; the trigger enforces it itself, as nothing else does under
        ``dag.test()``).
    :param app_id: AppId; None uses the connection's ``extra.app_id``.
    :param data_type: ``DataType`` of the listing (0 cache, 1 database, 2 live groups).
    :param inbox_type: ``InboxType``.
    :param direction: ``"any"``, ``"increase"`` or ``"decrease"``.
    :param min_delta: how far the count must move, at least 1.
    :param rtcim_conn_id: the Airflow connection id.
    :param poll_interval: seconds between two counts.
    :param max_qps: client-side cap on this trigger's requests per second (None: the
        connection's ``extra.max_qps`` or the hook's default 95; 0: no cap). A deferred task
        holds no pool slot, so a pool does not bound the trigger's requests: this cap does.
    :param user_id_type: ``"int"`` (default) or ``"str"`` (``participant_user_id`` is a string
        id, sent as ``ParticipantUserIdStr``); the sensor passes the kind it resolved.
    """

    def __init__(
        self,
        *,
        participant_user_id: int | str,
        baseline_count: int,
        end_time: float,
        app_id: int | None = None,
        data_type: int = 1,
        inbox_type: int = 0,
        direction: str = "any",
        min_delta: int = 1,
        rtcim_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60.0,
        max_qps: float | None = None,
        user_id_type: str | None = "int",
    ) -> None:
        super().__init__()
        self.participant_user_id = participant_user_id
        self.baseline_count = baseline_count
        self.end_time = end_time
        self.app_id = app_id
        self.data_type = data_type
        self.inbox_type = inbox_type
        self.direction = direction
        self.min_delta = min_delta
        self.rtcim_conn_id = rtcim_conn_id
        self.poll_interval = poll_interval
        self.max_qps = max_qps
        # None: a trigger serialized before user_id_type existed (int ids)
        self.user_id_type = validate_user_id_type(user_id_type or "int")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and every constructor argument (JSON-able values only)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "participant_user_id": self.participant_user_id,
                "baseline_count": self.baseline_count,
                "end_time": self.end_time,
                "app_id": self.app_id,
                "data_type": self.data_type,
                "inbox_type": self.inbox_type,
                "direction": self.direction,
                "min_delta": self.min_delta,
                "rtcim_conn_id": self.rtcim_conn_id,
                "poll_interval": self.poll_interval,
                "max_qps": self.max_qps,
                "user_id_type": self.user_id_type,
            },
        )

    async def _build_hook(self) -> RtcImHook:
        """The hook, from a connection fetched the async way (a sync fetch raises in a trigger)."""
        from airflow_provider_rtcim.compat import get_async_connection, get_async_extra_dejson
        from airflow_provider_rtcim.hooks.rtcim import RtcImHook

        conn = await get_async_connection(self.rtcim_conn_id)
        extra = await get_async_extra_dejson(conn)
        # Building the hook may import requests and open a session: keep it off the event loop.
        return await to_thread(RtcImHook.from_connection, conn, extra=extra, max_qps=self.max_qps)

    def _count(self, hook: RtcImHook) -> int:
        return hook.count_user_conversations(
            self.participant_user_id,
            data_type=self.data_type,
            inbox_type=self.inbox_type,
            app_id=self.app_id,
            user_id_type=self.user_id_type,
        )

    def _error_event(self, exc: BaseException) -> TriggerEvent:
        from airflow_provider_rtcim.core.errors import RtcImError

        if isinstance(exc, RtcImError):
            code, http_status, request_id, action = exc.code, exc.http_status, exc.request_id, exc.action
            retryable = bool(exc.retryable)
            message = exc.message
        else:
            # Not an API verdict (a missing connection, a bug): poke mode would fail the task
            # and let its retries have a go, so the deferrable path does the same.
            code, http_status, request_id, action = type(exc).__name__, None, None, None
            retryable = True
            message = str(exc) or type(exc).__name__
        self.log.error(
            "Counting conversations of user %s failed: %s",
            user_label(self.participant_user_id),
            exc,
            exc_info=exc,
        )
        return TriggerEvent(
            {
                "status": "error",
                "code": code,
                "http_status": http_status,
                "request_id": request_id,
                "action": action,
                "retryable": retryable,
                "participant_user_id": self.participant_user_id,
                "message": message,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Count every ``poll_interval`` seconds; yield exactly one event, then stop."""
        try:
            hook = await self._build_hook()
        except Exception as exc:
            self.log.error("Could not set up the RTC IM hook for connection %r", self.rtcim_conn_id)
            yield self._error_event(exc)
            return
        try:
            count: int | None = None
            while True:
                try:
                    count = await to_thread(self._count, hook)
                except Exception as exc:
                    yield self._error_event(exc)
                    return
                if count_condition_met(
                    baseline_count=self.baseline_count,
                    count=count,
                    direction=self.direction,
                    min_delta=self.min_delta,
                ):
                    yield TriggerEvent(
                        {
                            "status": "success",
                            "baseline_count": self.baseline_count,
                            "count": count,
                            "participant_user_id": self.participant_user_id,
                            "message": (
                                f"Conversation count of user {user_label(self.participant_user_id)} moved from "
                                f"{self.baseline_count} to {count} (direction={self.direction}, "
                                f"min_delta={self.min_delta})."
                            ),
                        }
                    )
                    return
                remaining = self.end_time - time.time()
                if remaining <= 0:
                    yield TriggerEvent(
                        {
                            "status": "timeout",
                            "baseline_count": self.baseline_count,
                            "count": count,
                            "participant_user_id": self.participant_user_id,
                            "message": (
                                f"Conversation count of user {user_label(self.participant_user_id)} is {count}, "
                                f"baseline {self.baseline_count}: not moved by {self.min_delta} "
                                f"(direction={self.direction}) before the sensor's timeout."
                            ),
                        }
                    )
                    return
                self.log.info(
                    "Conversation count of user %s is %s (baseline %s, direction=%s, min_delta=%s); "
                    "next check in %.1f s",
                    user_label(self.participant_user_id),
                    count,
                    self.baseline_count,
                    self.direction,
                    self.min_delta,
                    min(self.poll_interval, remaining),
                )
                # Never sleep past the deadline: the last check happens at the deadline.
                await asyncio.sleep(min(self.poll_interval, remaining))
        finally:
            hook.close()
