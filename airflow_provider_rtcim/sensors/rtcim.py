"""Sensor that waits for a user's RTC IM conversation count to change."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
)

from airflow_provider_rtcim.core.errors import RtcImError, hint_for
from airflow_provider_rtcim.core.validation import (
    to_int,
    validate_app_id,
    validate_data_type,
    validate_inbox_type,
    validate_user_id,
)
from airflow_provider_rtcim.triggers.rtcim import (
    DIRECTIONS,
    RtcImConversationCountTrigger,
    count_condition_met,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

BASELINE_STATE_KEY = "rtcim_conversation_count_baseline"
"""``task_state_store`` key under which the first-poke baseline is kept across reschedules and retries."""

_NONE_STRINGS = frozenset({"", "none", "null"})


def _looks_templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _is_literal(value: Any) -> bool:
    """A plain value (not a template string, an XComArg, ...), so it can be checked in ``__init__``."""
    if isinstance(value, str):
        return not _looks_templated(value)
    return value is None or isinstance(value, (int, float))


def _none_if_empty(value: Any) -> Any:
    """Rendered templates turn None into "None" (or ""): read those back as None."""
    if isinstance(value, str) and value.strip().lower() in _NONE_STRINGS:
        return None
    return value


def _validate_baseline(value: Any) -> int | None:
    value = _none_if_empty(value)
    if value is None:
        return None
    baseline = to_int(value, "baseline_count")
    if baseline < 0:
        raise ValueError(f"baseline_count must be None or an integer >= 0; got {baseline}")
    return baseline


def _validate_app_id(value: Any) -> int | None:
    value = _none_if_empty(value)
    return None if value is None else validate_app_id(value, "app_id")


class RtcImConversationCountSensor(BaseSensorOperator):
    """Wait until a user's conversation count has moved from a baseline by at least ``min_delta``.

    The count is the number of conversations ``GetUserConversations`` lists for the user
    (every page, fetched with ``SkipMemberCount=true``). The baseline is ``baseline_count``
    when given, otherwise the count at the task instance's first poke; that first-poke
    baseline is kept in ``context["task_state_store"]`` so it survives reschedules
    (``mode="reschedule"``) and retries.

    With ``deferrable=True`` the sensor pokes once in ``execute()`` (establishing the baseline
    and finishing at once if the condition already holds), then hands the wait to
    :class:`~airflow_provider_rtcim.triggers.rtcim.RtcImConversationCountTrigger`, which enforces
    the sensor's ``timeout`` itself.

    Returns (XCom ``return_value``) ``{"baseline_count": b, "count": c}``.

    :param participant_user_id: the user whose conversations are counted. Templated.
    :param baseline_count: the count to compare against; None (or a template rendering to
        ``"None"``/``""``) means the count at the first poke. Templated, so it can come from an
        upstream task's XCom.
    :param app_id: AppId; None uses the connection's ``extra.app_id``. Templated.
    :param data_type: ``DataType`` of the listing: 0 cache, 1 database (default), 2 live groups.
    :param inbox_type: ``InboxType`` (>= 0), default 0.
    :param direction: ``"any"`` (default), ``"increase"`` or ``"decrease"``.
    :param min_delta: how far the count must move from the baseline (integer >= 1), default 1.
    :param rtcim_conn_id: the RTC IM connection id, default ``rtcim_default``.
    :param deferrable: wait in the triggerer instead of a worker slot; default from
        ``[operators] default_deferrable``.
    :param kwargs: the usual sensor arguments (``poke_interval``, ``timeout``, ``mode``,
        ``soft_fail``, ``exponential_backoff``, ...).
    """

    template_fields: Sequence[str] = ("participant_user_id", "baseline_count", "app_id")
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        participant_user_id: int | str,
        baseline_count: int | str | None = None,
        app_id: int | str | None = None,
        data_type: int = 1,
        inbox_type: int = 0,
        direction: str = "any",
        min_delta: int = 1,
        rtcim_conn_id: str = "rtcim_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, int) or min_delta < 1:
            raise ValueError(f"min_delta must be an integer >= 1; got {min_delta!r}")
        if not isinstance(rtcim_conn_id, str) or not rtcim_conn_id:
            raise ValueError(f"rtcim_conn_id must be a non-empty string; got {rtcim_conn_id!r}")
        self.data_type = validate_data_type(data_type)
        self.inbox_type = validate_inbox_type(inbox_type)
        # Templated fields: check now what is already a plain value, the rest once rendered.
        if _is_literal(participant_user_id):
            validate_user_id(participant_user_id, "participant_user_id")
        if _is_literal(baseline_count):
            _validate_baseline(baseline_count)
        if _is_literal(app_id):
            _validate_app_id(app_id)
        self.participant_user_id = participant_user_id
        self.baseline_count = baseline_count
        self.app_id = app_id
        self.direction = direction
        self.min_delta = min_delta
        self.rtcim_conn_id = rtcim_conn_id
        self.deferrable = deferrable
        self._baseline: int | None = None

    @cached_property
    def hook(self) -> RtcImHook:
        """The RTC IM hook, built on first use (no I/O in ``__init__``)."""
        from airflow_provider_rtcim.hooks.rtcim import RtcImHook

        return RtcImHook(rtcim_conn_id=self.rtcim_conn_id)

    # ------------------------------------------------------------------ arguments
    def _resolved(self) -> tuple[int, int | None, int | None]:
        """(user id, app id, explicit baseline) from the rendered templated fields, validated."""
        user_id = validate_user_id(self.participant_user_id, "participant_user_id")
        app_id = _validate_app_id(self.app_id)
        baseline = _validate_baseline(self.baseline_count)
        return user_id, app_id, baseline

    def _state_identity(self, user_id: int, app_id: int | None) -> dict[str, Any]:
        """What a stored baseline was counted for; a stored one is reused only if it matches."""
        return {
            "participant_user_id": user_id,
            "app_id": app_id,
            "data_type": self.data_type,
            "inbox_type": self.inbox_type,
        }

    # ------------------------------------------------------------------ counting
    def _count(self, user_id: int, app_id: int | None) -> int:
        try:
            return self.hook.count_user_conversations(
                user_id, data_type=self.data_type, inbox_type=self.inbox_type, app_id=app_id
            )
        except RtcImError as exc:
            if exc.retryable:
                # The hook already retried; let the task's own retries have a go.
                raise
            hint = hint_for(exc.code)
            raise AirflowFailException(
                f"Counting conversations of user {user_id} failed with {exc.code}: {exc.message}"
                + (f" ({hint})" if hint else "")
            ) from exc

    def _baseline_for(self, context: Context, user_id: int, app_id: int | None, count: int) -> int:
        """The first-poke baseline: from this instance, else the task state store, else ``count``."""
        if self._baseline is not None:
            return self._baseline
        identity = self._state_identity(user_id, app_id)
        store = context.get("task_state_store")
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
                "mode='reschedule' without baseline_count needs context['task_state_store'] "
                "(Airflow >= 3.3) to keep the first-poke baseline across reschedules"
            )
        self._baseline = count
        self.log.info("Baseline conversation count of user %s: %s (first poke)", user_id, count)
        if store is not None:
            store.set(BASELINE_STATE_KEY, {"baseline_count": count, "identity": identity})
        return count

    def _forget_baseline(self, context: Context) -> None:
        """Drop the stored first-poke baseline once done, so a cleared, re-run task starts afresh.

        (Airflow keeps task state after success unless ``[state_store] clear_on_success``.)
        """
        store = context.get("task_state_store")
        if store is None:
            return
        try:
            store.delete(BASELINE_STATE_KEY)
        except Exception:
            self.log.warning("Could not delete the stored baseline %r", BASELINE_STATE_KEY, exc_info=True)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        user_id, app_id, explicit_baseline = self._resolved()
        count = self._count(user_id, app_id)
        baseline = (
            explicit_baseline
            if explicit_baseline is not None
            else self._baseline_for(context, user_id, app_id, count)
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
        if not self.deferrable:
            return super().execute(context)
        end_time = time.time() + self.timeout
        try:
            result = self.poke(context)
        except (AirflowSensorTimeout, AirflowTaskTimeout, AirflowFailException) as exc:
            # Same soft_fail / never_fail semantics as BaseSensorOperator.execute.
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from exc
            if getattr(self, "never_fail", False):
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from exc
            raise
        if isinstance(result, PokeReturnValue) and result.is_done:
            self.log.info("Success criteria met at the first poke; not deferring.")
            return result.xcom_value
        user_id, app_id, _ = self._resolved()
        if self._baseline is None:  # pragma: no cover - poke always sets it
            raise AirflowException("internal error: no baseline after the first poke")
        # The trigger enforces the sensor's timeout itself (end_time); the deferral timeout is a
        # backstop for a stuck triggerer, a little later so the trigger's own event wins.
        deferral_timeout = timedelta(seconds=self.timeout + max(60.0, 2 * self.poke_interval))
        if self.execution_timeout is not None:
            deferral_timeout = min(deferral_timeout, self.execution_timeout)
        self.defer(
            trigger=RtcImConversationCountTrigger(
                participant_user_id=user_id,
                baseline_count=self._baseline,
                end_time=end_time,
                app_id=app_id,
                data_type=self.data_type,
                inbox_type=self.inbox_type,
                direction=self.direction,
                min_delta=self.min_delta,
                rtcim_conn_id=self.rtcim_conn_id,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=deferral_timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, int]:
        """Turn the trigger's event into the sensor's result or a clear failure.

        ``soft_fail`` (handled by ``BaseSensorOperator.resume_execution``) turns the failures
        raised here into a skip.
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
            code = event.get("code")
            text = f"Counting conversations failed with {code}: {message}"
            hint = hint_for(code)
            if hint:
                text += f" ({hint})"
            if event.get("retryable"):
                # Transient and already retried by the hook: let the task's retries try again.
                raise AirflowException(text)
            raise AirflowFailException(text)
        raise AirflowException(f"RtcImConversationCountTrigger sent an unknown status {status!r}: {event!r}")
