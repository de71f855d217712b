"""``RtcImConversationReadIndexesOperator``: how far each member has read (``GetParticipantReadIndex``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.core.actions import GET_PARTICIPANT_READ_INDEX
from airflow_provider_rtcim.operators.base import RtcImListingOperator, listing_template_fields
from airflow_provider_rtcim.operators.engine import CONVERSATION_KEYS, check_key_source

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import ObjectStoragePath


class RtcImConversationReadIndexesOperator(RtcImListingOperator):
    """Export how far each member of one or many conversations has read (``GetParticipantReadIndex``).

    Rows are the ``ReadIndexes`` items exactly as the API returned them (``ParticipantUserId``,
    ``ParticipantUserIdStr``, ``ReadIndex``: an ``IndexInConversation``) plus
    ``ConversationShortId``, each member once. The API answers in one request per conversation,
    without pages; a member it does not list has read nothing (``ReadIndex`` 0).

    **Keys.** ``conversation_short_id`` (one id, a list, or a rendered template of either), or
    ``conversations_from``: the conversations operator's JSON Lines file (its distinct
    ``ConversationShortId`` values). ``key_range``, outputs, the Asset, the summary (with
    ``conversations``), failures and scaling are as for
    :class:`~airflow_provider_rtcim.operators.members.RtcImConversationParticipantsOperator`.

    """

    action = GET_PARTICIPANT_READ_INDEX
    key_args = CONVERSATION_KEYS
    template_fields: Sequence[str] = listing_template_fields(GET_PARTICIPANT_READ_INDEX, CONVERSATION_KEYS)

    def __init__(
        self,
        *,
        conversation_short_id: int | str | Sequence[int | str] | None = None,
        conversations_from: str | ObjectStoragePath | None = None,
        **kwargs: Any,
    ) -> None:
        check_key_source(conversation_short_id, conversations_from, CONVERSATION_KEYS)
        super().__init__(**kwargs)
        self.conversation_short_id = conversation_short_id
        self.conversations_from = conversations_from


__all__ = ["RtcImConversationReadIndexesOperator"]
