"""The public :class:`Emulator`: options, lifecycle, the Python API, stats and admin routing.

The pieces it wires together: :mod:`.models` (the data), :mod:`.data` (generation and data
files), :mod:`.responses` (one handler per action), :mod:`.auth` (signatures),
:mod:`.faults` (faults, anomalies, the QPS window) and :mod:`.transport` (HTTP).
See the package docstring for the whole reference.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote

from airflow_provider_rtcim.core.signing import Credentials
from airflow_provider_rtcim.emulator import data as _data
from airflow_provider_rtcim.emulator.auth import SERVICE, TIMESTAMP_WINDOW, verify_request
from airflow_provider_rtcim.emulator.cursors import CursorCodec
from airflow_provider_rtcim.emulator.faults import (
    ALL_ANOMALY_KINDS,
    ANOMALY_KINDS,
    FAULT_KINDS,
    FAULT_STATUS,
    MESSAGE_ANOMALY_KINDS,
    FaultInjector,
    QpsWindow,
    anomaly_keys_for_config,
    normalize_anomalies,
    normalize_fault_kinds,
)
from airflow_provider_rtcim.emulator.models import (
    DATA_TYPES,
    MAX_MEMBERS,
    MAX_MESSAGES,
    Backend,
    UserKey,
    _hash64,
    check_user_key,
)
from airflow_provider_rtcim.emulator.responses import ACTIONS, MAX_LIMIT, VERSION
from airflow_provider_rtcim.emulator.transport import ApiError, Reply, Server, dumps

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

_CONFIG_KEYS = (
    "latency",
    "qps_limit",
    "fault_rate",
    "fault_kinds",
    "fault_seed",
    "max_consecutive_faults",
    "retry_after",
    "anomalies",
    "reorder_data_type0",
    "participants_last_page_has_more",
    "clock_offset",
    "session_token",
    "verify_signatures",
    "verbose",
)


def _count_option(name: str, value: int | None, maximum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(
            f"{name} must be None (varies per conversation) or an int 0..{maximum}, got {value!r}"
        )
    return value


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
        messages = _count_option("messages_per_conversation", messages_per_conversation, MAX_MESSAGES)
        members = _count_option("participants_per_conversation", participants_per_conversation, MAX_MEMBERS)
        self.host = host
        self._requested_port = int(port)
        self.seed = int(seed)
        self.access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self.region = region
        self._lock = threading.Lock()
        self._qps = QpsWindow()
        self._request_ids = itertools.count(1)
        ids = [int(a) for a in app_ids] if app_ids is not None else []
        if data is not None:
            dataset = _data.load_data(data)
            self.app_ids = ids or dataset.app_ids or [DEFAULT_APP_ID]
            self._backend = Backend(default_app_id=self.app_ids[0], seed=self.seed)
            _data.populate(
                self._backend,
                dataset,
                messages_per_conversation=messages,
                participants_per_conversation=members,
            )
        else:
            self.app_ids = ids or [DEFAULT_APP_ID]
            self._backend = Backend(default_app_id=self.app_ids[0], seed=self.seed)
            _data.generate(
                self._backend,
                users=users,
                conversations_per_user=conversations_per_user,
                seed=self.seed,
                app_id=self.app_ids[0],
                string_users=string_users,
                messages_per_conversation=messages,
                participants_per_conversation=members,
            )
        self._codec = CursorCodec(_hash64("cursor-salt", self.seed))
        self._reorder_counts: Counter[UserKey] = Counter()
        self._faults = FaultInjector()
        self._server: Server | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        # options changeable at runtime
        self.session_token = session_token
        self.qps_limit = qps_limit
        self.latency = 0.0
        self.retry_after = retry_after
        self.anomalies: dict[Any, str] = {}
        self.reorder_data_type0 = False
        self.participants_last_page_has_more = False
        self.clock_offset = 0.0
        self.verify_signatures = bool(verify_signatures)
        self.verbose = verbose
        self.configure(
            latency=latency,
            fault_rate=fault_rate,
            fault_kinds=fault_kinds,
            fault_seed=fault_seed,
            max_consecutive_faults=max_consecutive_faults,
            anomalies=anomalies,
            reorder_data_type0=reorder_data_type0,
            participants_last_page_has_more=participants_last_page_has_more,
            clock_offset=clock_offset,
            qps_limit=qps_limit,
        )
        self.reset_stats()

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
    def app_id(self) -> int:
        return self.app_ids[0]

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
        unknown = sorted(set(options) - set(_CONFIG_KEYS))
        if unknown:
            raise ValueError(f"configure: unknown option(s) {unknown}; allowed: {', '.join(_CONFIG_KEYS)}")
        faults = self._faults
        with self._lock:
            if "latency" in options:
                latency = float(options["latency"] or 0)
                if latency < 0:
                    raise ValueError("latency must be >= 0 seconds")
                self.latency = latency
            if "qps_limit" in options:
                q = options["qps_limit"]
                if q is not None and float(q) < 0:
                    raise ValueError("qps_limit must be > 0, or None/0 for unlimited")
                self.qps_limit = float(q) if q else None
            if "fault_rate" in options:
                rate = float(options["fault_rate"] or 0)
                if not 0 <= rate <= 1:
                    raise ValueError("fault_rate must be between 0 and 1")
                faults.rate = rate
            if "fault_kinds" in options:
                faults.kinds = normalize_fault_kinds(options["fault_kinds"])
            if "fault_seed" in options:
                faults.seed = int(options["fault_seed"] or 0)
            if "max_consecutive_faults" in options:
                mcf = int(options["max_consecutive_faults"])
                if mcf < 0:
                    raise ValueError("max_consecutive_faults must be >= 0")
                faults.max_consecutive = mcf
            if options.keys() & {"fault_rate", "fault_kinds", "fault_seed", "max_consecutive_faults"}:
                faults.reset()
            if "retry_after" in options:
                ra = options["retry_after"]
                self.retry_after = None if ra is None else float(ra)
            if "anomalies" in options:
                self.anomalies = normalize_anomalies(options["anomalies"])
            if "reorder_data_type0" in options:
                self.reorder_data_type0 = bool(options["reorder_data_type0"])
            if "participants_last_page_has_more" in options:
                self.participants_last_page_has_more = bool(options["participants_last_page_has_more"])
            if "clock_offset" in options:
                self.clock_offset = float(options["clock_offset"] or 0)
            if "session_token" in options:
                self.session_token = options["session_token"] or None
            if "verify_signatures" in options:
                self.verify_signatures = bool(options["verify_signatures"])
            if "verbose" in options:
                self.verbose = bool(options["verbose"])

    # the fault options live on the injector; these keep the public attributes
    @property
    def fault_rate(self) -> float:
        return self._faults.rate

    @property
    def fault_kinds(self) -> tuple[str, ...]:
        return self._faults.kinds

    @property
    def fault_seed(self) -> int:
        return self._faults.seed

    @property
    def max_consecutive_faults(self) -> int:
        return self._faults.max_consecutive

    @property
    def config(self) -> dict[str, Any]:
        """The runtime options (the session token shown only as set/not set)."""
        return {
            "latency": self.latency,
            "qps_limit": self.qps_limit,
            "fault_rate": self.fault_rate,
            "fault_kinds": list(self.fault_kinds),
            "fault_seed": self.fault_seed,
            "max_consecutive_faults": self.max_consecutive_faults,
            "retry_after": self.retry_after,
            "anomalies": anomaly_keys_for_config(self.anomalies),
            "reorder_data_type0": self.reorder_data_type0,
            "participants_last_page_has_more": self.participants_last_page_has_more,
            "clock_offset": self.clock_offset,
            "session_token_set": self.session_token is not None,
            "verify_signatures": self.verify_signatures,
            "verbose": self.verbose,
        }

    # ------------------------------------------------------------------ data API (ground truth)
    @property
    def user_ids(self) -> list[int]:
        """The int users (generated ``1000001``..., or a data file's ``users``)."""
        with self._lock:
            return self._backend.user_ids

    @property
    def string_user_ids(self) -> list[str]:
        """The string users (``string_users=N``, or a data file's ``string_users``)."""
        with self._lock:
            return self._backend.string_user_ids

    def conversations(
        self, user_id: int | str, data_type: int = 1, inbox_type: int = 0, app_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Every conversation GetUserConversations lists for these parameters, in API order.

        ``user_id``: an int names an int user, a str a string user (``"123"`` is not ``123``).
        """
        if data_type not in DATA_TYPES:
            raise ValueError(f"data_type must be one of {DATA_TYPES}")
        key = check_user_key(user_id)
        with self._lock:
            return self._backend.snapshot(key, app_id or self.app_id, data_type, int(inbox_type))

    def conversation_ids(self, app_id: int | None = None) -> list[int]:
        """Every conversation's ConversationShortId, sorted (of one AppId when given)."""
        with self._lock:
            return self._backend.conversation_ids(app_id)

    def conversation(self, short_id: int) -> dict[str, Any] | None:
        """A conversation's details (every ConversationInfo field), or None."""
        with self._lock:
            conv = self._backend.get(int(short_id))
            return copy.deepcopy(conv.info) if conv is not None else None

    def batch_conversations(
        self, short_ids: Iterable[int], skip_member_count: bool = True, app_id: int | None = None
    ) -> list[dict[str, Any]]:
        """What BatchGetConversations returns: known, not dissolved (Status 1), in request order."""
        with self._lock:
            return copy.deepcopy(
                self._backend.batch([int(s) for s in short_ids], app_id or self.app_id, skip_member_count)
            )

    def participants(self, short_id: int, reverse: bool = False) -> list[dict[str, Any]]:
        """Every member, in ScanConversationParticipantList order (join time; ``reverse``: newest first)."""
        with self._lock:
            return self._backend.participants(int(short_id), reverse)

    def online_participants(self, short_id: int, mark: str | None = None) -> list[dict[str, Any]]:
        """A live group's online members (``ScanOnlineParticipant``), optionally those carrying ``mark``."""
        with self._lock:
            conv = self._backend.get(int(short_id))
            if conv is None:
                return []
            return [self._backend.render_participant(conv, k) for k in self._backend.online_keys(conv, mark)]

    def messages(self, short_id: int, reverse: bool = False) -> list[dict[str, Any]]:
        """Every message by IndexInConversation (``reverse``: newest first). Materializes them all."""
        with self._lock:
            return self._backend.messages(int(short_id), reverse)

    def message_count(self, short_id: int) -> int:
        """How many messages a conversation holds (0 when unknown)."""
        with self._lock:
            conv = self._backend.get(int(short_id))
            return conv.message_count if conv is not None else 0

    @property
    def data_stats(self) -> dict[str, int]:
        """Sizes of the data model: ``conversations``, ``users``, ``string_users``, ``stored_messages``
        (message dicts held in memory; generated ones are not) and ``materialized_members``."""
        with self._lock:
            b = self._backend
            return {
                "conversations": len(b.convs),
                "users": len(b.user_ids),
                "string_users": len(b.string_user_ids),
                "stored_messages": b.stored_message_count(),
                "materialized_members": sum(
                    len(c.members) for c in b.convs.values() if c.members is not None
                ),
            }

    # ------------------------------------------------------------------ data API (mutations)
    def add_conversation(self, user_id: int | str, **fields: Any) -> dict[str, Any]:
        """Add a conversation (API field names; missing ones generated) created and active "now".

        It lands last in DataType 1 and first in DataType 0. Its members: the user, the creator,
        the owner and the other user (then generated ones up to ``MemberCount`` if given); no
        messages. With an existing ``ConversationShortId``, the user lists that conversation too
        and ``fields`` update it. Returns a copy of what is stored.
        """
        with self._lock:
            return copy.deepcopy(self._backend.add_conversation(check_user_key(user_id), fields))

    def remove_conversation(
        self, user_id: int | str, conversation_short_id: int | None = None
    ) -> dict[str, Any]:
        """The user stops listing one conversation (default: its newest); returns it. ``KeyError`` if absent.

        The conversation itself is removed with its last lister.
        """
        with self._lock:
            sid = None if conversation_short_id is None else int(conversation_short_id)
            return copy.deepcopy(self._backend.remove_conversation(check_user_key(user_id), sid))

    def add_participant(self, short_id: int, user_id: int | str, **fields: Any) -> dict[str, Any]:
        """Add a member (joined "now", last in join order) with optional participant fields (Role,
        NickName, Marks, ...), or update the fields of a member. A user the emulator knows also
        lists the conversation. MemberCount follows. ``KeyError`` for an unknown conversation."""
        with self._lock:
            return self._backend.add_participant(int(short_id), check_user_key(user_id), fields)

    def remove_participant(self, short_id: int, user_id: int | str) -> dict[str, Any]:
        """Remove a member (who then no longer lists it); returns it. ``KeyError`` if absent."""
        with self._lock:
            return self._backend.remove_participant(int(short_id), check_user_key(user_id))

    def add_message(
        self, short_id: int, *, sender: int | str | None = None, content: Any = None, **fields: Any
    ) -> dict[str, Any]:
        """Append a message at the next IndexInConversation with a new MessageId, sent "now" (ms).

        ``sender``: a member (default: one picked deterministically); ``content``: a str sent
        verbatim or any JSON value (serialized); ``fields``: other message fields (MsgType, Ext,
        RefMsgInfo, ...). ``KeyError`` if the conversation does not exist, ``ValueError`` if the
        sender is not a member.
        """
        with self._lock:
            sid = int(short_id)
            conv = self._backend.get(sid)
            if conv is None:
                raise KeyError(f"no conversation {sid}")
            if sender is not None and not self._backend.is_member(conv, check_user_key(sender, "sender")):
                raise ValueError(
                    f"sender {sender!r} is not a member of conversation {sid}: add_participant first"
                )
            return self._backend.add_message(sid, sender=sender, content=content, fields=fields)

    def add_messages(self, short_id: int, n: int) -> list[dict[str, Any]]:
        """Append ``n`` generated messages (senders are members); returns them."""
        with self._lock:
            return self._backend.add_messages(int(short_id), n)

    def set_message_count(self, short_id: int, n: int) -> None:
        """Make a conversation hold exactly ``n`` messages, generated lazily (cheap even for
        ``n = 100_000``; messages added or loaded before are dropped)."""
        with self._lock:
            self._backend.set_message_count(int(short_id), n)

    # ------------------------------------------------------------------ stats
    def reset_stats(self) -> None:
        with self._lock:
            self._stats: dict[str, Any] = {
                "requests": 0,
                "by_status": Counter(),
                "by_code": Counter(),
                "by_action": Counter(),
                "throttled": 0,
                "faults_injected": Counter(),
                "signature_failures": 0,
                "admin_requests": 0,
            }

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot: ``requests`` (API calls), ``by_status`` ({int: n}), ``by_code`` ({Code: n}),
        ``by_action`` ({Action: n}, as sent), ``throttled`` (429s from the QPS limiter),
        ``faults_injected`` ({kind: n}), ``faults_total``, ``signature_failures`` (all 401s and
        InvalidTimestamp), ``admin_requests``."""
        with self._lock:
            s = self._stats
            return {
                "requests": s["requests"],
                "by_status": dict(s["by_status"]),
                "by_code": dict(s["by_code"]),
                "by_action": dict(s["by_action"]),
                "throttled": s["throttled"],
                "faults_injected": dict(s["faults_injected"]),
                "faults_total": sum(s["faults_injected"].values()),
                "signature_failures": s["signature_failures"],
                "admin_requests": s["admin_requests"],
            }

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

    # ------------------------------------------------------------------ request handling
    def _count(self, status: int | None, code: str | None) -> None:
        s = self._stats
        if status is not None:
            s["by_status"][status] += 1
        if code:
            s["by_code"][code] += 1

    def _meta(self, action: str, version: str) -> dict[str, Any]:
        return {
            "RequestId": f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}{next(self._request_ids):012X}",
            "Action": action,
            "Version": version,
            "Service": SERVICE,
            "Region": self.region,
        }

    def _error(self, meta: dict[str, Any], status: int, code: str, message: str) -> Reply:
        meta = dict(meta, Error={"Code": code, "Message": message})
        headers = {}
        if status == 429 and self.retry_after is not None:
            headers["Retry-After"] = f"{self.retry_after:g}"
        with self._lock:
            self._count(status, code)
        return Reply(status, dumps({"ResponseMetadata": meta}), headers=headers)

    def _ok(self, meta: dict[str, Any], result: dict[str, Any], *, counted: bool = False) -> Reply:
        """A 200 with ``result``; ``counted``: the caller already counted it (holding the lock)."""
        if not counted:
            with self._lock:
                self._count(200, None)
        return Reply(200, dumps({"ResponseMetadata": meta, "Result": result}))

    def _anomaly_for(self, key: UserKey) -> str | None:
        """The anomaly for a user (GetUserConversations) or a conversation id, else ``"*"``'s."""
        return self.anomalies.get(key) or self.anomalies.get("*")

    def _fault(self, meta: dict[str, Any], key: tuple, empty_result: dict[str, Any]) -> Reply | None:
        """A fault reply for this request key and attempt, or None to serve it."""
        if not self._faults.rate:  # no history to keep: configure() resets it when the rate changes
            return None
        with self._lock:
            kind = self._faults.decide(key)
            if kind is None:
                return None
            self._stats["faults_injected"][kind] += 1
        if kind in FAULT_STATUS:
            status, code, message = FAULT_STATUS[kind]
            return self._error(meta, status, code, message)
        if kind == "reset":
            return Reply(0, b"", kind="reset")
        if kind == "badjson":
            with self._lock:
                self._count(200, None)
            return Reply(200, b"<html><body><h1>502 Bad Gateway</h1>upstream said: {</body></html>")
        # truncate: a response whose body stops half way
        body = dumps({"ResponseMetadata": meta, "Result": empty_result})
        return Reply(200, body + b" " * 64, kind="truncate")

    def _handle_api(self, method: str, path: str, query_string: str, headers: Any, body: bytes) -> Reply:
        query = parse_qsl(query_string, keep_blank_values=True)
        q = dict(query)
        action, version = q.get("Action", ""), q.get("Version", "")
        meta = self._meta(action, version)
        with self._lock:
            self._stats["requests"] += 1
            self._stats["by_action"][action] += 1
        try:
            if self.verify_signatures:
                verify_request(
                    method,
                    path,
                    query,
                    headers,
                    body,
                    access_key_id=self.access_key_id,
                    secret_access_key=self._secret_access_key,
                    region=self.region,
                    session_token=self.session_token,
                    clock_offset=self.clock_offset,
                )
        except ApiError as err:
            with self._lock:
                self._stats["signature_failures"] += 1
            return self._error(meta, err.status, err.code, err.message)
        if not self._qps.admit(self.qps_limit):
            with self._lock:
                self._stats["throttled"] += 1
            return self._error(
                meta, 429, "FlowLimitExceeded.QPSOverLimit", "request rate exceeds the account's QPS limit"
            )
        try:
            handler = ACTIONS.get((action, version))
            if handler is None or path not in ("/", ""):
                raise ApiError(
                    404, "InvalidActionOrVersion", f"unknown Action {action!r} or Version {version!r}"
                )
            if method != "POST":
                raise ApiError(404, "InvalidActionOrVersion", f"{action} is called with POST, not {method}")
            return handler(self, meta, self._parse_body(body))
        except ApiError as err:
            return self._error(meta, err.status, err.code, err.message)

    @staticmethod
    def _parse_body(body: bytes) -> dict[str, Any]:
        if not body.strip():
            raise ApiError(400, "InvalidParameter.BodyIsEmpty", "the request body is empty")
        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "InvalidParameter.Unmarshal", "the request body is not valid JSON") from None
        if not isinstance(req, dict):
            raise ApiError(400, "InvalidParameter.Unmarshal", "the request body must be a JSON object")
        return req

    # ------------------------------------------------------------------ admin endpoints
    def _resolve_user(
        self, segment: str, kind: str | None, members: Iterable[UserKey] | None = None
    ) -> UserKey:
        """A user in an admin URL: ``?kind=str`` / ``?kind=int`` decide; otherwise a canonical
        decimal naming a known int user is that int user, a known string user is that string
        user, any other canonical decimal is an int user and anything else a string user."""
        text = unquote(segment)
        if kind == "str":
            return text
        if kind == "int":
            return int(text)
        if kind:
            raise ValueError(f"kind must be 'int' or 'str', got {kind!r}")
        canonical = text.lstrip("-").isdigit() and str(int(text)) == text
        known = set(members) if members is not None else self._backend.users
        if canonical and int(text) in known:
            return int(text)
        if text in known:
            return text
        return int(text) if canonical else text

    def _handle_admin(self, method: str, path: str, query_string: str, body: bytes) -> tuple[int, Any]:
        with self._lock:
            self._stats["admin_requests"] += 1
        parts = [p for p in path.split("/") if p][1:]  # drop "_emulator"
        q = {k: v[0] for k, v in parse_qs(query_string).items()}
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return 400, {"error": "the body is not valid JSON"}
        try:
            if parts == ["health"]:
                return 200, {
                    "status": "ok",
                    "url": self.url,
                    "app_ids": self.app_ids,
                    "user_ids": self.user_ids,
                    "string_user_ids": self.string_user_ids,
                }
            if parts == ["stats"] and method == "GET":
                s = self.stats
                s["by_status"] = {str(k): v for k, v in s["by_status"].items()}
                return 200, s
            if parts in (["stats"], ["stats", "reset"]) and method in ("POST", "DELETE"):
                self.reset_stats()
                return 200, {"status": "ok"}
            if parts == ["config"]:
                if method == "POST":
                    if not isinstance(payload, dict):
                        return 400, {"error": "the body must be a JSON object of options"}
                    self.configure(**payload)
                return 200, self.config
            if parts == ["users"]:
                return 200, {"user_ids": self.user_ids, "string_user_ids": self.string_user_ids}
            if len(parts) in (3, 4) and parts[0] == "users" and parts[2] == "conversations":
                with self._lock:
                    uid = self._resolve_user(parts[1], q.get("kind"))
                sid = int(parts[3]) if len(parts) == 4 else None
                if method == "GET" and sid is None:
                    return 200, {
                        "ConversationInfos": self.conversations(
                            uid,
                            data_type=int(q.get("data_type", 1)),
                            inbox_type=int(q.get("inbox_type", 0)),
                            app_id=int(q["app_id"]) if "app_id" in q else None,
                        )
                    }
                if method == "POST" and sid is None:
                    if not isinstance(payload, dict):
                        return 400, {"error": "the body must be a JSON object of ConversationInfo fields"}
                    return 201, self.add_conversation(uid, **payload)
                if method == "DELETE":
                    return 200, self.remove_conversation(uid, sid)
            if parts and parts[0] == "conversations":
                return self._admin_conversations(method, parts[1:], q, payload)
            return 404, {"error": f"no admin endpoint {method} {path}"}
        except KeyError as exc:
            return 404, {"error": str(exc.args[0]) if exc.args else "not found"}
        except (ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}

    def _admin_conversations(
        self, method: str, parts: list[str], q: dict[str, str], payload: Any
    ) -> tuple[int, Any]:
        reverse = q.get("reverse", "0").lower() in ("1", "true")
        if not parts and method == "GET":
            app = int(q["app_id"]) if "app_id" in q else None
            return 200, {"conversation_ids": self.conversation_ids(app)}
        if not parts:
            return 404, {"error": f"no admin endpoint {method} /_emulator/conversations"}
        sid = int(parts[0])
        if len(parts) == 1 and method == "GET":
            info = self.conversation(sid)
            return (200, info) if info is not None else (404, {"error": f"no conversation {sid}"})
        if len(parts) >= 2 and parts[1] == "participants":
            if len(parts) == 2 and method == "GET":
                if self.conversation(sid) is None:
                    raise KeyError(f"no conversation {sid}")
                return 200, {"Participants": self.participants(sid, reverse)}
            if len(parts) == 2 and method == "POST":
                if not isinstance(payload, dict) or "user_id" not in payload:
                    return 400, {"error": 'the body must be a JSON object {"user_id": ..., other fields}'}
                fields = dict(payload)
                return 201, self.add_participant(sid, fields.pop("user_id"), **fields)
            if len(parts) == 3 and method == "DELETE":
                with self._lock:
                    conv = self._backend.get(sid)
                    if conv is None:
                        raise KeyError(f"no conversation {sid}")
                    key = self._resolve_user(parts[2], q.get("kind"), self._backend.member_keys(conv))
                return 200, self.remove_participant(sid, key)
        if len(parts) == 2 and parts[1] == "messages":
            if method == "GET":
                if self.conversation(sid) is None:
                    raise KeyError(f"no conversation {sid}")
                return 200, {"Messages": self.messages(sid, reverse)}
            if method == "POST":
                if not isinstance(payload, dict):
                    return 400, {"error": 'the body must be a JSON object of message fields, or {"count": n}'}
                if "count" in payload:
                    return 201, {"Messages": self.add_messages(sid, payload["count"])}
                if "message_count" in payload:
                    self.set_message_count(sid, payload["message_count"])
                    return 200, {"ConversationShortId": sid, "message_count": self.message_count(sid)}
                fields = dict(payload)
                sender = fields.pop("sender", None)
                content = fields.pop("content", None)
                return 201, self.add_message(sid, sender=sender, content=content, **fields)
        return 404, {"error": f"no admin endpoint {method} /_emulator/conversations/{'/'.join(parts)}"}
