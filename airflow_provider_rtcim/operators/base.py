"""The one base class of the listing operators: an action's every page, for many keys at once.

An operator is a description plus a signature: it names its action (a
:class:`~airflow_provider_rtcim.core.actions.PagedAction`, whose fields are the operator's
templated arguments) and how it is given its keys (a
:class:`~airflow_provider_rtcim.operators.engine.KeyArgs`). Everything else is here: the
shared arguments, checking every argument and key before any request, the run
(:mod:`~airflow_provider_rtcim.operators.engine`), XCom or the atomic JSON Lines file, the
Asset and the summary (:mod:`~airflow_provider_rtcim.operators.output`), and, when the
operator begins one, the incremental commit (:mod:`~airflow_provider_rtcim.operators.incremental`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_rtcim.compat import AirflowFailException, Asset, BaseOperator
from airflow_provider_rtcim.core.actions import BatchAction, PagedAction
from airflow_provider_rtcim.core.defaults import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_PAGES,
    DEFAULT_MAX_WORKERS,
    DEFAULT_MAX_XCOM_ROWS,
    DEFAULT_PAGE_SIZE,
)
from airflow_provider_rtcim.core.keys import parse_key_range
from airflow_provider_rtcim.core.sink import spool_directory
from airflow_provider_rtcim.core.validation import (
    MAX_LIMIT,
    none_if_blank,
    to_int,
    to_positive_float,
    to_positive_int,
    validate_page_size,
)
from airflow_provider_rtcim.exceptions import RtcImApiError, RtcImInvalidArgument
from airflow_provider_rtcim.operators.engine import KeyArgs, Keys, ListingRun, in_batches, read_keys
from airflow_provider_rtcim.operators.incremental import AlreadyCommitted, IncrementalCommit
from airflow_provider_rtcim.operators.output import (
    JsonlFile,
    PartialWithAsset,
    XComLimitExceeded,
    XComRows,
    asset_event_extra,
    attach_asset_event,
    declare_output,
    utcnow,
)
from airflow_provider_rtcim.storage import AtomicFile

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import Context, ObjectStoragePath
    from airflow_provider_rtcim.core.pagination import Listing
    from airflow_provider_rtcim.hooks.rtcim import RtcImHook

SHARED_TEMPLATE_FIELDS: tuple[str, ...] = ("page_size", "output_path", "key_range")


def listing_template_fields(action: PagedAction | BatchAction, keys: KeyArgs, *more: str) -> tuple[str, ...]:
    """An operator's templated arguments: its keys, ``app_id``, its action's fields, the
    shared ones, then ``more``."""
    return (keys.arg, keys.from_arg, "app_id", *action.args, *SHARED_TEMPLATE_FIELDS, *more)


@dataclass(frozen=True)
class Request:
    """A run's checked arguments: the request without key and cursor, and what it was made of."""

    body: dict[str, Any]
    app_id: int
    page_size: int
    user_id_type: str
    options: dict[str, Any] = field(default_factory=dict)
    """What a subclass checked besides the action's fields (e.g. a shard)."""


