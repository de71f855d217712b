"""The public :class:`Emulator`: options, lifecycle, the Python API and the HTTP entry points.

The pieces it wires together: :mod:`.models` (the backend: all data behind public, locked
methods), :mod:`.dispatch` and :mod:`.responses` (the API: one handler per action),
:mod:`.admin` (the admin API's route table), :mod:`.options`, :mod:`.stats`, :mod:`.auth`
(signatures), :mod:`.faults` and :mod:`.transport` (HTTP). See the package docstring for the
whole reference.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_rtcim.core.signing import Credentials
from airflow_provider_rtcim.emulator import admin as _admin
from airflow_provider_rtcim.emulator.auth import SERVICE, TIMESTAMP_WINDOW
from airflow_provider_rtcim.emulator.dispatch import ApiDispatcher
from airflow_provider_rtcim.emulator.faults import (
    ALL_ANOMALY_KINDS,
    ANOMALY_KINDS,
    FAULT_KINDS,
    MESSAGE_ANOMALY_KINDS,
    FaultInjector,
)
from airflow_provider_rtcim.emulator.models import EmulatorBackend
from airflow_provider_rtcim.emulator.options import Options
from airflow_provider_rtcim.emulator.records import MAX_MEMBERS, MAX_MESSAGES
from airflow_provider_rtcim.emulator.responses import MAX_LIMIT, VERSION
from airflow_provider_rtcim.emulator.stats import Stats
from airflow_provider_rtcim.emulator.transport import Reply, Server

__all__ = [
    "ALL_ANOMALY_KINDS",
    "ANOMALY_KINDS",
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_APP_ID",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_ACCESS_KEY",
    "FAULT_KINDS",
    "MAX_LIMIT",
    "MESSAGE_ANOMALY_KINDS",
    "SERVICE",
    "TIMESTAMP_WINDOW",
    "VERSION",
    "Emulator",
]

ACTION = "GetUserConversations"

DEFAULT_ACCESS_KEY_ID = "AKLTemulatorKey"
DEFAULT_SECRET_ACCESS_KEY = "emulator-secret-key-0123456789"
DEFAULT_APP_ID = 100001
DEFAULT_REGION = "cn-north-1"


def _count_option(name: str, value: int | None, maximum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(
            f"{name} must be None (varies per conversation) or an int 0..{maximum}, got {value!r}"
        )
    return value


def _data_method(name: str) -> Any:
    """An :class:`Emulator` method that is the backend's method of that name (same doc)."""
    target = getattr(EmulatorBackend, name)

    @functools.wraps(target)
    def method(self: Emulator, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.backend, name)(*args, **kwargs)

    return method


def _data_property(name: str) -> property:
    target = getattr(EmulatorBackend, name)
    return property(lambda self: getattr(self.backend, name), doc=target.__doc__)


def _option(name: str, on: str = "options") -> property:
    """A runtime option, read from (and written to) the options (or their fault injector)."""

    def owner(self: Emulator) -> Any:
        return self.options if on == "options" else self.options.faults

    return property(
        lambda self: getattr(owner(self), name), lambda self, value: setattr(owner(self), name, value)
    )


