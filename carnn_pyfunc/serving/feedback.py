"""POST /feedback: true MPG figures for rows the service answered (same auth as /invocations).

``{"labels": [{"request_id": "...", "row": 0, "mpg": 21.5}, ...]}`` (or one such object),
written beside the prediction log. A malformed label is a 400 naming the label and its field;
nothing of that request is written then. Answer: ``{"accepted": n}``.
"""

from __future__ import annotations

import msgspec

from carnn_pyfunc.monitoring.labels import InvalidLabel, check_label, write_labels
from carnn_pyfunc.serving.errors import ApiError, bad_request

MAX_LABELS = 100_000
_decode = msgspec.json.Decoder().decode


def parse_labels(body: bytes) -> list[tuple[str, int, float]]:
    try:
        document = _decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        raise bad_request("the body is not valid JSON", "labels") from None
    items = document.get("labels", [document]) if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        raise bad_request('expected {"labels": [{"request_id", "row", "mpg"}, ...]}', "labels")
    if len(items) > MAX_LABELS:
        raise ApiError(413, "TOO_MANY_ROWS", f"at most {MAX_LABELS} labels a request")
    checked = []
    try:
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidLabel(i, "labels", "an object with request_id, row and mpg")
            checked.append(check_label(i, item.get("request_id"), item.get("row"), item.get("mpg")))
    except InvalidLabel as err:
        raise ApiError(
            400,
            "INVALID_PARAMETER_VALUE",
            str(err),
            [{"row": err.index, "field": err.field, "expected": err.expected, "value": None}],
        ) from None
    return checked


def store(root: str | None, labels: list[tuple[str, int, float]]) -> int:
    if root is None:
        raise ApiError(
            404, "NOT_FOUND", "this service keeps no prediction log (carnn serve --prediction-log)"
        )
    return write_labels(root, labels)
