"""Operators for the Volcengine RTC IM OpenAPI."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_rtcim.core import validation
from airflow_provider_rtcim.core.errors import RtcImError
from airflow_provider_rtcim.core.sink import (
    JsonlSink,
    OrderedSpools,
    Spool,
    is_gzip_name,
    is_templated,
    output_asset_uri,
    temp_name_for,
)
from airflow_provider_rtcim.exceptions import RtcImFatalError, RtcImInvalidArgument

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

__all__ = ["RtcImGetUserConversationsOperator", "RtcImListingFailed"]

_LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class RtcImListingFailed(RtcImFatalError):
    """A user's listing failed in a way no retry can fix (bad AppId, bad signature, a
    pagination anomaly ...): the task fails at once, without its ``retries``.

    Still an :class:`~airflow_provider_rtcim.exceptions.RtcImApiError` (``code``,
    ``http_status``, ``request_id``, ``message``); its text names the user, the ``Code`` and
    the ``RequestId``. A retryable failure that outlasted the hook's retries is raised as a
    plain ``RtcImApiError`` instead, so the task's own retries can have a go.
    """


class _Cancelled(Exception):
    """Raised inside a worker when the task is stopping (another user failed, or on_kill)."""


class _XComLimitExceeded(Exception):
    """Raised inside a worker when the XCom row budget is used up."""


def _parse_user_ids(value: Any) -> list[int]:
    """One id, a list of ids, or a rendered template of either, as a list of ints."""
    field = "participant_user_id"
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(
                    f"{field} must be a user id or a list of user ids, got the unparsable string {value!r}"
                ) from None
        elif "," in text:
            value = [part for part in (p.strip() for p in text.split(",")) if part]
            if not value:
                raise ValueError(f"{field} must name at least one user id, got {text!r}")
    if isinstance(value, (list, tuple, set, frozenset)) or (
        not isinstance(value, (str, bytes, int, dict)) and hasattr(value, "__iter__")
    ):
        items = list(value) if not isinstance(value, (set, frozenset)) else sorted(value, key=str)
        if not items:
            raise ValueError(f"{field} must name at least one user id, got an empty list")
        return [validation.validate_user_id(v, f"{field}[{i}]") for i, v in enumerate(items)]
    return [validation.validate_user_id(value, field)]


def _check_output_path(value: Any, *, rendered: bool) -> None:
    """Refuse a relative local ``output_path``.

    The Asset URI is derived at parse time from the DAG processor's working directory, the
    file would be written relative to the worker's: they need not agree. Unrendered
    templates are checked only when their static start already shows a relative path.
    """
    if not isinstance(value, (str, os.PathLike)):
        return  # None, an ObjectStoragePath (always absolute), or an XComArg
    text = os.fspath(value).strip()
    if not text or _URL_RE.match(text) or text.startswith("/"):
        return
    if not rendered and is_templated(text) and re.match(r"\s*(\{\{|\{%|\{#)", text):
        return  # "{{ var.value.base }}/x.jsonl": only known after templating
    raise ValueError(
        f"output_path must be an absolute path or a URL (file://, s3:// ...), got {text!r}: a "
        "relative path would resolve against the worker's working directory, not the DAG's"
    )


def _derive_asset(output_path: Any, asset: Asset | str | bool | None) -> Asset | None:
    """The Asset to declare as outlet, from ``asset`` or the un-rendered ``output_path``."""
    if asset is False:
        return None
    if isinstance(asset, Asset):
        return asset
    if isinstance(asset, str):
        if not asset.strip():
            raise ValueError("asset must be an Asset, an Asset URI, False or None, got an empty string")
        return Asset(asset.strip())
    if asset is not None and asset is not True:
        raise ValueError(f"asset must be an Asset, an Asset URI, False or None, got {asset!r}")
    if not isinstance(output_path, (str, os.PathLike)) and not hasattr(type(output_path), "protocol"):
        return None  # None (XCom output), or a value only known at run time (an XComArg)
    uri = output_asset_uri(str(output_path))
    return Asset(uri) if uri else None


def _with_outlet(outlets: Any, asset: Asset | None) -> Any:
    """``outlets`` plus ``asset`` unless an Asset with the same URI is already there."""
    if asset is None:
        return outlets
    current = [] if outlets is None else list(outlets) if isinstance(outlets, (list, tuple)) else [outlets]
    if any(isinstance(o, Asset) and o.uri == asset.uri for o in current):
        return current
    return [*current, asset]


class _PartialWithAsset:
    """``BaseOperator.partial`` that also declares the output Asset at DAG-parse time.

    A mapped operator's ``__init__`` only runs on the worker, too late for outlets, so the
    Asset derived from ``output_path`` / ``asset`` is added to the partial's ``outlets``.
    Like Airflow's own descriptor, calling ``partial`` on a task (not the class) is refused.
    """

    def __get__(self, obj: BaseOperator | None, cls: type[BaseOperator] | None = None) -> Callable[..., Any]:
        if obj is not None:

            def refuse(**kwargs: Any) -> Any:
                raise TypeError("partial can only be called on Operator classes, not Tasks themselves")

            return refuse
        owner = cls if cls is not None else type(obj)
        base_partial = BaseOperator.__dict__["partial"].__get__(None, owner)

        def partial(**kwargs: Any) -> Any:
            _check_output_path(kwargs.get("output_path"), rendered=False)
            derived = _derive_asset(kwargs.get("output_path"), kwargs.get("asset"))
            if derived is not None:
                kwargs["outlets"] = _with_outlet(kwargs.get("outlets"), derived)
            return base_partial(**kwargs)

        return partial


class RtcImGetUserConversationsOperator(BaseOperator):
    """List every conversation of one or many users (``GetUserConversations``), page by page.

    Each row is the ``ConversationInfo`` exactly as the API returned it (unknown fields kept,
    int64 ids exact) plus one top-level field, ``ParticipantUserId``: the user it was listed
    for. The row shape is the same for one user or many, in XCom or in a file, so mapped
    tasks and batch tasks write the same schema.

    **Ordering and duplicates.** ``data_type`` defaults to 1 (from the database, ordered by
    creation time): it is stable while you page. With ``DataType`` 0 (cache, most recently
    active first) the order changes as conversations become active during the listing, so
    a conversation can show up on two pages or slip past the cursor. Whatever the data
    type, each user's rows are de-duplicated by ``ConversationShortId``.

    **Output.** Without ``output_path`` the task returns the list of rows (XCom); XCom lives
    in the metadata database, so above ``max_xcom_rows`` rows the task fails (without
    pushing) and asks for ``output_path``. With ``output_path`` (a local path or any
    ``ObjectStoragePath`` URL: ``file://``, ``s3://``, ``gs://``, ``memory://`` ...) rows are
    streamed as JSON Lines (gzip when the name ends in ``.gz``) to a temporary object next
    to the target (``.<name>.<token>.tmp``), which is renamed to the final name only when
    every user is complete: a failed or retried run leaves no partial file (and a run that
    publishes deletes the temporary objects of earlier tries that were killed). Rows are in a
    deterministic order (users in input order, each user's rows in API order), so a rerun
    writes the same file. The task then returns a summary
    ``{"path", "count", "users", "pages", "requests", "retries"}``. Memory stays flat: each
    user's rows are spooled to a local temporary file and appended in input order.

    **Asset.** When writing a file the task declares an ``Asset`` outlet (so downstream DAGs
    can be scheduled on it) and attaches ``{"path", "count", "users"}`` as the asset
    event's ``extra``. The Asset is ``asset`` when given (an ``Asset`` or a URI), else it is
    derived at DAG-parse time from the **un-rendered** ``output_path``: a static path is its
    own Asset (a local path becomes ``file:///abs/path``); a templated path maps to the
    static directory prefix before the first ``{{`` (``s3://bkt/rtcim/{{ ds }}/x.jsonl`` ->
    ``s3://bkt/rtcim``), so every run and every mapped task updates one stable Asset. A
    connection id in the URL is dropped. ``asset=False`` declares nothing. This also
    works with ``.partial(output_path=...).expand(...)``; when ``output_path`` itself is
    expanded, pass ``asset=`` to ``partial``.

    **Concurrency.** A user's pages are sequential (each needs the previous ``NextCursor``);
    many users are fetched concurrently by ``max_workers`` threads sharing one hook (one
    HTTP session, one rate limiter at ``max_qps``), so a batch runs near the API's 100 QPS
    ceiling without drawing 429s. Dynamic task mapping also works
    (``.partial(...).expand(participant_user_id=[...])``, one user or one batch per task).

    **Failures.** Arguments are checked (after templating) before the first request; an
    unwritable ``output_path`` is detected by creating the (empty) temporary object first,
    on object stores too. A user whose listing fails (after the hook's retries) fails the
    task with that user's id, the API ``Code`` and the ``RequestId``; the other workers stop
    and nothing is published (directories the run created are removed again when empty). A
    failure no retry can fix (bad AppId, bad signature, a pagination anomaly ...) raises
    :class:`RtcImListingFailed`, an ``AirflowFailException``: the task's ``retries`` are
    skipped. A transient one that outlasted the hook's retries raises ``RtcImApiError``,
    and the task's retries apply.

    :param participant_user_id: a user id or a list of user ids (ints or numeric strings;
        a rendered template of a JSON list or of comma-separated ids works too). Templated.
    :param app_id: the AppId; defaults to the connection's ``extra.app_id``. Templated.
    :param data_type: ``DataType``: 1 (default, creation order, stable), 0 (cache, recent
        first, reorders while paging), 2 (live groups the user created). Templated.
    :param inbox_type: ``InboxType`` (default 0). Templated.
    :param skip_member_count: ask the API not to compute ``MemberCount`` (cheaper). Templated.
    :param page_size: ``Limit`` per request, 1..20 (default 20). Templated.
    :param output_path: where to write JSON Lines: an absolute local path or a URL (a
        relative path is refused: the DAG processor and the worker may not share a working
        directory); None returns the rows through XCom. Templated.
    :param asset: the ``Asset`` (or URI) to declare as outlet; None derives it from
        ``output_path``; False declares none.
    :param rtcim_conn_id: the ``rtcim`` connection.
    :param max_workers: users fetched concurrently (default 16; capped to the number of users).
    :param max_qps: client-side request rate cap shared by all workers (None: the
        connection's ``extra.max_qps`` or the hook's default of 95, 5% under the API's 100; 0: no
        client-side cap).
    :param max_pages: cap on pages per user, a guard against a cursor that never ends.
    :param max_xcom_rows: the most rows returned through XCom (default 10,000).
    """

    template_fields: Sequence[str] = (
        "participant_user_id",
        "app_id",
        "data_type",
        "inbox_type",
        "skip_member_count",
        "page_size",
        "output_path",
    )
    ui_color = "#e8f4ff"

    progress_interval: float = 10.0
    """Seconds between progress log lines."""

    def __init__(
        self,
        *,
        participant_user_id: int | str | Sequence[int | str],
        app_id: int | str | None = None,
        data_type: int | str = 1,
        inbox_type: int | str = 0,
        skip_member_count: bool | str = False,
        page_size: int | str = 20,
        output_path: str | ObjectStoragePath | None = None,
        asset: Asset | str | bool | None = None,
        rtcim_conn_id: str = "rtcim_default",
        max_workers: int = 16,
        max_qps: float | None = None,
        max_pages: int = 100_000,
        max_xcom_rows: int = 10_000,
        **kwargs: Any,
    ) -> None:
        _check_output_path(output_path, rendered=False)
        derived = _derive_asset(output_path, asset)
        if derived is not None:
            kwargs["outlets"] = _with_outlet(kwargs.get("outlets"), derived)
        super().__init__(**kwargs)
        self.participant_user_id = participant_user_id
        self.app_id = app_id
        self.data_type = data_type
        self.inbox_type = inbox_type
        self.skip_member_count = skip_member_count
        self.page_size = page_size
        self.output_path = output_path
        self.asset = derived
        self.rtcim_conn_id = rtcim_conn_id
        self.max_workers = validation.to_int(max_workers, "max_workers")
        if self.max_workers < 1:
            raise ValueError(f"max_workers must be an integer >= 1, got {max_workers!r}")
        # None: the connection's extra.max_qps (or the hook's default); 0: no client-side limit
        self.max_qps = (
            None if max_qps is None else validation.to_positive_float(max_qps, "max_qps", allow_zero=True)
        )
        self.max_pages = validation.validate_max_pages(max_pages)
        self.max_xcom_rows = validation.to_int(max_xcom_rows, "max_xcom_rows")
        if self.max_xcom_rows < 0:
            raise ValueError(f"max_xcom_rows must be an integer >= 0, got {max_xcom_rows!r}")
        self._stop: threading.Event | None = None  # made in execute(): an Event cannot be deep-copied

    partial = _PartialWithAsset()

    @cached_property
    def hook(self) -> RtcImHook:
        """One hook (one HTTP session, one rate limiter) shared by every worker thread."""
        from airflow_provider_rtcim.hooks.rtcim import RtcImHook

        return RtcImHook(
            self.rtcim_conn_id,
            max_qps=self.max_qps,
            pool_maxsize=max(self.max_workers, 10),
        )

    def on_kill(self) -> None:
        if self._stop is not None:
            self._stop.set()

    # ------------------------------------------------------------------------------------
    # execute
    # ------------------------------------------------------------------------------------

    def execute(self, context: Context) -> list[dict[str, Any]] | dict[str, Any]:
        try:
            users = _parse_user_ids(self.participant_user_id)
            data_type = validation.validate_data_type(self.data_type)
            inbox_type = validation.validate_inbox_type(self.inbox_type)
            skip_member_count = validation.to_bool(self.skip_member_count, "skip_member_count")
            page_size = validation.validate_page_size(self.page_size)
            app_id = self._resolve_app_id()
        except ValueError as exc:  # the same arguments would fail every retry
            raise RtcImInvalidArgument(str(exc)) from exc
        unique = list(dict.fromkeys(users))
        if len(unique) != len(users):
            self.log.warning(
                "participant_user_id lists %d ids more than once; each user is listed once",
                len(users) - len(unique),
            )
        request = {
            "data_type": data_type,
            "inbox_type": inbox_type,
            "skip_member_count": skip_member_count,
            "app_id": app_id,
            "page_size": page_size,
            "max_pages": self.max_pages,
        }
        try:
            if self.output_path is None:
                return self._execute_to_xcom(unique, request)
            return self._execute_to_file(unique, request, context)
        finally:
            if "hook" in self.__dict__:
                self.hook.close()

    def _resolve_app_id(self) -> int:
        if self.app_id is not None and not (isinstance(self.app_id, str) and not self.app_id.strip()):
            return validation.validate_app_id(self.app_id)
        conn_app_id = getattr(self.hook, "app_id", None)
        if conn_app_id is None:
            raise ValueError(
                f"app_id is not set: pass app_id= to the task or set extra.app_id on the "
                f"connection {self.rtcim_conn_id!r}"
            )
        return validation.validate_app_id(conn_app_id, "app_id (from the connection's extra.app_id)")

    def _log_start(self, users: list[int], request: dict[str, Any], destination: str) -> None:
        self.log.info(
            "Listing conversations of %d user(s) into %s (app_id=%s, data_type=%s, inbox_type=%s, "
            "page_size=%s, workers=%d)",
            len(users),
            destination,
            request["app_id"],
            request["data_type"],
            request["inbox_type"],
            request["page_size"],
            min(self.max_workers, len(users)),
        )

    def _execute_to_xcom(self, users: list[int], request: dict[str, Any]) -> list[dict[str, Any]]:
        limit = self.max_xcom_rows
        lock = threading.Lock()
        total = [0]
        results: dict[int, list[dict[str, Any]]] = {}

        def new_collector(slot: int) -> list[dict[str, Any]]:
            return []

        def add(collector: list[dict[str, Any]], row: dict[str, Any]) -> None:
            with lock:
                total[0] += 1
                if total[0] > limit:
                    raise _XComLimitExceeded
            collector.append(row)

        def done(slot: int, collector: list[dict[str, Any]]) -> None:
            results[slot] = collector

        self._log_start(users, request, "XCom")
        try:
            stats = self._fetch_all(users, request, new_collector, add, done, discard=lambda c: None)
        except _XComLimitExceeded:
            raise AirflowFailException(
                f"The listing has more than max_xcom_rows={limit} rows: too many for XCom, which "
                f"lives in the metadata database. Set output_path (e.g. 's3://bucket/rtcim/"
                f"conversations.jsonl.gz') to write JSON Lines to object storage, or raise max_xcom_rows."
            ) from None
        rows = [row for slot in range(len(users)) for row in results.pop(slot)]
        self._log_summary(stats, len(rows), len(users), "XCom")
        return rows

    def _execute_to_file(self, users: list[int], request: dict[str, Any], context: Context) -> dict[str, Any]:
        target, tmp, raw, created_dirs = self._open_temp_output()
        compress = is_gzip_name(target.name)
        sink = JsonlSink(raw, compress=compress)
        published = False
        try:
            with tempfile.TemporaryDirectory(prefix="rtcim-spool-") as spool_dir:
                merger = OrderedSpools(sink)

                def new_collector(slot: int) -> Spool:
                    return Spool(spool_dir)

                def add(collector: Spool, row: dict[str, Any]) -> None:
                    collector.write_row(row)

                def done(slot: int, collector: Spool) -> None:
                    collector.close()
                    merger.complete(slot, collector)

                self._log_start(users, request, str(target))
                try:
                    stats = self._fetch_all(
                        users, request, new_collector, add, done, discard=lambda c: c.discard()
                    )
                finally:
                    merger.discard()
                if merger.next_slot != len(users):  # pragma: no cover - guarded by _fetch_all
                    raise RuntimeError("internal error: not every user's rows were written")
            sink.close()
            tmp.fs.mv(tmp.path, target.path)
            published = True
        finally:
            if not published:
                self._remove_quietly(sink, tmp)
                self._remove_empty_dirs(created_dirs)
        self._remove_stale_temps(target)
        count = sink.count
        self._log_summary(stats, count, len(users), str(target))
        summary = {"path": str(target), "count": count, "users": len(users), **stats}
        self._attach_asset_event(context, summary)
        return summary

    def _open_temp_output(self) -> tuple[ObjectStoragePath, ObjectStoragePath, Any, list[str]]:
        """The target, its temporary sibling open for writing, and the local directories made.

        The writability probe: the temporary object is created empty (written and closed,
        so an object store really stores it: ``open()`` alone reaches S3 or GCS only at
        ``close()``, after every request) and checked, before the first API request.
        The local directories this call created (deepest first) are removed again, when
        empty, if anything fails.
        """
        from airflow.sdk import ObjectStoragePath

        value = self.output_path
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("output_path must be a file path or URL, got an empty string")
            if value.rstrip().endswith("/"):
                raise ValueError(f"output_path must name a file, not a directory: {value!r}")
        _check_output_path(value, rendered=True)
        created: list[str] = []
        tmp: ObjectStoragePath | None = None
        try:
            target = value if isinstance(value, ObjectStoragePath) else ObjectStoragePath(str(value).strip())
            if not target.name:
                raise ValueError("it names no file")
            tmp = target.parent / temp_name_for(target.name, uuid.uuid4().hex[:12])
            if (target.protocol or "") in _LOCAL_PROTOCOLS:
                if target.is_dir():
                    raise ValueError("it is a directory")
                created = self._make_parents(target)
            with tmp.fs.open(tmp.path, "wb") as probe:
                probe.write(b"")
            if not tmp.fs.exists(tmp.path):
                raise OSError(f"the temporary object {tmp} was not there after it was written")
            raw = tmp.fs.open(tmp.path, "wb")
        except Exception as exc:
            if tmp is not None:
                with contextlib.suppress(Exception):
                    if tmp.fs.exists(tmp.path):
                        tmp.fs.rm(tmp.path)
            self._remove_empty_dirs(created)
            raise ValueError(f"output_path {str(value)!r} cannot be written: {exc}") from exc
        return target, tmp, raw, created

    @staticmethod
    def _make_parents(target: ObjectStoragePath) -> list[str]:
        """Create the target's missing local parent directories; return them, deepest first."""
        fs = target.fs
        missing: list[str] = []
        parent = target.parent.path.rstrip("/")
        while parent and not fs.exists(parent):
            missing.append(parent)
            up = parent.rsplit("/", 1)[0]
            if up == parent:
                break
            parent = up
        fs.makedirs(target.parent.path, exist_ok=True)
        return missing

    def _remove_empty_dirs(self, dirs: list[str]) -> None:
        """Remove the directories this run created (deepest first) while they are empty."""
        for directory in dirs:
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                continue
            except OSError:
                break  # not empty (another task writes there) or not ours to remove: stop here
            self.log.debug("Removed the empty directory %s, created by this run", directory)

    def _remove_quietly(self, sink: JsonlSink, tmp: ObjectStoragePath) -> None:
        try:
            sink.close()
        except Exception:
            self.log.debug("closing the temporary output failed", exc_info=True)
        try:
            if tmp.fs.exists(tmp.path):
                tmp.fs.rm(tmp.path)
        except Exception:
            self.log.warning("Could not remove the temporary output %s", tmp, exc_info=True)

    def _remove_stale_temps(self, target: ObjectStoragePath) -> None:
        """Delete temporary siblings of ``target`` left by earlier tries that were killed.

        A killed process cannot clean up; its ``.<name>.<token>.tmp`` stays (hidden, so no
        reader mistakes it for output). Once this run has published, those are garbage.
        """
        pattern = f"{target.parent.path.rstrip('/')}/{temp_name_for(target.name, '*')}"
        try:
            for stale in target.fs.glob(pattern):
                target.fs.rm(stale)
                self.log.info("Removed %s, left behind by an earlier try that was killed", stale)
        except Exception:
            self.log.warning("Could not look for stale temporary objects next to %s", target, exc_info=True)

    def _attach_asset_event(self, context: Context, summary: dict[str, Any]) -> None:
        if self.asset is None:
            return
        try:
            events = context["outlet_events"]
        except KeyError:
            return
        extra = {"path": summary["path"], "count": summary["count"], "users": summary["users"]}
        events[self.asset].extra.update(extra)

    # ------------------------------------------------------------------------------------
    # fetching
    # ------------------------------------------------------------------------------------

    def _fetch_all(
        self,
        users: list[int],
        request: dict[str, Any],
        new_collector: Callable[[int], Any],
        add: Callable[[Any, dict[str, Any]], None],
        done: Callable[[int, Any], None],
        *,
        discard: Callable[[Any], None],
    ) -> dict[str, int]:
        """List every user with a bounded pool sharing one hook; ``done`` runs on this thread.

        ``done(slot, collector)`` is called on the calling thread, in completion order, for
        each user whose listing finished. On the first failure the other workers are told to
        stop, queued users are cancelled and the failure is raised.

        The failing worker itself raises the stop flag (before its future completes), so no
        idle worker starts a queued user while this thread is still waking up: once a user
        has failed, each worker finishes at most the user it already has in hand.
        """
        hook = self.hook
        base = self._hook_stats(hook)
        stop = self._stop = threading.Event()
        progress = _Progress(len(users))
        workers = min(self.max_workers, len(users))
        failures: list[BaseException] = []  # the first real failure, recorded by its worker
        failure_lock = threading.Lock()

        def fail(exc: BaseException) -> None:
            with failure_lock:
                if not failures:
                    failures.append(exc)
            stop.set()

        def stopped() -> BaseException:
            """Why the listing stopped: the first user's failure, else the task is being killed."""
            if failures:
                return failures[0]
            return AirflowFailException("The listing was stopped (the task is being killed)")

        def work(slot: int, user_id: int) -> tuple[int, Any]:
            if stop.is_set():
                raise _Cancelled
            collector = new_collector(slot)
            try:
                for info in hook.iter_user_conversations(
                    user_id,
                    data_type=request["data_type"],
                    inbox_type=request["inbox_type"],
                    skip_member_count=request["skip_member_count"],
                    app_id=request["app_id"],
                    page_size=request["page_size"],
                    max_pages=request["max_pages"],
                ):
                    if stop.is_set():
                        raise _Cancelled
                    row = dict(info)
                    row["ParticipantUserId"] = user_id
                    add(collector, row)
                    progress.row()
            except _Cancelled:
                discard(collector)
                raise
            except RtcImError as exc:
                discard(collector)
                error = _for_user(exc, user_id)
                fail(error)
                raise error from exc
            except BaseException as exc:
                discard(collector)
                fail(exc)
                raise
            return slot, collector

        started = time.monotonic()
        last_log = started
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rtcim-list") as pool:
            pending: set[Future[tuple[int, Any]]] = {
                pool.submit(work, slot, uid) for slot, uid in enumerate(users)
            }
            try:
                while pending:
                    finished, pending = wait(
                        pending, timeout=min(self.progress_interval, 1.0), return_when=FIRST_EXCEPTION
                    )
                    for future in sorted(finished, key=_failures_first):
                        if isinstance(future.exception(), _Cancelled):
                            raise stopped()
                        slot, collector = future.result()
                        done(slot, collector)
                        progress.user_done()
                    if stop.is_set():
                        raise stopped()
                    now = time.monotonic()
                    if now - last_log >= self.progress_interval and pending:
                        last_log = now
                        self._log_progress(progress, self._hook_stats(hook, base), now - started)
            except BaseException:
                stop.set()
                for future in pending:
                    future.cancel()
                raise
        return self._hook_stats(hook, base)

    @staticmethod
    def _hook_stats(hook: Any, base: dict[str, int] | None = None) -> dict[str, int]:
        stats = dict(getattr(hook, "stats", {}) or {})
        out = {key: int(stats.get(key, 0)) for key in ("pages", "requests", "retries")}
        if base:
            out = {key: out[key] - base.get(key, 0) for key in out}
        return out

    def _log_progress(self, progress: _Progress, stats: dict[str, int], elapsed: float) -> None:
        self.log.info(
            "Progress: %d/%d users done, %d conversations, %d pages, %d requests (%d retries), "
            "%.1f requests/s, %.0f conversations/s",
            progress.users_done,
            progress.users,
            progress.rows,
            stats["pages"],
            stats["requests"],
            stats["retries"],
            stats["requests"] / elapsed if elapsed > 0 else 0.0,
            progress.rows / elapsed if elapsed > 0 else 0.0,
        )

    def _log_summary(self, stats: dict[str, int], count: int, users: int, where: str) -> None:
        self.log.info(
            "Listed %d conversations of %d user(s) into %s: %d pages, %d requests, %d retries",
            count,
            users,
            where,
            stats["pages"],
            stats["requests"],
            stats["retries"],
        )


class _Progress:
    """Thread-safe counters for the progress log."""

    def __init__(self, users: int) -> None:
        self.users = users
        self.users_done = 0
        self.rows = 0
        self._lock = threading.Lock()

    def row(self) -> None:
        with self._lock:
            self.rows += 1

    def user_done(self) -> None:
        self.users_done += 1  # only the coordinating thread calls this


def _failures_first(future: Future[Any]) -> int:
    """Sort key: real failures first (their message matters), then cancellations, then results."""
    exc = future.exception()
    if exc is None:
        return 2
    return 1 if isinstance(exc, _Cancelled) else 0


def _for_user(exc: RtcImError, user_id: int) -> Exception:
    """The same error, its message prefixed with the user whose listing failed.

    A non-retryable one becomes :class:`RtcImListingFailed` (an ``AirflowFailException``):
    the task's ``retries`` cannot fix a bad AppId, a bad signature or a broken cursor.
    """
    message = f"listing participant_user_id={user_id} failed: {exc.message}"
    if not exc.retryable:
        return RtcImListingFailed(
            message, code=exc.code, http_status=exc.http_status, request_id=exc.request_id, action=exc.action
        )
    try:
        return type(exc)(
            message,
            code=exc.code,
            http_status=exc.http_status,
            request_id=exc.request_id,
            action=exc.action,
        )
    except Exception:  # pragma: no cover - a subclass with another signature
        return RtcImError(
            message, code=exc.code, http_status=exc.http_status, request_id=exc.request_id, action=exc.action
        )
