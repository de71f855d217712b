"""The provider's exception types under Airflow.

:class:`RtcImApiError` is both a :class:`~airflow_provider_rtcim.core.errors.RtcImError`
(``code``, ``http_status``, ``request_id``, ``message``, ``retryable``) and an
``AirflowException``, so Airflow treats it as a task failure and callers can branch on
``code``. Also importable from :mod:`airflow_provider_rtcim.hooks.rtcim`.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_rtcim.core.errors import RtcImError


class RtcImApiError(RtcImError, AirflowException):
    """A failed RTC IM call, a pagination anomaly or a misconfigured connection.

    Carries ``code`` (the API's ``Code`` or a client code such as ``PaginationAnomaly``,
    ``MisconfiguredConnection``, ``ConnectionError``), ``http_status``, ``request_id``,
    ``action`` and ``message``. Never contains a secret.
    """

    def serialize(self):  # type: ignore[no-untyped-def]
        cls = self.__class__
        return (
            f"{cls.__module__}.{cls.__name__}",
            (self.message,),
            {
                "code": self.code,
                "http_status": self.http_status,
                "request_id": self.request_id,
                "action": self.action,
            },
        )


class RtcImFatalError(AirflowFailException, RtcImApiError):
    """A failure no retry can fix (bad AppId, bad signature, a pagination anomaly ...).

    An ``AirflowFailException``: the task fails at once, without its ``retries`` (and a
    sensor's ``soft_fail`` turns it into a skip). Still an :class:`RtcImApiError` with
    ``code``, ``http_status``, ``request_id``, ``action`` and ``message``; its text names
    the ``Code``, the fix hint and the ``RequestId`` once each.
    """

    @classmethod
    def from_error(cls, exc: RtcImError, message: str | None = None) -> RtcImFatalError:
        """``exc``'s code, HTTP status, RequestId and action, with ``message`` (default ``exc.message``)."""
        return cls(
            exc.message if message is None else message,
            code=exc.code,
            http_status=exc.http_status,
            request_id=exc.request_id,
            action=exc.action,
        )


class RtcImInvalidArgument(AirflowFailException, ValueError):
    """A task argument is invalid (after templating): fail at once, since a retry cannot fix it.

    Still a ``ValueError`` (naming the argument and the allowed values), and an
    ``AirflowFailException`` so the task's ``retries`` are not spent on it.
    """


__all__ = ["RtcImApiError", "RtcImError", "RtcImFatalError", "RtcImInvalidArgument"]
