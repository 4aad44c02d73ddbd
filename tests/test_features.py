"""The feature contract: fitted on training data only, applied identically everywhere."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carnn_pyfunc import data
from carnn_pyfunc.contract import (
    LOG_FIELDS,
    NAME_FLAGS,
    NUMERIC_FIELDS,
    OTHER_MAKER,
    SCALED_FEATURES,
    InvalidRecordError,
    fit_contract,
    load_contract,
    maker_of,
    names,
    save_contract,
)
from carnn_pyfunc.contract.fitting import contract_json

GOOD = {
    "cylinders": 4,
    "displacement": 97.0,
    "horsepower": 88.0,
    "weight": 2130.0,
    "acceleration": 14.5,
    "year": 70,
    "origin": 3,
    "name": "datsun pl510",
}


@pytest.fixture(scope="module")
def splits(auto_mpg):
    return data.split(auto_mpg, test_size=0.2, seed=11)


@pytest.fixture(scope="module")
def contract(splits):
    return fit_contract(splits[0], min_maker_count=10)


def records(**changes) -> pd.DataFrame:
    row = {**GOOD, **changes}
    return pd.DataFrame([{k: v for k, v in row.items() if v is not DROP}])


DROP = object()


@pytest.mark.parametrize(
    ("name", "maker"),
    [
        ("chevy malibu", "chevrolet"),
        ("chevroelt chevelle malibu", "chevrolet"),
        ("vw rabbit", "volkswagen"),
        ("vokswagen rabbit", "volkswagen"),
        ("maxda rx3", "mazda"),
        ("toyouta corona", "toyota"),
        ("mercedes-benz 280s", "mercedes"),
        ("Ford Pinto", "ford"),
        ("  honda civic ", "honda"),
        ("", None),
        (None, None),
    ],
)
def test_maker_folds_misspellings_and_aliases(name, maker):
    assert maker_of(name) == maker


def test_fitted_on_training_split_only(splits, contract):
    train = splits[0]
    assert contract.horsepower_median == train["horsepower"].median()
    numeric = train[list(NUMERIC_FIELDS)].fillna({"horsepower": contract.horsepower_median})
    logged = np.log(numeric[list(LOG_FIELDS)])
    scaled = pd.concat([numeric, logged], axis=1)
    low, high = scaled.min().to_numpy(), scaled.max().to_numpy()
    np.testing.assert_allclose(np.array(contract.scale), 1 / (high - low))  # min-max scaling
    np.testing.assert_allclose(np.array(contract.shift), -low / (high - low))
    assert contract.years == tuple(sorted(train["year"].astype(int).unique()))
    # Every maker in the vocabulary has enough training rows; rare ones are grouped.
    counts = train["name"].map(maker_of).value_counts()
    assert contract.makers[-1] == OTHER_MAKER
    assert all(counts[m] >= 5 for m in contract.makers[:-1])
    assert "triumph" not in contract.makers


def test_training_rows_scale_into_unit_range(splits, contract):
    matrix = contract.transform(splits[0])
    assert matrix.dtype == np.float32
    assert matrix.shape == (len(splits[0]), contract.n_features)
    assert matrix.min() >= 0.0
    assert matrix.max() <= 1.0 + 1e-6
    # Exactly one origin, one maker and one year column set per training row.
    names = contract.feature_names
    for first, last in [("origin_usa", "origin_japan"), ("maker_amc", f"maker_{OTHER_MAKER}"),
                        ("year_70", "year_82")]:  # fmt: skip
        assert (matrix[:, names.index(first) : names.index(last) + 1].sum(axis=1) == 1).all()
    assert names.index("year_82") == len(names) - len(NAME_FLAGS) - 1
    flags = len(NAME_FLAGS)
    assert set(np.unique(matrix[:, -flags:])) == {0.0, 1.0}  # diesel or not, rotary or not


def test_log_features_are_the_scaled_logarithms(contract):
    row = contract.transform(records(displacement=100.0, horsepower=None, weight=2000.0))[0]
    raw = {"displacement": 100.0, "horsepower": contract.horsepower_median, "weight": 2000.0}
    for field_name in LOG_FIELDS:
        j = SCALED_FEATURES.index(f"log_{field_name}")
        expected = np.log(raw[field_name]) * contract.scale[j] + contract.shift[j]
        assert row[j] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("year", "column"), [(70, "year_70"), (1982, "year_82"), (76, "year_76")])
def test_a_training_year_sets_its_own_column(contract, year, column):
    row = contract.transform(records(year=year))[0]
    names = contract.feature_names
    years = row[names.index("year_70") : names.index("year_82") + 1]
    assert years.sum() == 1.0
    assert row[names.index(column)] == 1.0


@pytest.mark.parametrize("year", [69, 83, 1995, 2024])
def test_a_year_outside_training_has_only_its_number(contract, year):
    row = contract.transform(records(year=year))[0]
    names = contract.feature_names
    assert row[names.index("year_70") : names.index("year_82") + 1].sum() == 0.0
    scaled_year = (year % 100 if year < 2000 else year - 1900) * contract.scale[5]
    assert row[names.index("year")] == pytest.approx(scaled_year + contract.shift[5])


def test_feature_names_match_the_matrix(contract):
    names = contract.feature_names
    assert len(names) == contract.n_features
    row = contract.transform(records())[0]
    assert row[names.index("origin_japan")] == 1.0
    assert row[names.index("maker_datsun")] == 1.0
    assert row[names.index("origin_usa")] == 0.0


def test_missing_horsepower_is_imputed_with_training_median(contract):
    imputed = contract.transform(records(horsepower=None))
    median = contract.transform(records(horsepower=contract.horsepower_median))
    np.testing.assert_array_equal(imputed, median)
    zero_hp = contract.shift[2]  # what a horsepower of 0 would scale to
    assert imputed[0, 2] != pytest.approx(zero_hp)


def test_absent_optional_fields_are_handled(contract):
    row = contract.transform(records(horsepower=DROP, origin=DROP, name=DROP))[0]
    names = contract.feature_names
    assert row[names.index(f"maker_{OTHER_MAKER}")] == 1.0
    origin = row[names.index("origin_usa") : names.index("origin_japan") + 1]
    np.testing.assert_allclose(origin, contract.origin_frequencies, rtol=1e-6)


def test_missing_origin_is_taken_from_a_known_maker(contract):
    row = contract.transform(records(origin=None, name="toyota corolla"))[0]
    assert row[contract.feature_names.index("origin_japan")] == 1.0


def test_unknown_maker_is_other(contract):
    row = contract.transform(records(name="tesla model 3"))[0]
    assert row[contract.feature_names.index(f"maker_{OTHER_MAKER}")] == 1.0


@pytest.mark.parametrize(
    ("name", "diesel"),
    [
        ("vw rabbit c (diesel)", 1.0),
        ("peugeot 505s turbo diesel", 1.0),
        ("Mercedes-Benz 240D", 1.0),
        ("mercedes benz 300d", 1.0),
        ("hi 1200d", 0.0),  # a petrol truck: four digits
        ("buick regal sport coupe (turbo)", 0.0),
        ("dieselpunk 9000", 0.0),  # a word, not part of one
        (None, 0.0),
        (DROP, 0.0),
    ],
)
def test_diesel_is_read_from_the_name(contract, name, diesel):
    row = contract.transform(records(name=name))[0]
    assert row[contract.feature_names.index("diesel")] == diesel


@pytest.mark.parametrize(
    ("name", "rotary"),
    [
        ("mazda rx-7 gs", 1.0),
        ("maxda rx3", 1.0),
        ("Mazda RX2 coupe", 1.0),
        ("mazda 626", 0.0),
        ("lexus rx 350", 0.0),  # not a Mazda
        ("mazda glc", 0.0),
        (None, 0.0),
        (DROP, 0.0),
    ],
)
def test_rotary_is_read_from_the_name(contract, name, rotary):
    row = contract.transform(records(name=name))[0]
    assert row[contract.feature_names.index("rotary")] == rotary


def test_the_data_calls_rotary_exactly_its_three_cylinder_cars(contract, auto_mpg):
    rotary = contract.transform(auto_mpg.drop(columns=["mpg"]))[:, -1]
    np.testing.assert_array_equal(rotary == 1.0, auto_mpg["cylinders"].to_numpy() == 3)


def test_name_flags_in_a_large_batch_equal_row_by_row(contract, auto_mpg):
    frame = auto_mpg.drop(columns=["mpg"]).sample(500, replace=True, random_state=2)
    flags = slice(-len(NAME_FLAGS), None)
    batch = contract.transform(frame)[:, flags]
    one_by_one = [contract.transform(frame.iloc[[i]])[0, flags] for i in range(len(frame))]
    np.testing.assert_array_equal(batch, one_by_one)
    counts = batch.sum(axis=0)  # every flag raised by some rows, not by all
    assert (counts > 0).all()
    assert (counts < len(frame)).all()


def test_four_digit_year_equals_two_digit(contract):
    np.testing.assert_array_equal(
        contract.transform(records(year=1976)), contract.transform(records(year=76))
    )


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"weight": DROP}, "weight", "missing required field"),
        ({"weight": None}, "weight", "row 0 is null"),
        ({"weight": 0}, "weight", "from 200 to 20000"),
        ({"weight": -3504}, "weight", "has -3504"),
        ({"weight": float("inf")}, "weight", "has inf"),
        ({"displacement": -1}, "displacement", "cubic inches"),
        ({"horsepower": 0}, "horsepower", "from 5 to 2000"),
        ({"acceleration": float("nan")}, "acceleration", "is null"),
        ({"cylinders": 1}, "cylinders", "from 2 to 16"),
        ({"cylinders": 40}, "cylinders", "from 2 to 16"),
        ({"cylinders": 4.5}, "cylinders", "whole number"),
        ({"year": 150}, "year", "model year"),
        ({"origin": 5}, "origin", r"1 \(USA\), 2 \(Europe\) or 3 \(Japan\)"),
        ({"origin": 0}, "origin", "has 0"),
        ({"weight": "heavy"}, "weight", "'heavy'; expected a number"),
    ],
)
def test_bad_values_are_rejected_naming_field_and_row(contract, changes, field, expected):
    with pytest.raises(InvalidRecordError, match=rf"^{field}: .*{expected}") as info:
        contract.transform(records(**changes))
    assert info.value.field == field


@pytest.mark.parametrize("name", [["chevrolet", "impala"], {"maker": "ford"}, 123, b"ford"])
@pytest.mark.parametrize("n_rows", [1, 200])  # the small-batch path and the factorized one
def test_a_name_that_is_not_text_is_rejected(contract, name, n_rows):
    frame = pd.concat([records()] * n_rows, ignore_index=True)
    frame["name"] = frame["name"].astype(object)
    frame.at[n_rows - 1, "name"] = name
    with pytest.raises(InvalidRecordError, match=rf"^name: row {n_rows - 1} has .*expected text"):
        contract.transform(frame)


def test_error_names_the_first_bad_row_and_the_count(contract):
    frame = pd.concat([records(), records(weight=-1), records(), records(weight=-2)])
    with pytest.raises(InvalidRecordError, match=r"weight: row 1 has -1 \(2 of 4 rows\)"):
        contract.transform(frame.reset_index(drop=True))


def test_empty_input_is_rejected(contract):
    with pytest.raises(InvalidRecordError, match="no records"):
        contract.transform(records().iloc[:0])


def test_rows_are_encoded_independently_of_order_and_batch(splits, contract):
    test = splits[1]
    whole = contract.transform(test)  # > 64 rows: the factorized path
    shuffled = test.sample(frac=1.0, random_state=0)
    np.testing.assert_array_equal(contract.transform(shuffled), whole[shuffled.index])
    for i in (0, 17, len(test) - 1):  # one row at a time: the small-batch path
        np.testing.assert_array_equal(contract.transform(test.iloc[[i]])[0], whole[i])


def test_ints_floats_and_nullable_dtypes_encode_alike(contract):
    plain = contract.transform(records())
    as_float = records().astype({f: "float64" for f in NUMERIC_FIELDS})
    nullable = records().astype({"horsepower": "Float64", "cylinders": "Int64"})
    as_object = records().astype(object)
    for frame in (as_float, nullable, as_object):
        np.testing.assert_array_equal(contract.transform(frame), plain)


def test_contract_round_trips_through_json_and_joblib(tmp_path, splits, contract):
    save_contract(contract, tmp_path / "contract.json")
    loaded = load_contract(tmp_path / "contract.json")
    assert loaded == contract
    np.testing.assert_array_equal(loaded.transform(splits[1]), contract.transform(splits[1]))
    saved = contract_json(loaded)
    assert saved["feature_names"] == list(contract.feature_names)
    assert saved["horsepower_median"] == contract.horsepower_median
    assert set(saved["versions"]) >= {"tensorflow", "keras", "scikit-learn", "pandas", "numpy"}


@pytest.mark.parametrize("dtype", ["string", object])
def test_null_names_in_a_large_batch_are_other_makers_without_flags(contract, auto_mpg, dtype):
    frame = auto_mpg.drop(columns=["mpg"]).head(200).reset_index(drop=True)
    frame["name"] = frame["name"].astype(dtype)
    frame.loc[::3, "name"] = None
    batch = contract.transform(frame)
    for i in (0, 1, 3, 199):
        np.testing.assert_array_equal(batch[i], contract.transform(frame.iloc[[i]])[0])
    nameless = contract.transform(frame.assign(name=None).iloc[[0]])[0]
    np.testing.assert_array_equal(batch[0], nameless)
    assert batch[0, contract.feature_names.index(f"maker_{OTHER_MAKER}")] == 1.0


@pytest.mark.parametrize(("field", "value"), [("year", 76.5), ("year", 1976.25), ("origin", 1.5)])
def test_a_fractional_whole_number_is_rejected_not_truncated(contract, field, value):
    with pytest.raises(InvalidRecordError, match=rf"^{field}: row 0 has {value:g}") as info:
        contract.transform(records(**{field: value}))
    assert info.value.problems[0].field == field
    assert "whole" in info.value.problems[0].expected or field == "origin"


def test_the_remembered_names_stay_bounded_in_count_and_length(splits):
    contract = fit_contract(splits[0], min_maker_count=10)
    known = contract._names.known
    long_names = [f"ford {i} " + "x" * 100_000 for i in range(50)]
    many_names = [f"ford model {i}" for i in range(names.MAX_REMEMBERED + 500)]
    for batch in (long_names, many_names):
        frame = pd.concat([records()] * len(batch), ignore_index=True).assign(name=batch)
        encoded = contract.transform(frame)
        assert (encoded[:, contract.feature_names.index("maker_ford")] == 1.0).all()
    assert len(known) <= names.MAX_REMEMBERED
    assert max(len(k) for k in known if k is not None) <= names.MAX_REMEMBERED_LENGTH


def test_a_problem_lists_rows_and_shows_a_long_value_truncated(contract):
    frame = pd.concat([records(), records(weight="x" * 500), records(weight=-1)], ignore_index=True)
    with pytest.raises(InvalidRecordError) as info:
        contract.transform(frame)
    (problem,) = info.value.problems
    assert (problem.row, problem.field) == (1, "weight")
    assert len(problem.value) <= 40
    assert "x" * 100 not in str(info.value)


def test_the_maker_threshold_has_no_default_of_its_own(splits):
    with pytest.raises(TypeError, match="min_maker_count"):
        fit_contract(splits[0])  # the config's value must be passed: no second default here


def test_json_records_encode_like_a_frame_of_them(contract, splits):
    frame = splits[1].drop(columns=["mpg"]).head(100)
    rows = [
        {k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frame.to_dict("records")
    ]
    np.testing.assert_array_equal(contract.transform(rows), contract.transform(frame))
    del rows[3]["horsepower"]  # an absent optional key is a null
    assert (
        contract.transform(rows[3:4])[0].tolist()
        == contract.transform(frame.iloc[[3]].assign(horsepower=None))[0].tolist()
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{**GOOD, "weight": "heavy"}], "weight: row 0 has 'heavy'; expected a number"),
        ([GOOD, {**GOOD, "cylinders": [4]}], r"cylinders: row 1 has \[4\]; expected a number"),
        ([GOOD, {k: v for k, v in GOOD.items() if k != "year"}], "year: row 1 is null"),
        ([GOOD, "not a record"], "input: row 1 is not a record"),
        ([{**GOOD, "name": {"maker": "ford"}}], "name: row 0 has"),
        ([{**GOOD, "name": ["chevy", "ltd"]}], "name: row 0 has"),
    ],
)
def test_bad_json_records_name_field_and_row(contract, rows, message):
    with pytest.raises(InvalidRecordError, match=f"^{message}"):
        contract.transform(rows)


@pytest.mark.parametrize(
    ("field", "value"),
    [("weight", 5e-324), ("displacement", 1e-300), ("acceleration", 0.5), ("horsepower", 1e-9)],
)
def test_values_that_would_blow_up_the_logarithms_are_rejected(contract, field, value):
    with pytest.raises(InvalidRecordError, match=f"^{field}: row 0"):
        contract.transform(records(**{field: value}))
