"""``RtcImConversationParticipantsOperator``: every member of one or many conversations
(``ScanConversationParticipantList``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_rtcim.core.actions import SCAN_CONVERSATION_PARTICIPANTS
from airflow_provider_rtcim.operators.base import listing_template_fields
from airflow_provider_rtcim.operators.engine import CONVERSATION_KEYS
from airflow_provider_rtcim.operators.keyed import ConversationListingOperator

_DEFAULT = {f.arg: f.default for f in SCAN_CONVERSATION_PARTICIPANTS.fields}


class RtcImConversationParticipantsOperator(ConversationListingOperator):
    """List every member of one or many conversations (``ScanConversationParticipantList``).

    Rows are the participants exactly as the API returned them (they carry
    ``ConversationShortId``; unknown fields kept, int64 ids exact), each member once per
    conversation (by ``ParticipantUserId``, or ``ParticipantUserIdStr`` for string ids). A
    negative ``NextCursor`` ends a member listing whatever ``HasMore`` says.

    Keys: ``conversation_short_id`` (one id, a list, or a rendered JSON list; templated), or
    ``conversations_from`` (templated): the path or URL of a JSON Lines file written by
    :class:`~airflow_provider_rtcim.operators.conversations.RtcImGetUserConversationsOperator`, whose distinct ``ConversationShortId`` values,
    in file order, are the keys. Everything else (output to XCom or JSON Lines, atomic
    publish, Asset, summary with ``conversations``, ``key_range``, failures, scaling) is as
    for :class:`~airflow_provider_rtcim.operators.conversations.RtcImGetUserConversationsOperator`.

    :param reverse: newest members first (default: by join time ascending). Templated.
    :param only_user_ids: members carry only their ids (cheaper). Templated.
    :param scan_online: live groups: only the online members. Templated.
    :param mark_type: with ``scan_online``: only online members with this mark. Templated.
    """

    action = SCAN_CONVERSATION_PARTICIPANTS
    template_fields: Sequence[str] = listing_template_fields(
        SCAN_CONVERSATION_PARTICIPANTS, CONVERSATION_KEYS
    )

    def __init__(
        self,
        *,
        reverse: bool | str = _DEFAULT["reverse"],
        only_user_ids: bool | str = _DEFAULT["only_user_ids"],
        scan_online: bool | str = _DEFAULT["scan_online"],
        mark_type: str | None = _DEFAULT["mark_type"],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.reverse = reverse
        self.only_user_ids = only_user_ids
        self.scan_online = scan_online
        self.mark_type = mark_type


__all__ = ["RtcImConversationParticipantsOperator"]
