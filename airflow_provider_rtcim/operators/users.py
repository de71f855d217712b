"""``RtcImUsersOperator``: user profiles (``BatchGetUser``)."""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_rtcim.core.actions import BATCH_GET_USER
from airflow_provider_rtcim.operators.base import listing_template_fields
from airflow_provider_rtcim.operators.engine import USER_ID_KEYS
from airflow_provider_rtcim.operators.keyed import UserIdListingOperator


class RtcImUsersOperator(UserIdListingOperator):
    """Export user profiles (``BatchGetUser``): one row per registered user, the ``Users`` item
    exactly as the API returned it (unknown fields kept), in requests of 50 ids (the API's most:
    each full request is 1% of the account's second). Ids the API reports in ``NotFoundUsers``
    (not registered, or deregistered) are never rows: the summary counts them as ``not_found``
    and the log names them.

    Keys (``user_id``, ``users_from``, ``key_field``): see
    :class:`~airflow_provider_rtcim.operators.keyed.UserIdListingOperator`.
    """

    action = BATCH_GET_USER
    asset_extra_keys = ("not_found",)
    template_fields: Sequence[str] = listing_template_fields(BATCH_GET_USER, USER_ID_KEYS, "key_field")


__all__ = ["RtcImUsersOperator"]
