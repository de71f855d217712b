"""Operators for the Volcengine RTC IM OpenAPI: every page of a read action, for many keys at once.

One engine, thin operators. :class:`RtcImListingOperator` holds everything the listing
operators share (keys from arguments or a file, a bounded pool of threads over one hook and
one rate limiter, per-key spooling, ordered merge, atomic publish, fail-fast with
cancellation, the XCom cap, the Asset and the summary); each operator only says what its keys
are, which action lists them and how a row is decorated:

* :class:`RtcImGetUserConversationsOperator` -- users' conversations (``GetUserConversations``);
* :class:`RtcImConversationParticipantsOperator` -- conversations' members
  (``ScanConversationParticipantList``);
* :class:`RtcImConversationMessagesOperator` -- conversations' messages
  (``GetConversationMessages``), optionally incremental with a checkpoint.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_rtcim.compat import AirflowFailException, Asset, BaseOperator
from airflow_provider_rtcim.core import checkpoint, validation
from airflow_provider_rtcim.core.actions import (
    GET_CONVERSATION_MESSAGES,
    GET_USER_CONVERSATIONS,
    SCAN_CONVERSATION_PARTICIPANTS,
    PagedAction,
)
from airflow_provider_rtcim.core.defaults import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_PAGES,
    DEFAULT_MAX_WORKERS,
    DEFAULT_MAX_XCOM_ROWS,
    DEFAULT_PAGE_SIZE,
)
from airflow_provider_rtcim.core.errors import RtcImError
from airflow_provider_rtcim.core.fanout import Cancelled, FanOut, StoppedError
from airflow_provider_rtcim.core.keys import (
    conversation_ids_from_jsonl,
    distinct_keys,
    keys_from_lines,
    parse_key_list,
    parse_key_range,
)
from airflow_provider_rtcim.core.sink import JsonlSink, Spool, is_gzip_name, output_asset_uri
from airflow_provider_rtcim.exceptions import RtcImApiError, RtcImInvalidArgument, RtcImListingFailed
from airflow_provider_rtcim.storage import (
    AtomicFile,
    HashingWriter,
    check_path,
    checkpoint_layouts,
    file_digest,
    open_lines,
    read_bytes_if_exists,
    remove_if_exists,
    remove_stale_temps,
    to_storage_path,
    write_atomically,
)

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import Context, ObjectStoragePath
    from airflow_provider_rtcim.core.pagination import Listing
    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

__all__ = [
    "RtcImConversationMessagesOperator",
    "RtcImConversationParticipantsOperator",
    "RtcImGetUserConversationsOperator",
    "RtcImListingFailed",
    "RtcImListingOperator",
    "combine_summaries",
    "count_distinct_keys",
]


class _XComLimitExceeded(Exception):
    """Raised inside a worker when the XCom row budget is used up."""


def _utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


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
            check_path(kwargs.get("output_path"), rendered=False)
            derived = _derive_asset(kwargs.get("output_path"), kwargs.get("asset"))
            if derived is not None:
                kwargs["outlets"] = _with_outlet(kwargs.get("outlets"), derived)
            return base_partial(**kwargs)

        return partial


def combine_summaries(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One summary for a whole run from the summaries of its mapped tasks (in map order).

    ``paths`` lists every file, ``count`` and the key counts (``users``, ``conversations``),
    ``pages``, ``requests`` and ``retries`` are added up, ``user_id_type`` is kept when every
    summary has the same one, ``fetch_started_at`` is the
    earliest start and ``fetch_finished_at`` the latest end. This is what a run's single
    Asset event should carry (mapped tasks must not each publish the Asset: a consumer would
    run on fragments).
    """
    items = [dict(s) for s in summaries if s]
    out: dict[str, Any] = {"paths": [], "count": 0, "tasks": len(items)}
    for s in items:
        out["paths"].extend(s.get("paths") or ([s["path"]] if s.get("path") else []))
        for key in ("count", "users", "conversations", "pages", "requests", "retries"):
            if key in s:
                out[key] = out.get(key, 0) + int(s[key])
    kinds = {s["user_id_type"] for s in items if s.get("user_id_type")}
    if len(kinds) == 1:
        out["user_id_type"] = kinds.pop()
    starts = [s["fetch_started_at"] for s in items if s.get("fetch_started_at")]
    ends = [s["fetch_finished_at"] for s in items if s.get("fetch_finished_at")]
    if starts:
        out["fetch_started_at"] = min(starts)
    if ends:
        out["fetch_finished_at"] = max(ends)
    return out


def count_distinct_keys(path: str | ObjectStoragePath, *, kind: str) -> int:
    """How many distinct keys a file holds, streamed (for planning mapped batches).

    ``kind="user_ids"``: a text file of user ids, one a line (what ``participant_user_ids_from``
    reads); ``kind="conversations"``: the conversations operator's JSON Lines (what
    ``conversations_from`` reads: its distinct ``ConversationShortId`` values).
    """
    if kind == "user_ids":
        keys: Iterable[Any] = keys_from_lines(
            open_lines(path, field="path"), source=str(path), validate=validation.validate_user_id
        )
    elif kind == "conversations":
        keys = conversation_ids_from_jsonl(
            open_lines(path, field="path"),
            source=str(path),
            validate=validation.validate_conversation_short_id,
        )
    else:
        raise ValueError(f"kind must be 'user_ids' or 'conversations', got {kind!r}")
    return sum(1 for _ in distinct_keys(keys))


class _Progress:
    """Thread-safe counters for the progress log."""

    def __init__(self, keys: int) -> None:
        self.keys = keys
        self.keys_done = 0
        self.rows = 0
        self._lock = threading.Lock()

    def row(self) -> None:
        with self._lock:
            self.rows += 1


class _Keys:
    """The task's keys, checked once in full before any request, then streamed again."""

    def __init__(self, make: Callable[[], Iterator[Any]], count: int, duplicates: int) -> None:
        self._make = make
        self.count = count
        self.duplicates = duplicates

    def __iter__(self) -> Iterator[Any]:
        return self._make()


