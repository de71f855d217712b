"""The provider's exception types under Airflow.

:class:`RtcImApiError` is both a :class:`~airflow_provider_rtcim.core.errors.RtcImError`
(``code``, ``http_status``, ``request_id``, ``message``, ``retryable``) and an
``AirflowException``, so Airflow treats it as a task failure and callers can branch on
``code``. Also importable from :mod:`airflow_provider_rtcim.hooks.rtcim`.
"""

from __future__ import annotations

from typing import TypeVar

from airflow_provider_rtcim.compat import AirflowException, AirflowFailException, AirflowNotFoundException
from airflow_provider_rtcim.core.errors import RtcImError

_E = TypeVar("_E", bound="RtcImApiError")


class RtcImApiError(RtcImError, AirflowException):
    """A failed RTC IM call, a pagination anomaly or a misconfigured connection.

    Carries ``code`` (the API's ``Code`` or a client code such as ``PaginationAnomaly``,
    ``MisconfiguredConnection``, ``ConnectionError``), ``http_status``, ``request_id``,
    ``action`` and ``message``. Never contains a secret.
    """

    @classmethod
    def from_error(cls: type[_E], exc: RtcImError, message: str | None = None) -> _E:
        """A ``cls`` with ``exc``'s code, HTTP status, RequestId and action, and ``message``
        (default ``exc.message``)."""
        return cls(
            exc.message if message is None else message,
            code=exc.code,
            http_status=exc.http_status,
            request_id=exc.request_id,
            action=exc.action,
        )

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


class RtcImConnectionNotFound(AirflowNotFoundException, RtcImApiError):
    """The hook's connection is not defined where this process can see it.

    An ``AirflowNotFoundException`` (what Airflow raises, so existing ``except
    AirflowNotFoundException`` code still catches it) and an :class:`RtcImApiError` with code
    ``MisconfiguredConnection``. Its text names the connection id and says that outside a task
    only ``AIRFLOW_CONN_<ID>`` environment variables (and a configured secrets backend) are
    visible: a connection added with ``airflow connections add`` is not.
    """

    @classmethod
    def for_conn_id(cls, conn_id: str) -> RtcImConnectionNotFound:
        from airflow_provider_rtcim.core.errors import CODE_CONFIG

        env = "AIRFLOW_CONN_" + conn_id.upper()
        return cls(
            f"Connection {conn_id!r} is not defined. Inside a task Airflow looks for it in the "
            f"metadata database (airflow connections add, the UI), the secrets backends and the "
            f"environment; outside a task (a plain Python script, a notebook, a test) only the "
            f"{env} environment variable and a configured secrets backend are visible, so a "
            f"connection added with `airflow connections add` is not: set {env} (JSON or URI form) "
            f"there, or run the code in a task",
            code=CODE_CONFIG,
        )


class RtcImFatalError(AirflowFailException, RtcImApiError):
    """A failure no retry can fix (bad AppId, bad signature, a pagination anomaly ...).

    An ``AirflowFailException``: the task fails at once, without its ``retries`` (and a
    sensor's ``soft_fail`` turns it into a skip). Still an :class:`RtcImApiError` with
    ``code``, ``http_status``, ``request_id``, ``action`` and ``message``; its text names
    the ``Code``, the fix hint and the ``RequestId`` once each.
    """


class RtcImListingFailed(RtcImFatalError):
    """A listing failed in a way no retry can fix (bad AppId, bad signature, a pagination
    anomaly ...): the task fails at once, without its ``retries``.

    Still an :class:`RtcImApiError` (``code``, ``http_status``, ``request_id``, ``message``);
    its text names the key whose listing failed (``participant_user_id=...``,
    ``conversation_short_id=...``), the ``Code`` and the ``RequestId``. A retryable failure
    that outlasted the hook's retries is raised as a plain ``RtcImApiError`` instead, so the
    task's own retries can have a go.
    """


class RtcImInvalidArgument(AirflowFailException, ValueError):
    """A task argument is invalid (after templating): fail at once, since a retry cannot fix it.

    Still a ``ValueError`` (naming the argument and the allowed values), and an
    ``AirflowFailException`` so the task's ``retries`` are not spent on it.
    """


__all__ = [
    "RtcImApiError",
    "RtcImConnectionNotFound",
    "RtcImError",
    "RtcImFatalError",
    "RtcImInvalidArgument",
    "RtcImListingFailed",
]
