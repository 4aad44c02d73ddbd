"""The error answers of the scoring service: one JSON shape, a 4xx status, nothing echoed.

``{"error_code": ..., "message": ..., "errors": [{"row": 3, "field": "weight", "expected": ...,
"value": "-3504"}]}``: the message and the errors name the field and the row; a value is shown
only as the offending value, truncated. No stack trace, no copy of the request.
"""

from __future__ import annotations

import json

from carnn_pyfunc.contract import InvalidRecordError

INVALID = "INVALID_PARAMETER_VALUE"  # as MLflow's scoring server says it
BAD_REQUEST = "BAD_REQUEST"
MAX_LISTED_ERRORS = 20


class ApiError(Exception):
    """A request the service answers with a 4xx (or 504) and the error body."""

    def __init__(
        self, status: int, error_code: str, message: str, errors: list[dict] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message
        self.errors = (errors or [])[:MAX_LISTED_ERRORS]

    def body(self) -> bytes:
        return json.dumps(
            {"error_code": self.error_code, "message": self.message, "errors": self.errors}
        ).encode()

    @property
    def fields(self) -> list[str]:
        return [e["field"] for e in self.errors if e.get("field")]


def invalid_records(err: InvalidRecordError) -> ApiError:
    """A 400 naming each bad value's field and row (the first few of them)."""
    errors = [
        {"row": p.row, "field": p.field, "expected": p.expected, "value": p.value}
        for p in err.problems
    ] or [{"row": None, "field": err.field, "expected": str(err), "value": None}]
    return ApiError(400, INVALID, str(err), errors)


def bad_request(message: str, field: str | None = None) -> ApiError:
    errors = [{"row": None, "field": field, "expected": message, "value": None}] if field else []
    return ApiError(400, BAD_REQUEST, message, errors)