class RtcImListingOperator(BaseOperator):
    """The shared engine of the listing operators (not used directly: subclass it).

    A subclass sets :attr:`action` (a :class:`~airflow_provider_rtcim.core.actions.PagedAction`),
    :attr:`key_field` (the argument holding one key or a list), :attr:`keys_from_field` (the
    argument naming a file of keys), :attr:`keys_noun` (the summary's count of keys) and
    :attr:`rows_noun`, and implements :meth:`_request` (its checked arguments),
    :meth:`_listing` (the hook call for one key) and :meth:`_decorate` (the row for an item).
    Everything else (keys, threads, output, failures, Asset, summary) is here.

    Shared arguments: ``app_id``, ``page_size``, ``output_path``, ``asset``, ``key_range``,
    ``rtcim_conn_id``, ``max_workers``, ``max_qps``, ``max_pages``, ``max_xcom_rows`` (see
    :class:`RtcImGetUserConversationsOperator`).
    """

    action: ClassVar[PagedAction]
    key_field: ClassVar[str]
    keys_from_field: ClassVar[str]
    keys_noun: ClassVar[str]
    rows_noun: ClassVar[str]
    asset_extra_keys: ClassVar[tuple[str, ...]] = ()
    """Summary fields beyond the shared ones that go into the Asset event's ``extra`` too."""

    ui_color = "#e8f4ff"
    progress_interval: float = 10.0
    """Seconds between progress log lines."""

    partial = _PartialWithAsset()

    def __init__(
        self,
        *,
        app_id: int | str | None = None,
        page_size: int | str = DEFAULT_PAGE_SIZE,
        output_path: str | ObjectStoragePath | None = None,
        asset: Asset | str | bool | None = None,
        key_range: Sequence[int | None] | str | None = None,
        rtcim_conn_id: str = DEFAULT_CONN_ID,
        max_workers: int = DEFAULT_MAX_WORKERS,
        max_qps: float | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        max_xcom_rows: int = DEFAULT_MAX_XCOM_ROWS,
        **kwargs: Any,
    ) -> None:
        check_path(output_path, rendered=False)
        derived = _derive_asset(output_path, asset)
        if derived is not None:
            kwargs["outlets"] = _with_outlet(kwargs.get("outlets"), derived)
        super().__init__(**kwargs)
        self.app_id = app_id
        self.page_size = page_size
        self.output_path = output_path
        self.asset = derived
        self.key_range = key_range
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
        self._engine: FanOut[Any, Any] | None = None  # made in execute(): an Event cannot be deep-copied

    @staticmethod
    def _check_key_source(value: Any, from_value: Any, *, key_field: str, from_field: str) -> None:
        if value is None and from_value is None:
            raise ValueError(f"pass {key_field} (one id or a list) or {from_field} (a file of them)")
        if value is not None and from_value is not None:
            raise ValueError(f"pass either {key_field} or {from_field}, not both")

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
        if self._engine is not None:
            self._engine.stop.set()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the API and key file read, the file written (see ``docs/lineage.md``)."""
        from airflow_provider_rtcim.operators.lineage import operator_lineage

        return operator_lineage(self, getattr(self, "_lineage_summary", None))

    # -- what a subclass says -----------------------------------------------------------------

    def _key_values(self) -> tuple[Any, Any]:
        """``(value of key_field, value of keys_from_field)``."""
        return getattr(self, self.key_field), getattr(self, self.keys_from_field)

    def _validate_key(self, value: Any, field: str) -> Any:
        raise NotImplementedError

    def _parse_keys(self, value: Any) -> list[Any]:
        """The keys given in ``key_field`` (one, a list, or a rendered template of either)."""
        return parse_key_list(value, field=self.key_field, validate=self._validate_key)

    def _summary_extra(self, request: dict[str, Any]) -> dict[str, Any]:
        """Fields a subclass adds to the summary (and, for :attr:`asset_extra_keys`, the Asset event)."""
        return {}

    def _read_key_file(self, path: Any) -> Iterator[Any]:
        """The keys of the file named by ``keys_from_field`` (duplicates included)."""
        raise NotImplementedError

    def _request(self) -> dict[str, Any]:
        """The subclass's checked (templated) arguments, for :meth:`_listing`."""
        return {}

    def _listing(self, hook: RtcImHook, key: Any, request: dict[str, Any]) -> Listing:
        raise NotImplementedError

    def _decorate(self, row: dict[str, Any], key: Any) -> dict[str, Any]:
        return row

    def _describe(self, request: dict[str, Any]) -> str:
        """The arguments worth a mention in the start log line."""
        return ""

    # -- keys ---------------------------------------------------------------------------------

    def _keys(self) -> _Keys:
        """Check every key (one pass over a file) before any request; then stream them."""
        value, from_value = self._key_values()
        self._check_key_source(value, from_value, key_field=self.key_field, from_field=self.keys_from_field)
        key_range = parse_key_range(self.key_range)
        if value is not None:
            keys = self._parse_keys(value)

            def source() -> Iterator[Any]:
                return iter(keys)
        else:
            path = from_value

            def source() -> Iterator[Any]:
                return self._read_key_file(path)

        duplicates = [0]

        def dup(_key: Any) -> None:
            duplicates[0] += 1

        count = sum(1 for _ in distinct_keys(source(), key_range=key_range, on_duplicate=dup))
        return _Keys(lambda: distinct_keys(source(), key_range=key_range), count, duplicates[0])

    # -- execute ------------------------------------------------------------------------------

    def execute(self, context: Context) -> list[dict[str, Any]] | dict[str, Any]:
        out: AtomicFile | None = None
        try:
            try:
                request = self._request()
                request["page_size"] = validation.validate_page_size(self.page_size)
                request["max_pages"] = self.max_pages
                request["app_id"] = self._resolve_app_id()
                keys = self._keys()
                self._prepare(keys, request, context)
                if self.output_path is not None:
                    out = AtomicFile.open(self.output_path)  # the writability probe
            except ValueError as exc:  # the same arguments would fail every retry
                raise RtcImInvalidArgument(str(exc)) from exc
            if keys.duplicates:
                self.log.warning(
                    "%s lists %d ids more than once; each is listed once", self.key_field, keys.duplicates
                )
            if out is None:
                return self._execute_to_xcom(keys, request)
            return self._execute_to_file(keys, request, out, context)
        finally:
            if out is not None:
                out.discard()  # a no-op once published
            if "hook" in self.__dict__:
                self.hook.close()

    def _prepare(self, keys: _Keys, request: dict[str, Any], context: Context) -> None:
        """A subclass's last checks before any request (e.g. reading a checkpoint)."""

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

    def _log_start(self, keys: _Keys, request: dict[str, Any], destination: str) -> None:
        details = self._describe(request)
        self.log.info(
            "Listing %s of %d %s into %s (app_id=%s%s, page_size=%s, workers=%d)",
            self.rows_noun,
            keys.count,
            self.keys_noun if keys.count != 1 else self.keys_noun.rstrip("s"),
            destination,
            request["app_id"],
            f", {details}" if details else "",
            request["page_size"],
            max(1, min(self.max_workers, keys.count)),
        )

    def _execute_to_xcom(self, keys: _Keys, request: dict[str, Any]) -> list[dict[str, Any]]:
        limit = self.max_xcom_rows
        lock = threading.Lock()
        total = [0]
        rows: list[dict[str, Any]] = []

        def add(collector: list[dict[str, Any]], row: dict[str, Any]) -> None:
            with lock:
                total[0] += 1
                if total[0] > limit:
                    raise _XComLimitExceeded
            collector.append(row)

        self._log_start(keys, request, "XCom")
        try:
            stats = self._fetch_all(
                keys,
                request,
                new_collector=list,
                add=add,
                finish=lambda c: None,
                merge=rows.extend,
                discard=lambda c: None,
            )
        except _XComLimitExceeded:
            raise AirflowFailException(
                f"The listing has more than max_xcom_rows={limit} rows: too many for XCom, which "
                f"lives in the metadata database. Set output_path (e.g. 's3://bucket/rtcim/"
                f"{self.rows_noun}.jsonl.gz') to write JSON Lines to object storage, or raise max_xcom_rows."
            ) from None
        self._log_summary(stats, len(rows), keys.count, "XCom")
        return rows

    def _execute_to_file(
        self, keys: _Keys, request: dict[str, Any], out: AtomicFile, context: Context
    ) -> dict[str, Any]:
        import tempfile

        sink = JsonlSink(out.raw, compress=is_gzip_name(out.target.name))
        started = _utcnow()
        with tempfile.TemporaryDirectory(prefix="rtcim-spool-") as spool_dir:
            self._log_start(keys, request, str(out.target))
            stats = self._fetch_all(
                keys,
                request,
                new_collector=lambda: Spool(spool_dir),
                add=lambda spool, row: spool.write_row(row),
                finish=lambda spool: spool.close(),  # no file descriptor while it waits its turn
                merge=lambda spool: spool.drain_into(sink),
                discard=lambda spool: spool.discard(),
            )
        sink.close()
        summary = {
            "path": str(out.target),
            "paths": [str(out.target)],
            "count": sink.count,
            self.keys_noun: keys.count,
            **self._summary_extra(request),
            **stats,
            "fetch_started_at": started,
            "fetch_finished_at": _utcnow(),
        }
        self._publish(out, summary, context)
        self._log_summary(stats, sink.count, keys.count, str(out.target))
        self._attach_asset_event(context, summary)
        return summary

    def _publish(self, out: AtomicFile, summary: dict[str, Any], context: Context) -> None:
        """Rename the complete output into place (a subclass may commit more with it)."""
        out.publish()

    def _attach_asset_event(self, context: Context, summary: dict[str, Any]) -> None:
        self._lineage_summary = summary  # every published run passes here; for OpenLineage
        if self.asset is None:
            return
        try:
            events = context["outlet_events"]
        except KeyError:
            return
        keys = (
            "path",
            "paths",
            "count",
            self.keys_noun,
            *self.asset_extra_keys,
            "fetch_started_at",
            "fetch_finished_at",
        )
        events[self.asset].extra.update({k: summary[k] for k in keys if k in summary})

    # -- fetching -----------------------------------------------------------------------------

    def _fetch_all(
        self,
        keys: _Keys,
        request: dict[str, Any],
        *,
        new_collector: Callable[[], Any],
        add: Callable[[Any, dict[str, Any]], None],
        finish: Callable[[Any], None],
        merge: Callable[[Any], None],
        discard: Callable[[Any], None],
    ) -> dict[str, int]:
        """List every key on the fan-out engine; ``merge`` runs on this thread, in key order."""
        hook = self.hook
        base = self._hook_stats(hook)
        progress = _Progress(keys.count)
        started = time.monotonic()
        last_log = [started]

        def work(slot: int, key: Any) -> tuple[Any, Any]:
            collector = new_collector()
            try:
                listing = self._listing(hook, key, request)
                for item in listing:
                    engine.check_stop()
                    add(collector, self._decorate(item, key))
                    progress.row()
            except Cancelled:
                discard(collector)
                raise
            except RtcImError as exc:
                discard(collector)
                raise _for_key(exc, self.key_field, key) from exc
            except BaseException:
                discard(collector)
                raise
            finish(collector)
            if listing.duplicates:
                self.log.info(
                    "%s %s: skipped %d duplicate %s across pages",
                    self.key_field,
                    key,
                    listing.duplicates,
                    self.rows_noun,
                )
            return collector, listing

        def on_done(slot: int, key: Any, result: tuple[Any, Any]) -> None:
            collector, listing = result
            merge(collector)
            self._key_done(key, listing)
            progress.keys_done += 1

        def on_tick() -> None:
            now = time.monotonic()
            if now - last_log[0] >= self.progress_interval:
                last_log[0] = now
                self._log_progress(progress, self._hook_stats(hook, base), now - started)

        engine = self._engine = FanOut(
            work=work,
            on_done=on_done,
            discard=lambda result: discard(result[0]),
            max_workers=max(1, min(self.max_workers, keys.count)),
            on_tick=on_tick,
            tick=min(self.progress_interval, 1.0),
        )
        try:
            engine.run(keys)
        except StoppedError as exc:
            raise AirflowFailException(f"The listing was stopped: {exc}") from None
        return self._hook_stats(hook, base)

    def _key_done(self, key: Any, listing: Listing) -> None:
        """Called on the coordinating thread, in key order, once a key's rows are merged."""

    @staticmethod
    def _hook_stats(hook: Any, base: dict[str, int] | None = None) -> dict[str, int]:
        stats = dict(getattr(hook, "stats", {}) or {})
        out = {key: int(stats.get(key, 0)) for key in ("pages", "requests", "retries")}
        if base:
            out = {key: out[key] - base.get(key, 0) for key in out}
        return out

    def _log_progress(self, progress: _Progress, stats: dict[str, int], elapsed: float) -> None:
        self.log.info(
            "Progress: %d/%d %s done, %d %s, %d pages, %d requests (%d retries), %.1f requests/s, %.0f %s/s",
            progress.keys_done,
            progress.keys,
            self.keys_noun,
            progress.rows,
            self.rows_noun,
            stats["pages"],
            stats["requests"],
            stats["retries"],
            stats["requests"] / elapsed if elapsed > 0 else 0.0,
            progress.rows / elapsed if elapsed > 0 else 0.0,
            self.rows_noun,
        )

    def _log_summary(self, stats: dict[str, int], count: int, keys: int, where: str) -> None:
        self.log.info(
            "Listed %d %s of %d %s into %s: %d pages, %d requests, %d retries",
            count,
            self.rows_noun,
            keys,
            f"{self.keys_noun.rstrip('s')}(s)",
            where,
            stats["pages"],
            stats["requests"],
            stats["retries"],
        )


