"""``RtcImUserFriendsOperator``: users' friends (``ListFriend``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_rtcim.core.actions import LIST_FRIEND
from airflow_provider_rtcim.operators.base import listing_template_fields
from airflow_provider_rtcim.operators.engine import USER_ID_KEYS
from airflow_provider_rtcim.operators.keyed import UserIdListingOperator

_DEFAULT = {f.arg: f.default for f in LIST_FRIEND.fields}


class RtcImUserFriendsOperator(UserIdListingOperator):
    """List every friend of one or many users (``ListFriend``), page by page.

    Rows are the ``FriendInfos`` items exactly as the API returned them plus ``UserId``: the
    user listed. Each user's friends come the first added first, each ``FriendUserId`` once;
    a negative ``NextCursor`` ends a listing. One request per user at least.

    Keys (``user_id``, ``users_from``, ``key_field``): see
    :class:`~airflow_provider_rtcim.operators.keyed.UserIdListingOperator`.

    :param inbox_type: ``InboxType`` (default 0). Templated.
    """

    action = LIST_FRIEND
    template_fields: Sequence[str] = listing_template_fields(LIST_FRIEND, USER_ID_KEYS, "key_field")

    def __init__(
        self,
        *,
        inbox_type: int | str = _DEFAULT["inbox_type"],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.inbox_type = inbox_type


__all__ = ["RtcImUserFriendsOperator"]
