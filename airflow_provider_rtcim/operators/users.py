"""``RtcImUsersOperator``: user profiles (``BatchGetUser``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.core.actions import BATCH_GET_USER
from airflow_provider_rtcim.operators.base import RtcImListingOperator, listing_template_fields
from airflow_provider_rtcim.operators.engine import USER_ID_KEYS, check_key_source

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import ObjectStoragePath


class RtcImUsersOperator(RtcImListingOperator):
    """Export user profiles (``BatchGetUser``): one row per registered user, the ``Users`` item
    exactly as the API returned it (unknown fields kept), in requests of 50 ids (the API's most:
    each full request is 1% of the account's second). Ids the API reports in ``NotFoundUsers``
    (not registered, or deregistered) are never rows: the summary counts them as ``not_found``
    and the log names them.

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
    """

    action = BATCH_GET_USER
    key_args = USER_ID_KEYS
    asset_extra_keys = ("not_found",)
    template_fields: Sequence[str] = listing_template_fields(BATCH_GET_USER, USER_ID_KEYS, "key_field")

    def __init__(
        self,
        *,
        user_id: int | str | Sequence[int | str] | None = None,
        users_from: str | ObjectStoragePath | None = None,
        key_field: str | None = None,
        **kwargs: Any,
    ) -> None:
        check_key_source(user_id, users_from, USER_ID_KEYS)
        super().__init__(**kwargs)
        self.user_id = user_id
        self.users_from = users_from
        self.key_field = key_field


__all__ = ["RtcImUsersOperator"]
