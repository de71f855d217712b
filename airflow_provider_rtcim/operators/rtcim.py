"""Operators for the Volcengine RTC IM OpenAPI: every page of a read action, for many keys at once.

The import path of every operator and helper (``from airflow_provider_rtcim.operators.rtcim
import ...``); each lives in its own short module:

* :class:`RtcImGetUserConversationsOperator` -- users' conversations (``GetUserConversations``),
  :mod:`~airflow_provider_rtcim.operators.conversations`;
* :class:`RtcImConversationParticipantsOperator` -- conversations' members
  (``ScanConversationParticipantList``), :mod:`~airflow_provider_rtcim.operators.members`;
* :class:`RtcImConversationMessagesOperator` -- conversations' messages
  (``GetConversationMessages``), optionally incremental with a checkpoint,
  :mod:`~airflow_provider_rtcim.operators.messages`;
* users, friends, blacklists, read positions, mute and block lists:
  :class:`RtcImUsersOperator` (``BatchGetUser``), :class:`RtcImUserFriendsOperator`
  (``ListFriend``), :class:`RtcImUserBlacklistOperator` (``GetBlackList``),
  :class:`RtcImConversationReadIndexesOperator` (``GetParticipantReadIndex``),
  :class:`RtcImConversationBlockListOperator` (``BatchGetBlockParticipants``), one module each;
* :class:`RtcImListingOperator` -- their one base class (:mod:`~airflow_provider_rtcim.operators.base`);
* for DAGs that fan out over mapped batches: :func:`count_distinct_keys` and
  :func:`plan_key_ranges` (plan the batches), :func:`combine_summaries` (one summary, one
  Asset event per run). See ``docs/scaling.md``.
"""

from __future__ import annotations

from airflow_provider_rtcim.exceptions import RtcImListingFailed
from airflow_provider_rtcim.operators.base import RtcImListingOperator
from airflow_provider_rtcim.operators.blacklist import RtcImUserBlacklistOperator
from airflow_provider_rtcim.operators.block_list import RtcImConversationBlockListOperator
from airflow_provider_rtcim.operators.conversations import RtcImGetUserConversationsOperator
from airflow_provider_rtcim.operators.engine import count_distinct_keys, plan_key_ranges
from airflow_provider_rtcim.operators.friends import RtcImUserFriendsOperator
from airflow_provider_rtcim.operators.members import RtcImConversationParticipantsOperator
from airflow_provider_rtcim.operators.messages import RtcImConversationMessagesOperator
from airflow_provider_rtcim.operators.output import combine_summaries
from airflow_provider_rtcim.operators.read_indexes import RtcImConversationReadIndexesOperator
from airflow_provider_rtcim.operators.users import RtcImUsersOperator

__all__ = [
    "RtcImConversationBlockListOperator",
    "RtcImConversationMessagesOperator",
    "RtcImConversationParticipantsOperator",
    "RtcImConversationReadIndexesOperator",
    "RtcImGetUserConversationsOperator",
    "RtcImListingFailed",
    "RtcImListingOperator",
    "RtcImUserBlacklistOperator",
    "RtcImUserFriendsOperator",
    "RtcImUsersOperator",
    "combine_summaries",
    "count_distinct_keys",
    "plan_key_ranges",
]
