"""Validation of raw records against the field table: read the columns, check every value.

Works on one float64 matrix of the numeric fields (NaN where null or absent), so a batch is
checked in a few vectorised passes; errors name the field, the row and what was expected.

Types are strict: a boolean is never a number. Records as Python objects (a list of dicts: JSON
as parsed) must hold numbers where numbers belong; a DataFrame's text cells (a CSV read by
pandas, a string column) are parsed as numbers, as a spreadsheet's cells are.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from carnn_pyfunc.contract.columns import check_columns
from carnn_pyfunc.contract.fields import BY_NAME, NUMERIC_FIELDS, REQUIRED_FIELDS
from carnn_pyfunc.contract.problems import InvalidRecordError, Problem, shown

# The numbers a record carries: the scaled fields, then the origin code.
NUMBERS = (*NUMERIC_FIELDS, "origin")
_SMALL_BATCH = 64  # up to this many rows, one object conversion beats per-column access
_LISTED = 20  # problems listed one by one in an error (the count covers all of them)

_FIELDS = [BY_NAME[name] for name in NUMBERS]
# Inclusive bounds per numeric field; an exclusive lower bound moves up by one ulp.
_LOW = np.array([f.low if f.low_inclusive else np.nextafter(f.low, np.inf) for f in _FIELDS])
_HIGH = np.array([f.high for f in _FIELDS], dtype=np.float64)
_NULL_ALLOWED = np.array([not f.required for f in _FIELDS])
_WHOLE = [j for j, f in enumerate(_FIELDS) if f.kind == "whole"]
_YEAR = NUMBERS.index("year")
_JSON_NUMBERS = {int, float, type(None)}  # what JSON records may hold where numbers belong
_BOOLS = {bool, np.bool_}
_PLAIN_NUMBERS = {int, float, np.float64, np.float32, np.int64, np.int32, type(None)}


def read_columns(records: pd.DataFrame | list[dict]) -> tuple[np.ndarray, Any]:
    """The numbers as one float64 matrix (columns :data:`NUMBERS`, NaN where null or absent) and
    the names (None when there is no name column).

    ``records`` is a DataFrame, or a list of dicts (JSON records as parsed: no DataFrame built).
    """
    n_rows = len(records)
    if n_rows == 0:
        raise InvalidRecordError("input", "no records: expected at least one car")
    if isinstance(records, list):
        return _read_records(records)
    check_columns(records.columns.tolist())
    columns = {name: j for j, name in enumerate(records.columns.tolist())}
    for name in REQUIRED_FIELDS:
        if name not in columns:
            raise InvalidRecordError(
                name,
                f"missing required field; expected {BY_NAME[name].expected}",
                [Problem(0, name, BY_NAME[name].expected)],
            )
    if n_rows <= _SMALL_BATCH and all(f in columns for f in NUMBERS):
        # Few rows: one object conversion of the frame is cheaper than column access.
        block = records.to_numpy(dtype=object)
        picked = block[:, [columns[f] for f in NUMBERS]]
        if set(map(type, picked.ravel())) <= _PLAIN_NUMBERS:  # else: the column path decides
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                numbers = picked.astype(np.float64)
                return numbers, block[:, columns["name"]] if "name" in columns else None
    # the column's own array: Arrow strings factorize ~3x faster than an object copy
    names = records["name"].array if "name" in columns else None
    numbers = np.empty((n_rows, len(NUMBERS)), dtype=np.float64)
    for j, name in enumerate(NUMBERS):
        numbers[:, j] = _number_column(records[name]) if name in columns else np.nan
    return numbers, names


def _read_records(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """JSON records: one conversion of all their numbers; a missing key is a null."""
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            expected = "a record: an object of field names and values"
            problem = Problem(i, "input", expected, shown(row))
            raise InvalidRecordError(
                "input", f"row {i} is not a record; expected {expected}", [problem]
            )
    check_columns(set().union(*rows), ordered=False)
    columns = [list(map(dict.get, rows, repeat(f))) for f in NUMBERS]  # C loops, no bytecode
    kinds = set(map(type, itertools.chain.from_iterable(columns)))
    try:
        if not kinds <= _JSON_NUMBERS:
            raise TypeError("not only numbers")
        numbers = np.empty((len(rows), len(NUMBERS)), dtype=np.float64)
        for j, column in enumerate(columns):
            numbers[:, j] = np.array(column, dtype=np.float64)  # None: NaN
    except (TypeError, ValueError, OverflowError):  # text, a bool, a huge integer ...: find it
        for i, row in enumerate(rows):
            for name in NUMBERS:
                value = row.get(name)
                if as_number(value, text=False) is None:
                    expected = f"a number: {BY_NAME[name].expected}"
                    problem = Problem(i, name, expected, shown(value))
                    message = f"row {i} has {problem.value}; expected {expected}"
                    raise InvalidRecordError(name, message, [problem]) from None
        raise
    # one by one (not np.array): a list value stays one (bad) value
    names = np.fromiter(map(dict.get, rows, repeat("name")), dtype=object, count=len(rows))
    return numbers, names


def _number_column(column: pd.Series) -> np.ndarray:
    values = column.to_numpy()
    try:
        if values.dtype.kind in "iuf":  # plain NumPy numbers: no null handling needed
            return values.astype(np.float64, copy=False)
        if column.dtype.kind == "b" or (
            values.dtype == object and not _BOOLS.isdisjoint(map(type, values))
        ):
            raise TypeError("a boolean is not a number")
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError, OverflowError):
        rows = [i for i, v in enumerate(column) if as_number(v) is None] or [0]
        expected = f"a number: {BY_NAME[column.name].expected}"
        problems = [
            Problem(r, column.name, expected, shown(column.iloc[r])) for r in rows[:_LISTED]
        ]
        first = problems[0]
        raise InvalidRecordError(
            column.name,
            f"row {first.row} has {first.value}; expected {expected}",
            problems,
        ) from None


def as_number(value: object, *, text: bool = True) -> float | None:
    """The value as a float (NaN for a null), or None when it is not a number: a boolean, a
    container, an integer beyond float range, or text (with ``text``: text that is no number)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, bool | np.bool_ | list | dict | tuple | set | bytes):
        return None
    if isinstance(value, str) and not text:
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def bounds() -> tuple[list[float], list[float], list[bool], list[bool]]:
    """Per field of :data:`NUMBERS`, as Python scalars: the inclusive low and high bounds,
    whether null is allowed, whether a whole number is expected (what :func:`bad_values`
    checks, for the few-records path)."""
    whole = [j in _WHOLE for j in range(len(NUMBERS))]
    return _LOW.tolist(), _HIGH.tolist(), _NULL_ALLOWED.tolist(), whole


