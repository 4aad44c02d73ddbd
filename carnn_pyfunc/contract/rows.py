"""Row-by-row validation for batches: every row gets its own verdict, none fails the others.

Where :meth:`FeatureContract.transform` stops at the first bad value (a request is answered
whole or not at all), :func:`row_problems` reads every value it can and says, per row, the first
field that is wrong ("weight: has -1; expected pounds, from 200 to 20000"). A missing required
column still raises: no row could be scored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from carnn_pyfunc.contract.columns import check_columns
from carnn_pyfunc.contract.fields import BY_NAME, REQUIRED_FIELDS
from carnn_pyfunc.contract.names import is_name
from carnn_pyfunc.contract.validation import (
    NUMBERS,
    InvalidRecordError,
    Problem,
    as_number,
    bad_values,
    read_columns,
    shown,
)


def row_problems(records: pd.DataFrame | list[dict]) -> tuple[np.ndarray, Any, list[str | None]]:
    """(numbers, names, one error line or None per row); bad values in the numbers are NaN and
    bad names None, so the valid rows can be encoded as they are."""
    if isinstance(records, pd.DataFrame):  # a duplicate or misspelt column fails every row
        check_columns(records.columns.tolist())
    elif all(isinstance(r, dict) for r in records):
        check_columns(set().union(*records), ordered=False)
    try:
        numbers, names = read_columns(records)
    except InvalidRecordError as err:
        if err.field in REQUIRED_FIELDS and "missing required field" in str(err):
            raise
        if err.field == "input" and not len(records):
            raise
        numbers, names, typed = _read_leniently(records)
    else:
        typed = {}
    if isinstance(names, np.ndarray) and names.dtype == object:  # text columns hold only text
        for row in [i for i, value in enumerate(names) if not is_name(value)]:
            problem = Problem(row, "name", BY_NAME["name"].expected, shown(names[row]))
            typed.setdefault(row, problem)
            names[row] = None
    bad = bad_values(numbers)
    errors: list[str | None] = [None] * len(numbers)
    for row, problem in typed.items():
        errors[row] = describe(problem)
    for row, j in zip(*np.nonzero(bad), strict=True):
        if errors[row] is None:
            value = numbers[row, j]
            shown_value = None if np.isnan(value) else f"{value:g}"
            errors[row] = describe(
                Problem(int(row), NUMBERS[j], BY_NAME[NUMBERS[j]].expected, shown_value)
            )
    return numbers, names, errors


def describe(problem: Problem) -> str:
    """One row's error: the field, what it has, what was expected."""
    if problem.value is None:
        return f"{problem.field}: is null; a required field: expected {problem.expected}"
    return f"{problem.field}: has {problem.value}; expected {problem.expected}"


def _read_leniently(records) -> tuple[np.ndarray, np.ndarray, dict[int, Problem]]:
    """Value by value (the slow path, for batches holding text or lists where numbers belong)."""
    problems: dict[int, Problem] = {}
    text = not isinstance(records, list)  # JSON records hold numbers; a table's cells text
    if isinstance(records, list):
        for row, record in enumerate(records):
            if not isinstance(record, dict):
                problems[row] = Problem(row, "input", "a record of fields", shown(record))
        records = pd.DataFrame([r if isinstance(r, dict) else {} for r in records])
    for name in REQUIRED_FIELDS:
        if name not in records.columns:
            raise InvalidRecordError(
                name, f"missing required field; expected {BY_NAME[name].expected}"
            )
    numbers = np.full((len(records), len(NUMBERS)), np.nan)
    for j, name in enumerate(NUMBERS):
        if name not in records.columns:
            continue
        for row, value in enumerate(records[name].tolist()):
            number = as_number(value, text=text)
            if number is None:
                expected = f"a number: {BY_NAME[name].expected}"
                problems.setdefault(row, Problem(row, name, expected, shown(value)))
            else:
                numbers[row, j] = number
    names = None
    if "name" in records.columns:
        names = np.empty(len(records), dtype=object)
        for row, value in enumerate(records["name"].tolist()):
            names[row] = value
    return numbers, names, problems