class RtcImListingOperator(BaseOperator):
    """The base of the listing operators (not used directly: subclass it).

    A subclass sets :attr:`action` and :attr:`key_args` (the classes of
    :mod:`~airflow_provider_rtcim.operators.keyed` set the latter and take the key arguments),
    takes its action's fields in ``__init__`` (``template_fields``:
    :func:`listing_template_fields`), and may begin an incremental commit (:meth:`_begin`) or
    keep only some keys (:meth:`_key_filter`). Shared arguments: ``app_id``, ``page_size``, ``output_path``,
    ``asset``, ``key_range``, ``rtcim_conn_id``, ``max_workers``, ``max_qps``, ``max_pages``,
    ``max_xcom_rows`` (see :class:`~airflow_provider_rtcim.operators.conversations.RtcImGetUserConversationsOperator`).
    """

    action: ClassVar[PagedAction | BatchAction]
    key_args: ClassVar[KeyArgs]
    asset_extra_keys: ClassVar[tuple[str, ...]] = ()
    """Summary fields beyond the shared ones that go into the Asset event's ``extra`` too."""

    ui_color = "#e8f4ff"
    progress_interval: float = 10.0
    """Seconds between progress log lines."""

    partial = PartialWithAsset()

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
        derived = declare_output(kwargs, output_path, asset)
        super().__init__(**kwargs)
        self.app_id = app_id
        self.page_size = page_size
        self.output_path = output_path
        self.asset = derived
        self.key_range = key_range
        self.rtcim_conn_id = rtcim_conn_id
        self.max_workers = to_int(max_workers, "max_workers")
        if self.max_workers < 1:
            raise ValueError(f"max_workers must be an integer >= 1, got {max_workers!r}")
        # None: the connection's extra.max_qps (or the hook's default); 0: no client-side limit
        self.max_qps = None if max_qps is None else to_positive_float(max_qps, "max_qps", allow_zero=True)
        self.max_pages = to_positive_int(max_pages, "max_pages")
        self.max_xcom_rows = to_int(max_xcom_rows, "max_xcom_rows")
        if self.max_xcom_rows < 0:
            raise ValueError(f"max_xcom_rows must be an integer >= 0, got {max_xcom_rows!r}")
        self._run: ListingRun | None = None  # made in execute(): an Event cannot be deep-copied

    # -- what the description says ----------------------------------------------------------

    @property
    def keys_from_field(self) -> str:
        """The argument naming a file of keys."""
        return self.key_args.from_arg

    @property
    def keys_noun(self) -> str:
        return self.key_args.noun

    @property
    def rows_noun(self) -> str:
        return self.action.noun

    @cached_property
    def hook(self) -> RtcImHook:
        """One hook (one HTTP session, one rate limiter) shared by every worker thread."""
        from airflow_provider_rtcim.hooks.rtcim import RtcImHook

        return RtcImHook(self.rtcim_conn_id, max_qps=self.max_qps, pool_maxsize=max(self.max_workers, 10))

    def on_kill(self) -> None:
        if self._run is not None:
            self._run.stop()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the API and key file read, the file written (see ``docs/lineage.md``)."""
        from airflow_provider_rtcim.operators.lineage import operator_lineage

        return operator_lineage(self, getattr(self, "_lineage_summary", None))

    # -- what a subclass may add ------------------------------------------------------------

    def _key_filter(self, request: Request) -> Callable[[Any], bool] | None:
        """Only the keys this returns True for (None: every key)."""
        return None

    def _begin(self, request: Request, context: Context) -> IncrementalCommit | None:
        """An incremental commit to run under (None: a full listing)."""
        return None

    def _key_file_fields(self) -> tuple[str, ...] | None:
        """The JSON Lines field a key file's keys are read from when the operator takes a
        ``key_field`` argument and it is set (None: the key arguments' own fields)."""
        field = none_if_blank(getattr(self, "key_field", None))
        if field is None:
            return None
        if not isinstance(field, str):
            raise ValueError(f"key_field must be the name of a field of the rows, got {field!r}")
        return (field,)

    def _describe(self, request: Request, commit: IncrementalCommit | None) -> str:
        """The arguments worth a mention in the start log line."""
        parts = [f"{f.arg}={request.body[f.api]}" for f in self.action.fields if f.api in request.body]
        if self.action.key.str_api is not None:
            parts.append(f"user_id_type={request.user_id_type}")
        if commit is not None:
            parts.append(commit.describe())
        return ", ".join(parts)

    # -- arguments and keys -------------------------------------------------------------------

    def _resolve_app_id(self) -> int:
        """The task's ``app_id`` (a blank rendered template is none), else the connection's."""
        app_id = none_if_blank(self.app_id)
        if app_id is None:
            self.hook.settings  # noqa: B018 - a connection that cannot be read fails as it is
        try:
            return self.hook.resolve_app_id(app_id)
        except RtcImApiError as exc:  # no AppId anywhere: the same arguments fail every retry
            raise ValueError(exc.message) from None

    def _user_id_type(self) -> str:
        """The task's ``user_id_type``, else the connection's (``"int"`` for conversation keys)."""
        if not self.action.key.user:
            return "int"
        return self.hook.resolve_user_id_type(getattr(self, "user_id_type", None))

    def _request(self) -> Request:
        """Every templated argument checked, once, before any request."""
        action = self.action
        body = action.request_body({a: getattr(self, a) for a in action.args}, rendered=True)
        paged = isinstance(action, PagedAction) and action.limit_field is not None
        page_size = validate_page_size(self.page_size, maximum=action.max_page_size if paged else MAX_LIMIT)
        app_id = self._resolve_app_id()
        if paged:
            body[action.limit_field] = page_size
        return Request(
            body={"AppId": app_id, **body},
            app_id=app_id,
            page_size=page_size,
            user_id_type=self._user_id_type(),
        )

    def _keys(self, request: Request) -> Keys:
        """Every key checked (one pass over a file) before any request; then streamed."""
        key, kind = self.action.key, request.user_id_type
        return read_keys(
            getattr(self, self.key_args.arg),
            getattr(self, self.key_args.from_arg),
            keys=self.key_args,
            check=lambda value, field: key.check(value, field, kind),
            opaque=kind == "str",
            key_range=parse_key_range(self.key_range),
            keep=self._key_filter(request),
            fields=self._key_file_fields(),
        )

    # -- execute ------------------------------------------------------------------------------

    def execute(self, context: Context) -> list[dict[str, Any]] | dict[str, Any]:
        out: AtomicFile | None = None
        try:
            try:
                request = self._request()
                keys = self._keys(request)
                commit = self._begin(request, context)
                if self.output_path is not None:
                    out = AtomicFile.open(self.output_path)  # the writability probe
            except ValueError as exc:  # the same arguments would fail every retry
                raise RtcImInvalidArgument(str(exc)) from exc
            if keys.duplicates:
                self.log.warning(
                    "%s lists %d ids more than once; each is listed once", self.key_args.arg, keys.duplicates
                )
            run = self._run = ListingRun(
                hook=self.hook,
                log=self.log,
                key_arg=self.key_args.arg,
                keys_noun=self.keys_noun,
                rows_noun=self.rows_noun,
                max_workers=self.max_workers,
                progress_interval=self.progress_interval,
            )
            destination = "XCom" if out is None else str(out.target)
            self.log.info(
                "Listing %s of %d %s into %s (app_id=%s%s, page_size=%s, workers=%d)",
                self.rows_noun,
                keys.count,
                self.keys_noun if keys.count != 1 else self.keys_noun.rstrip("s"),
                destination,
                request.app_id,
                f", {details}" if (details := self._describe(request, commit)) else "",
                request.page_size,
                max(1, min(self.max_workers, keys.count)),
            )
            if out is None:
                return self._to_xcom(run, keys, request)
            return self._to_file(run, keys, request, commit, out, context)
        except AlreadyCommitted as done:
            self.log.info(
                "This run already committed %s (checkpoint generation %s): returning its summary, "
                "rewriting nothing",
                done.summary.get("path"),
                done.summary.get("checkpoint_generation"),
            )
            self._attach_asset_event(context, done.summary)
            return done.summary
        finally:
            if out is not None:
                out.discard()  # a no-op once published
            if "hook" in self.__dict__:
                self.hook.close()

    def _listing_for(self, request: Request, commit: IncrementalCommit | None) -> Callable[[Any], Listing]:
        """``listing(key)``: the hook's generic listing of the checked request for one key
        (for a batch action: one request for a :class:`KeyBatch` of keys)."""
        hook, action, body, max_pages = self.hook, self.action, request.body, self.max_pages
        if isinstance(action, BatchAction):
            keys_api = action.keys_api

            def batch(keys: Any) -> Any:
                return hook.fetch_batch(action, {**body, keys_api: list(keys)})

            return batch
        key_body = action.key.body

        def listing(key: Any) -> Listing:
            mark = commit.bookmark(key) if commit is not None else None
            return hook.iter_listing(
                action,
                {**body, **key_body(key)},
                start_cursor=mark.cursor if mark is not None else 0,
                after_position=mark.index if mark is not None else None,
                max_pages=max_pages,
            )

        return listing

    def _list_all(
        self, run: ListingRun, keys: Keys, request: Request, commit: IncrementalCommit | None, collector: Any
    ) -> tuple[dict[str, int], dict[str, Any]]:
        """Every key through ``run`` into ``collector``: ``(stats, summary fields of the action)``."""
        action, extra = self.action, {}
        on_key_done = commit.record if commit is not None else None
        if isinstance(action, BatchAction):
            missing: list[Any] = []
            stats = run.run(
                in_batches(keys, action.max_keys),
                listing=self._listing_for(request, None),
                decorate=lambda row, key: row,
                collector=collector,
                on_key_done=lambda key, batch: missing.extend(batch.missing),
            )
            if action.missing_key is not None:
                extra["not_found"] = len(missing)
                if missing:
                    shown = ", ".join(map(repr, missing[:20])) + (", ..." if len(missing) > 20 else "")
                    self.log.warning(
                        "%s: %d ids not found (%s): %s", action.name, len(missing), action.missing_key, shown
                    )
        else:
            stats = run.run(
                keys,
                listing=self._listing_for(request, commit),
                decorate=action.add_key,
                collector=collector,
                on_key_done=on_key_done,
            )
        if action.key.str_api is not None:
            extra["user_id_type"] = request.user_id_type
        return stats, extra

    def _to_xcom(self, run: ListingRun, keys: Keys, request: Request) -> list[dict[str, Any]]:
        rows = XComRows(self.max_xcom_rows)
        try:
            stats, _ = self._list_all(run, keys, request, None, rows)
        except XComLimitExceeded:
            raise AirflowFailException(
                f"The listing has more than max_xcom_rows={self.max_xcom_rows} rows: too many for XCom, "
                f"which lives in the metadata database. Set output_path (e.g. 's3://bucket/rtcim/"
                f"{self.rows_noun}.jsonl.gz') to write JSON Lines to object storage, or raise max_xcom_rows."
            ) from None
        self._log_summary(stats, len(rows.rows), keys.count, "XCom")
        return rows.rows

    def _to_file(
        self,
        run: ListingRun,
        keys: Keys,
        request: Request,
        commit: IncrementalCommit | None,
        out: AtomicFile,
        context: Context,
    ) -> dict[str, Any]:
        started = utcnow()
        with spool_directory() as spool_dir:  # removes the spool directories of killed tasks
            output = JsonlFile(out, spool_dir=spool_dir, hashing=commit is not None)
            stats, extra = self._list_all(run, keys, request, commit, output)
        output.close()
        summary: dict[str, Any] = {
            "path": str(out.target),
            "paths": [str(out.target)],
            "count": output.count,
            self.keys_noun: keys.count,
            **extra,
            **stats,
            "fetch_started_at": started,
            "fetch_finished_at": utcnow(),
        }
        if commit is not None:
            assert output.writer is not None
            commit.commit(out, summary, output.writer)
        else:
            out.publish()
        self._log_summary(stats, output.count, keys.count, str(out.target))
        self._attach_asset_event(context, summary)
        return summary

    def _attach_asset_event(self, context: Context, summary: dict[str, Any]) -> None:
        """Every published run (and a retry of a committed one) passes here with its summary."""
        self._lineage_summary = summary  # what get_openlineage_facets_on_complete reports
        attach_asset_event(
            context, self.asset, asset_event_extra(summary, self.keys_noun, self.asset_extra_keys)
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


__all__ = ["Request", "RtcImListingOperator", "listing_template_fields"]
