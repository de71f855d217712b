"""``RtcImGetUserConversationsOperator``: every conversation of one or many users (``GetUserConversations``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.core.actions import GET_USER_CONVERSATIONS
from airflow_provider_rtcim.core.validation import validate_user_id_type
from airflow_provider_rtcim.operators.base import RtcImListingOperator, listing_template_fields
from airflow_provider_rtcim.operators.engine import USER_KEYS, check_key_source

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import ObjectStoragePath

_DEFAULT = {f.arg: f.default for f in GET_USER_CONVERSATIONS.fields}


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
    :func:`~airflow_provider_rtcim.operators.output.combine_summaries`), or a consumer runs on fragments.

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
    signature, a pagination anomaly ...) raises :class:`~airflow_provider_rtcim.exceptions.RtcImListingFailed`, an
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
    key_args = USER_KEYS
    asset_extra_keys = ("user_id_type",)
    template_fields: Sequence[str] = listing_template_fields(GET_USER_CONVERSATIONS, USER_KEYS)

    def __init__(
        self,
        *,
        participant_user_id: int | str | Sequence[int | str] | None = None,
        participant_user_ids_from: str | ObjectStoragePath | None = None,
        data_type: int | str = _DEFAULT["data_type"],
        inbox_type: int | str = _DEFAULT["inbox_type"],
        skip_member_count: bool | str = _DEFAULT["skip_member_count"],
        user_id_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        check_key_source(participant_user_id, participant_user_ids_from, USER_KEYS)
        super().__init__(**kwargs)
        self.participant_user_id = participant_user_id
        self.participant_user_ids_from = participant_user_ids_from
        self.data_type = data_type
        self.inbox_type = inbox_type
        self.skip_member_count = skip_member_count
        self.user_id_type = None if user_id_type is None else validate_user_id_type(user_id_type)


__all__ = ["RtcImGetUserConversationsOperator"]
