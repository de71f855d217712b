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
* :class:`RtcImListingOperator` -- their one base class (:mod:`~airflow_provider_rtcim.operators.base`);
* for DAGs that fan out over mapped batches: :func:`count_distinct_keys` and
  :func:`plan_key_ranges` (plan the batches), :func:`combine_summaries` (one summary, one
  Asset event per run). See ``docs/scaling.md``.
"""

from __future__ import annotations

from airflow_provider_rtcim.core.keys import plan_key_ranges
from airflow_provider_rtcim.exceptions import RtcImListingFailed
from airflow_provider_rtcim.operators.base import RtcImListingOperator
from airflow_provider_rtcim.operators.conversations import RtcImGetUserConversationsOperator
from airflow_provider_rtcim.operators.engine import count_distinct_keys
from airflow_provider_rtcim.operators.members import RtcImConversationParticipantsOperator
from airflow_provider_rtcim.operators.messages import RtcImConversationMessagesOperator
from airflow_provider_rtcim.operators.output import combine_summaries

__all__ = [
    "RtcImConversationMessagesOperator",
    "RtcImConversationParticipantsOperator",
    "RtcImGetUserConversationsOperator",
    "RtcImListingFailed",
    "RtcImListingOperator",
    "combine_summaries",
    "count_distinct_keys",
    "plan_key_ranges",
]
