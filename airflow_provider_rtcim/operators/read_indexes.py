"""``RtcImConversationReadIndexesOperator``: how far each member has read (``GetParticipantReadIndex``)."""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_rtcim.core.actions import GET_PARTICIPANT_READ_INDEX
from airflow_provider_rtcim.operators.base import listing_template_fields
from airflow_provider_rtcim.operators.engine import CONVERSATION_KEYS
from airflow_provider_rtcim.operators.keyed import ConversationListingOperator


class RtcImConversationReadIndexesOperator(ConversationListingOperator):
    """Export how far each member of one or many conversations has read (``GetParticipantReadIndex``).

    Rows are the ``ReadIndexes`` items exactly as the API returned them (``ParticipantUserId``,
    ``ParticipantUserIdStr``, ``ReadIndex``: an ``IndexInConversation``) plus
    ``ConversationShortId``, each member once. The API answers in one request per conversation,
    without pages; a member it does not list has read nothing (``ReadIndex`` 0).

    Keys (``conversation_short_id`` or ``conversations_from``): see
    :class:`~airflow_provider_rtcim.operators.keyed.ConversationListingOperator`. ``key_range``,
    outputs, the Asset, the summary (with ``conversations``), failures and scaling are as for
    :class:`~airflow_provider_rtcim.operators.members.RtcImConversationParticipantsOperator`.

    """

    action = GET_PARTICIPANT_READ_INDEX
    template_fields: Sequence[str] = listing_template_fields(GET_PARTICIPANT_READ_INDEX, CONVERSATION_KEYS)


__all__ = ["RtcImConversationReadIndexesOperator"]
