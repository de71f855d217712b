"""The two kinds of keys an operator takes, each once: conversations, or users named by ``UserId``.

:class:`ConversationListingOperator` (``conversation_short_id`` or ``conversations_from``) and
:class:`UserIdListingOperator` (``user_id`` or ``users_from``, with ``key_field``) are the
listing base class with its key arguments; an operator subclasses one and adds its action.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.operators.base import RtcImListingOperator
from airflow_provider_rtcim.operators.engine import CONVERSATION_KEYS, USER_ID_KEYS, check_key_source

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import ObjectStoragePath


class ConversationListingOperator(RtcImListingOperator):
    """Keys that are conversations: ``conversation_short_id`` (one id, a list, or a rendered
    template of either) or ``conversations_from``: the conversations operator's JSON Lines file
    (its distinct ``ConversationShortId`` values, in file order), or a list of such files (the
    parts of a mapped export), read in turn, each key once. Both templated."""

    key_args = CONVERSATION_KEYS

    def __init__(
        self,
        *,
        conversation_short_id: int | str | Sequence[int | str] | None = None,
        conversations_from: str | ObjectStoragePath | Sequence[str | ObjectStoragePath] | None = None,
        **kwargs: Any,
    ) -> None:
        check_key_source(conversation_short_id, conversations_from, CONVERSATION_KEYS)
        super().__init__(**kwargs)
        self.conversation_short_id = conversation_short_id
        self.conversations_from = conversations_from


class UserIdListingOperator(RtcImListingOperator):
    """Keys that are users named by ``UserId`` (int64 only: the API has no string form there;
    with ``user_id_type="str"`` on the connection the task fails before any request, naming
    ``user_id``).

    ``user_id`` (one id, a list, or a rendered template of either), or ``users_from``: the path
    or URL of a JSON Lines file written by this package (gzip when named ``.gz``), streamed:
    its distinct ``ParticipantUserId`` values (a members or conversations file) or ``UserId``
    values (a users file), whichever a row has; ``key_field`` names another field. A list of
    files (the parts of a mapped members export) is read in turn, each user once. All three
    templated. ``key_range``, outputs, the Asset, the summary (with ``users``), failures and
    scaling are as for
    :class:`~airflow_provider_rtcim.operators.conversations.RtcImGetUserConversationsOperator`.
    """

    key_args = USER_ID_KEYS

    def __init__(
        self,
        *,
        user_id: int | str | Sequence[int | str] | None = None,
        users_from: str | ObjectStoragePath | Sequence[str | ObjectStoragePath] | None = None,
        key_field: str | None = None,
        **kwargs: Any,
    ) -> None:
        check_key_source(user_id, users_from, USER_ID_KEYS)
        super().__init__(**kwargs)
        self.user_id = user_id
        self.users_from = users_from
        self.key_field = key_field


__all__ = ["ConversationListingOperator", "UserIdListingOperator"]
