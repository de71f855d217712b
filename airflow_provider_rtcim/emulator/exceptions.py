"""The emulator's exceptions (no imports from the rest of the emulator)."""

from __future__ import annotations


class ApiError(Exception):
    """An API error reply: HTTP ``status`` and ``ResponseMetadata.Error`` ``code``/``message``.

    Raised by signature checks, parameter validation and paging; the dispatcher turns it into
    the error envelope.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid(message: str) -> ApiError:
    """400 ``InvalidParameter`` (a value out of range, a cursor we did not issue, ...)."""
    return ApiError(400, "InvalidParameter", message)


def unmarshal(message: str) -> ApiError:
    """400 ``InvalidParameter.Unmarshal`` (a field of the wrong JSON type)."""
    return ApiError(400, "InvalidParameter.Unmarshal", message)
