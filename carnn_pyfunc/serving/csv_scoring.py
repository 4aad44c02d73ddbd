"""POST /score.csv: a CSV of cars in, the same rows out with ``mpg`` and ``error`` columns.

Row by row: the model (``params={"errors": "column"}``) gives each row its MPG, or an empty MPG
and one line naming the field that failed validation. Nothing is dropped, the order is kept and
every input column comes back as it was written (read as text). The summary travels in headers:
``X-Carnn-Rows`` and ``X-Carnn-Failed``. A table the model cannot score at all (no readable
CSV, a missing required column) gets the API's 4xx error instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd
from starlette.requests import Request
from starlette.responses import Response

from carnn_pyfunc.contract import INPUT_FIELDS, InvalidRecordError
from carnn_pyfunc.contract.columns import check_columns
from carnn_pyfunc.monitoring.prediction_log import Entry, new_request_id
from carnn_pyfunc.serving.errors import ApiError, invalid_records
from carnn_pyfunc.serving.limits import Turn, held_while_working
from carnn_pyfunc.serving.metrics import ServiceMetrics
from carnn_pyfunc.serving.protocol import CSV, as_records, media_type, read_csv
from carnn_pyfunc.serving.settings import Settings

ROWS_HEADER, FAILED_HEADER = "X-Carnn-Rows", "X-Carnn-Failed"
SUMMARY_HEADERS = (ROWS_HEADER, FAILED_HEADER)
MPG, ERROR = "mpg", "error"  # the columns the answer adds
ROW_BY_ROW = {"errors": "column"}


class Scorer(Protocol):
    """What scoring a CSV needs of the service's scoring (:class:`.scoring.Scoring`)."""

    metrics: ServiceMetrics
    settings: Settings
    observer: Any
    role: str
    turn: Turn

    async def read(self, receive: Any, declared: str, large: list) -> bytes: ...

    async def work(self, job: Callable[[], Any]) -> Any: ...

    def score(self, records: Any, params: dict | None) -> dict: ...


async def score(service: Scorer, request: Request) -> Response:
    """The scored CSV of ``request``, within the same limits as /invocations (the route takes an
    in-flight slot; here large-body bytes and the scoring thread's turn; a 503 past them),
    always on the scoring thread (a small body can hold thousands of short rows)."""
    if media_type(request.headers.get("content-type")) != CSV:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "expected a text/csv body")
    async with held_while_working() as held:
        declared = request.headers.get("content-length", "")
        body = await service.read(request.receive, declared, held)
        started = time.perf_counter()
        job = lambda: service.turn.within(_scored, service, body)  # noqa: E731
        text, rows, failed, records, answer = await service.work(job)
        request_id = new_request_id()
        latency_ms = (time.perf_counter() - started) * 1000
        entry = Entry(request_id, time.time(), records, answer, latency_ms, service.role)
        service.observer.prepare_soon(entry, done=service.turn.end)  # then the turn is back
    service.metrics.rows.inc(rows - len(failed))
    for field in failed:
        service.metrics.invalid.labels(field).inc()
    headers = {
        ROWS_HEADER: str(rows),
        FAILED_HEADER: str(len(failed)),
        "Content-Disposition": 'attachment; filename="cars-mpg.csv"',
        "X-Request-Id": request_id,
    }
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)


def _scored(service: Scorer, body: bytes) -> tuple:
    """(the scored CSV, rows, the field of each failed row, the records, the model's answer),
    within the scoring thread's turn."""
    given = read_csv(body, service.settings.max_rows)  # the cells as written, read once
    check = as_records(given)
    try:
        check_columns(given.columns.tolist())
    except InvalidRecordError as err:
        raise invalid_records(err) from None
    answer = service.score(check, ROW_BY_ROW)
    text, failed = scored_csv(given, answer)
    return text, len(given), failed, check, answer


def scored_csv(given: pd.DataFrame, answer: dict) -> tuple[str, list[str]]:
    """The input rows with ``mpg`` (two decimals; empty for a failed row) and ``error``
    appended, and the field each failed row names. Input columns already called ``mpg`` or
    ``error`` are kept, renamed ``mpg_given`` / ``error_given``. ``answer``: the model's
    columns."""
    mpg = np.asarray(answer[MPG], dtype=np.float64)
    if len(given) != len(mpg):  # the model answers every row or raises; never silently less
        raise RuntimeError(f"the model answered {len(mpg)} rows for {len(given)}")
    out = given.rename(columns={c: f"{c}_given" for c in (MPG, ERROR) if c in given.columns})
    out[MPG] = mpg
    # a model version from before row-by-row scoring has no error column: it raises instead
    errors = pd.Series(answer.get(ERROR, [None] * len(mpg)), dtype=object)
    out[ERROR] = errors.to_numpy()
    failed = [_field_of(line) for line in errors.dropna()]
    return out.to_csv(index=False, float_format="%.2f", lineterminator="\n"), failed


def _field_of(error: str) -> str:
    """The field an error line names (``weight: has -1; ...``), as a bounded metrics label."""
    field = error.partition(":")[0]
    return field if field in INPUT_FIELDS else "input"
