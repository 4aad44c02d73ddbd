"""The prediction log's rows: answered requests (:class:`Entry`) as the log's
columns (:data:`.schema.PREDICTION_SCHEMA` and the model version), one Arrow table.

A large request's numbers are converted a column at a time by NumPy (a Python loop per value
held the observer's thread, and the GIL, for ~100 ms on 100,000 rows); NaN becomes null.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import repeat
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from carnn_pyfunc.contract.fields import FIELDS
from carnn_pyfunc.monitoring.schema import PREDICTION_SCHEMA

_NUMBER_FIELDS = [f.name for f in FIELDS if f.numeric]
_PLAIN = {int, float, type(None)}
_COLUMNS = (*PREDICTION_SCHEMA.names, "model_version")


@dataclass(frozen=True)
class ModelId:
    name: str | None
    version: str | None
    run_id: str | None


class Entry(NamedTuple):
    """One answered request, as queued."""

    request_id: str
    time: float  # seconds since the epoch
    records: object  # list of dicts or a DataFrame, as the model read them
    answer: dict  # the model's columns: mpg (NaN for a failed row), mpg_low/high, error
    latency_ms: float
    role: str
    model: ModelId | None = None  # the version that answered; None: the log's own
    status: int = 200
    first_row: int = 0  # the request's row number of the first record (a chunk of a request)


def rows_of(entries: list[Entry], model: ModelId) -> dict[str, list]:
    """The log's columns (:data:`.schema.PREDICTION_SCHEMA`) of answered requests."""
    columns: dict[str, list] = {name: [] for name in _COLUMNS}
    default, singles = model, []
    for e in entries:
        answer, model = e.answer, e.model or default
        n = len(answer["mpg"])
        if n == 1 and type(e.records) is list and type(e.records[0]) is dict:
            singles.append(_one_row(e, model))  # a one-car request: a tuple, no list per field
            continue
        _add_rows(columns, singles)
        columns["request_id"] += [e.request_id] * n
        columns["row"] += range(e.first_row, e.first_row + n)
        columns["time"] += [int(e.time * 1000)] * n  # milliseconds since the epoch
        columns["model_name"] += [model.name] * n
        columns["run_id"] += [model.run_id] * n
        columns["role"] += [e.role] * n
        for name, values in input_columns(e.records, n).items():
            columns[name] += values
        columns["mpg"] += _floats(answer["mpg"])
        for name in ("mpg_low", "mpg_high"):
            columns[name] += _floats(answer[name]) if name in answer else [None] * n
        columns["error"] += list(answer["error"]) if "error" in answer else [None] * n
        columns["latency_ms"] += [e.latency_ms] * n
        columns["status"] += [e.status] * n
        columns["model_version"] += [model.version] * n
    _add_rows(columns, singles)
    return columns


def _add_rows(columns: dict[str, list], rows: list[tuple]) -> None:
    """Rows (tuples in the columns' order) added to the columns; ``rows`` emptied."""
    if rows:
        for values, name in zip(zip(*rows, strict=True), _COLUMNS, strict=True):
            columns[name] += values
        rows.clear()


LOG_TABLE_SCHEMA = PREDICTION_SCHEMA.append(pa.field("model_version", pa.string()))


def as_table(columns: dict[str, list]) -> pa.Table:
    """:func:`rows_of`'s columns as one Arrow table (the version as a column: a partition once
    written); NaN is null."""
    arrays = [pa.array(columns[f.name], f.type, from_pandas=True) for f in LOG_TABLE_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=LOG_TABLE_SCHEMA)


def _one_row(e: Entry, model: ModelId) -> tuple:
    """A one-car request's row, in the order of :data:`_COLUMNS` (NaN: null in the table)."""
    record, answer = e.records[0], e.answer
    name = record.get("name")
    return (e.request_id, e.first_row, int(e.time * 1000), model.name, model.run_id, e.role,
            *map(_number, map(record.get, _NUMBER_FIELDS)),
            name if isinstance(name, str) else None,
            float(answer["mpg"][0]),
            float(answer["mpg_low"][0]) if "mpg_low" in answer else None,
            float(answer["mpg_high"][0]) if "mpg_high" in answer else None,
            answer["error"][0] if "error" in answer else None,
            e.latency_ms, e.status, model.version)  # fmt: skip


def input_columns(records, n: int) -> dict[str, list]:
    """Each field's values as validated: numbers as floats (NaN or None where missing, not a
    number or not finite: null in the table), the name as text (None otherwise)."""
    if isinstance(records, pd.DataFrame):
        out = {}
        for f in FIELDS:
            if f.name not in records.columns:
                out[f.name] = [None] * n
            elif f.numeric:
                values = pd.to_numeric(records[f.name], errors="coerce").to_numpy(np.float64)
                out[f.name] = _finite(values)
            else:
                out[f.name] = [v if isinstance(v, str) else None for v in records[f.name]]
        return out
    rows = [r if isinstance(r, dict) else {} for r in records]
    out = {name: _numbers(list(map(dict.get, rows, repeat(name)))) for name in _NUMBER_FIELDS}
    out["name"] = [v if isinstance(v := r.get("name"), str) else None for r in rows]
    return out


def _numbers(values: list) -> list:
    """JSON values as floats where they are plain numbers (a boolean or text is not)."""
    if set(map(type, values)) <= _PLAIN:
        try:
            return _finite(np.array(values, dtype=np.float64))  # None: NaN
        except OverflowError:  # an integer beyond float range: value by value
            pass
    return [_number(v) for v in values]


def _finite(values: np.ndarray) -> list:
    """The values as a list, NaN where not finite (``values`` may be read-only: not changed)."""
    return np.where(np.isfinite(values), values, np.nan).tolist()


def _number(value: object) -> float | None:
    if type(value) is int or type(value) is float:
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    return None


def _floats(values) -> list:
    return np.asarray(values, dtype=np.float64).tolist()  # NaN: null in the table