class Emulator:
    """A local, faithful stand-in for the RTC IM OpenAPI's read actions (see the package docstring).

    Keyword-only options (all but the data and credentials can be changed later with
    :meth:`configure`):

    - ``host`` / ``port``: where to listen (default ``127.0.0.1`` and a free port).
    - ``users``, ``conversations_per_user``, ``seed``, ``string_users`` (default 0),
      ``messages_per_conversation`` (default None: 0..12, varying), ``participants_per_conversation``
      (default None: 3..12 for groups, 4..20 for live groups; one-to-ones always have 2):
      the generated data set (int user ids ``1000001``..., then string users ``"007"``,
      ``"123"``, ...); ``users``/``string_users``/``conversations_per_user`` are ignored when
      ``data`` (a dict or a JSON file path, see :mod:`.data`) is given.
    - ``app_ids`` (default ``[100001]``; the first is :attr:`app_id`), ``access_key_id``,
      ``secret_access_key``, ``session_token`` (required as ``X-Security-Token`` when set),
      ``region``.
    - ``qps_limit`` (default 100; ``None``/0 = unlimited): account-wide sliding window of
      1 s over *admitted* requests; beyond it, HTTP 429 ``FlowLimitExceeded.QPSOverLimit``.
    - ``latency``: seconds slept per API request, in the handler thread.
    - ``fault_rate`` (0..1), ``fault_kinds`` (subset of :data:`FAULT_KINDS`, default all),
      ``fault_seed``, ``max_consecutive_faults`` (default 3), ``retry_after`` (seconds
      sent as ``Retry-After`` on 429s; default none).
    - ``anomalies``: ``{key: kind}``, kinds from :data:`ANOMALY_KINDS` and
      :data:`MESSAGE_ANOMALY_KINDS`; a key is ``"*"``, a user id (GetUserConversations), a
      ConversationShortId (the conversation actions) or ``"str:<id>"`` for a string user.
    - ``reorder_data_type0``: DataType-0 pages make later conversations jump to the front.
    - ``participants_last_page_has_more``: ScanConversationParticipantList's last page says
      ``HasMore: true`` beside its ``NextCursor: -1`` (the SDK: a negative cursor ends it).
    - ``clock_offset``: seconds added to the server clock (for ``InvalidTimestamp``).
    - ``verify_signatures`` (default True): False accepts any request, signed or not, with
      no credential, token or timestamp check. **Benchmark-only** (comparing the hook
      with an unsigned client over the same pages); never use it to test signing.
    - ``verbose``: log every request to stderr.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: int = 3,
        conversations_per_user: int = 45,
        seed: int = 0,
        string_users: int = 0,
        messages_per_conversation: int | None = None,
        participants_per_conversation: int | None = None,
        data: Mapping[str, Any] | str | None = None,
        app_ids: Iterable[int] | None = None,
        access_key_id: str = DEFAULT_ACCESS_KEY_ID,
        secret_access_key: str = DEFAULT_SECRET_ACCESS_KEY,
        session_token: str | None = None,
        region: str = DEFAULT_REGION,
        qps_limit: float | None = 100,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[str] | str | None = None,
        fault_seed: int = 0,
        max_consecutive_faults: int = 3,
        retry_after: float | None = None,
        anomalies: Mapping[Any, str] | None = None,
        reorder_data_type0: bool = False,
        participants_last_page_has_more: bool = False,
        clock_offset: float = 0.0,
        verify_signatures: bool = True,
        verbose: bool = False,
    ) -> None:
        if users < 0 or conversations_per_user < 0:
            raise ValueError("users and conversations_per_user must be >= 0")
        if isinstance(string_users, bool) or not isinstance(string_users, int) or string_users < 0:
            raise ValueError(f"string_users must be an int >= 0, got {string_users!r}")
        self.host = host
        self._requested_port = int(port)
        self.seed = int(seed)
        self.access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self.region = region
        self.backend = EmulatorBackend(
            app_ids=[int(a) for a in app_ids] if app_ids is not None else [],
            default_app_id=DEFAULT_APP_ID,
            seed=self.seed,
            data=data,
            users=users,
            conversations_per_user=conversations_per_user,
            string_users=string_users,
            messages_per_conversation=_count_option(
                "messages_per_conversation", messages_per_conversation, MAX_MESSAGES
            ),
            participants_per_conversation=_count_option(
                "participants_per_conversation", participants_per_conversation, MAX_MEMBERS
            ),
        )
        self.options = Options(
            faults=FaultInjector(), session_token=session_token, verify_signatures=verify_signatures
        )
        self.options.configure(
            latency=latency,
            qps_limit=qps_limit,
            retry_after=retry_after,
            fault_rate=fault_rate,
            fault_kinds=fault_kinds,
            fault_seed=fault_seed,
            max_consecutive_faults=max_consecutive_faults,
            anomalies=anomalies,
            reorder_data_type0=reorder_data_type0,
            participants_last_page_has_more=participants_last_page_has_more,
            clock_offset=clock_offset,
            verbose=verbose,
        )
        self._stats = Stats()
        self._api = ApiDispatcher(
            backend=self.backend,
            options=self.options,
            stats=self._stats,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            region=region,
        )
        self._server: Server | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Emulator:
        """Bind and serve in a daemon thread; returns self. Idempotent."""
        if self._server is not None:
            return self
        self._server = Server((self.host, self._requested_port), self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"rtcim-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_all_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (kept after :meth:`stop`)."""
        if self._port is None:
            raise RuntimeError("the emulator has not been started: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def secret_access_key(self) -> str:
        return self._secret_access_key

    @property
    def app_ids(self) -> list[int]:
        """The AppIds the emulator serves (the first is :attr:`app_id`)."""
        return self.backend.app_ids

    @property
    def app_id(self) -> int:
        return self.backend.app_id

    @property
    def credentials(self) -> Credentials:
        """Credentials for :func:`airflow_provider_rtcim.core.signing.sign_request`."""
        return Credentials(
            access_key_id=self.access_key_id,
            secret_access_key=self._secret_access_key,
            region=self.region,
            service=SERVICE,
            session_token=self.session_token,
        )

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"Emulator({where}, app_id={self.app_id}, users={len(self.user_ids)})"

    # ------------------------------------------------------------------ configuration
    def configure(self, **options: Any) -> None:
        """Change runtime options (see the class docstring). Unknown names raise ``ValueError``.

        Changing any fault option resets the per-request fault history.
        """
        self.options.configure(**options)

    @property
    def config(self) -> dict[str, Any]:
        """The runtime options (the session token shown only as set/not set)."""
        return self.options.config

    latency = _option("latency")
    qps_limit = _option("qps_limit")
    retry_after = _option("retry_after")
    anomalies = _option("anomalies")
    reorder_data_type0 = _option("reorder_data_type0")
    participants_last_page_has_more = _option("participants_last_page_has_more")
    clock_offset = _option("clock_offset")
    session_token = _option("session_token")
    verify_signatures = _option("verify_signatures")
    verbose = _option("verbose")
    fault_rate = _option("rate", on="faults")
    fault_kinds = _option("kinds", on="faults")
    fault_seed = _option("seed", on="faults")
    max_consecutive_faults = _option("max_consecutive", on="faults")

    # ------------------------------------------------------------------ data API (the backend's)
    user_ids = _data_property("user_ids")
    string_user_ids = _data_property("string_user_ids")
    data_stats = _data_property("data_stats")
    conversations = _data_method("conversations")
    conversation_ids = _data_method("conversation_ids")
    conversation = _data_method("conversation")
    batch_conversations = _data_method("batch_conversations")
    participants = _data_method("participants")
    online_participants = _data_method("online_participants")
    messages = _data_method("messages")
    message_count = _data_method("message_count")
    add_conversation = _data_method("add_conversation")
    remove_conversation = _data_method("remove_conversation")
    add_participant = _data_method("add_participant")
    remove_participant = _data_method("remove_participant")
    add_message = _data_method("add_message")
    add_messages = _data_method("add_messages")
    set_message_count = _data_method("set_message_count")
    user = _data_method("user")
    batch_users = _data_method("batch_users")
    add_user = _data_method("add_user")
    friends = _data_method("friends")
    add_friend = _data_method("add_friend")
    remove_friend = _data_method("remove_friend")
    blacklist = _data_method("blacklist")
    add_to_blacklist = _data_method("add_to_blacklist")
    remove_from_blacklist = _data_method("remove_from_blacklist")
    read_indexes = _data_method("read_indexes")
    set_read_index = _data_method("set_read_index")
    block_participants = _data_method("block_participants")
    set_block = _data_method("set_block")
    remove_block = _data_method("remove_block")

    # ------------------------------------------------------------------ stats
    def reset_stats(self) -> None:
        self._stats.reset()

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot: ``requests`` (API calls), ``by_status`` ({int: n}), ``by_code`` ({Code: n}),
        ``by_action`` ({Action: n}, as sent), ``throttled`` (429s from the QPS limiter),
        ``faults_injected`` ({kind: n}), ``faults_total``, ``signature_failures`` (all 401s and
        InvalidTimestamp), ``admin_requests``."""
        return self._stats.snapshot()

    # ------------------------------------------------------------------ Airflow helpers
    def connection_json(self, **overrides: Any) -> str:
        """An Airflow JSON connection for this emulator.

        Keys ``conn_type``, ``login``, ``password``, ``host``, ``port``, ``schema`` and
        ``description`` override the top level; any other key goes into ``extra``
        (e.g. ``max_qps=20``, ``app_id=...``); a ``None`` value removes the key.
        """
        conn: dict[str, Any] = {
            "conn_type": "rtcim",
            "login": self.access_key_id,
            "password": self._secret_access_key,
            "host": self.url,
        }
        extra: dict[str, Any] = {"app_id": self.app_id, "region": self.region, "endpoint_url": self.url}
        if self.session_token:
            extra["session_token"] = self.session_token
        for key, value in overrides.items():
            target = (
                conn
                if key in ("conn_type", "login", "password", "host", "port", "schema", "description")
                else extra
            )
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
        conn["extra"] = extra
        return json.dumps(conn)

    def airflow_env(self, conn_id: str = "rtcim_default", **overrides: Any) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<CONN_ID>": connection_json(**overrides)}``."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(**overrides)}

    # ------------------------------------------------------------------ HTTP entry points (transport)
    def handle_api(self, method: str, path: str, query_string: str, headers: Any, body: bytes) -> Reply:
        """Serve one API request (signature, QPS limit, the action's handler)."""
        return self._api.handle(method, path, query_string, headers, body)

    def handle_admin(self, method: str, path: str, query_string: str, body: bytes) -> tuple[int, Any]:
        """Serve one ``/_emulator/...`` request: ``(status, JSON payload)``."""
        self._stats.admin_request()
        return _admin.handle_admin(self, method, path, query_string, body)
