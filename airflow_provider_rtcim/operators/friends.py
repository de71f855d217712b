"""``RtcImUserFriendsOperator``: users' friends (``ListFriend``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.core.actions import LIST_FRIEND
from airflow_provider_rtcim.operators.base import RtcImListingOperator, listing_template_fields
from airflow_provider_rtcim.operators.engine import USER_ID_KEYS, check_key_source

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import ObjectStoragePath

_DEFAULT = {f.arg: f.default for f in LIST_FRIEND.fields}


class RtcImUserFriendsOperator(RtcImListingOperator):
    """List every friend of one or many users (``ListFriend``), page by page.

    Rows are the ``FriendInfos`` items exactly as the API returned them plus ``UserId``: the
    user listed. Each user's friends come the first added first, each ``FriendUserId`` once;
    a negative ``NextCursor`` ends a listing. One request per user at least.

    **Keys.** ``user_id`` (one id, a list, or a rendered template of either), or ``users_from``:
    the path or URL of a JSON Lines file written by this package (gzip when named ``.gz``),
    streamed: its distinct ``ParticipantUserId`` values (a members or conversations file) or
    ``UserId`` values (a users file), whichever a row has; ``key_field=`` names another field.
    ``key_range``, outputs (XCom or atomic JSON Lines), the Asset, the summary (with
    ``users``), failures and scaling are as for
    :class:`~airflow_provider_rtcim.operators.conversations.RtcImGetUserConversationsOperator`.
    The API names these users by int64 ``UserId`` only: with string user ids
    (``user_id_type="str"`` on the connection) the task fails before any request, naming
    ``user_id``.

    :param user_id: a user id or a list of them (int64). Templated.
    :param users_from: instead, a JSON Lines file of this package's rows. Templated.
    :param key_field: the field of ``users_from``'s rows holding the user id. Templated.
    :param inbox_type: ``InboxType`` (default 0). Templated.
    """

    action = LIST_FRIEND
    key_args = USER_ID_KEYS
    template_fields: Sequence[str] = listing_template_fields(LIST_FRIEND, USER_ID_KEYS, "key_field")

    def __init__(
        self,
        *,
        user_id: int | str | Sequence[int | str] | None = None,
        users_from: str | ObjectStoragePath | None = None,
        key_field: str | None = None,
        inbox_type: int | str = _DEFAULT["inbox_type"],
        **kwargs: Any,
    ) -> None:
        check_key_source(user_id, users_from, USER_ID_KEYS)
        super().__init__(**kwargs)
        self.user_id = user_id
        self.users_from = users_from
        self.key_field = key_field
        self.inbox_type = inbox_type


__all__ = ["RtcImUserFriendsOperator"]
