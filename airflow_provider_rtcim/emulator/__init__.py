"""A local emulator of the Volcengine RTC IM ``GetUserConversations`` OpenAPI (think ``moto``).

Standard library only: a threaded HTTP/1.1 server that verifies V4 signatures as a strict
gateway does (every signable header must be signed), serves a deterministic data set with
opaque cursors, and can inject the failures a real client must survive (QPS limit, 5xx,
resets, truncated bodies, errors inside a 200, non-JSON bodies, pagination anomalies,
reordering, clock skew).

Python::

    from airflow_provider_rtcim.emulator import Emulator

    with Emulator(users=3, conversations_per_user=45, seed=0) as emu:
        emu.url, emu.access_key_id, emu.secret_access_key, emu.app_id, emu.region
        emu.user_ids                                  # [1000001, 1000002, 1000003]
        emu.conversations(emu.user_ids[0], data_type=1)   # ground truth, in API order
        emu.configure(latency=0.05, fault_rate=0.2, anomalies={"*": "stuck_cursor"})
        emu.add_conversation(emu.user_ids[0], Name="新群 🎉")
        emu.credentials                               # core.signing.Credentials for sign_request
        emu.stats                                     # requests, by_status, throttled, ...
        os.environ.update(emu.airflow_env())          # AIRFLOW_CONN_RTCIM_DEFAULT

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
        --qps 100 --latency 0.05 --fault-rate 0.1 --anomaly '*=stuck_cursor' \\
        --ready-file /tmp/rtcim.json        # add --no-auth for benchmarks only
    # prints the URL, the credentials and an `export AIRFLOW_CONN_RTCIM_DEFAULT='...'` line;
    # --ready-file gets {url, access_key_id, secret_access_key, app_id, region, user_ids, pid}
    # once it is listening. Stops on SIGINT/SIGTERM. `--help` lists every option.

Behaviour worth knowing:

- Defaults: access key ``AKLTemulatorKey``, secret ``emulator-secret-key-0123456789``,
  AppId ``100001``, region ``cn-north-1``, 3 users (``1000001``...) with 45 conversations
  each, of which about 1 in 9 are in inbox 1 (the rest in inbox 0; use
  ``emu.conversations(uid, data_type, inbox_type)`` for exact expectations).
  ``ConversationShortId`` values exceed 2**53; names contain Chinese and emoji.
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
- GetUserConversations: DataType 0 (ModifyTime desc), 1 (CreateTime asc, ties by id),
  2 (live groups, type 100, created by the user, CreateTime desc); InboxType filters;
  SkipMemberCount drops MemberCount; Limit 1..20. Cursors are opaque positive int64s
  bound to (user, AppId, DataType, InboxType) and validated (anything else: 400
  ``InvalidParameter``); the last page has ``HasMore: false, NextCursor: -1``. An unknown
  user has no conversations. Unknown Action/Version: 404 ``InvalidActionOrVersion``.
- QPS limit (``qps_limit``, default 100, account-wide): a sliding 1-second window over
  admitted requests, checked after the signature; beyond it HTTP 429
  ``FlowLimitExceeded.QPSOverLimit`` (counted in ``stats["throttled"]``); rejected
  requests do not use up the window.
- Faults (``fault_rate``, ``fault_kinds``, ``fault_seed``, ``max_consecutive_faults``):
  decided by a seeded hash of (AppId, user, Cursor, Limit, DataType, InboxType, attempt
  number of that key), after the request was validated; one key is never faulted more
  than ``max_consecutive_faults`` (default 3) times in a row, so a client with 4 tries
  always gets through. Kinds: ``429`` (FlowLimitExceeded.QPSOverLimit), ``500``
  (InternalError), ``502`` (FailToConnect), ``503`` (ServiceUnavailableTemp), ``504``
  (InternalServiceTimeout), ``reset`` (RST, no response), ``truncate`` (Content-Length
  larger than the body, then close), ``error200`` (200 with Error InternalError),
  ``badjson`` (200 with an HTML body).
- Anomalies (``anomalies={user_id or "*": kind}``): ``stuck_cursor`` (from page 2 on,
  HasMore true and NextCursor = the cursor sent, forever), ``negative_cursor`` (HasMore
  true with NextCursor -1 instead of a next cursor), ``empty_pages`` (every other page
  is empty with HasMore true and a valid cursor; the listing stays complete),
  ``repeated_page`` (page 2 repeats page 1, then continues; dedup by
  ConversationShortId gives the exact set), ``endless_empty`` (every page is empty with
  HasMore true and a new, valid cursor, forever: only a client's guard ends the listing).
- ``verify_signatures=False`` (CLI ``--no-auth``): **benchmark-only**. Requests are served
  without any signature, access key, session token or X-Date check (the QPS limit, faults
  and anomalies still apply), so a plain unsigned ``requests`` loop can be timed against the
  hook over the same pages. Never use it to test a client's signing.
- ``reorder_data_type0=True``: after each DataType-0 page with more to come, up to two
  not-yet-listed conversations of that user become the most recently active, so they
  jump to the front (a naive cursor walk sees duplicates and misses them). Deterministic.
- HTTP admin endpoints (unsigned, JSON): ``GET /_emulator/health``, ``GET /_emulator/stats``,
  ``POST /_emulator/stats/reset``, ``GET|POST /_emulator/config`` (POST body: options for
  ``configure``), ``GET /_emulator/users``,
  ``GET /_emulator/users/{uid}/conversations?data_type=1&inbox_type=0``,
  ``POST /_emulator/users/{uid}/conversations`` (body: ConversationInfo fields; 201),
  ``DELETE /_emulator/users/{uid}/conversations[/{ConversationShortId}]``.
- Stats (``emu.stats``, ``emu.reset_stats()``): ``requests`` (API calls), ``by_status``
  ({int status: n}; ``reset``/``truncate`` faults have none), ``by_code`` ({Code: n}),
  ``throttled`` (429s from the QPS limiter only), ``faults_injected`` ({kind: n}),
  ``faults_total``, ``signature_failures`` (401s and InvalidTimestamp), ``admin_requests``.
- Data files: see :mod:`airflow_provider_rtcim.emulator.data` for the JSON format
  (``{"app_ids": [...], "users": {"<uid>": [ConversationInfo, ...]}}``).
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
