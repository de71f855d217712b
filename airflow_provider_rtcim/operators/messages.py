"""``RtcImConversationMessagesOperator``: the messages of one or many conversations
(``GetConversationMessages``), optionally incremental, optionally one shard of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.core import checkpoint
from airflow_provider_rtcim.core.actions import GET_CONVERSATION_MESSAGES
from airflow_provider_rtcim.core.validation import none_if_blank, to_int
from airflow_provider_rtcim.operators.base import Request, listing_template_fields
from airflow_provider_rtcim.operators.engine import CONVERSATION_KEYS
from airflow_provider_rtcim.operators.incremental import IncrementalCommit
from airflow_provider_rtcim.operators.keyed import ConversationListingOperator
from airflow_provider_rtcim.storage import check_path

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import Context, ObjectStoragePath

_DEFAULT = {f.arg: f.default for f in GET_CONVERSATION_MESSAGES.fields}


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


class RtcImConversationMessagesOperator(ConversationListingOperator):
    """List the messages of one or many conversations (``GetConversationMessages``): all of them,
    or, with ``checkpoint_path``, only those sent since the last committed run.

    Rows are the messages exactly as the API returned them (they carry
    ``ConversationShortId``; unknown fields kept, int64 ids exact, ``Content`` untouched),
    each ``MessageId`` once, conversations in key order and each conversation's messages in
    API order (oldest first; newest first with ``reverse``). ``NewCursor`` is fed back
    verbatim. Keys (``conversation_short_id`` or ``conversations_from``), outputs, Asset,
    summary, ``key_range``, failures and scaling are as for
    :class:`~airflow_provider_rtcim.operators.members.RtcImConversationParticipantsOperator`.

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
    asset_extra_keys = (
        "incremental",
        "checkpoint",
        "checkpoint_generation",
        "conversations_changed",
        "shard_index",
        "shard_count",
    )
    template_fields: Sequence[str] = listing_template_fields(
        GET_CONVERSATION_MESSAGES, CONVERSATION_KEYS, "checkpoint_path", "shard_index", "shard_count"
    )

    def __init__(
        self,
        *,
        reverse: bool | str = _DEFAULT["reverse"],
        checkpoint_path: str | ObjectStoragePath | None = None,
        shard_index: int | str | None = None,
        shard_count: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        check_path(checkpoint_path, field="checkpoint_path", rendered=False)
        if checkpoint_path is not None:
            _check_incremental(kwargs.get("output_path"), reverse)
        super().__init__(**kwargs)
        self.reverse = reverse
        self.checkpoint_path = checkpoint_path
        self.shard_index = shard_index
        self.shard_count = shard_count

    def _request(self) -> Request:
        request = super()._request()
        index, count = none_if_blank(self.shard_index), none_if_blank(self.shard_count)
        request.options["shard"] = checkpoint.check_shard(
            None if index is None else to_int(index, "shard_index"),
            None if count is None else to_int(count, "shard_count"),
        )
        return request

    def _key_filter(self, request: Request) -> Callable[[Any], bool] | None:
        shard = request.options["shard"]
        if shard is None:
            return None
        index, count = shard
        return lambda key: checkpoint.shard_of(key, count) == index

    def _describe(self, request: Request, commit: IncrementalCommit | None) -> str:
        text = f"reverse={bool(request.body['Reverse'])}"
        shard = request.options["shard"]
        if shard is not None:
            text += f", shard {shard[0]} of {shard[1]}"
        if commit is not None:
            text += f", {commit.describe()}"
        return text

    def _begin(self, request: Request, context: Context) -> IncrementalCommit | None:
        if self.checkpoint_path is None:
            return None
        _check_incremental(self.output_path, bool(request.body["Reverse"]))
        return IncrementalCommit.begin(
            checkpoint_path=self.checkpoint_path,
            output_path=self.output_path,
            app_id=request.app_id,
            shard=request.options["shard"],
            context=context,
            task_id=self.task_id,
            log=self.log,
        )


__all__ = ["RtcImConversationMessagesOperator"]
