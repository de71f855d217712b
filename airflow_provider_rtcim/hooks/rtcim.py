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

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.compat import BaseHook
from airflow_provider_rtcim.core.actions import (
    BATCH_GET_CONVERSATIONS,
    BATCH_GET_CONVERSATIONS_MAX_IDS,
    GET_CONVERSATION_MESSAGES,
    SCAN_CONVERSATION_PARTICIPANTS,
    PagedAction,
)
from airflow_provider_rtcim.core.actions import GET_USER_CONVERSATIONS as GUC
from airflow_provider_rtcim.core.defaults import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_PAGES,
    DEFAULT_MAX_QPS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_PAGE_SIZE,
    DEFAULT_POOL_MAXSIZE,
    DEFAULT_RETRY_AFTER_MAX,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_RETRY_BACKOFF_MAX,
    DEFAULT_TIMEOUT,
    DEFAULT_VERSION,
)
from airflow_provider_rtcim.core.errors import (
    CODE_CONFIG,
    CODE_CONNECTION,
    CODE_TIMEOUT,
    CODE_TRUNCATED,
    RtcImError,
    hint_for,
)
from airflow_provider_rtcim.core.validation import (
    DEFAULT_REGION,
    DEFAULT_USER_ID_TYPE,
    check_user_id,
    parse_proxies,
    parse_verify,
    region_note,
    resolve_endpoint,
    to_max_qps,
    to_non_negative_int,
    to_positive_float,
    url_passwords,
    validate_app_id,
    validate_bool,
    validate_conversation_short_id,
    validate_cursor,
    validate_data_type,
    validate_inbox_type,
    validate_limit,
    validate_max_pages,
    validate_page_size,
    validate_region,
    validate_user_id_type,
)
from airflow_provider_rtcim.exceptions import RtcImApiError, RtcImConnectionNotFound

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import Connection
    from airflow_provider_rtcim.core.client import RtcImClient
    from airflow_provider_rtcim.core.pagination import Listing
    from airflow_provider_rtcim.core.signing import Credentials

__all__ = ["RtcImApiError", "RtcImConnectionNotFound", "RtcImConnectionSettings", "RtcImHook"]

GET_USER_CONVERSATIONS = GUC.name
TEST_CONNECTION_USER_ID = 1
"""The placeholder user whose first conversation ``test_connection`` asks for."""


@dataclass(frozen=True)
class RtcImConnectionSettings:
    """A connection's parsed and validated settings. ``repr`` never shows a secret."""

    conn_id: str
    access_key_id: str | None
    secret_access_key: str | None = field(repr=False)
    session_token: str | None = field(repr=False)
    region: str
    endpoint: str
    app_id: int | None
    timeout: float
    max_qps: float | None
    max_retries: int
    proxies: dict[str, str] | None = field(repr=False)
    verify: bool | str
    user_id_type: str = DEFAULT_USER_ID_TYPE


def _config_error(conn_id: str, message: str) -> RtcImApiError:
    """``Connection 'x' has no AppId: ...`` (a missing field) or ``Connection 'x': extra.timeout ...`` (a bad value)."""
    separator = " " if message.startswith("has ") else ": "
    return RtcImApiError(f"Connection {conn_id!r}{separator}{message}", code=CODE_CONFIG)


