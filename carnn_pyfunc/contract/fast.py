"""A few JSON records (a served request of one or a handful of cars) validated and encoded with
Python scalars: the vectorised path's forty NumPy calls cost more than the arithmetic itself.

The same computation, bit for bit (a test draws records and compares): the same float64
products and sums cast to float32 once, the logarithms by the same ``np.log``, the same one-hot
positions. Anything the few-records path does not handle itself (a bad value, an unknown
column, a value that is no plain number, a name that is no text) returns None, and the caller
takes the vectorised path, which then says what is wrong exactly as it always does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from carnn_pyfunc.contract.fields import INPUT_FIELDS, NUMERIC_FIELDS
from carnn_pyfunc.contract.validation import NUMBERS, bounds

FeatureContract = Any  # contract.encoder's, whose hot-path fields this reads (no import cycle)

MAX_ROWS = 8  # more rows: the vectorised path is as fast
_KNOWN = frozenset(INPUT_FIELDS)
_LOW, _HIGH, _NULL_ALLOWED, _WHOLE = bounds()
_N_NUM = len(NUMERIC_FIELDS)
_HP, _YEAR, _ORIGIN = (NUMBERS.index(f) for f in ("horsepower", "year", "origin"))
_LOGGED = [NUMBERS.index(f) for f in ("displacement", "horsepower", "weight")]
# per field of NUMBERS: (name, low, high, null allowed, whole number expected, is the year)
_SPECS = tuple(zip(NUMBERS, _LOW, _HIGH, _NULL_ALLOWED, _WHOLE,
                   [j == _YEAR for j in range(len(NUMBERS))], strict=True))  # fmt: skip


def transform_few(contract: FeatureContract, records: list) -> np.ndarray | None:
    """The input matrix of up to :data:`MAX_ROWS` valid JSON records, or None (take the
    vectorised path)."""
    rows = []
    for record in records:
        if type(record) is not dict or not record.keys() <= _KNOWN:
            return None
        numbers = _numbers(record, contract.horsepower_median)
        if numbers is None:
            return None
        rows.append(numbers)
    names = contract._names
    encoded = []
    for record in records:
        name = record.get("name")
        try:
            encoded.append(names.known.get(name) or names._encode(name))
        except TypeError:  # not a car name: the vectorised path names the row
            return None
    logged = np.log(np.array([[row[j] for j in _LOGGED] for row in rows], dtype=np.float64))
    triples = zip(rows, encoded, logged.tolist(), strict=True)
    return np.array([_encode(contract, *triple) for triple in triples], dtype=np.float32)


def _numbers(record: dict, horsepower_median: float) -> list[float] | None:
    """The record's numbers, imputed and normalised, or None if one is not valid."""
    numbers = []
    get = record.get
    for name, low, high, null_allowed, whole, year in _SPECS:
        value = get(name)
        if value is None:
            if not null_allowed:
                return None
            numbers.append(float("nan"))
            continue
        kind = type(value)
        if kind is float:
            x = value
        elif kind is int:
            try:
                x = float(value)
            except OverflowError:
                return None
        else:
            return None
        if not low <= x <= high or (whole and x != round(x)) or (year and 99 < x < 1900):
            return None
        numbers.append(x)
    if numbers[_HP] != numbers[_HP]:
        numbers[_HP] = horsepower_median
    if numbers[_YEAR] >= 1900:
        numbers[_YEAR] -= 1900
    return numbers


def _encode(contract: FeatureContract, row: list[float], encoded: tuple, log_row: list) -> list:
    scale, shift = contract._scale_list, contract._shift_list
    out = [0.0] * contract._n_features
    for j in range(_N_NUM):
        out[j] = row[j] * scale[j] + shift[j]
    for k, value in enumerate(log_row):
        out[_N_NUM + k] = value * scale[_N_NUM + k] + shift[_N_NUM + k]
    position = contract._year_list[int(row[_YEAR])]
    if position >= 0:
        out[contract._year_offset + position] = 1.0
    maker = int(encoded[0])
    out[contract._maker_offset + maker] = 1.0
    flags = encoded[1:]
    out[len(out) - len(flags) :] = flags
    origin = row[_ORIGIN]
    code = int(contract._origin_by_maker[maker]) if origin != origin else int(origin)
    offset = contract._origin_offset
    if code > 0:
        out[offset + code - 1] = 1.0
    else:  # neither origin nor maker known: the training mix
        out[offset : contract._maker_offset] = contract._origin_freq_list
    return out
