"""One model, one answer: a few JSON records take the scalar fast path (contract.fast), any
other batch the vectorised one; both give the same input matrix to the last float32 bit, and a
record the fast path does not take is answered (or refused) by the vectorised path alone."""

from __future__ import annotations

import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st

from carnn_pyfunc import data
from carnn_pyfunc.contract import InvalidRecordError, fast, fit_contract
from carnn_pyfunc.contract.validation import check_values, read_columns


@pytest.fixture(scope="module")
def contract(auto_mpg):
    train, _ = data.split(auto_mpg, test_size=0.2, seed=0)
    return fit_contract(train, min_maker_count=10)


def vectorised(contract, records) -> np.ndarray:
    numbers, names = read_columns(records)
    check_values(numbers)
    maker, flags = contract._encode_names(names, len(numbers))
    return contract.encode(numbers, maker, flags)


number = st.one_of(st.integers(-5, 3000), st.floats(-10, 25000, allow_nan=False), st.none())
record = st.fixed_dictionaries(
    {
        "cylinders": st.sampled_from([2, 3, 4, 5, 6, 8, 12, 16]) | number,
        "displacement": st.floats(10, 1000) | number,
        "weight": st.floats(200, 20000) | st.integers(200, 20000) | number,
        "acceleration": st.floats(1, 100) | number,
        "year": st.sampled_from([0, 70, 76, 82, 99, 1900, 1976, 2024, 2099]) | number,
    },
    optional={
        "horsepower": st.floats(5, 2000) | st.none() | number,
        "origin": st.sampled_from([1, 2, 3, None]) | number,
        "name": st.sampled_from(["chevy ltd", "vw rabbit", "mazda rx-7", "mercedes 300d",
                                 "ford pinto diesel", "zz top car", None]) | st.text(max_size=8),
    },
)  # fmt: skip


@hypothesis.settings(max_examples=1500, deadline=None, derandomize=True)
@hypothesis.given(records=st.lists(record, min_size=1, max_size=fast.MAX_ROWS))
def test_the_fast_path_equals_the_vectorised_path_bit_for_bit(contract, records):
    try:
        expected = vectorised(contract, [dict(r) for r in records])
    except InvalidRecordError:
        assert fast.transform_few(contract, [dict(r) for r in records]) is None  # not taken
        with pytest.raises(InvalidRecordError):
            contract.transform([dict(r) for r in records])
        return
    got = fast.transform_few(contract, [dict(r) for r in records])
    assert got is not None  # every valid batch of plain records takes the fast path
    assert got.dtype == expected.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))
    assert np.array_equal(contract.transform([dict(r) for r in records]), expected)


@pytest.mark.parametrize(
    "changes", [{"year": True}, {"weight": "3504"}, {"Weight": 1}, {"id": 7}, {"weight": 10**400}]
)
def test_what_the_fast_path_does_not_take_goes_the_vectorised_way(contract, changes):
    car = {"cylinders": 8, "displacement": 307, "weight": 3504, "acceleration": 12, "year": 75}
    assert fast.transform_few(contract, [{**car, **changes}]) is None
