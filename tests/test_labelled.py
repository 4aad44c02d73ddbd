"""Labelled windows without models: the labelled served cars of a log (synthetic logs written
with pyarrow in the log's schema), `carnn labelled`, and `--extra-data` validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from carnn_pyfunc import cli, data
from carnn_pyfunc.contract.fields import INPUT_FIELDS
from carnn_pyfunc.monitoring.labelled import labelled_rows, parse_time
from carnn_pyfunc.training.extra import ExtraDataError, clean_extra, read_extra
from tests.synthetic_log import DAY, write_labels, write_predictions


@pytest.fixture(scope="module")
def cars() -> pd.DataFrame:
    return data.load_auto_mpg()


@pytest.fixture
def log(tmp_path, cars):
    """A log root: a request of 5 cars (row 1 failed) answered by primary and shadow, labelled
    (row 4 relabelled later); a request 3 days earlier; a label for a request never logged."""
    root = tmp_path / "log"
    fields = cars.drop(columns=[data.TARGET])
    failed = {1: "weight: has -1"}
    first = write_predictions(root, fields.head(5), errors=failed)
    write_predictions(root, fields.head(5), request_id=first, role="shadow", version="2",
                      errors=failed)  # fmt: skip
    write_labels(root, first, [10, 11, 12, 13, 14])
    write_labels(root, first, [40.0], rows=[4], when=DAY + timedelta(hours=2))  # a correction
    early = write_predictions(root, fields.iloc[10:13], when=DAY - timedelta(days=3))
    write_labels(root, early, [21, 22, 23], when=DAY - timedelta(days=3))
    write_labels(root, "never-logged", [30, 31])
    unlabelled = write_predictions(root, fields.iloc[20:22])
    partial = root / "predictions" / "date=2026-12-01" / "model_version=1" / "p.parquet.partial"
    partial.write_text("a file still being written")
    return root, first, early, unlabelled


def test_labelled_rows_are_the_window_cars_once_each_with_the_latest_true_mpg(log, cars):
    root, *_ = log
    rows = labelled_rows(str(root), since=parse_time("2026-11-30"))
    assert list(rows.columns) == [*INPUT_FIELDS, "mpg"]
    # the failed row, the unlabelled request and the label nobody logged are left out; the
    # shadow's copy of each row counts once; row 4's corrected label wins
    assert rows["mpg"].tolist() == [10, 12, 13, 40]
    assert rows["name"].tolist() == cars["name"].iloc[[0, 2, 3, 4]].tolist()
    np.testing.assert_array_equal(rows["weight"], cars["weight"].iloc[[0, 2, 3, 4]])
    before = labelled_rows(f"file://{root}", until=datetime(2026, 11, 30, tzinfo=UTC))
    assert before["mpg"].tolist() == [21, 22, 23]
    assert len(labelled_rows(str(root))) == 7
    assert labelled_rows(str(root), since=parse_time("2026-12-02")).empty


def test_a_missing_log_is_an_error_not_an_empty_window(tmp_path):
    with pytest.raises(FileNotFoundError, match="no prediction log here"):
        labelled_rows(str(tmp_path / "nothing"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T08:00+02:00", datetime(2026, 12, 1, 6, tzinfo=UTC)),
        ("7d", DAY - timedelta(days=7)),
        ("12h", DAY - timedelta(hours=12)),
        ("30m", DAY - timedelta(minutes=30)),
    ],
)
def test_window_bounds_are_iso_times_or_ages(text, expected):
    assert parse_time(text, now=DAY) == expected


def test_a_bad_bound_says_what_was_expected(log, capsys):
    with pytest.raises(ValueError, match="an ISO date or time"):
        parse_time("last tuesday")
    root, *_ = log
    assert cli.main(["labelled", "--log", str(root), "--out", "x.parquet", "--since", "x"]) == 2
    assert "an ISO date or time" in capsys.readouterr().err


def test_carnn_labelled_writes_what_extra_data_reads(log, tmp_path, cars, capsys):
    root, *_ = log
    out = tmp_path / "export" / "labelled.parquet"
    assert cli.main(["labelled", "--log", str(root), "--out", str(out)]) == 0
    assert "wrote 7 labelled served cars" in capsys.readouterr().out
    written = pd.read_parquet(out)
    pd.testing.assert_frame_equal(written, labelled_rows(str(root)))
    extra = read_extra(str(out), cars)
    assert extra.invalid == 0
    assert extra.duplicates == 7  # these cars are all in the data file already
    assert cli.main(["labelled", "--log", str(tmp_path / "no-log"), "--out", str(out)]) == 1
    assert "no prediction log here" in capsys.readouterr().err


def new_cars(cars: pd.DataFrame, n: int) -> pd.DataFrame:
    """Cars not in the data file: real ones 7 pounds heavier, renamed."""
    new = cars.iloc[:n].copy()
    new["weight"] += 7
    new["name"] = pd.array([f"labelled car {i}" for i in range(n)], dtype="string")
    return new.reset_index(drop=True)


def test_extra_rows_are_validated_row_by_row_and_deduplicated(cars):
    new = new_cars(cars, 6)
    bad = new_cars(cars, 4)
    bad.loc[0, "weight"] = -1.0
    bad.loc[1, "cylinders"] = 2.5
    bad.loc[2, "mpg"] = np.nan
    bad.loc[3, "mpg"] = 500.0
    bad["name"] = [f"bad car {i}" for i in range(4)]
    again = new.iloc[[0, 3]]  # served twice
    known = cars.iloc[[5, 300]]  # a training car and a car some split holds out
    frame = pd.concat([new, bad, again, known], ignore_index=True)
    frame["request_id"] = "r"  # other columns are ignored
    extra = clean_extra(frame, cars)
    assert (extra.read, len(extra.rows), extra.invalid, extra.duplicates) == (14, 6, 4, 4)
    assert extra.problems[0].startswith("row 6: weight: has -1")
    assert extra.problems[2] == "row 8: mpg: has null; expected the true MPG, from 1 to 200"
    assert list(extra.rows.columns) == list(data.COLUMNS)
    assert extra.rows.dtypes.to_dict() == cars.dtypes.to_dict()
    pd.testing.assert_frame_equal(extra.rows, new[list(data.COLUMNS)])
    assert extra.counts() == {
        "extra_rows_read": 14,
        "extra_rows_added": 6,
        "extra_rows_invalid": 4,
        "extra_rows_duplicate": 4,
    }


def test_four_digit_years_and_missing_horsepower_compare_as_the_data_file_writes_them(cars):
    missing = cars[cars["horsepower"].isna()].head(1).copy()
    missing["year"] += 1900
    extra = clean_extra(missing, cars)
    assert (len(extra.rows), extra.duplicates) == (0, 1)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"weight": [3000.0]}), "no 'mpg' column"),
        (pd.DataFrame({"mpg": [20.0], "weight": [3000.0]}), "cylinders"),
        ("text mpg", "mpg: expected a column of numbers"),
    ],
)
def test_an_unusable_extra_file_is_refused_naming_the_problem(cars, frame, message):
    if isinstance(frame, str):  # built from the data: every field, mpg as text
        frame = cars.head(2).assign(mpg=["20", "21"])
    with pytest.raises(ExtraDataError, match=message):
        clean_extra(frame, cars)


def test_an_empty_extra_file_adds_nothing(cars):
    empty = pd.DataFrame(columns=[*INPUT_FIELDS, "mpg"])
    extra = clean_extra(empty, cars)
    assert (extra.read, len(extra.rows)) == (0, 0)
    assert list(extra.rows.columns) == list(data.COLUMNS)
