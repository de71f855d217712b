"""The provider's error type and the rule that decides what is worth retrying.

Every failure of a call, whatever its source (an HTTP status, an ``Error`` inside a
200 response, a dropped connection, a malformed body, a pagination anomaly), is raised
as one exception type carrying ``code``, ``http_status``, ``request_id`` and ``message``.
Under Airflow the hook raises :class:`airflow_provider_rtcim.hooks.rtcim.RtcImApiError`,
a subclass of both this class and ``AirflowException``.
"""

from __future__ import annotations

RETRYABLE_HTTP_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses that are transient: rate limited, or the gateway/backend failing."""

RETRYABLE_CODES: frozenset[str] = frozenset(
    {"InternalError", "ServiceUnavailableTemp", "InternalServiceTimeout", "FailToConnect"}
)
"""API ``Code`` values that are transient, even inside an HTTP 200 response."""

RETRYABLE_CODE_PREFIXES: tuple[str, ...] = ("FlowLimitExceeded",)
"""``FlowLimitExceeded`` and its sub-codes (``FlowLimitExceeded.QPSOverLimit``) are transient."""

# Client-side codes, for failures that never reached (or never came back from) the API.
CODE_CONNECTION = "ConnectionError"
CODE_TIMEOUT = "Timeout"
CODE_TRUNCATED = "TruncatedResponse"
CODE_BAD_RESPONSE = "MalformedResponse"
CODE_PAGINATION = "PaginationAnomaly"
CODE_INVALID_ARGUMENT = "InvalidArgument"
CODE_CONFIG = "MisconfiguredConnection"

CLIENT_RETRYABLE_CODES: frozenset[str] = frozenset(
    {CODE_CONNECTION, CODE_TIMEOUT, CODE_TRUNCATED, CODE_BAD_RESPONSE}
)

# What to do about the non-retryable API errors, keyed on ``Code`` (or its prefix before the dot).
FIX_HINTS: dict[str, str] = {
    "SignatureDoesNotMatch": "the Secret Access Key does not match the Access Key ID: check the connection's password (the Secret Access Key field)",
    "InvalidAccessKey": "the Access Key ID is unknown: check the connection's login (the Access Key ID field)",
    "MissingSignature": "the request was not signed: check the connection's login and password",
    "InvalidSecretToken": "the STS session token is invalid or expired: refresh extra.session_token (the Session Token field)",
    "InvalidTimestamp": "the request's X-Date is outside the 900 s window: fix this machine's clock (NTP)",
    "InvalidParameter.NotExistAppId": "the AppId does not exist for this account: check extra.app_id or the task's app_id",
    "InvalidParameter.IllegalAppId": "the AppId is not valid for this account: check extra.app_id or the task's app_id",
    "InvalidParameter": "a request parameter was rejected: check the task's arguments",
    "MissingParameter": "a required parameter is missing: check the task's arguments",
    "MissingRequestInfo": "the request is incomplete: check the task's arguments",
    "AccessDenied": "the key is not allowed to call this action: grant the RTC IM permissions to this Access Key",
    "ServiceNotFound": "the endpoint does not serve RTC: check host / extra.endpoint_url and region",
    "InvalidActionOrVersion": "unknown Action or Version: check the action name and version",
}


def is_retryable(code: str | None, http_status: int | None) -> bool:
    """True when a failure with this ``Code`` and/or HTTP status is worth another try.

    The ``Code`` wins when present: a ``SignatureDoesNotMatch`` is never retried whatever
    the status, and an ``InternalError`` is retried even inside an HTTP 200.
    """
    if code:
        if code in RETRYABLE_CODES or code in CLIENT_RETRYABLE_CODES:
            return True
        if code.startswith(RETRYABLE_CODE_PREFIXES):
            return True
        if code in FIX_HINTS or code.split(".", 1)[0] in FIX_HINTS:
            return False
        if http_status is None or http_status == 200:
            return False
    return http_status in RETRYABLE_HTTP_STATUSES


def hint_for(code: str | None) -> str | None:
    """A one-line 'what to fix' for a non-retryable ``Code``, or None."""
    if not code:
        return None
    return FIX_HINTS.get(code) or FIX_HINTS.get(code.split(".", 1)[0])


class RtcImError(Exception):
    """A failed RTC IM call. Never holds a secret: messages are built from the response only.

    :param message: what went wrong, in plain words.
    :param code: the API's ``ResponseMetadata.Error.Code`` or a client-side code
        (``ConnectionError``, ``Timeout``, ``TruncatedResponse``, ``MalformedResponse``,
        ``PaginationAnomaly``, ``InvalidArgument``, ``MisconfiguredConnection``).
    :param http_status: the HTTP status, when a response came back.
    :param request_id: ``ResponseMetadata.RequestId``, to quote to Volcengine support.
    :param action: the API action called.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        action: str | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        self.action = action
        super().__init__(self.__str__())

    @property
    def retryable(self) -> bool:
        """Whether this failure is transient (see :func:`is_retryable`)."""
        return is_retryable(self.code, self.http_status)

    def __str__(self) -> str:
        parts = []
        if self.action:
            parts.append(self.action)
        if self.code:
            parts.append(self.code)
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        head = " ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        hint = hint_for(self.code)
        if hint and hint not in text:
            text = f"{text} ({hint})"
        if self.request_id:
            text = f"{text} [RequestId {self.request_id}]"
        return text

    def __reduce__(self):  # keep attributes across pickling (Airflow may pickle exceptions)
        return (
            _rebuild,
            (type(self), self.message, self.code, self.http_status, self.request_id, self.action),
        )


def _rebuild(cls, message, code, http_status, request_id, action):  # type: ignore[no-untyped-def]
    return cls(message, code=code, http_status=http_status, request_id=request_id, action=action)
