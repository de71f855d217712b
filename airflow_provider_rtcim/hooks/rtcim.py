"""The Airflow Hook for the Volcengine RTC IM OpenAPI.

Connection type ``rtcim`` (default id ``rtcim_default``):

* login: Access Key ID; password: Secret Access Key;
* host: the endpoint. A full URL (``http://127.0.0.1:8080``) is used as it is; a bare host
  means https (plus the connection's port when set); empty means the region's endpoint
  (``cn-north-1``: ``https://rtc.volcengineapi.com``, ``ap-southeast-1``:
  ``https://open-ap-singapore-1.volcengineapi.com``);
* extra: ``app_id`` (int; a task may override it), ``region`` (default ``cn-north-1``),
  ``session_token`` (STS), ``endpoint_url`` (overrides host; the way to give a scheme in a
  URI-form connection), ``timeout`` (s, default 30), ``max_qps`` (default 95, see below;
  0 disables), ``max_retries`` (default 5), ``proxies`` (a URL for all schemes, or an
  object / JSON object of scheme -> URL), ``verify`` (bool, ``"true"``/``"false"``, or a CA
  bundle path; it wins over ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``), ``user_id_type``
  (``"int"``, the default, or ``"str"``: the app's user ids are opaque strings, sent as
  ``ParticipantUserIdStr``; every method taking a user id can override it).

``max_qps`` defaults to 95, 5% under the API's limit of 100 requests per second per
account: the API counts arrivals in a sliding second, and thread wake-up jitter bunches
requests spaced exactly 1/100 s apart, so a cap of exactly 100 draws occasional 429s. On a
429 the whole hook (every thread sharing it) pauses for the chosen wait, which honours
``Retry-After``.

Importing this module is cheap: ``requests`` and the HTTP client are imported on first use.

``data_type`` defaults to 1 everywhere: the API's own default, 0, reads from a cache
ordered by most recent activity, which reorders while you page (a conversation can show
up twice or be skipped); 1 reads the database in creation order, the stable order for a
complete listing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.compat import BaseHook
from airflow_provider_rtcim.core.actions import (
    GET_USER_CONVERSATIONS,
    Action,
    BatchAction,
    PagedAction,
    action_named,
)
from airflow_provider_rtcim.core.defaults import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_PAGES,
    DEFAULT_MAX_QPS,  # noqa: F401 - importable from here (benchmarks read the hook's default)
    DEFAULT_PAGE_SIZE,
    DEFAULT_POOL_MAXSIZE,
    DEFAULT_RETRY_AFTER_MAX,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_RETRY_BACKOFF_MAX,
    DEFAULT_VERSION,
)
from airflow_provider_rtcim.core.errors import (
    RtcImError,
)
from airflow_provider_rtcim.core.lazy import locked_cached_property
from airflow_provider_rtcim.core.validation import (
    to_max_qps,
    to_non_negative_int,
    to_positive_float,
    to_positive_int,
    url_passwords,
    validate_app_id,
    validate_cursor,
    validate_page_size,
    validate_user_id_type,
)
from airflow_provider_rtcim.exceptions import RtcImApiError, RtcImConnectionNotFound
from airflow_provider_rtcim.hooks.connection import (
    RtcImConnectionSettings,
    config_error,
    explain_failure,
    parse_connection,
)
from airflow_provider_rtcim.hooks.methods import RtcImActionMethods

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import Connection
    from airflow_provider_rtcim.core.client import RtcImClient
    from airflow_provider_rtcim.core.pagination import BatchItems, Listing
    from airflow_provider_rtcim.core.signing import Credentials

__all__ = [
    "RtcImApiError",
    "RtcImConnectionNotFound",
    "RtcImConnectionSettings",
    "RtcImHook",
    "parse_connection",
]

TEST_CONNECTION_USER_ID = 1
"""The placeholder user whose first conversation ``test_connection`` asks for."""


def _items_problem(items_key: str) -> Callable[[Mapping[str, Any]], str | None]:
    """A ``Result`` check for a batch action: its item list, when present, is a list."""

    def check(result: Mapping[str, Any]) -> str | None:
        items = result.get(items_key)
        if items is not None and not isinstance(items, list):
            return f"{items_key} is {type(items).__name__}, not a list"
        return None

    return check


def _mask(value: str | None) -> None:
    if not value:
        return
    try:
        from airflow_provider_rtcim.compat import mask_secret

        mask_secret(value)
    except Exception:  # noqa: S110 - masking must never break a hook (e.g. no log set-up)
        pass


class RtcImHook(RtcImActionMethods, BaseHook):
    """Signed, retried, rate-limited calls to the Volcengine RTC IM OpenAPI.

    One hook holds one ``requests.Session`` and one rate limiter and is thread-safe: share
    it between threads. Nothing is fetched or connected in ``__init__``.

    :param rtcim_conn_id: the ``rtcim`` connection.
    :param max_qps: client-side cap on requests per second (overrides extra.max_qps; 0
        disables). Default 95: 5% headroom under the API's 100, because the API counts a
        sliding second and thread wake-up jitter bunches requests (exactly 100 draws 429s).
    :param max_retries: retries of a transient failure of a read (overrides extra.max_retries).
    :param timeout: seconds per connect / read (overrides extra.timeout).
    :param pool_maxsize: HTTP connections kept (at least the number of threads sharing the hook).
    :param retry_backoff: base of the exponential backoff between retries, and the least
        wait before any retry, seconds (default 0.3, as the official SDK).
    :param retry_backoff_max: cap of one backoff sleep, seconds (default 20).
    :param retry_after_max: cap of a wait asked for by the server's ``Retry-After``, seconds
        (default 120). A 429 pauses every thread sharing this hook for the chosen wait.
    :param sleep: the sleep function used for backoff and rate limiting (tests inject one).
    """

    conn_name_attr = "rtcim_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "rtcim"
    hook_name = "RTC IM (Volcengine)"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The form's extra fields on Airflow < 3.2 (3.2+ reads the provider info's ``conn-fields``)."""
        from airflow_provider_rtcim.compat import connection_form_widgets

        return connection_form_widgets(cls.conn_type)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabelled and hidden standard fields on Airflow < 3.2 (3.2+ reads ``ui-field-behaviour``)."""
        from airflow_provider_rtcim.compat import connection_ui_field_behaviour

        return connection_ui_field_behaviour(cls.conn_type)

    def __init__(
        self,
        rtcim_conn_id: str = DEFAULT_CONN_ID,
        *,
        max_qps: float | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        pool_maxsize: int | None = None,
        retry_backoff: float | None = None,
        retry_backoff_max: float | None = None,
        retry_after_max: float | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(rtcim_conn_id, str) or not rtcim_conn_id:
            raise ValueError(f"rtcim_conn_id must be a non-empty string, got {rtcim_conn_id!r}")
        self.rtcim_conn_id = rtcim_conn_id
        self._max_qps = None if max_qps is None else to_max_qps(max_qps, "max_qps")
        self._max_qps_given = max_qps is not None
        self._max_retries = None if max_retries is None else to_non_negative_int(max_retries, "max_retries")
        self._timeout = None if timeout is None else to_positive_float(timeout, "timeout")
        self._pool_maxsize = (
            DEFAULT_POOL_MAXSIZE if pool_maxsize is None else to_positive_int(pool_maxsize, "pool_maxsize")
        )
        self._retry_backoff = (
            DEFAULT_RETRY_BACKOFF
            if retry_backoff is None
            else to_positive_float(retry_backoff, "retry_backoff", allow_zero=True)
        )
        self._retry_backoff_max = (
            DEFAULT_RETRY_BACKOFF_MAX
            if retry_backoff_max is None
            else to_positive_float(retry_backoff_max, "retry_backoff_max", allow_zero=True)
        )
        self._retry_after_max = (
            DEFAULT_RETRY_AFTER_MAX
            if retry_after_max is None
            else to_positive_float(retry_after_max, "retry_after_max", allow_zero=True)
        )
        self._sleep = sleep
        self._connection: Connection | None = None
        self._extra: Mapping[str, Any] | None = None

    @classmethod
    def from_connection(
        cls, conn: Connection, *, extra: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> RtcImHook:
        """A hook over an already fetched ``Connection`` (never calls ``get_connection``).

        For triggers: ``conn = await BaseHook.aget_connection(conn_id)`` then
        ``RtcImHook.from_connection(conn, extra=await conn.aextra_dejson())`` (inside an
        event loop ``conn.extra_dejson`` raises). ``kwargs`` are the constructor's.
        """
        hook = cls(conn.conn_id or DEFAULT_CONN_ID, **kwargs)
        hook._connection = conn
        hook._extra = dict(extra) if extra is not None else None
        return hook

    # -- connection and settings -------------------------------------------------------

    @locked_cached_property
    def settings(self) -> RtcImConnectionSettings:
        """The connection's parsed settings (fetched once, on first use)."""
        conn = self._connection
        if conn is None:
            conn = self._connection = self._fetch_connection()
        settings = parse_connection(conn, extra=self._extra, conn_id=self.rtcim_conn_id)
        _mask(settings.secret_access_key)
        _mask(settings.session_token)
        for url in [settings.endpoint, *(settings.proxies or {}).values()]:
            for password in url_passwords(url):  # a proxy's (or endpoint's) user:password@
                _mask(password)
        return settings

    def _fetch_connection(self) -> Connection:
        """``get_connection``, with a not-found error that says where connections are visible."""
        from airflow_provider_rtcim.compat import AirflowNotFoundException

        try:
            return self.get_connection(self.rtcim_conn_id)
        except RtcImConnectionNotFound:
            raise
        except AirflowNotFoundException as exc:
            raise RtcImConnectionNotFound.for_conn_id(self.rtcim_conn_id) from exc

    @property
    def app_id(self) -> int | None:
        """The connection's default AppId (extra.app_id), or None."""
        return self.settings.app_id

    @property
    def endpoint(self) -> str:
        """The API endpoint this hook calls."""
        return self.settings.endpoint

    def resolve_app_id(self, app_id: Any = None) -> int:
        """The task's ``app_id`` when given, else the connection's; an error when neither."""
        if app_id is not None:
            return validate_app_id(app_id, "app_id")
        if self.settings.app_id is None:
            raise config_error(self.rtcim_conn_id, "has no AppId: set extra.app_id or pass app_id=")
        return self.settings.app_id

    def resolve_user_id_type(self, user_id_type: Any = None) -> str:
        """The call's ``user_id_type`` when given, else the connection's extra.user_id_type ("int")."""
        if user_id_type is not None:
            return validate_user_id_type(user_id_type, "user_id_type")
        return self.settings.user_id_type

    def credentials(self) -> Credentials:
        """The signing credentials; an error naming the field when the key or secret is missing."""
        from airflow_provider_rtcim.core.signing import Credentials

        settings = self.settings
        if not settings.access_key_id:
            raise config_error(self.rtcim_conn_id, "has no Access Key ID: set the connection's login")
        if not settings.secret_access_key:
            raise config_error(self.rtcim_conn_id, "has no Secret Access Key: set the connection's password")
        return Credentials(
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            region=settings.region,
            session_token=settings.session_token,
        )

    @locked_cached_property
    def client(self) -> RtcImClient:
        """The shared HTTP client (built on first use; imports ``requests`` then)."""
        return self._build_client()

    def _build_client(self) -> RtcImClient:
        from airflow_provider_rtcim.core.client import RtcImClient

        settings = self.settings
        kwargs: dict[str, Any] = {}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return RtcImClient(
            credentials=self.credentials(),
            endpoint=settings.endpoint,
            timeout=self._timeout if self._timeout is not None else settings.timeout,
            max_qps=self._max_qps if self._max_qps_given else settings.max_qps,
            max_retries=self._max_retries if self._max_retries is not None else settings.max_retries,
            pool_maxsize=self._pool_maxsize,
            proxies=settings.proxies,
            verify=settings.verify,
            retry_backoff=self._retry_backoff,
            retry_backoff_max=self._retry_backoff_max,
            retry_after_max=self._retry_after_max,
            error_class=RtcImApiError,
            name=self.rtcim_conn_id,
            **kwargs,
        )

    def get_conn(self) -> RtcImClient:
        """The shared :class:`~airflow_provider_rtcim.core.client.RtcImClient`."""
        return self.client

    # -- calls ---------------------------------------------------------------------------

    def call(
        self,
        action: str,
        body: dict[str, Any],
        *,
        version: str = DEFAULT_VERSION,
        retry: bool | None = None,
    ) -> dict[str, Any]:
        """A signed POST to ``{endpoint}/?Action={action}&Version={version}``; returns ``Result``.

        Transient failures are retried for read actions only (``Get``, ``BatchGet``, ``Scan``,
        ``Query``, ``List``, ``Is`` prefixes); ``retry=True``/``False`` overrides.

        :raises RtcImApiError: with ``code``, ``http_status``, ``request_id``.
        """
        return self.client.call(action, body, version=version, retry=retry)

    # -- the generic calls: any described action ------------------------------------------

    def fetch_page(self, action: PagedAction, body: Mapping[str, Any]) -> dict[str, Any]:
        """One page of a paginated read action: its ``Result``, checked to be well formed.

        A page without a bool ``HasMore`` (or whose item list is not a list) is a malformed
        response, retried like a garbled body: raising it later, while paging, would not be
        retried, and ignoring it would end the listing short.
        """
        from airflow_provider_rtcim.core.pagination import page_problem

        items_key, paginated = action.items_key, action.paginated
        client = self.client
        result = client.call(
            action.name,
            body,
            version=action.version,
            check=lambda r: page_problem(r, items_key, paginated=paginated),
        )
        client.stats.incr("pages")
        return result

    def request_base(
        self, action: str | Action, *, app_id: Any = None, rendered: bool = False, **values: Any
    ) -> dict[str, Any]:
        """The checked request of ``action`` without its key and cursor: ``AppId`` (the given
        one, else the connection's) and the action's fields (``values`` by argument name; the
        rest take their defaults). ``rendered``: the values are rendered templates."""
        spec = action_named(action)
        body = spec.request_body(values, rendered=rendered)
        return {"AppId": self.resolve_app_id(app_id), **body}

    def check_key(
        self, action: str | Action, key: Any, *, user_id_type: Any = None, field: str | None = None
    ) -> Any:
        """One key of ``action`` checked: a conversation id, or a user id of the connection's
        (or the given) ``user_id_type``; a ``ValueError`` names ``field``."""
        spec = action_named(action)
        kind = self.resolve_user_id_type(user_id_type) if spec.key.user else "int"
        return spec.key.check(key, field or spec.key.arg, kind)

    def iter_action(
        self,
        action: str | PagedAction,
        key: Any,
        *,
        app_id: Any = None,
        user_id_type: Any = None,
        page_size: Any = DEFAULT_PAGE_SIZE,
        max_pages: Any = DEFAULT_MAX_PAGES,
        cursor: Any = 0,
        after_index: Any = None,
        **values: Any,
    ) -> Listing:
        """Every item of the paginated ``action`` (a description or its API name) for ``key``,
        lazily, each id once: the one call every named ``iter_*`` method is.

        ``values`` are the action's own fields by argument name (see
        :mod:`~airflow_provider_rtcim.core.actions`); each is checked once, before any
        request, and the rest take their defaults. ``cursor`` starts the listing at a saved
        bookmark; ``after_index`` drops items whose position is not past it (actions with a
        position only). See :meth:`iter_listing` for the pagination guards.
        """
        spec = action_named(action)
        if not isinstance(spec, PagedAction):
            raise ValueError(f"{spec.name} is not paginated: use batch_action")
        checked = self.check_key(spec, key, user_id_type=user_id_type)
        body = self.request_base(spec, app_id=app_id, **values)
        body.update(spec.key.body(checked))
        if spec.limit_field is not None:
            body[spec.limit_field] = validate_page_size(page_size, maximum=spec.max_page_size)
        if after_index is not None:
            after_index = validate_cursor(after_index, "after_index")
        return self.iter_listing(
            spec, body, start_cursor=cursor, after_position=after_index, max_pages=max_pages
        )

    def iter_listing(
        self,
        action: PagedAction,
        body: Mapping[str, Any],
        *,
        start_cursor: int = 0,
        after_position: int | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        what: str | None = None,
    ) -> Listing:
        """Every item of every page of ``action`` for a checked request ``body``, lazily, each
        id once (``body`` is the request without the cursor: see :meth:`request_base`).

        Pages start at ``start_cursor`` and follow the action's next cursor verbatim, with the
        pagination guards of :mod:`~airflow_provider_rtcim.core.pagination` (stuck, negative,
        repeated or missing cursor, endless pages without new items, ``max_pages``), raising
        ``RtcImApiError`` with code ``PaginationAnomaly``. The returned
        :class:`~airflow_provider_rtcim.core.pagination.Listing` tells, once exhausted,
        ``resume_cursor`` and ``last_position`` (a bookmark), ``pages`` and ``duplicates``.
        """
        from airflow_provider_rtcim.core.pagination import Listing

        base = dict(body)
        spec = action.key
        key = (
            base.get(spec.str_api)
            if spec.str_api and base.get(spec.str_api) is not None
            else base.get(spec.api)
        )
        label = what or f"{action.name} for {spec.describe(key)} (AppId {base.get('AppId')})"
        fetch_page, page_body = self.fetch_page, action.page_body

        def fetch(cursor: int) -> dict[str, Any]:
            return fetch_page(action, page_body(base, cursor=cursor))

        def on_duplicate(item_id: Any, page_no: int) -> None:
            self.log.debug("%s: skipping duplicate %s %s on page %d", label, action.id_key, item_id, page_no)

        return Listing(
            fetch,
            spec=action,
            start_cursor=validate_cursor(start_cursor, "cursor"),
            after_position=after_position,
            max_pages=to_positive_int(max_pages, "max_pages"),
            what=label,
            error_class=RtcImApiError,
            on_duplicate=on_duplicate,
        )

    def fetch_batch(self, action: BatchAction, body: Mapping[str, Any]) -> BatchItems:
        """One request of a batch action for a checked ``body`` (its key list included)."""
        from airflow_provider_rtcim.core.pagination import BatchItems

        result = self.client.call(
            action.name, body, check=_items_problem(action.items_key), version=action.version
        )
        missing = result.get(action.missing_key) if action.missing_key else None
        return BatchItems(list(result.get(action.items_key) or []), list(missing or []))

    def iter_batches(
        self,
        action: str | BatchAction,
        keys: Sequence[Any] | Any,
        *,
        app_id: Any = None,
        batch_size: Any = None,
        **values: Any,
    ) -> Iterator[BatchItems]:
        """A batch ``action`` for every key, one :class:`~airflow_provider_rtcim.core.pagination.BatchItems`
        per request of at most ``batch_size`` keys (default and maximum: the action's ``max_keys``).

        Keys are checked (and de-duplicated) and ``values`` (the action's fields by argument
        name) checked before the first request.
        """
        spec = action_named(action)
        if not isinstance(spec, BatchAction):
            raise ValueError(f"{spec.name} is paginated: use iter_action")
        if isinstance(keys, (str, int)):
            keys = [keys]
        plural = f"{spec.key.arg}s"
        ids = list(dict.fromkeys(self.check_key(spec, v, field=f"{plural}[{i}]") for i, v in enumerate(keys)))
        size = spec.max_keys if batch_size is None else to_positive_int(batch_size, "batch_size")
        if size > spec.max_keys:
            raise ValueError(f"batch_size must be between 1 and {spec.max_keys}, got {batch_size!r}")
        base = self.request_base(spec, app_id=app_id, **values)
        return (
            self.fetch_batch(spec, {**base, spec.keys_api: ids[start : start + size]})
            for start in range(0, len(ids), size)
        )

    def batch_action(
        self,
        action: str | BatchAction,
        keys: Sequence[Any] | Any,
        *,
        app_id: Any = None,
        batch_size: Any = None,
        **values: Any,
    ) -> list[dict[str, Any]]:
        """The items of a batch ``action`` for every key, in order (see :meth:`iter_batches`)."""
        batches = self.iter_batches(action, keys, app_id=app_id, batch_size=batch_size, **values)
        return [item for batch in batches for item in batch]

    # -- housekeeping --------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Cumulative ``{"requests", "retries", "pages"}`` for this hook (a copy)."""
        client = self.__dict__.get("client")
        if client is None:
            return {"requests": 0, "retries": 0, "pages": 0}
        return client.stats.snapshot()

    def test_connection(self) -> tuple[bool, str]:
        """For the UI's Test button: one real signed call; never raises.

        Calls ``GetUserConversations`` for a placeholder user with ``Limit`` 1 and the
        connection's AppId, and says what to fix: the Access Key ID, the Secret Access Key,
        the region, the AppId, a missing field or an unreachable endpoint. Airflow tests a
        temporary copy of the connection under a random id, so the messages name the Access
        Key ID, the endpoint, the region and the AppId, never the connection id.
        """
        try:
            settings = self.settings
            if not settings.access_key_id:
                return False, "The connection has no Access Key ID: set the Access Key ID (login) field."
            if not settings.secret_access_key:
                return False, (
                    f"The connection has no Secret Access Key for Access Key ID "
                    f"{settings.access_key_id!r}: set the Secret Access Key (password) field."
                )
            if settings.app_id is None:
                return False, "The connection has no AppId: set the AppId field (extra.app_id)."
            placeholder = TEST_CONNECTION_USER_ID
            if self.resolve_user_id_type() == "str":  # a string-id app is asked about a string user
                placeholder = str(placeholder)  # type: ignore[assignment]
            body = self.request_base(GET_USER_CONVERSATIONS, app_id=settings.app_id, skip_member_count=True)
            body.update(GET_USER_CONVERSATIONS.key.body(placeholder))
            self.client.call(
                GET_USER_CONVERSATIONS.name,
                GET_USER_CONVERSATIONS.page_body(body, cursor=0, limit=1),
                retry=False,
            )
        except RtcImError as exc:
            return False, self._explain(exc)
        except Exception as exc:
            return False, f"Unexpected {type(exc).__name__}: {exc}"
        return (
            True,
            f"Connected to {settings.endpoint} as {settings.access_key_id} "
            f"(region {settings.region}, AppId {settings.app_id}).",
        )

    def _explain(self, exc: RtcImError) -> str:
        """``test_connection``'s text for a failure: what to fix, naming no connection id."""
        return explain_failure(exc, conn_id=self.rtcim_conn_id, settings=self.__dict__.get("settings"))

    def close(self) -> None:
        """Close the HTTP session's pooled connections."""
        client = self.__dict__.get("client")
        if client is not None:
            client.close()

    def __repr__(self) -> str:
        settings = self.__dict__.get("settings")
        where = f", endpoint={settings.endpoint!r}" if settings is not None else ""
        return f"{type(self).__name__}(rtcim_conn_id={self.rtcim_conn_id!r}{where})"
