"""``RtcImConversationBlockListOperator``: a conversation's muted or blocked members (``BatchGetBlockParticipants``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_rtcim.core.actions import BATCH_GET_BLOCK_PARTICIPANTS
from airflow_provider_rtcim.operators.base import listing_template_fields
from airflow_provider_rtcim.operators.engine import CONVERSATION_KEYS
from airflow_provider_rtcim.operators.keyed import ConversationListingOperator

_DEFAULT = {f.arg: f.default for f in BATCH_GET_BLOCK_PARTICIPANTS.fields}


class RtcImConversationBlockListOperator(ConversationListingOperator):
    """List the muted (``block_action="mute"``, the default) or blocked (``"block"``) members of
    one or many conversations (``BatchGetBlockParticipants``), page by page.

    Rows are the ``Participants`` items exactly as the API returned them (``BlockTime``: muted
    or blocked until, seconds) plus ``ConversationShortId``, each member once (by
    ``ParticipantUserId``, or ``ParticipantUserIdStr`` for string ids); a negative
    ``NextCursor`` ends a listing.

    Keys (``conversation_short_id`` or ``conversations_from``): see
    :class:`~airflow_provider_rtcim.operators.keyed.ConversationListingOperator`. ``key_range``,
    outputs, the Asset, the summary (with ``conversations``), failures and scaling are as for
    :class:`~airflow_provider_rtcim.operators.members.RtcImConversationParticipantsOperator`.

    :param block_action: ``"mute"`` (the mute list, default) or ``"block"`` (the block list). Templated.
    """

    action = BATCH_GET_BLOCK_PARTICIPANTS
    template_fields: Sequence[str] = listing_template_fields(BATCH_GET_BLOCK_PARTICIPANTS, CONVERSATION_KEYS)

    def __init__(
        self,
        *,
        block_action: str = _DEFAULT["block_action"],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.block_action = block_action


__all__ = ["RtcImConversationBlockListOperator"]