def bad_values(numbers: np.ndarray) -> np.ndarray:
    """A (rows, fields) mask of the values that are not valid: out of range, null where
    required, fractional where a whole number is expected."""
    with np.errstate(invalid="ignore"):
        bad = ~((numbers >= _LOW) & (numbers <= _HIGH))  # NaN is bad here ...
        bad &= ~(_NULL_ALLOWED & np.isnan(numbers))  # ... unless the field is optional
        for j in _WHOLE:
            column = numbers[:, j]
            bad[:, j] |= ~np.isnan(column) & (column != np.round(column))
        year = numbers[:, _YEAR]
        bad[:, _YEAR] |= (year > 99) & (year < 1900)
    return bad


def check_values(numbers: np.ndarray) -> None:
    """Raise :class:`InvalidRecordError` for the first bad row (and list a few more)."""
    bad = bad_values(numbers)
    if not bad.any():
        return
    rows, cols = np.nonzero(bad)  # row-major: first bad row, then field
    problems = [
        _problem(numbers, int(r), int(j))
        for r, j in zip(rows[:_LISTED], cols[:_LISTED], strict=True)
    ]
    first, j = problems[0], int(cols[0])
    value = numbers[first.row, j]
    count = f"{int(bad[:, j].sum())} of {len(numbers)} rows"
    what = "is null" if np.isnan(value) else f"has {value:g}"
    required = "a required field: " if np.isnan(value) else ""
    raise InvalidRecordError(
        first.field,
        f"row {first.row} {what} ({count}); {required}expected {first.expected}",
        problems,
    )


def _problem(numbers: np.ndarray, row: int, j: int) -> Problem:
    value = numbers[row, j]
    name = NUMBERS[j]
    return Problem(row, name, BY_NAME[name].expected, None if np.isnan(value) else f"{value:g}")