def parse_connection(
    conn: Any,
    *,
    extra: Mapping[str, Any] | None = None,
    conn_id: str | None = None,
) -> RtcImConnectionSettings:
    """Parse an Airflow ``Connection`` (login, password, host, port, extra) into settings.

    ``extra`` replaces ``conn.extra_dejson`` (inside a trigger, pass ``await conn.aextra_dejson()``).
    Raises :class:`RtcImApiError` (code ``MisconfiguredConnection``) naming the connection
    and the field for any invalid value. Missing credentials are not an error here (see
    :meth:`RtcImHook.credentials`).
    """
    cid = conn_id or getattr(conn, "conn_id", None) or DEFAULT_CONN_ID
    if extra is None:
        extra = conn.extra_dejson
    if not isinstance(extra, Mapping):
        raise _config_error(cid, f"extra must be a JSON object, got {type(extra).__name__}")

    def get(name: str) -> Any:
        value = extra.get(name)
        return None if (isinstance(value, str) and not value.strip()) else value

    try:
        region = validate_region(get("region") or DEFAULT_REGION, "extra.region")
        endpoint = resolve_endpoint(
            conn.host, port=conn.port, region=region, endpoint_url=get("endpoint_url"), field="host"
        )
        app_id = get("app_id")
        app_id = None if app_id is None else validate_app_id(app_id, "extra.app_id")
        timeout = get("timeout")
        timeout = DEFAULT_TIMEOUT if timeout is None else to_positive_float(timeout, "extra.timeout")
        # Absent, null or "" (a form field left empty): the default; only 0 turns the cap off.
        max_qps = get("max_qps")
        max_qps = DEFAULT_MAX_QPS if max_qps is None else to_max_qps(max_qps, "extra.max_qps")
        max_retries = get("max_retries")
        max_retries = (
            DEFAULT_MAX_RETRIES
            if max_retries is None
            else to_non_negative_int(max_retries, "extra.max_retries")
        )
        proxies = parse_proxies(get("proxies"), "extra.proxies")
        verify = parse_verify(extra.get("verify"), "extra.verify")
        session_token = get("session_token")
        if session_token is not None and not isinstance(session_token, str):
            raise ValueError("extra.session_token must be a string")
        user_id_type = get("user_id_type")
        user_id_type = (
            DEFAULT_USER_ID_TYPE
            if user_id_type is None
            else validate_user_id_type(user_id_type, "extra.user_id_type")
        )
    except ValueError as exc:
        raise _config_error(cid, str(exc)) from None
    login = (conn.login or "").strip() or None
    password = conn.password or None
    return RtcImConnectionSettings(
        conn_id=cid,
        access_key_id=login,
        secret_access_key=password,
        session_token=session_token,
        region=region,
        endpoint=endpoint,
        app_id=app_id,
        timeout=timeout,
        max_qps=max_qps,
        max_retries=max_retries,
        proxies=proxies,
        verify=verify,
        user_id_type=user_id_type,
    )


def _core_infos_problem(result: Mapping[str, Any]) -> str | None:
    infos = result.get("ConversationCoreInfos")
    if infos is not None and not isinstance(infos, list):
        return f"ConversationCoreInfos is {type(infos).__name__}, not a list"
    return None


def _mask(value: str | None) -> None:
    if not value:
        return
    try:
        from airflow_provider_rtcim.compat import mask_secret

        mask_secret(value)
    except Exception:  # noqa: S110 - masking must never break a hook (e.g. no log set-up)
        pass


