"""The API request pipeline: signature, QPS limit, routing to the action's handler.

Order: count the request, verify the signature (401 / InvalidTimestamp), admit it through the
account-wide QPS window (429 ``FlowLimitExceeded.QPSOverLimit``), find the handler for
``(Action, Version)`` (404 ``InvalidActionOrVersion``), parse the body (400
``InvalidParameter.BodyIsEmpty`` / ``.Unmarshal``), then call the handler.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from airflow_provider_rtcim.emulator.auth import SERVICE, verify_request
from airflow_provider_rtcim.emulator.context import Call
from airflow_provider_rtcim.emulator.exceptions import ApiError
from airflow_provider_rtcim.emulator.faults import QpsWindow
from airflow_provider_rtcim.emulator.models import EmulatorBackend
from airflow_provider_rtcim.emulator.options import Options
from airflow_provider_rtcim.emulator.responses import ACTIONS
from airflow_provider_rtcim.emulator.stats import Stats
from airflow_provider_rtcim.emulator.transport import Reply

QPS_MESSAGE = "request rate exceeds the account's QPS limit"


class ApiDispatcher:
    """Serves ``POST /?Action=...&Version=...`` requests for one emulator."""

    def __init__(
        self,
        *,
        backend: EmulatorBackend,
        options: Options,
        stats: Stats,
        access_key_id: str,
        secret_access_key: str,
        region: str,
    ) -> None:
        self.backend, self.options, self.stats = backend, options, stats
        self.access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self.region = region
        self.qps = QpsWindow()
        self._request_ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"ApiDispatcher(access_key_id={self.access_key_id!r}, region={self.region!r})"

    def meta(self, action: str, version: str) -> dict[str, Any]:
        return {
            "RequestId": f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}{next(self._request_ids):012X}",
            "Action": action,
            "Version": version,
            "Service": SERVICE,
            "Region": self.region,
        }

    def handle(self, method: str, path: str, query_string: str, headers: Any, body: bytes) -> Reply:
        query = parse_qsl(query_string, keep_blank_values=True)
        q = dict(query)
        action, version = q.get("Action", ""), q.get("Version", "")
        options = self.options
        call = Call(self.meta(action, version), backend=self.backend, options=options, stats=self.stats)
        self.stats.api_request(action)
        if options.verify_signatures:
            try:
                verify_request(
                    method,
                    path,
                    query,
                    headers,
                    body,
                    access_key_id=self.access_key_id,
                    secret_access_key=self._secret_access_key,
                    region=self.region,
                    session_token=options.session_token,
                    clock_offset=options.clock_offset,
                )
            except ApiError as err:
                self.stats.signature_failure()
                return call.error(err)
        if not self.qps.admit(options.qps_limit):
            self.stats.throttle()
            return call.error(ApiError(429, "FlowLimitExceeded.QPSOverLimit", QPS_MESSAGE))
        try:
            handler = ACTIONS.get((action, version))
            if handler is None or path not in ("/", ""):
                raise ApiError(
                    404, "InvalidActionOrVersion", f"unknown Action {action!r} or Version {version!r}"
                )
            if method != "POST":
                raise ApiError(404, "InvalidActionOrVersion", f"{action} is called with POST, not {method}")
            return handler(call, parse_body(body))
        except ApiError as err:
            return call.error(err)


def parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise ApiError(400, "InvalidParameter.BodyIsEmpty", "the request body is empty")
    try:
        req = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "InvalidParameter.Unmarshal", "the request body is not valid JSON") from None
    if not isinstance(req, dict):
        raise ApiError(400, "InvalidParameter.Unmarshal", "the request body must be a JSON object")
    return req