def _for_key(exc: RtcImError, field: str, key: Any) -> RtcImApiError:
    """The same error, its message prefixed with the key whose listing failed.

    A non-retryable one becomes :class:`RtcImListingFailed` (an ``AirflowFailException``):
    the task's ``retries`` cannot fix a bad AppId, a bad signature or a broken cursor.
    """
    message = f"listing {field}={key!r} failed: {exc.message}"
    if isinstance(key, int):
        message = f"listing {field}={key} failed: {exc.message}"
    if not exc.retryable:
        return RtcImListingFailed.from_error(exc, message)
    return RtcImApiError.from_error(exc, message)


class _ConversationListingOperator(RtcImListingOperator):
    """Keys that are conversations: ``conversation_short_id`` or ``conversations_from``."""

    key_field = "conversation_short_id"
    keys_from_field = "conversations_from"
    keys_noun = "conversations"

    def __init__(
        self,
        *,
        conversation_short_id: int | str | Sequence[int | str] | None = None,
        conversations_from: str | ObjectStoragePath | None = None,
        **kwargs: Any,
    ) -> None:
        self._check_key_source(
            conversation_short_id,
            conversations_from,
            key_field="conversation_short_id",
            from_field="conversations_from",
        )
        super().__init__(**kwargs)
        self.conversation_short_id = conversation_short_id
        self.conversations_from = conversations_from

    def _validate_key(self, value: Any, field: str) -> int:
        return validation.validate_conversation_short_id(value, field)

    def _read_key_file(self, path: Any) -> Iterator[int]:
        return conversation_ids_from_jsonl(
            open_lines(path, field="conversations_from"),
            source=f"conversations_from {str(path)!r}",
            validate=validation.validate_conversation_short_id,
        )

    def _decorate(self, row: dict[str, Any], key: Any) -> dict[str, Any]:
        row.setdefault("ConversationShortId", key)
        return row