class RtcImHook(BaseHook):
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
            DEFAULT_POOL_MAXSIZE if pool_maxsize is None else validate_max_pages(pool_maxsize, "pool_maxsize")
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
        self._lock = threading.RLock()
        self._connection: Connection | None = None
        self._extra: Mapping[str, Any] | None = None
        self._settings_cache: RtcImConnectionSettings | None = None
        self._client_cache: RtcImClient | None = None

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

    @property
    def settings(self) -> RtcImConnectionSettings:
        """The connection's parsed settings (fetched once, on first use)."""
        settings = self._settings_cache
        if settings is None:
            with self._lock:
                settings = self._settings_cache
                if settings is None:
                    conn = self._connection
                    if conn is None:
                        conn = self._connection = self._fetch_connection()
                    settings = parse_connection(conn, extra=self._extra, conn_id=self.rtcim_conn_id)
                    _mask(settings.secret_access_key)
                    _mask(settings.session_token)
                    for url in [settings.endpoint, *(settings.proxies or {}).values()]:
                        for password in url_passwords(url):  # a proxy's (or endpoint's) user:password@
                            _mask(password)
                    self._settings_cache = settings
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
            raise _config_error(self.rtcim_conn_id, "has no AppId: set extra.app_id or pass app_id=")
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
            raise _config_error(self.rtcim_conn_id, "has no Access Key ID: set the connection's login")
        if not settings.secret_access_key:
            raise _config_error(self.rtcim_conn_id, "has no Secret Access Key: set the connection's password")
        return Credentials(
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            region=settings.region,
            session_token=settings.session_token,
        )

    @property
    def client(self) -> RtcImClient:
        """The shared HTTP client (built on first use; imports ``requests`` then)."""
        client = self._client_cache
        if client is None:
            with self._lock:
                client = self._client_cache
                if client is None:
                    client = self._client_cache = self._build_client()
        return client

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

    # -- the generic listing ---------------------------------------------------------------

    def fetch_page(self, action: PagedAction, body: Mapping[str, Any]) -> dict[str, Any]:
        """One page of a paginated read action: its ``Result``, checked to be well formed.

        A page without a bool ``HasMore`` (or whose item list is not a list) is a malformed
        response, retried like a garbled body: raising it later, while paging, would not be
        retried, and ignoring it would end the listing short.
        """
        from airflow_provider_rtcim.core.pagination import page_problem

        items_key = action.items_key
        result = self.client.call(
            action.name, dict(body), version=action.version, check=lambda r: page_problem(r, items_key)
        )
        self.client.stats.incr("pages")
        return result

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
        """Every item of every page of ``action`` for the request ``body``, lazily, each id once.

        The generic listing every named ``iter_*`` method uses: ``body`` is the request
        without the cursor; pages start at ``start_cursor`` and follow the action's next
        cursor verbatim, with the pagination guards of
        :mod:`~airflow_provider_rtcim.core.pagination` (stuck, negative, repeated or missing
        cursor, endless pages without new items, ``max_pages``), raising ``RtcImApiError``
        with code ``PaginationAnomaly``. The returned
        :class:`~airflow_provider_rtcim.core.pagination.Listing` tells, once exhausted,
        ``resume_cursor`` and ``last_position`` (a bookmark), ``pages`` and ``duplicates``.
        """
        from airflow_provider_rtcim.core.pagination import iter_items

        base = dict(body)
        key = base.get(action.key_field, base.get(f"{action.key_field}Str"))
        label = what or f"{action.name} for {action.key_field} {key} (AppId {base.get('AppId')})"

        def fetch(cursor: int) -> dict[str, Any]:
            return self.fetch_page(action, action.page_body(base, cursor=cursor))

        def on_duplicate(item_id: Any, page_no: int) -> None:
            self.log.debug("%s: skipping duplicate %s %s on page %d", label, action.id_key, item_id, page_no)

        return iter_items(
            fetch,
            spec=action,
            start_cursor=validate_cursor(start_cursor, "cursor"),
            after_position=after_position,
            max_pages=validate_max_pages(max_pages),
            what=label,
            error_class=RtcImApiError,
            on_duplicate=on_duplicate,
        )

    # -- GetUserConversations --------------------------------------------------------------

    def _conversations_body(
        self,
        participant_user_id: Any,
        *,
        data_type: Any,
        inbox_type: Any,
        skip_member_count: Any,
        app_id: Any,
        user_id_type: Any = None,
    ) -> dict[str, Any]:
        kind = self.resolve_user_id_type(user_id_type)
        user_id = check_user_id(participant_user_id, "participant_user_id", kind)
        checked = {
            "DataType": validate_data_type(data_type),
            "InboxType": validate_inbox_type(inbox_type),
            "SkipMemberCount": validate_bool(skip_member_count, "skip_member_count"),
        }
        # A string id goes verbatim in ParticipantUserIdStr, with ParticipantUserId 0 beside it
        # (as the official Go SDK sends it).
        who = (
            {"ParticipantUserId": 0, "ParticipantUserIdStr": user_id}
            if kind == "str"
            else {"ParticipantUserId": user_id}
        )
        return {"AppId": self.resolve_app_id(app_id), **who, **checked}

    def get_user_conversations(
        self,
        participant_user_id: int | str,
        *,
        cursor: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        data_type: int = 1,
        inbox_type: int = 0,
        skip_member_count: bool = False,
        app_id: int | str | None = None,
        user_id_type: str | None = None,
    ) -> dict[str, Any]:
        """One page of ``GetUserConversations``: its ``Result`` (``ConversationInfos``, ``HasMore``,
        ``NextCursor``).

        ``data_type`` defaults to 1 (database, creation order: stable while paging); the
        API's own default 0 (cache, most recently active first) reorders during a listing.
        ``app_id`` defaults to the connection's extra.app_id. ``user_id_type`` (``"int"`` or
        ``"str"``) defaults to the connection's extra.user_id_type (``"int"``): with ``"str"``
        the id is sent verbatim as ``ParticipantUserIdStr`` (``ParticipantUserId`` 0).
        """
        body = self._conversations_body(
            participant_user_id,
            data_type=data_type,
            inbox_type=inbox_type,
            skip_member_count=skip_member_count,
            app_id=app_id,
            user_id_type=user_id_type,
        )
        cursor, limit = validate_cursor(cursor), validate_limit(limit)
        return self.fetch_page(GUC, GUC.page_body(body, cursor=cursor, limit=limit))

    def iter_user_conversations(
        self,
        participant_user_id: int | str,
        *,
        data_type: int = 1,
        inbox_type: int = 0,
        skip_member_count: bool = False,
        app_id: int | str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
        user_id_type: str | None = None,
    ) -> Listing:
        """Every ``ConversationInfo`` of the user across all pages, lazily, each
        ``ConversationShortId`` once, in API order, unknown fields kept.

        Arguments are checked now (before any request); pages are fetched as you iterate.
        ``NextCursor`` is fed back verbatim. A page with ``HasMore`` whose ``NextCursor`` is
        missing, not an integer, negative, or equal to a cursor already sent, and a listing
        longer than ``max_pages`` pages, raise ``RtcImApiError`` with code
        ``PaginationAnomaly`` naming the user, the cursor and the page. ``data_type``
        defaults to 1 (database, creation order), the stable order for complete listings.
        ``user_id_type``: as for :meth:`get_user_conversations`.
        """
        body = self._conversations_body(
            participant_user_id,
            data_type=data_type,
            inbox_type=inbox_type,
            skip_member_count=skip_member_count,
            app_id=app_id,
            user_id_type=user_id_type,
        )
        body[GUC.limit_field] = validate_page_size(page_size)
        user = body.get("ParticipantUserIdStr")
        user = body["ParticipantUserId"] if user is None else repr(user)
        return self.iter_listing(
            GUC,
            body,
            max_pages=max_pages,
            what=f"{GUC.name} for user {user} (AppId {body['AppId']})",
        )

    def count_user_conversations(
        self,
        participant_user_id: int | str,
        *,
        data_type: int = 1,
        inbox_type: int = 0,
        app_id: int | str | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        user_id_type: str | None = None,
    ) -> int:
        """How many distinct conversations the user has (pages with ``SkipMemberCount=True``).

        ``data_type`` defaults to 1 (database, creation order), stable while paging.
        ``user_id_type``: as for :meth:`get_user_conversations`.
        """
        return sum(
            1
            for _ in self.iter_user_conversations(
                participant_user_id,
                data_type=data_type,
                inbox_type=inbox_type,
                skip_member_count=True,
                app_id=app_id,
                page_size=DEFAULT_PAGE_SIZE,
                max_pages=max_pages,
                user_id_type=user_id_type,
            )
        )

    # -- members, messages, details ----------------------------------------------------------

    def iter_conversation_participants(
        self,
        conversation_short_id: int | str,
        *,
        app_id: int | str | None = None,
        reverse: bool = False,
        only_user_ids: bool = False,
        scan_online: bool = False,
        mark_type: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Listing:
        """Every member of a conversation (``ScanConversationParticipantList``), lazily, each
        member once (by ``ParticipantUserId``, or ``ParticipantUserIdStr`` for string ids).

        ``reverse``: newest members first. ``only_user_ids``: members carry only their ids.
        ``scan_online`` (live groups): only the online members, optionally only those with
        the mark ``mark_type``. A negative ``NextCursor`` ends the listing whatever
        ``HasMore`` says (the API's documented end of a member listing).
        """
        body: dict[str, Any] = {
            "AppId": self.resolve_app_id(app_id),
            "ConversationShortId": validate_conversation_short_id(conversation_short_id),
            "Limit": validate_page_size(page_size),
            "Reverse": validate_bool(reverse, "reverse"),
            "OnlyUserIds": validate_bool(only_user_ids, "only_user_ids"),
            "ScanOnlineParticipant": validate_bool(scan_online, "scan_online"),
        }
        if mark_type is not None:
            if not isinstance(mark_type, str) or not mark_type.strip():
                raise ValueError(f"mark_type must be a non-empty string or None, got {mark_type!r}")
            body["MarkType"] = mark_type
        return self.iter_listing(SCAN_CONVERSATION_PARTICIPANTS, body, max_pages=max_pages)

    def iter_conversation_messages(
        self,
        conversation_short_id: int | str,
        *,
        app_id: int | str | None = None,
        cursor: int = 0,
        after_index: int | None = None,
        reverse: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Listing:
        """Every message of a conversation from ``cursor`` on (``GetConversationMessages``),
        lazily, each ``MessageId`` once, ``NewCursor`` fed back verbatim.

        ``cursor`` 0 is the start (the newest message with ``reverse``). Once exhausted the
        :class:`~airflow_provider_rtcim.core.pagination.Listing` tells ``resume_cursor`` (the
        last page's ``NewCursor``: where the next message will appear, a bookmark) and
        ``last_position`` (the largest ``IndexInConversation`` taken). ``after_index`` drops
        every message whose ``IndexInConversation`` is not past it, so a listing resumed from a
        bookmark doubles nothing even if the cursor restarts or repeats.
        """
        body: dict[str, Any] = {
            "AppId": self.resolve_app_id(app_id),
            "ConversationShortId": validate_conversation_short_id(conversation_short_id),
            "Limit": validate_page_size(page_size),
            "Reverse": 1 if validate_bool(reverse, "reverse") else 0,
        }
        if after_index is not None:
            after_index = validate_cursor(after_index, "after_index")
        return self.iter_listing(
            GET_CONVERSATION_MESSAGES,
            body,
            start_cursor=cursor,
            after_position=after_index,
            max_pages=max_pages,
        )

    def batch_get_conversations(
        self,
        conversation_short_ids: Sequence[int | str],
        *,
        app_id: int | str | None = None,
        skip_member_count: bool = True,
        batch_size: int = BATCH_GET_CONVERSATIONS_MAX_IDS,
    ) -> list[dict[str, Any]]:
        """Details of known conversations (``BatchGetConversations``), in requests of at most
        ``batch_size`` ids; the ``ConversationCoreInfos`` of every request, in order.

        Ids are checked (and de-duplicated) before the first request. Dissolved or unknown
        conversations are simply absent from the result.
        """
        if isinstance(conversation_short_ids, (str, int)):
            conversation_short_ids = [conversation_short_ids]
        ids = list(
            dict.fromkeys(
                validate_conversation_short_id(v, f"conversation_short_ids[{i}]")
                for i, v in enumerate(conversation_short_ids)
            )
        )
        size = validate_max_pages(batch_size, "batch_size")
        if size > BATCH_GET_CONVERSATIONS_MAX_IDS:
            raise ValueError(
                f"batch_size must be between 1 and {BATCH_GET_CONVERSATIONS_MAX_IDS}, got {batch_size!r}"
            )
        app = self.resolve_app_id(app_id)
        skip = validate_bool(skip_member_count, "skip_member_count")
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), size):
            body = {"AppId": app, "ConversationShortId": ids[start : start + size], "SkipMemberCount": skip}
            result = self.client.call(
                BATCH_GET_CONVERSATIONS, body, check=_core_infos_problem, version=DEFAULT_VERSION
            )
            out.extend(result.get("ConversationCoreInfos") or [])
        return out

    # -- housekeeping --------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Cumulative ``{"requests", "retries", "pages"}`` for this hook (a copy)."""
        client = self._client_cache
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
            body = self._conversations_body(
                placeholder, data_type=1, inbox_type=0, skip_member_count=True, app_id=settings.app_id
            )
            self.client.call(GUC.name, GUC.page_body(body, cursor=0, limit=1), retry=False)
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
        code = exc.code or ""
        if isinstance(exc, RtcImConnectionNotFound):
            return exc.message  # only outside the Test button: the id is all there is to name
        if code == CODE_CONFIG:
            detail = exc.message.removeprefix(f"Connection {self.rtcim_conn_id!r}").lstrip(": ")
            return f"Invalid connection setting: {detail}."
        settings = self._settings_cache
        if settings is None:  # pragma: no cover - settings are loaded before any call
            return str(exc)
        key, endpoint, region = settings.access_key_id, settings.endpoint, settings.region
        rid = f" [RequestId {exc.request_id}]" if exc.request_id else ""
        # What was rejected, in the connection's own terms; what to fix comes from FIX_HINTS,
        # the one place those hints live (the errors the hook raises carry the same ones).
        subjects = {
            "InvalidAccessKey": f"The Access Key ID {key!r} is unknown to {endpoint}",
            "SignatureDoesNotMatch": f"{endpoint} rejected the signature of Access Key ID {key!r} (region {region})",
            "InvalidParameter.NotExistAppId": f"AppId {settings.app_id} is not known to the account of Access Key ID {key!r}",
            "InvalidParameter.IllegalAppId": f"AppId {settings.app_id} is not valid for the account of Access Key ID {key!r}",
            "InvalidTimestamp": f"{endpoint} rejected the request time",
            "InvalidSecretToken": f"The session token of Access Key ID {key!r} was rejected",
        }
        if code in subjects:
            hint = hint_for(code)
            if code == "SignatureDoesNotMatch":
                note = region_note(endpoint, region, "the Region field (extra.region)")
                if note is not None:
                    hint = f"{note}; if the region is right, {hint}"
            return f"{subjects[code]} ({code}): {hint}.{rid}"
        if code in (CODE_CONNECTION, CODE_TIMEOUT, CODE_TRUNCATED, "SSLError"):
            return f"Cannot reach the API: {exc.message}" + ("" if exc.message.endswith(("?", ".")) else ".")
        return f"{exc} (endpoint {endpoint}, region {region}, Access Key ID {key!r}, AppId {settings.app_id})"

    def close(self) -> None:
        """Close the HTTP session's pooled connections."""
        client = self._client_cache
        if client is not None:
            client.close()

    def __repr__(self) -> str:
        settings = self._settings_cache
        where = f", endpoint={settings.endpoint!r}" if settings is not None else ""
        return f"{type(self).__name__}(rtcim_conn_id={self.rtcim_conn_id!r}{where})"
