"""True MPG figures for logged rows: validated, then written under the log's root
(``ROOT/labels/date=.../part-*.parquet``, :mod:`.schema`), from ``POST /feedback`` or
`carnn feedback labels.csv`.

A label names a logged row by its request id and row number. Whether that row exists is known
only where the whole log is read: `carnn monitor` joins them and reports labels whose row it does
not find; here a label is refused only when it is malformed (a 400 naming the label and field).
"""

from __future__ import annotations

import math
import os
import socket
import uuid
from datetime import UTC, datetime

import pyarrow as pa

from carnn_pyfunc.monitoring.prediction_log import filesystem, write_file
from carnn_pyfunc.monitoring.schema import LABEL_SCHEMA, LABELS

MAX_REQUEST_ID = 128
MPG_RANGE = (1.0, 200.0)  # a true figure outside it is a mistake, not a car


class InvalidLabel(ValueError):
    def __init__(self, index: int, field: str, expected: str) -> None:
        super().__init__(f"{field}: label {index}: expected {expected}")
        self.index, self.field, self.expected = index, field, expected


def check_label(index: int, request_id: object, row: object, mpg: object) -> tuple[str, int, float]:
    """One label as (request_id, row, mpg), or InvalidLabel naming the field."""
    if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_REQUEST_ID:
        raise InvalidLabel(index, "request_id", f"the request's id (text of 1-{MAX_REQUEST_ID})")
    if type(row) is not int or row < 0:
        raise InvalidLabel(index, "row", "the row's number in its request (0, 1, ...)")
    if (
        type(mpg) not in (int, float)
        or not math.isfinite(mpg)
        or not (MPG_RANGE[0] <= mpg <= MPG_RANGE[1])
    ):
        raise InvalidLabel(index, "mpg", f"the true MPG, a number from {MPG_RANGE[0]:g} to "
                           f"{MPG_RANGE[1]:g}")  # fmt: skip
    return request_id, row, float(mpg)


def write_labels(root: str, labels: list[tuple[str, int, float]]) -> int:
    """Write checked labels as one file; the number written."""
    if not labels:
        return 0
    filesystem_, path = filesystem(root)
    now = datetime.now(UTC)
    table = pa.Table.from_pydict(
        {
            "request_id": [r for r, _, _ in labels],
            "row": [n for _, n, _ in labels],
            "mpg": [m for _, _, m in labels],
            "time": [now] * len(labels),
        },
        schema=LABEL_SCHEMA,
    )
    folder = f"{path}/{LABELS}/date={now:%Y-%m-%d}"
    filesystem_.create_dir(folder, recursive=True)
    name = f"part-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}.parquet"
    write_file(filesystem_, folder, name, table)
    return len(labels)