class RtcImGetUserConversationsOperator(RtcImListingOperator):
    """List every conversation of one or many users (``GetUserConversations``), page by page.

    Each row is the ``ConversationInfo`` exactly as the API returned it (unknown fields kept,
    int64 ids exact) plus one top-level field, ``ParticipantUserId``: the user it was listed
    for (``ParticipantUserIdStr``, the id exactly as given, when ``user_id_type="str"``). The
    row shape is the same for one user or many, in XCom or in a file, so mapped tasks and
    batch tasks write the same schema.

    **String user ids.** ``user_id_type="str"`` (or the connection's ``extra.user_id_type``)
    treats every user id as opaque text, sent verbatim as ``ParticipantUserIdStr``: "007"
    stays "007", surrounding whitespace and empty ids are errors (never trimmed). A rendered
    template is a list when it is written as one (a JSON list, or the list literal Jinja
    renders from a list of strings), else one id: commas never split a string id. In a file
    of ids only the line ending is dropped, so spaces inside a line are part of the id.

    **Ordering and duplicates.** ``data_type`` defaults to 1 (from the database, ordered by
    creation time): it is stable while you page. With ``DataType`` 0 (cache, most recently
    active first) the order changes as conversations become active during the listing, so
    a conversation can show up on two pages or slip past the cursor. Whatever the data
    type, each user's rows are de-duplicated by ``ConversationShortId``.

    **Keys.** ``participant_user_id`` (one id, a list, or a rendered template of either), or
    ``participant_user_ids_from``: the path or URL of a text file with one id per line
    (gzip when named ``.gz``), streamed, so a million users never sit in memory at once.
    ``key_range=[start, stop]`` takes only the distinct ids ``start..stop-1`` (in order): the
    way mapped tasks each take a batch of one file. Every id is checked before the first
    request.

    **Output.** Without ``output_path`` the task returns the list of rows (XCom); XCom lives
    in the metadata database, so above ``max_xcom_rows`` rows the task fails (without
    pushing) and asks for ``output_path``. With ``output_path`` (a local path or any
    ``ObjectStoragePath`` URL: ``file://``, ``s3://``, ``gs://``, ``memory://`` ...) rows are
    streamed as JSON Lines (gzip when the name ends in ``.gz``) to a temporary object next
    to the target (``.<name>.<token>.tmp``), which is renamed to the final name only when
    every user is complete: a failed or retried run leaves no partial file (and a run that
    publishes deletes the temporary objects of earlier tries that were killed). Rows are in a
    deterministic order (users in input order, each user's rows in API order), so a rerun
    writes the same file. The task then returns a summary ``{"path", "paths", "count",
    "users", "user_id_type", "pages", "requests", "retries", "fetch_started_at",
    "fetch_finished_at"}`` (the
    last two: when this task really started and finished fetching, UTC). Memory and open
    files stay flat, bounded by ``max_workers``: each user's rows are spooled to a local
    temporary file, closed when the user is done, and appended in input order.

    **Asset.** When writing a file the task declares an ``Asset`` outlet (so downstream DAGs
    can be scheduled on it) and attaches ``{"path", "paths", "count", "users", "user_id_type",
    "fetch_started_at", "fetch_finished_at"}`` as the asset event's ``extra``. The Asset is
    ``asset`` when given (an ``Asset`` or a URI), else it is derived at DAG-parse time from
    the **un-rendered** ``output_path``: a static path is its own Asset (a local path
    becomes ``file:///abs/path``); a templated path maps to the static directory prefix
    before the first ``{{`` (``s3://bkt/rtcim/{{ ds }}/x.jsonl`` -> ``s3://bkt/rtcim``). A
    connection id in the URL is dropped. ``asset=False`` declares nothing: use it for mapped
    tasks, and publish the Asset once per run from a task after them (see
    :func:`combine_summaries`), or a consumer runs on fragments.

    **Concurrency.** A user's pages are sequential (each needs the previous ``NextCursor``);
    many users are fetched concurrently by ``max_workers`` threads sharing one hook (one
    HTTP session, one rate limiter at ``max_qps``), so a batch runs near the API's 100 QPS
    ceiling without drawing 429s. Dynamic task mapping also works.

    **Failures.** Arguments are checked (after templating) before the first request, and so
    is the output: an unwritable ``output_path`` is detected by creating the (empty)
    temporary object first, on object stores too. Invalid arguments raise
    :class:`~airflow_provider_rtcim.exceptions.RtcImInvalidArgument` (a ``ValueError`` and an
    ``AirflowFailException``: no task retry is spent on them). A user whose listing fails
    (after the hook's retries) fails the task with that user's id, the API ``Code`` and the
    ``RequestId``; the other workers stop and nothing is published (directories the run
    created are removed again when empty). A failure no retry can fix (bad AppId, bad
    signature, a pagination anomaly ...) raises :class:`RtcImListingFailed`, an
    ``AirflowFailException``: the task's ``retries`` are skipped. A transient one that
    outlasted the hook's retries raises ``RtcImApiError``, and the task's retries apply.

    :param participant_user_id: a user id or a list of user ids (ints or numeric strings;
        a rendered template of a JSON list or of comma-separated ids works too; with
        ``user_id_type="str"``: strings, see *String user ids*). Templated.
    :param participant_user_ids_from: instead, the path or URL of a text file of user ids,
        one a line. Templated.
    :param user_id_type: ``"int"`` or ``"str"``; None (default) uses the connection's
        ``extra.user_id_type`` (``"int"`` when unset).
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
    :param key_range: ``[start, stop]``: only the distinct keys ``start..stop-1``. Templated.
    :param rtcim_conn_id: the ``rtcim`` connection.
    :param max_workers: users fetched concurrently (default 16; capped to the number of users).
    :param max_qps: client-side request rate cap shared by all workers (None: the
        connection's ``extra.max_qps`` or the hook's default of 95, 5% under the API's 100; 0: no
        client-side cap).
    :param max_pages: cap on pages per user, a guard against a cursor that never ends.
    :param max_xcom_rows: the most rows returned through XCom (default 10,000).
    """

    action = GET_USER_CONVERSATIONS
    key_field = "participant_user_id"
    keys_from_field = "participant_user_ids_from"
    keys_noun = "users"
    rows_noun = "conversations"
    asset_extra_keys = ("user_id_type",)

    template_fields: Sequence[str] = (
        "participant_user_id",
        "participant_user_ids_from",
        "app_id",
        "data_type",
        "inbox_type",
        "skip_member_count",
        "page_size",
        "output_path",
        "key_range",
    )

    def __init__(
        self,
        *,
        participant_user_id: int | str | Sequence[int | str] | None = None,
        participant_user_ids_from: str | ObjectStoragePath | None = None,
        data_type: int | str = 1,
        inbox_type: int | str = 0,
        skip_member_count: bool | str = False,
        user_id_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._check_key_source(
            participant_user_id,
            participant_user_ids_from,
            key_field="participant_user_id",
            from_field="participant_user_ids_from",
        )
        super().__init__(**kwargs)
        self.participant_user_id = participant_user_id
        self.participant_user_ids_from = participant_user_ids_from
        self.data_type = data_type
        self.inbox_type = inbox_type
        self.skip_member_count = skip_member_count
        self.user_id_type = None if user_id_type is None else validation.validate_user_id_type(user_id_type)

    def _user_id_type(self) -> str:
        """The task's ``user_id_type``, else the connection's (``"int"`` when unset)."""
        if self.user_id_type is not None:
            return self.user_id_type
        return self.hook.resolve_user_id_type()

    def _validate_key(self, value: Any, field: str) -> int | str:
        return validation.check_user_id(value, field, self._user_id_type())

    def _parse_keys(self, value: Any) -> list[Any]:
        kind = self._user_id_type()
        return parse_key_list(
            value,
            field=self.key_field,
            validate=validation.user_id_validator(kind),
            opaque=kind == "str",
        )

    def _read_key_file(self, path: Any) -> Iterator[int | str]:
        kind = self._user_id_type()
        return keys_from_lines(
            open_lines(path, field=self.keys_from_field),
            source=f"{self.keys_from_field} {str(path)!r}",
            validate=validation.user_id_validator(kind),
            strip=kind == "int",  # a string id keeps its spaces: only the line ending goes
        )

    def _request(self) -> dict[str, Any]:
        return {
            "data_type": validation.validate_data_type(self.data_type),
            "inbox_type": validation.validate_inbox_type(self.inbox_type),
            "skip_member_count": validation.to_bool(self.skip_member_count, "skip_member_count"),
            "user_id_type": self._user_id_type(),
        }

    def _describe(self, request: dict[str, Any]) -> str:
        return (
            f"data_type={request['data_type']}, inbox_type={request['inbox_type']}, "
            f"user_id_type={request['user_id_type']}"
        )

    def _summary_extra(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"user_id_type": request["user_id_type"]}

    def _listing(self, hook: RtcImHook, key: Any, request: dict[str, Any]) -> Listing:
        return hook.iter_user_conversations(
            key,
            data_type=request["data_type"],
            inbox_type=request["inbox_type"],
            skip_member_count=request["skip_member_count"],
            app_id=request["app_id"],
            page_size=request["page_size"],
            max_pages=request["max_pages"],
            user_id_type=request["user_id_type"],
        )

    def _decorate(self, row: dict[str, Any], key: Any) -> dict[str, Any]:
        row = dict(row)
        # The key's type says the kind: a str key was checked as a string id, an int as an int.
        row["ParticipantUserIdStr" if isinstance(key, str) else "ParticipantUserId"] = key
        return row


class RtcImConversationParticipantsOperator(_ConversationListingOperator):
    """List every member of one or many conversations (``ScanConversationParticipantList``).

    Rows are the participants exactly as the API returned them (they carry
    ``ConversationShortId``; unknown fields kept, int64 ids exact), each member once per
    conversation (by ``ParticipantUserId``, or ``ParticipantUserIdStr`` for string ids). A
    negative ``NextCursor`` ends a member listing whatever ``HasMore`` says.

    Keys: ``conversation_short_id`` (one id, a list, or a rendered JSON list; templated), or
    ``conversations_from`` (templated): the path or URL of a JSON Lines file written by
    :class:`RtcImGetUserConversationsOperator`, whose distinct ``ConversationShortId`` values,
    in file order, are the keys. Everything else (output to XCom or JSON Lines, atomic
    publish, Asset, summary with ``conversations``, ``key_range``, failures, scaling) is as
    for :class:`RtcImGetUserConversationsOperator`.

    :param reverse: newest members first (default: by join time ascending). Templated.
    :param only_user_ids: members carry only their ids (cheaper). Templated.
    :param scan_online: live groups: only the online members. Templated.
    :param mark_type: with ``scan_online``: only online members with this mark. Templated.
    """

    action = SCAN_CONVERSATION_PARTICIPANTS
    rows_noun = "members"

    template_fields: Sequence[str] = (
        "conversation_short_id",
        "conversations_from",
        "app_id",
        "reverse",
        "only_user_ids",
        "scan_online",
        "mark_type",
        "page_size",
        "output_path",
        "key_range",
    )

    def __init__(
        self,
        *,
        reverse: bool | str = False,
        only_user_ids: bool | str = False,
        scan_online: bool | str = False,
        mark_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.reverse = reverse
        self.only_user_ids = only_user_ids
        self.scan_online = scan_online
        self.mark_type = mark_type

    def _request(self) -> dict[str, Any]:
        mark = self.mark_type
        if isinstance(mark, str) and not mark.strip():
            mark = None
        if mark is not None and not isinstance(mark, str):
            raise ValueError(f"mark_type must be a string or None, got {mark!r}")
        return {
            "reverse": validation.to_bool(self.reverse, "reverse"),
            "only_user_ids": validation.to_bool(self.only_user_ids, "only_user_ids"),
            "scan_online": validation.to_bool(self.scan_online, "scan_online"),
            "mark_type": mark,
        }

    def _describe(self, request: dict[str, Any]) -> str:
        return ", ".join(f"{k}={request[k]}" for k in ("reverse", "only_user_ids", "scan_online"))

    def _listing(self, hook: RtcImHook, key: Any, request: dict[str, Any]) -> Listing:
        return hook.iter_conversation_participants(
            key,
            app_id=request["app_id"],
            reverse=request["reverse"],
            only_user_ids=request["only_user_ids"],
            scan_online=request["scan_online"],
            mark_type=request["mark_type"],
            page_size=request["page_size"],
            max_pages=request["max_pages"],
        )


class _AlreadyCommitted(Exception):
    """This run's output and checkpoint are already committed (a retry): return its summary."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__("already committed")
        self.summary = summary


class _IncrementalRun:
    """One incremental run's checkpoint state (see :mod:`airflow_provider_rtcim.core.checkpoint`)."""

    def __init__(
        self,
        *,
        target: ObjectStoragePath,
        pending: ObjectStoragePath,
        committed: checkpoint.Checkpoint | None,
        app_id: int,
        shard: tuple[int, int] | None,
        run: dict[str, Any],
    ) -> None:
        self.target = target
        self.pending = pending
        self.app_id = app_id
        self.shard = shard
        self.run = run
        self.generation = committed.generation if committed is not None else 0
        self.bookmarks: dict[int, checkpoint.Bookmark] = dict(committed.bookmarks) if committed else {}
        self.updates: dict[int, checkpoint.Bookmark] = {}
        self.changed = 0
        self.writer: HashingWriter | None = None


def _run_identity(context: Any, task_id: str) -> dict[str, Any]:
    """What names this task run across its tries: dag, run, task and map index (not the try)."""
    ti = context.get("ti") if hasattr(context, "get") else None
    dag = context.get("dag") if hasattr(context, "get") else None
    run_id = context.get("run_id") if hasattr(context, "get") else None
    map_index = getattr(ti, "map_index", None)
    return {
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None),
        "run_id": getattr(ti, "run_id", None) or run_id,
        "task_id": getattr(ti, "task_id", None) or task_id,
        "map_index": map_index if isinstance(map_index, int) else -1,
    }


class RtcImConversationMessagesOperator(_ConversationListingOperator):
    """List the messages of one or many conversations (``GetConversationMessages``): all of them,
    or, with ``checkpoint_path``, only those sent since the last committed run.

    Rows are the messages exactly as the API returned them (they carry
    ``ConversationShortId``; unknown fields kept, int64 ids exact, ``Content`` untouched),
    each ``MessageId`` once, conversations in key order and each conversation's messages in
    API order (oldest first; newest first with ``reverse``). ``NewCursor`` is fed back
    verbatim. Keys (``conversation_short_id`` or ``conversations_from``), outputs, Asset,
    summary, ``key_range``, failures and scaling are as for
    :class:`RtcImConversationParticipantsOperator`.

    **Incremental sync** (``checkpoint_path``; see ``docs/incremental.md``). Each
    conversation's listing starts at its committed bookmark (the ``NewCursor`` its last
    listing ended with, and the last ``IndexInConversation`` taken: messages not past it are
    dropped, so a cursor that restarts or repeats doubles nothing); conversations the
    checkpoint does not know start from the beginning. The output holds exactly the messages
    sent since the committed checkpoint, and the new checkpoint is committed together with it
    (pending checkpoint, publish, commit): a run that fails or is killed anywhere commits
    neither, and the next run or retry rolls a half-finished commit forward or back. A retry
    of a run that did commit returns that run's summary and rewrites nothing. It needs
    ``output_path`` (a new file each run: template it with ``{{ run_id }}``) and
    ``reverse=False``. A run in which nothing changed costs one request per conversation
    (the API's floor) and publishes an empty file. The summary and the Asset extra gain
    ``incremental``, ``checkpoint``, ``checkpoint_generation``, ``conversations_changed``.

    **Shards.** ``shard_index`` / ``shard_count`` keep only the conversations whose stable
    hash (:func:`~airflow_provider_rtcim.core.checkpoint.shard_of`) falls in this shard, so
    mapped tasks (``.expand(shard_index=range(N))``) can each take one shard of the same key
    list. With a checkpoint each shard owns its own file, derived from ``checkpoint_path``
    (``messages.json`` -> ``messages.shard-2-of-8.json``): do not template it with the map
    index. Changing the shard count fails before any request and says how to carry the
    bookmarks over.

    :param reverse: newest first (live groups only allow this; not with a checkpoint). Templated.
    :param checkpoint_path: where the bookmarks live: an absolute path or URL, the same every
        run (None: list everything). Templated.
    :param shard_index: this task's shard, 0..shard_count-1. Templated.
    :param shard_count: how many shards the conversations are split into. Templated.
    """

    action = GET_CONVERSATION_MESSAGES
    rows_noun = "messages"
    asset_extra_keys = (
        "incremental",
        "checkpoint",
        "checkpoint_generation",
        "conversations_changed",
        "shard_index",
        "shard_count",
    )

    template_fields: Sequence[str] = (
        "conversation_short_id",
        "conversations_from",
        "app_id",
        "reverse",
        "page_size",
        "output_path",
        "key_range",
        "checkpoint_path",
        "shard_index",
        "shard_count",
    )

    def __init__(
        self,
        *,
        reverse: bool | str = False,
        checkpoint_path: str | ObjectStoragePath | None = None,
        shard_index: int | str | None = None,
        shard_count: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        check_path(checkpoint_path, field="checkpoint_path", rendered=False)
        if checkpoint_path is not None:
            self._check_incremental(kwargs.get("output_path"), reverse)
        super().__init__(**kwargs)
        self.reverse = reverse
        self.checkpoint_path = checkpoint_path
        self.shard_index = shard_index
        self.shard_count = shard_count
        self._incr: _IncrementalRun | None = None

    @staticmethod
    def _check_incremental(output_path: Any, reverse: Any) -> None:
        if output_path is None:
            raise ValueError(
                "checkpoint_path needs output_path: an incremental run commits its checkpoint "
                "together with its output file, which XCom cannot be part of. Set output_path "
                "(a new file each run, e.g. '.../messages/{{ run_id }}.jsonl.gz')"
            )
        if reverse is True or (isinstance(reverse, str) and reverse.strip().lower() in ("true", "1", "yes")):
            raise ValueError(
                "checkpoint_path needs reverse=False: a bookmark is where the next message will "
                "appear, and a newest-first listing never reaches it"
            )

    def _request(self) -> dict[str, Any]:
        shard_index, shard_count = self.shard_index, self.shard_count
        if isinstance(shard_index, str) and not shard_index.strip():
            shard_index = None
        if isinstance(shard_count, str) and not shard_count.strip():
            shard_count = None
        shard = checkpoint.check_shard(
            None if shard_index is None else validation.to_int(shard_index, "shard_index"),
            None if shard_count is None else validation.to_int(shard_count, "shard_count"),
        )
        return {"reverse": validation.to_bool(self.reverse, "reverse"), "shard": shard}

    def _describe(self, request: dict[str, Any]) -> str:
        text = f"reverse={request['reverse']}"
        if request["shard"] is not None:
            text += f", shard {request['shard'][0]} of {request['shard'][1]}"
        if self._incr is not None:
            text += (
                f", incremental from {self._incr.target} (generation {self._incr.generation}, "
                f"{len(self._incr.bookmarks)} bookmarks)"
            )
        return text

    def _keys(self) -> _Keys:
        keys = super()._keys()
        shard = self._shard
        if shard is None:
            return keys
        index, count = shard

        def make() -> Iterator[Any]:
            return (k for k in keys if checkpoint.shard_of(k, count) == index)

        return _Keys(make, sum(1 for _ in make()), keys.duplicates)

    @property
    def _shard(self) -> tuple[int, int] | None:
        return self._request()["shard"]

    def execute(self, context: Context) -> list[dict[str, Any]] | dict[str, Any]:
        self._incr = None
        try:
            return super().execute(context)
        except _AlreadyCommitted as done:
            self.log.info(
                "This run already committed %s (checkpoint generation %s): returning its summary, "
                "rewriting nothing",
                done.summary.get("path"),
                done.summary.get("checkpoint_generation"),
            )
            self._attach_asset_event(context, done.summary)
            return done.summary

    # -- incremental: start (before any request) -----------------------------------------------

    def _prepare(self, keys: _Keys, request: dict[str, Any], context: Context) -> None:
        self._incr = None
        if self.checkpoint_path is None:
            return
        self._check_incremental(self.output_path, request["reverse"])
        shard = request["shard"]
        app_id = request["app_id"]
        base = to_storage_path(self.checkpoint_path, field="checkpoint_path")
        target = base.parent / checkpoint.shard_name(base.name, shard)
        pending = target.parent / checkpoint.pending_name(target.name)
        output = str(to_storage_path(self.output_path))
        committed = self._read_checkpoint(target)
        if committed is not None:
            checkpoint.check_compatible(
                committed, where=str(target), app_id=app_id, shard=shard, base=str(base)
            )
            if committed.state != "committed":
                raise checkpoint.CheckpointError(f"checkpoint {target} is marked {committed.state!r}")
        else:
            self._check_no_other_layout(base, shard)
        leftover = self._read_checkpoint(pending)
        if leftover is not None:
            checkpoint.check_compatible(
                leftover, where=str(pending), app_id=app_id, shard=shard, base=str(base)
            )
        published: bool | None = None
        if leftover is not None and leftover.output is not None:
            digest = file_digest(to_storage_path(leftover.output["path"], field="the pending output"))
            recorded = (leftover.output["bytes"], leftover.output["sha256"])
            published = False if digest is None else True if digest == recorded else None
        decision = checkpoint.recover(committed, leftover, published, where=str(pending))
        if decision.action == "roll_forward":
            assert leftover is not None
            self.log.warning(
                "Found the pending checkpoint %s of a run that died after publishing: %s",
                pending,
                decision.reason,
            )
            committed = leftover.as_committed()
            write_atomically(target, checkpoint.dumps(committed), field="checkpoint_path")
            remove_if_exists(pending)
        elif decision.action in ("roll_back", "stale"):
            self.log.warning("Removing the pending checkpoint %s: %s", pending, decision.reason)
            remove_if_exists(pending)
            if decision.action == "roll_back" and leftover is not None and leftover.output is not None:
                remove_stale_temps(to_storage_path(leftover.output["path"], field="the pending output"))
        run = _run_identity(context, self.task_id)
        if checkpoint.retry_decision(committed, output_path=output, run=run):
            assert committed is not None and committed.summary is not None
            raise _AlreadyCommitted(dict(committed.summary))
        self._incr = _IncrementalRun(
            target=target, pending=pending, committed=committed, app_id=app_id, shard=shard, run=run
        )

    @staticmethod
    def _read_checkpoint(path: ObjectStoragePath) -> checkpoint.Checkpoint | None:
        data = read_bytes_if_exists(path)
        return None if data is None else checkpoint.loads(data, where=str(path))

    @staticmethod
    def _check_no_other_layout(base: ObjectStoragePath, shard: tuple[int, int] | None) -> None:
        """With no checkpoint of its own, a task refuses to start over while checkpoints of
        another shard layout exist: their conversations would be exported a second time."""
        counts: set[int | None] = set(checkpoint_layouts(base))
        mine = shard[1] if shard is not None else None
        others = counts - {mine}
        if others:
            old = sorted(others, key=lambda c: -1 if c is None else c)[0]
            raise checkpoint.CheckpointError(
                f"this task ({'unsharded' if shard is None else f'shard {shard[0]} of {shard[1]}'}) "
                f"has no checkpoint yet, but {base.parent} holds checkpoints of another shard layout "
                f"({'unsharded' if old is None else f'shard_count={old}'}): starting over would export "
                f"their conversations again. " + checkpoint.reshard_hint(str(base), old, mine)
            )

    # -- incremental: listing and commit --------------------------------------------------------

    def _listing(self, hook: RtcImHook, key: Any, request: dict[str, Any]) -> Listing:
        mark = self._incr.bookmarks.get(key) if self._incr is not None else None
        return hook.iter_conversation_messages(
            key,
            app_id=request["app_id"],
            reverse=request["reverse"],
            page_size=request["page_size"],
            max_pages=request["max_pages"],
            cursor=mark.cursor if mark is not None else 0,
            after_index=mark.index if mark is not None else None,
        )

    def _key_done(self, key: Any, listing: Listing) -> None:
        incr = self._incr
        if incr is None:
            return
        old = incr.bookmarks.get(key)
        last = listing.last_position
        if last is not None and (old is None or old.index is None or last > old.index):
            incr.changed += 1
        if listing.skipped:
            self.log.info(
                "conversation_short_id %s: dropped %d messages already taken by an earlier run "
                "(the cursor went back)",
                key,
                listing.skipped,
            )
        incr.updates[key] = checkpoint.Bookmark(listing.resume_cursor, last)

    def _execute_to_file(
        self, keys: _Keys, request: dict[str, Any], out: AtomicFile, context: Context
    ) -> dict[str, Any]:
        if self._incr is not None:
            self._incr.writer = HashingWriter(out.raw)
            out.raw = self._incr.writer  # type: ignore[assignment]
        return super()._execute_to_file(keys, request, out, context)

    def _publish(self, out: AtomicFile, summary: dict[str, Any], context: Context) -> None:
        """Pending checkpoint, then the output, then the checkpoint (see core/checkpoint.py)."""
        incr = self._incr
        if incr is None:
            out.publish()
            return
        assert incr.writer is not None
        generation = incr.generation + 1
        summary.update(
            incremental=True,
            checkpoint=str(incr.target),
            checkpoint_generation=generation,
            conversations_changed=incr.changed,
            shard_index=incr.shard[0] if incr.shard else None,
            shard_count=incr.shard[1] if incr.shard else None,
        )
        state = checkpoint.Checkpoint(
            app_id=incr.app_id,
            generation=generation,
            state="pending",
            shard_index=incr.shard[0] if incr.shard else None,
            shard_count=incr.shard[1] if incr.shard else None,
            bookmarks=checkpoint.merge_bookmarks(incr.bookmarks, incr.updates),
            output={
                "path": summary["path"],
                "count": summary["count"],
                "bytes": incr.writer.size,
                "sha256": incr.writer.hexdigest(),
            },
            run=incr.run,
            summary=dict(summary),
            written_at=_utcnow(),
        )
        write_atomically(incr.pending, checkpoint.dumps(state), field="pending checkpoint")
        out.publish()
        write_atomically(incr.target, checkpoint.dumps(state.as_committed()), field="checkpoint_path")
        remove_if_exists(incr.pending)
        self.log.info(
            "Committed checkpoint %s generation %d: %d conversations changed, %d bookmarks",
            incr.target,
            generation,
            incr.changed,
            len(state.bookmarks),
        )
