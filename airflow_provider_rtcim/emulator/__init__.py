"""A local emulator of the Volcengine RTC IM OpenAPI's read actions (think ``moto``).

Standard library only: a threaded HTTP/1.1 server that verifies V4 signatures as a strict
gateway does (every signable header must be signed), serves one deterministic data model
(users, their conversations, each conversation's members and messages; users' profiles,
friends and blacklists; read positions and mute/block lists) through
``GetUserConversations``, ``ScanConversationParticipantList``, ``GetConversationMessages``,
``BatchGetConversations``, ``BatchGetUser``, ``ListFriend``, ``GetBlackList``,
``GetParticipantReadIndex`` and ``BatchGetBlockParticipants``, and can inject the failures a real client must survive (QPS
limit, 5xx, resets, truncated bodies, errors inside a 200, non-JSON bodies, pagination
anomalies, reordering, clock skew).

Python::

    from airflow_provider_rtcim.emulator import Emulator

    with Emulator(users=3, conversations_per_user=45, seed=0, string_users=2) as emu:
        emu.url, emu.access_key_id, emu.secret_access_key, emu.app_id, emu.region
        emu.user_ids                                  # [1000001, 1000002, 1000003]
        emu.string_user_ids                           # ["007", "123"]
        emu.conversations(emu.user_ids[0], data_type=1)   # ground truth, in API order
        emu.conversations("007")                      # a str names a string user
        sid = emu.conversation_ids()[0]               # every ConversationShortId, sorted
        emu.conversation(sid)                         # its details (dict) or None
        emu.batch_conversations([sid])                # what BatchGetConversations returns
        emu.participants(sid, reverse=False)          # ScanConversationParticipantList order
        emu.online_participants(sid, mark="vip")      # a live group's online members
        emu.messages(sid, reverse=False)              # by IndexInConversation
        emu.add_participant(sid, 1000002, Role=2)     # joins "now"; MemberCount follows
        emu.remove_participant(sid, 1000002)
        emu.add_message(sid, sender=emu.user_ids[0], content={"text": "你好"})  # next index, now (ms)
        emu.add_messages(sid, 5)                      # 5 generated messages
        emu.set_message_count(sid, 100_000)           # lazily generated: cheap
        emu.message_count(sid), emu.data_stats        # sizes (stored_messages, ...)
        emu.configure(latency=0.05, fault_rate=0.2, anomalies={"*": "stuck_cursor"})
        emu.add_conversation(emu.user_ids[0], Name="新群 🎉")
        emu.batch_users([1000001, 7])                 # BatchGetUser: {"Users", "NotFoundUsers"}
        emu.friends(1000001), emu.blacklist(1000001)  # ListFriend / GetBlackList order
        emu.add_user(555, NickName="新"), emu.add_friend(1000001, 555), emu.add_to_blacklist(1000001, 555)
        emu.read_indexes(sid), emu.set_read_index(sid, 1000001, 3)
        emu.block_participants(sid, 0), emu.set_block(sid, 1000001, block_action=1)  # 0 mute, 1 block
        emu.credentials                               # core.signing.Credentials for sign_request
        emu.stats                                     # requests, by_status, by_action, throttled, ...
        os.environ.update(emu.airflow_env())          # AIRFLOW_CONN_RTCIM_DEFAULT

Every method is thread-safe and returns copies. Mutations on an unknown conversation raise
``KeyError``; bad values raise ``ValueError`` naming the option or field.

pytest (the plugin ``airflow_provider_rtcim.emulator.pytest_plugin``; enable it with
``pytest_plugins = ["airflow_provider_rtcim.emulator.pytest_plugin"]`` in conftest.py or
``-p airflow_provider_rtcim.emulator.pytest_plugin``)::

    def test_my_dag(rtcim_connection):            # AIRFLOW_CONN_RTCIM_DEFAULT points at it
        ...

    @pytest.mark.rtcim_emulator(fault_rate=0.3, conversations_per_user=100)
    def test_retries(rtcim_emulator):              # options for this test's emulator
        ...

CLI::

    python -m airflow_provider_rtcim.emulator --port 8080 --users 5 --conversations 45 \\
        --string-users 3 --messages 40 --participants 12 \\
        --qps 100 --latency 0.05 --fault-rate 0.1 --anomaly '*=stuck_cursor' \\
        --ready-file /tmp/rtcim.json        # add --no-auth for benchmarks only
    # prints the URL, the credentials and an `export AIRFLOW_CONN_RTCIM_DEFAULT='...'` line;
    # --ready-file gets {url, access_key_id, secret_access_key, app_id, region, user_ids,
    # string_user_ids, pid} once it is listening. Stops on SIGINT/SIGTERM. `--help` lists all.

Behaviour worth knowing:

- Defaults: access key ``AKLTemulatorKey``, secret ``emulator-secret-key-0123456789``,
  AppId ``100001``, region ``cn-north-1``, 3 users (``1000001``...) with 45 conversations
  each, of which about 1 in 9 are in inbox 1 (the rest in inbox 0; use
  ``emu.conversations(uid, data_type, inbox_type)`` for exact expectations).
  ``ConversationShortId`` and ``MessageId`` values exceed 2**53; names and message contents
  contain Chinese and emoji.
- The data model: one record per conversation, listed by one or more users (its
  *listers*, always among its members). Members: the creator, the owner, the listers, the
  other user of a one-to-one (exactly 2 members), then generated others; ``MemberCount``
  equals the number of members (``participants_per_conversation``, default 3..12 for groups
  and 4..20 for live groups, varying by seed). Live groups have ``OnlineCount`` online
  members: the first ones by join time. Messages (``messages_per_conversation``, default
  0..12 varying) have ``IndexInConversation`` 1..N, unique ``MessageId``, ``CreateTime`` in
  milliseconds, ``Sender`` among the members, and are generated on demand from (seed,
  conversation, index): only added or loaded messages are stored. Everything is
  deterministic for a seed; the conversations of int users are those of earlier releases
  (only ``MemberCount``/``OnlineCount`` changed, to match the members).
- String users (``string_users=N``, CLI ``--string-users N``): opaque ids ``"007"``,
  ``"123"``, ``"alice"``, ``"用户-王芳"``, ``"zoë"``, ``"u_8f3a"``, ... (``"007"`` and ``"123"``
  first). Their records carry ``OwnerUserId: 0, OwnerUserIdStr: "007"`` (likewise
  ``CreatorUserId``, ``OtherUserId``, ``ParticipantUserId``, ``Operator``, ``Sender``); int
  users' records carry both (``OwnerUserIdStr: "1000001"``). In requests,
  ``ParticipantUserId`` > 0 names an int user; otherwise ``ParticipantUserIdStr`` names a
  string user verbatim (``"007"`` is not ``"7"`` nor 7; whitespace counts), as the Go SDK
  sends it (``ParticipantUserId: 0`` beside it). ``emu.user_ids`` lists the int users only.
- Signature errors: 401 ``MissingSignature``, ``InvalidAccessKey``,
  ``SignatureDoesNotMatch``, ``InvalidSecretToken`` (with ``session_token`` set); 400
  ``InvalidTimestamp`` when X-Date is more than 900 s from the server clock
  (``time.time() + clock_offset``).
- What must be signed (a strict gateway's rule): ``SignedHeaders`` must list ``host``,
  ``x-date`` and every signable header the request carries (``Content-Type``,
  ``Content-Md5``, ``Host`` and every ``X-*``, so ``X-Content-Sha256`` and
  ``X-Security-Token`` too), each sent once; it must not list a header that is absent or
  never signed (``User-Agent``, ``Accept-Encoding``, ``Connection``, ... are simply
  ignored). ``X-Content-Sha256``, when sent, must be the SHA-256 of the body bytes.
  Anything else is 401 ``SignatureDoesNotMatch`` with a message naming the header(s).
- Every action is ``POST /?Action=...&Version=2020-12-01`` with a JSON body; signatures, the
  QPS limit, latency, faults and anomalies apply to all. Unknown Action/Version: 404
  ``InvalidActionOrVersion``; a missing required field: 400 ``MissingParameter``; a field of
  the wrong JSON type: 400 ``InvalidParameter.Unmarshal``; an unknown AppId: 400
  ``InvalidParameter.NotExistAppId``.
- GetUserConversations: DataType 0 (ModifyTime desc), 1 (CreateTime asc, ties by id),
  2 (live groups, type 100, created by the user, CreateTime desc); InboxType filters;
  SkipMemberCount drops MemberCount; Limit 1..20. Cursors are opaque positive int64s
  bound to (user, AppId, DataType, InboxType) and validated (anything else: 400
  ``InvalidParameter``); the last page has ``HasMore: false, NextCursor: -1``. An unknown
  user has no conversations.
- ScanConversationParticipantList (``AppId``, ``ConversationShortId``, ``Cursor``, ``Limit``
  1..100, ``Reverse`` bool, ``OnlyUserIds`` bool, ``ScanOnlineParticipant`` bool, ``MarkType``
  str): members by join time (``Reverse``: newest first); ``OnlyUserIds`` keeps
  ConversationShortId, ParticipantUserId and ParticipantUserIdStr; ``ScanOnlineParticipant``
  lists a live group's online members (none for other types) and ``MarkType`` those of them
  carrying that mark (it implies the online scan); Reverse and OnlyUserIds are then ignored.
  ``{"Participants", "HasMore", "NextCursor"}`` with opaque cursors bound to the listing; the
  last page has ``NextCursor: -1`` and ``HasMore: false``, or ``HasMore: true`` with
  ``participants_last_page_has_more=True`` (the SDK: a negative cursor ends it, whatever
  HasMore says). An unknown conversation: one empty last page.
- GetConversationMessages (``AppId``, ``ConversationShortId``, ``Cursor``, ``Limit`` 1..20,
  ``Reverse`` int 0/1): ``{"Messages", "HasMore", "NewCursor"}`` (no NextCursor). Forward:
  Cursor 0 is the start, Cursor c the messages with IndexInConversation >= c; NewCursor is
  the index of the next message (the last returned + 1), and on the last page
  (``HasMore: false``) N+1, where the next message will appear, so a listing resumed from
  it returns exactly the messages added since. Reverse 1: Cursor 0 is the newest, Cursor c
  the messages with index <= c going back; NewCursor the next older index, 0 at the first.
  Cursors outside 0..N+1 (and not issued by an anomaly): 400 ``InvalidParameter``. An
  unknown conversation: ``{"Messages": [], "HasMore": false, "NewCursor": 0}`` for any
  Cursor >= 0.
- BatchGetConversations (``AppId``, ``ConversationShortId``: 1..50 int64s, ``SkipMemberCount``
  default **true**): ``{"ConversationCoreInfos": [...]}`` in request order, once each;
  unknown, other-AppId and dissolved (``Status`` 1) conversations are absent.
- BatchGetUser, ListFriend, GetBlackList, GetParticipantReadIndex, BatchGetBlockParticipants:
  the request and response shapes, the seeded data's rules (registered users, symmetric
  friendships among acquainted users, read positions within the last message, mute/block
  lists of members), string user ids (the first three name users by int64 only) and their
  admin endpoints are in ``docs/emulator.md`` and :mod:`.social`. ListFriend and GetBlackList
  take ``Limit`` 1..20 and end with ``NextCursor: -1``; TotalCount is 0 unless ``NeedTotal``.
- QPS limit (``qps_limit``, default 100, account-wide, every action): a sliding 1-second
  window over admitted requests, checked after the signature; beyond it HTTP 429
  ``FlowLimitExceeded.QPSOverLimit`` (counted in ``stats["throttled"]``); rejected
  requests do not use up the window.
- Faults (``fault_rate``, ``fault_kinds``, ``fault_seed``, ``max_consecutive_faults``):
  decided by a seeded hash of the request key and the attempt number of that key, after
  the request was validated. Keys: GetUserConversations (AppId, user, Cursor, Limit,
  DataType, InboxType); the others (Action, AppId, the user or ConversationShortId and the paging
  fields, or the id list for BatchGetConversations and BatchGetUser). One key is never faulted more than
  ``max_consecutive_faults`` (default 3) times in a row, so a client with 4 tries always
  gets through. Kinds: ``429`` (FlowLimitExceeded.QPSOverLimit), ``500`` (InternalError),
  ``502`` (FailToConnect), ``503`` (ServiceUnavailableTemp), ``504``
  (InternalServiceTimeout), ``reset`` (RST, no response), ``truncate`` (Content-Length
  larger than the body, then close), ``error200`` (200 with Error InternalError),
  ``badjson`` (200 with an HTML body).
- Anomalies (``anomalies={key: kind}``). Keys: ``"*"`` (everything), an int or decimal
  string (a user id for GetUserConversations, ListFriend and GetBlackList, a ConversationShortId for the conversation
  actions), ``"str:<id>"`` or any non-decimal string (a string user id). Kinds
  (:data:`ANOMALY_KINDS`, on each paginated action with its own cursor field, NextCursor or
  NewCursor): ``stuck_cursor`` (from page 2 on, HasMore true and the cursor sent back,
  forever), ``negative_cursor`` (HasMore true with cursor -1 instead of a next one),
  ``empty_pages`` (every other page is empty with HasMore true and a valid cursor; the
  listing stays complete), ``repeated_page`` (page 2 repeats page 1, then continues; dedup
  gives the exact set), ``endless_empty`` (every page is empty with HasMore true and a new,
  valid cursor, forever: only a client's guard ends the listing). GetConversationMessages
  only (:data:`MESSAGE_ANOMALY_KINDS`, for incremental sync): ``cursor_restart`` (the last
  page's NewCursor is 0, so a listing resumed from it starts again at the beginning) and
  ``cursor_repeat`` (the last page's NewCursor is the index of that page's first message,
  so a resumed listing repeats it). Message anomalies that need page state hand out opaque
  cursors above N+1 instead of positions.
- ``verify_signatures=False`` (CLI ``--no-auth``): **benchmark-only**. Requests are served
  without any signature, access key, session token or X-Date check (the QPS limit, faults
  and anomalies still apply), so a plain unsigned ``requests`` loop can be timed against the
  hook over the same pages. Never use it to test a client's signing.
- ``reorder_data_type0=True``: after each DataType-0 page with more to come, up to two
  not-yet-listed conversations of that user become the most recently active, so they
  jump to the front (a naive cursor walk sees duplicates and misses them). Deterministic.
  Adding messages does not change ModifyTime.
- HTTP admin endpoints (unsigned, JSON): ``GET /_emulator/health``, ``GET /_emulator/stats``,
  ``POST /_emulator/stats/reset``, ``GET|POST /_emulator/config`` (POST body: options for
  ``configure``), ``GET /_emulator/users`` (``{"user_ids", "string_user_ids"}``),
  ``GET /_emulator/users/{uid}/conversations?data_type=1&inbox_type=0``,
  ``POST /_emulator/users/{uid}/conversations`` (body: ConversationInfo fields; 201),
  ``DELETE /_emulator/users/{uid}/conversations[/{ConversationShortId}]``,
  ``GET /_emulator/conversations[?app_id=]`` (``{"conversation_ids"}``),
  ``GET /_emulator/conversations/{id}``,
  ``GET|POST /_emulator/conversations/{id}/participants[?reverse=1]`` (POST body:
  ``{"user_id": 7 or "007", other participant fields}``; 201),
  ``DELETE /_emulator/conversations/{id}/participants/{uid}``,
  ``GET|POST /_emulator/conversations/{id}/messages[?reverse=1]`` (POST body: message fields
  plus optional ``sender``/``content``, 201 with the message; ``{"count": n}``, 201 with
  ``{"Messages"}``; or ``{"message_count": n}`` for ``set_message_count``),
  ``POST /_emulator/users`` (``{"user_id": 7, profile fields}``), ``GET /_emulator/users/{uid}``,
  ``GET|POST /_emulator/users/{uid}/friends`` and ``.../blacklist`` (POST body
  ``{"user_id": 8, "inbox_type": 0, other fields}``), ``DELETE .../friends/{other}`` and
  ``.../blacklist/{other}``, ``GET|POST /_emulator/conversations/{id}/read_indexes`` (POST
  ``{"user_id": 7, "read_index": n}``), ``GET|POST /_emulator/conversations/{id}/blocks
  [?block_action=0|1]`` (POST ``{"user_id": 7, "block_action": 0, "block_time": s}``) and
  ``DELETE /_emulator/conversations/{id}/blocks/{uid}[?block_action=]``.
  A ``{uid}`` in a URL (percent-encoded) is a string user with ``?kind=str``, an int user
  with ``?kind=int``; otherwise a canonical decimal naming a known int user (or member) is
  that int user, a known string user is that string user, any other canonical decimal is
  an int user and anything else (``007``, ``alice``) a string user. In JSON bodies the type
  decides (``7`` int, ``"7"`` string).
- Stats (``emu.stats``, ``emu.reset_stats()``): ``requests`` (API calls), ``by_status``
  ({int status: n}; ``reset``/``truncate`` faults have none), ``by_code`` ({Code: n}),
  ``by_action`` ({Action as sent: n}), ``throttled`` (429s from the QPS limiter only),
  ``faults_injected`` ({kind: n}), ``faults_total``, ``signature_failures`` (401s and
  InvalidTimestamp), ``admin_requests``.
- Data files: see :mod:`airflow_provider_rtcim.emulator.data` for the JSON format
  (``{"app_ids": [...], "users": {"<uid>": [ConversationInfo, ...]}, "string_users": {...},
  "participants": {"<ConversationShortId>": [...]}, "messages": {...}}``).
- Layout (like a moto service): :mod:`.models` (the backend: all state behind public, locked
  methods; one query per action), :mod:`.responses` (one handler per action in ``ACTIONS``;
  :mod:`.params` validates bodies, :mod:`.context` is what a handler gets),
  :mod:`.dispatch` (signature, QPS limit, routing), :mod:`.admin` (the admin API's route
  table), :mod:`.conversations` / :mod:`.records` (the data model), :mod:`.data`
  (generation, data files), :mod:`.paging` / :mod:`.cursors` (opaque cursors, anomalies),
  :mod:`.auth` (signatures), :mod:`.faults`, :mod:`.options`, :mod:`.stats`,
  :mod:`.exceptions`, :mod:`.utils` (``hash64``, user-id fields), :mod:`.transport` (HTTP),
  :mod:`.server` (:class:`Emulator`).
"""

from __future__ import annotations

from airflow_provider_rtcim.emulator.server import (
    ALL_ANOMALY_KINDS,
    ANOMALY_KINDS,
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_APP_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_ACCESS_KEY,
    FAULT_KINDS,
    MESSAGE_ANOMALY_KINDS,
    Emulator,
)

__all__ = [
    "ALL_ANOMALY_KINDS",
    "ANOMALY_KINDS",
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_APP_ID",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_ACCESS_KEY",
    "FAULT_KINDS",
    "MESSAGE_ANOMALY_KINDS",
    "Emulator",
]
