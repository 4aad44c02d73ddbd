"""The worker's interpreter (serving.runtime), and the vectorised pieces of the observer that
replaced loops per value: each must say exactly what the loop said."""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from carnn_pyfunc.monitoring.log_rows import _number, as_table, input_columns
from carnn_pyfunc.serving.metrics import MPG_BUCKETS, observe_all
from carnn_pyfunc.serving.runtime import SWITCH_INTERVAL_S, favour_event_loop


def test_the_event_loop_is_favoured_for_the_gil():
    before = sys.getswitchinterval()
    try:
        favour_event_loop()
        assert math.isclose(sys.getswitchinterval(), SWITCH_INTERVAL_S)  # (microseconds)
    finally:
        sys.setswitchinterval(before)


def _histogram() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    return registry, Histogram("mpg", "mpg", buckets=MPG_BUCKETS, registry=registry)


@given(st.lists(st.one_of(st.sampled_from([*MPG_BUCKETS, 0.0, 70.0001, 1e9]),
                          st.floats(0, 200, allow_nan=False)), max_size=200))  # fmt: skip
def test_observing_all_values_at_once_counts_as_observing_each(values):
    one_registry, one = _histogram()
    all_registry, every = _histogram()
    for value in values:
        one.observe(value)
    observe_all(every, np.array(values, dtype=np.float64))
    expected = generate_latest(one_registry).decode().splitlines()
    got = generate_latest(all_registry).decode().splitlines()
    samples = [(w, h) for w, h in zip(expected, got, strict=True) if not w.startswith("#")]
    for want, have in samples:  # the sum: float additions in another order
        name, _, value = want.rpartition(" ")
        assert have.rpartition(" ")[0] == name
        assert math.isclose(float(have.rpartition(" ")[2]), float(value), rel_tol=1e-9)


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@given(st.lists(st.dictionaries(st.sampled_from(["weight", "year", "name", "other"]), json_values,
                                max_size=4), min_size=1, max_size=30))  # fmt: skip
def test_logged_numbers_are_each_value_as_the_log_reads_it(records):
    columns = input_columns(records, len(records))
    table = as_table_of_inputs(columns)
    for name in ("weight", "year"):
        expected = [_number(r.get(name)) for r in records]
        assert table[name].to_pylist() == expected
    assert table["name"].to_pylist() == [
        r.get("name") if isinstance(r.get("name"), str) else None for r in records
    ]


def as_table_of_inputs(columns: dict) -> pa.Table:
    """The input columns as the log's table writes them (NaN is null)."""
    n = len(columns["name"])
    full = {"request_id": ["r"] * n, "row": list(range(n)), "time": [0] * n,
            "model_name": [None] * n, "run_id": [None] * n, "role": ["primary"] * n,
            "mpg": [1.0] * n, "mpg_low": [None] * n, "mpg_high": [None] * n,
            "error": [None] * n, "latency_ms": [1.0] * n, "status": [200] * n,
            "model_version": [None] * n, **columns}  # fmt: skip
    return as_table(full)


def test_a_table_of_cells_is_logged_as_numbers_where_they_are_numbers():
    """CSV and Parquet requests reach the log as a DataFrame (pandas hands out read-only
    arrays: converting must not write into them)."""
    frame = pd.DataFrame({"weight": ["3504", "", "x", "inf", "1e400"],
                          "year": [70.0, np.nan, np.inf, 75.0, 1e308],
                          "name": ["ford", None, 3, "vw", "a"]})  # fmt: skip
    table = as_table_of_inputs(input_columns(frame, len(frame)))
    assert table["weight"].to_pylist() == [3504.0, None, None, None, None]
    assert table["year"].to_pylist() == [70.0, None, None, 75.0, 1e308]
    assert table["name"].to_pylist() == ["ford", None, None, "vw", "a"]
