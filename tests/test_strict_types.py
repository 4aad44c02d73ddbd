"""Strict types at the contract (fast tier): a boolean is never a number, JSON records hold
numbers where numbers belong, a table's text cells are parsed, numbers of any size are a number
or an error naming their field, misspelt and repeated columns are errors."""

from __future__ import annotations

import math

import hypothesis
import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

from carnn_pyfunc.contract import NUMERIC_FIELDS, InvalidRecordError
from carnn_pyfunc.contract.columns import check_columns, near_miss
from carnn_pyfunc.contract.rows import row_problems
from carnn_pyfunc.contract.validation import NUMBERS, read_columns
from tests.helpers import SEED_RECORD


def car(**changes) -> dict:
    return {**SEED_RECORD, **changes}


@pytest.mark.parametrize("value", [True, False, "8", " 8 ", "1_000", "\uff18", 10**400, [8], {}])
@pytest.mark.parametrize("field", ["cylinders", "year", "origin", "horsepower"])
def test_json_records_refuse_anything_but_numbers(field, value):
    with pytest.raises(InvalidRecordError) as caught:
        read_columns([car(**{field: value})])
    assert caught.value.field == field
    assert caught.value.problems[0].row == 0
    (error,) = row_problems([car(**{field: value})])[2]  # row by row: the same verdict
    assert error.startswith(f"{field}: has ")


@pytest.mark.parametrize("dtype", ["bool", "boolean", "object"])
def test_a_boolean_column_is_no_number_in_a_dataframe(dtype):
    frame = pd.DataFrame([car(), car()]).astype({"origin": "object"})
    frame["origin"] = pd.Series([True, False], dtype=dtype)
    with pytest.raises(InvalidRecordError, match="origin: row 0 has True"):
        read_columns(frame)


def test_a_tables_text_cells_are_parsed_as_numbers():
    frame = pd.DataFrame([{k: str(v) for k, v in SEED_RECORD.items()}])
    numbers, _ = read_columns(frame)
    assert numbers[0, NUMBERS.index("weight")] == 3504.0


def test_integers_beyond_float_range_name_their_field_in_a_dataframe():
    frame = pd.DataFrame([car(weight=10**400)], dtype=object)
    with pytest.raises(InvalidRecordError, match=r"^weight: row 0"):
        read_columns(frame)


@pytest.mark.parametrize(
    ("name", "meant"),
    [("Horsepower", "horsepower"), ("horse-power", "horsepower"), ("WEIGHT", "weight"),
     ("acceleraton", "acceleration"), ("years", "year"), ("Cylinder", "cylinders")],
)  # fmt: skip
def test_a_near_miss_of_a_field_name_is_an_error_saying_which(name, meant):
    assert near_miss(name) == meant
    with pytest.raises(InvalidRecordError, match=f"^{name}: unknown field; did you mean {meant}"):
        read_columns([{**SEED_RECORD, name: 1}])
    with pytest.raises(InvalidRecordError, match="did you mean"):
        row_problems(pd.DataFrame([{**SEED_RECORD, name: 1}]))  # a batch fails as a whole


@pytest.mark.parametrize("name", ["id", "mpg", "car_id", "label", "model", "price", "x"])
def test_other_columns_are_ignored_and_listed(name):
    assert near_miss(name) is None
    assert check_columns([*SEED_RECORD, name]) == [name]


def test_a_repeated_column_is_an_error_naming_it():
    frame = pd.DataFrame([[*SEED_RECORD.values(), 1.0]], columns=[*SEED_RECORD, "weight"])
    with pytest.raises(InvalidRecordError, match=r"^weight: the column appears more than once"):
        read_columns(frame)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=2),
    max_leaves=4,
)  # fmt: skip


@hypothesis.settings(max_examples=400, deadline=None, derandomize=True)
@hypothesis.given(field=st.sampled_from([*NUMERIC_FIELDS, "origin"]), value=json_values)
def test_any_json_value_in_a_number_field_is_a_number_or_an_error_naming_it(field, value):
    """The validation functions alone, over all of JSON: never another exception, never a
    boolean or text taken as a number."""
    try:
        numbers, _ = read_columns([car(**{field: value})])
    except InvalidRecordError as err:
        assert err.field == field  # noqa: PT017 (a property: either outcome is checked)
        return
    got = numbers[0, NUMBERS.index(field)]
    assert type(value) in (int, float) or value is None
    assert math.isnan(got) if value is None else got == pytest.approx(float(value), nan_ok=True)
    assert not isinstance(value, bool)
    assert np.isfinite(got) or value is None or not math.isfinite(float(value))
