"""Sensor that waits for a user's RTC IM conversation count to change."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_rtcim.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
    task_state_store,
)
from airflow_provider_rtcim.core.defaults import DEFAULT_CONN_ID
from airflow_provider_rtcim.core.errors import RtcImError
from airflow_provider_rtcim.core.sink import is_templated
from airflow_provider_rtcim.core.validation import (
    check_user_id,
    none_if_blank,
    to_int,
    to_positive_float,
    validate_app_id,
    validate_data_type,
    validate_inbox_type,
    validate_int_user_id,
    validate_user_id_type,
)
from airflow_provider_rtcim.exceptions import RtcImApiError, RtcImFatalError
from airflow_provider_rtcim.triggers.rtcim import (
    DIRECTIONS,
    RtcImConversationCountTrigger,
    count_condition_met,
    user_label,
)

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import Context
    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

BASELINE_STATE_KEY = "rtcim_conversation_count_baseline"
"""``task_state_store`` key under which the first-poke baseline is kept across reschedules and retries."""


def _is_literal(value: Any) -> bool:
    """A plain value (not a template string, an XComArg, ...), so it can be checked in ``__init__``."""
    if isinstance(value, str):
        return not is_templated(value)
    return value is None or isinstance(value, (int, float))


def _validate_baseline(value: Any) -> int | None:
    # Rendered templates turn None into "None" (or ""): those are None
    value = none_if_blank(value, none_words=True)
    if value is None:
        return None
    baseline = to_int(value, "baseline_count")
    if baseline < 0:
        raise ValueError(f"baseline_count must be None or an integer >= 0; got {baseline}")
    return baseline


def _validate_app_id(value: Any) -> int | None:
    value = none_if_blank(value, none_words=True)
    return None if value is None else validate_app_id(value, "app_id")


def _check_literal_user_id(value: Any, user_id_type: str | None) -> None:
    """Check a plain ``participant_user_id`` in ``__init__`` as far as it can be without the connection.

    With no task-level ``user_id_type`` the connection decides (read at the first poke, never
    in ``__init__``), so only what is wrong for both kinds fails here: a non-positive int,
    an empty string, a float, a bool, None. A non-numeric string (a string id) or an int given
    to a "str" connection is judged at the first poke, before any request.
    """
    if user_id_type is not None:
        check_user_id(value, "participant_user_id", user_id_type)
    elif not isinstance(value, str) or not value.strip():
        validate_int_user_id(value, "participant_user_id")


def _validate_min_delta(value: Any) -> int:
    if isinstance(value, str) and is_templated(value):
        raise ValueError(f"min_delta is not templated: give an integer >= 1; got {value!r}")
    try:
        number = to_int(value, "min_delta")
    except ValueError:
        raise ValueError(
            f"min_delta must be an integer >= 1 (or a string of digits); got {value!r}"
        ) from None
    if number < 1:
        raise ValueError(f"min_delta must be an integer >= 1; got {value!r}")
    return number


class _Arguments(NamedTuple):
    """The rendered templated fields, validated."""

    participant_user_id: int | str
    app_id: int | None
    baseline_count: int | None
    data_type: int
    inbox_type: int


def _failure_text(user_id: Any, message: str) -> str:
    return f"counting conversations of participant_user_id={user_label(user_id)} failed: {message}"


def _failure(
    *,
    user_id: Any,
    message: str,
    code: str | None,
    http_status: int | None,
    request_id: str | None,
    action: str | None,
    retryable: bool,
    deferred: bool,
) -> Exception:
    """The exception a failed count raises, the same text in poke and deferrable mode.

    Its text names the user, the ``Code``, the fix hint and the ``RequestId`` once each (see
    :meth:`RtcImError.__str__`).

    - Not retryable: :class:`RtcImFatalError`, an ``AirflowFailException`` (no task retries;
      ``soft_fail`` skips).
    - Retryable (the hook's own retries gave up): the task should fail and its ``retries``
      apply, and ``soft_fail`` must not skip it. In poke mode ``BaseSensorOperator.execute``
      skips only ``AirflowSensorTimeout``/``AirflowTaskTimeout``/``AirflowFailException``, so
      an :class:`RtcImApiError` is fine there. After a deferral, Airflow 3.3's
      ``BaseSensorOperator.resume_execution`` turns *every* ``AirflowException`` into a skip
      under ``soft_fail``, so the deferrable path raises the core :class:`RtcImError`, which is
      not an ``AirflowException``; the task runner still fails it with retries (it treats any
      exception that way). Catch ``RtcImError`` to handle both.
    """
    text = _failure_text(user_id, message)
    details: dict[str, Any] = {
        "code": code,
        "http_status": http_status,
        "request_id": request_id,
        "action": action,
    }
    if not retryable:
        return RtcImFatalError(text, **details)
    if deferred:
        return RtcImError(text, **details)
    return RtcImApiError(text, **details)


class RtcImConversationCountSensor(BaseSensorOperator):
    """Wait until a user's conversation count has moved from a baseline by at least ``min_delta``.

    The count is the number of conversations ``GetUserConversations`` lists for the user
    (every page, fetched with ``SkipMemberCount=true``). The baseline is ``baseline_count``
    when given, otherwise the count at the task instance's first poke; that first-poke
    baseline is kept in ``context["task_state_store"]`` (an Airflow Variable before Airflow 3.3,
    see :func:`airflow_provider_rtcim.compat.task_state_store`) so it survives reschedules
    (``mode="reschedule"``) and retries.

    With ``deferrable=True`` the sensor pokes once in ``execute()`` (establishing the baseline
    and finishing at once if the condition already holds), then hands the wait to
    :class:`~airflow_provider_rtcim.triggers.rtcim.RtcImConversationCountTrigger`, which enforces
    the sensor's ``timeout`` itself.

    Returns (XCom ``return_value``) ``{"baseline_count": b, "count": c}``.

    **Failures.** An error no retry can fix (unknown AppId, bad signature, ...) raises
    :class:`~airflow_provider_rtcim.exceptions.RtcImFatalError` (an ``AirflowFailException``:
    no task retries; ``soft_fail`` skips the task). A transient error that outlasted the hook's
    retries fails the task so its ``retries`` apply, and ``soft_fail`` does not skip it, in
    both modes. Either way the message names the user, the ``Code``, the fix hint and the
    ``RequestId`` (to quote to Volcengine support).

    **Request rate and pools.** Each sensor has its own hook and rate limiter, capped at
    ``max_qps``. A pool bounds the requests of the tasks holding its slots, but a deferred
    task holds no slot (unless the pool counts deferred tasks, ``include_deferred=True``), so
    while deferred only ``max_qps`` caps the trigger's polling. Give the sensor the same
    ``max_qps`` as the pool's per-slot budget (for example 24 for a 4-slot share of the
    account's 100 QPS) so that budget holds whether the sensor pokes in a worker or waits in
    the triggerer. A waiting sensor makes one request per page of the user's conversations
    (20 per page) every ``poke_interval``.

    **String user ids.** With ``user_id_type="str"`` (on the task, or the connection's
    ``extra.user_id_type``) the id is opaque text sent verbatim as ``ParticipantUserIdStr``
    ("007" stays "007"; surrounding whitespace is an error). Without a task-level
    ``user_id_type`` the connection's is read at the first poke (never in ``__init__``), so a
    string id is checked then, before any request. The trigger gets the resolved kind.

    :param participant_user_id: the user whose conversations are counted (an int, or with
        ``user_id_type="str"`` a string). Templated.
    :param user_id_type: ``"int"`` or ``"str"``; None (default) uses the connection's
        ``extra.user_id_type`` (``"int"`` when unset).
    :param baseline_count: the count to compare against; None (or a template rendering to
        ``"None"``/``""``) means the count at the first poke. Templated, so it can come from an
        upstream task's XCom.
    :param app_id: AppId; None uses the connection's ``extra.app_id``. Templated.
    :param data_type: ``DataType`` of the listing: 0 cache, 1 database (default), 2 live groups.
        Templated.
    :param inbox_type: ``InboxType`` (>= 0), default 0. Templated.
    :param direction: ``"any"`` (default), ``"increase"`` or ``"decrease"``.
    :param min_delta: how far the count must move from the baseline (integer >= 1, or a string
        of digits), default 1.
    :param rtcim_conn_id: the RTC IM connection id, default ``rtcim_default``.
    :param max_qps: cap on this sensor's requests per second, in poke mode and in the trigger
        while deferred (None: the connection's ``extra.max_qps``, else the hook's default 95;
        0: no client-side cap). See *Request rate and pools* above.
    :param deferrable: wait in the triggerer instead of a worker slot; default from
        ``[operators] default_deferrable``.
    :param kwargs: the usual sensor arguments (``poke_interval``, ``timeout``, ``mode``,
        ``soft_fail``, ``exponential_backoff``, ...).
    """

    template_fields: Sequence[str] = (
        "participant_user_id",
        "baseline_count",
        "app_id",
        "data_type",
        "inbox_type",
    )
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        participant_user_id: int | str,
        baseline_count: int | str | None = None,
        app_id: int | str | None = None,
        data_type: int | str = 1,
        inbox_type: int | str = 0,
        direction: str = "any",
        min_delta: int | str = 1,
        rtcim_conn_id: str = DEFAULT_CONN_ID,
        max_qps: float | str | None = None,
        user_id_type: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
        min_delta = _validate_min_delta(min_delta)
        if not isinstance(rtcim_conn_id, str) or not rtcim_conn_id:
            raise ValueError(f"rtcim_conn_id must be a non-empty string; got {rtcim_conn_id!r}")
        # None: the connection's extra.max_qps (or the hook's default); 0: no client-side cap.
        self.max_qps = None if max_qps is None else to_positive_float(max_qps, "max_qps", allow_zero=True)
        # Templated fields: check now what is already a plain value, the rest once rendered.
        if _is_literal(data_type):
            validate_data_type(data_type)
        if _is_literal(inbox_type):
            validate_inbox_type(inbox_type)
        self.user_id_type = None if user_id_type is None else validate_user_id_type(user_id_type)
        if _is_literal(participant_user_id):
            _check_literal_user_id(participant_user_id, self.user_id_type)
        if _is_literal(baseline_count):
            _validate_baseline(baseline_count)
        if _is_literal(app_id):
            _validate_app_id(app_id)
        self.participant_user_id = participant_user_id
        self.baseline_count = baseline_count
        self.app_id = app_id
        self.data_type = data_type
        self.inbox_type = inbox_type
        self.direction = direction
        self.min_delta = min_delta
        self.rtcim_conn_id = rtcim_conn_id
        self.deferrable = deferrable
        self._baseline: int | None = None

    @cached_property
    def hook(self) -> RtcImHook:
        """The RTC IM hook, built on first use (no I/O in ``__init__``)."""
        from airflow_provider_rtcim.hooks.rtcim import RtcImHook

        return RtcImHook(rtcim_conn_id=self.rtcim_conn_id, max_qps=self.max_qps)

    # ------------------------------------------------------------------ arguments
    def _user_id_type(self) -> str:
        """The task's ``user_id_type``, else the connection's (``"int"`` when unset)."""
        return self.hook.resolve_user_id_type(self.user_id_type)

    def _resolved(self, user_id_type: str | None = None) -> _Arguments:
        """The rendered templated fields, validated (the same checks as in ``__init__``).

        ``user_id_type``: the kind to read ``participant_user_id`` as (pass
        :meth:`_user_id_type`); None means the task's own, else ``"int"``.
        """
        kind = user_id_type or self.user_id_type or "int"
        return _Arguments(
            participant_user_id=check_user_id(self.participant_user_id, "participant_user_id", kind),
            app_id=_validate_app_id(self.app_id),
            baseline_count=_validate_baseline(self.baseline_count),
            data_type=validate_data_type(self.data_type),
            inbox_type=validate_inbox_type(self.inbox_type),
        )

    @staticmethod
    def _state_identity(args: _Arguments) -> dict[str, Any]:
        """What a stored baseline was counted for; a stored one is reused only if it matches."""
        return {
            "participant_user_id": args.participant_user_id,
            "app_id": args.app_id,
            "data_type": args.data_type,
            "inbox_type": args.inbox_type,
        }

    # ------------------------------------------------------------------ counting
    def _count(self, args: _Arguments, user_id_type: str) -> int:
        try:
            return self.hook.count_user_conversations(
                args.participant_user_id,
                data_type=args.data_type,
                inbox_type=args.inbox_type,
                app_id=args.app_id,
                user_id_type=user_id_type,
            )
        except RtcImError as exc:
            # Retryable: the hook already retried; the task's own retries may have a go.
            raise _failure(
                user_id=args.participant_user_id,
                message=exc.message,
                code=exc.code,
                http_status=exc.http_status,
                request_id=exc.request_id,
                action=exc.action,
                retryable=exc.retryable,
                deferred=False,
            ) from exc

    def _baseline_for(self, context: Context, args: _Arguments, count: int) -> int:
        """The first-poke baseline: from this instance, else the task state store, else ``count``."""
        if self._baseline is not None:
            return self._baseline
        identity = self._state_identity(args)
        store = task_state_store(context)
        if store is not None:
            stored = store.get(BASELINE_STATE_KEY)
            if (
                isinstance(stored, dict)
                and stored.get("identity") == identity
                and isinstance(stored.get("baseline_count"), int)
            ):
                self._baseline = stored["baseline_count"]
                self.log.info("Using the baseline %s stored at the first poke", self._baseline)
                return self._baseline
        elif self.reschedule and not self.deferrable:
            raise AirflowFailException(
                "mode='reschedule' without baseline_count needs a task state store (context['task_state_store'] "
                "on Airflow 3.3+, an Airflow Variable before) to keep the first-poke baseline across reschedules"
            )
        self._baseline = count
        self.log.info(
            "Baseline conversation count of user %s: %s (first poke)",
            user_label(args.participant_user_id),
            count,
        )
        if store is not None:
            store.set(BASELINE_STATE_KEY, {"baseline_count": count, "identity": identity})
        return count

    def _forget_baseline(self, context: Context) -> None:
        """Drop the stored first-poke baseline once done, so a cleared, re-run task starts afresh.

        (Airflow keeps task state after success unless ``[state_store] clear_on_success``.)
        """
        store = task_state_store(context)
        if store is None:
            return
        try:
            store.delete(BASELINE_STATE_KEY)
        except Exception:
            self.log.warning("Could not delete the stored baseline %r", BASELINE_STATE_KEY, exc_info=True)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        kind = self._user_id_type()
        args = self._resolved(kind)
        user_id, explicit_baseline = user_label(args.participant_user_id), args.baseline_count
        count = self._count(args, kind)
        baseline = (
            explicit_baseline if explicit_baseline is not None else self._baseline_for(context, args, count)
        )
        # Remembered for the deferral that may follow the synchronous first poke.
        self._baseline = baseline
        if count_condition_met(
            baseline_count=baseline, count=count, direction=self.direction, min_delta=self.min_delta
        ):
            self.log.info(
                "Conversation count of user %s moved from %s to %s (direction=%s, min_delta=%s)",
                user_id,
                baseline,
                count,
                self.direction,
                self.min_delta,
            )
            if explicit_baseline is None:
                self._forget_baseline(context)
            return PokeReturnValue(is_done=True, xcom_value={"baseline_count": baseline, "count": count})
        self.log.info(
            "Conversation count of user %s is %s (baseline %s, direction=%s, min_delta=%s): waiting",
            user_id,
            count,
            baseline,
            self.direction,
            self.min_delta,
        )
        return False

    # ------------------------------------------------------------------ execution
    def execute(self, context: Context) -> Any:
        """``BaseSensorOperator.execute``; deferrable, its first poke that is not done defers.

        The first poke runs where every poke runs, inside ``BaseSensorOperator.execute`` (so
        ``soft_fail``, ``never_fail`` and ``silent_fail`` apply as Airflow defines them);
        once it has returned "not yet", the wait is handed to the trigger.
        """
        if not self.deferrable:
            return super().execute(context)
        end_time = time.time() + self.timeout
        poke = self.poke

        def poke_then_defer(context: Context) -> bool | PokeReturnValue:
            result = poke(context)
            if result is True or (isinstance(result, PokeReturnValue) and result.is_done):
                self.log.info("Success criteria met at the first poke; not deferring.")
                return result
            self._defer(end_time)
            return result  # pragma: no cover - _defer raises TaskDeferred

        self.poke = poke_then_defer  # type: ignore[method-assign]
        try:
            return super().execute(context)
        finally:
            del self.poke

    def _defer(self, end_time: float) -> None:
        """Hand the wait to the trigger (raises ``TaskDeferred``)."""
        kind = self._user_id_type()
        args = self._resolved(kind)
        if self._baseline is None:  # pragma: no cover - poke always sets it
            raise AirflowException("internal error: no baseline after the first poke")
        # The trigger enforces the sensor's timeout itself (end_time); the deferral timeout is a
        # backstop for a stuck triggerer, a little later so the trigger's own event wins.
        deferral_timeout = timedelta(seconds=self.timeout + max(60.0, 2 * self.poke_interval))
        if self.execution_timeout is not None:
            deferral_timeout = min(deferral_timeout, self.execution_timeout)
        self.defer(
            trigger=RtcImConversationCountTrigger(
                participant_user_id=args.participant_user_id,
                baseline_count=self._baseline,
                end_time=end_time,
                app_id=args.app_id,
                data_type=args.data_type,
                inbox_type=args.inbox_type,
                direction=self.direction,
                min_delta=self.min_delta,
                rtcim_conn_id=self.rtcim_conn_id,
                poll_interval=self.poke_interval,
                max_qps=self.max_qps,
                user_id_type=kind,
            ),
            method_name="execute_complete",
            timeout=deferral_timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, int]:
        """Turn the trigger's event into the sensor's result or the same failure as in poke mode.

        ``BaseSensorOperator.resume_execution`` turns any ``AirflowException`` raised here into
        a skip under ``soft_fail`` (a timeout, a hopeless error); a retryable error is raised
        as the core ``RtcImError`` (not an ``AirflowException``) so it fails the task and its
        ``retries`` apply, as in poke mode (see :func:`_failure`).
        """
        if not isinstance(event, dict) or "status" not in event:
            raise AirflowException(f"RtcImConversationCountTrigger sent no valid event: {event!r}")
        status = event["status"]
        message = event.get("message") or ""
        if status == "success":
            baseline, count = event.get("baseline_count"), event.get("count")
            if not isinstance(baseline, int) or not isinstance(count, int):
                raise AirflowException(f"Success event without integer counts: {event!r}")
            self.log.info("%s", message)
            self._forget_baseline(context)
            return {"baseline_count": baseline, "count": count}
        if status == "timeout":
            raise AirflowSensorTimeout(f"Sensor has timed out: {message}")
        if status == "error":
            user_id = event.get("participant_user_id")
            if user_id is None:
                user_id = self.participant_user_id
            retryable = bool(event.get("retryable"))
            if retryable and getattr(self, "never_fail", False):
                # Poke mode skips any poke failure under never_fail: so does the deferrable path.
                raise AirflowSkipException(
                    "Skipping due to never_fail is set to True: " + _failure_text(user_id, message)
                )
            raise _failure(
                user_id=user_id,
                message=message or "no message",
                code=event.get("code"),
                http_status=event.get("http_status"),
                request_id=event.get("request_id"),
                action=event.get("action"),
                retryable=retryable,
                deferred=True,
            )
        raise AirflowException(f"RtcImConversationCountTrigger sent an unknown status {status!r}: {event!r}")
