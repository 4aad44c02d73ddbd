"""Extra training cars: labelled served cars, from `train.py --extra-data FILE.parquet`.

The file holds the field columns and ``mpg``, the true figure (`carnn labelled` writes it from
the prediction log and its labels). Every row is validated as served rows are, row by row
(:func:`carnn_pyfunc.contract.rows.row_problems`; ``mpg`` a number in the labels' range): a bad
row is dropped and counted, never the file. A row equal in every field to an earlier extra row
or to any car of the data file is dropped as a duplicate: one served car asked about many times
counts once, and a copy of a held-out car never reaches training (its test score would flatter
the model). What is left joins the training split only; the test split stays the data file's.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from carnn_pyfunc import data
from carnn_pyfunc.config import NO_EXTRA_DATA
from carnn_pyfunc.contract import InvalidRecordError
from carnn_pyfunc.contract.rows import row_problems
from carnn_pyfunc.contract.validation import NUMBERS
from carnn_pyfunc.monitoring.labels import MPG_RANGE

logger = logging.getLogger(__name__)

DATASET_NAME = "labelled-served-cars"
SHA256_TAG = "extra_data_sha256"
SHOWN_PROBLEMS = 5  # invalid rows whose error is logged one by one


class ExtraDataError(ValueError):
    """The extra data file cannot be used at all (unreadable, or a column missing)."""


@dataclass(frozen=True)
class ExtraRows:
    """The extra cars kept (the data file's columns and types) and what was dropped."""

    rows: pd.DataFrame
    read: int
    invalid: int
    duplicates: int
    problems: tuple[str, ...]  # "row 3: weight: has -1; expected ...", the first few

    def counts(self) -> dict[str, int]:
        """Logged as the run's parameters."""
        return {
            "extra_rows_read": self.read,
            "extra_rows_added": len(self.rows),
            "extra_rows_invalid": self.invalid,
            "extra_rows_duplicate": self.duplicates,
        }

    def added_to(self, train: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([train, self.rows], ignore_index=True)


def read_extra(path: str, known: pd.DataFrame) -> ExtraRows | None:
    """The valid, new cars of the Parquet file ``path`` (None for ``none``: no extra data);
    ``known``: the whole data file."""
    if path in NO_EXTRA_DATA:
        return None
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as err:  # pyarrow's errors are one of these
        raise ExtraDataError(f"extra_data: {path} is not a readable Parquet file: {err}") from None
    try:
        return clean_extra(frame, known)
    except ExtraDataError as err:
        raise ExtraDataError(f"extra_data: {path}: {err}") from None


def clean_extra(frame: pd.DataFrame, known: pd.DataFrame) -> ExtraRows:
    """Validate and de-duplicate extra cars (a pure function: frames in, frames out)."""
    if data.TARGET not in frame.columns:
        raise ExtraDataError(f"no {data.TARGET!r} column: the true MPG of each car is needed")
    if frame.empty:  # a window without labels yet: nothing to add
        empty = known.iloc[:0][list(data.COLUMNS)].reset_index(drop=True)
        return ExtraRows(rows=empty, read=0, invalid=0, duplicates=0, problems=())
    try:
        numbers, names, errors = row_problems(frame.drop(columns=[data.TARGET]))
    except InvalidRecordError as err:
        raise ExtraDataError(str(err)) from None
    mpg = _target(frame[data.TARGET])
    low, high = MPG_RANGE
    for row, value in enumerate(mpg):
        if errors[row] is None and not low <= value <= high:  # NaN fails too
            shown = "null" if np.isnan(value) else f"{value:g}"
            errors[row] = f"mpg: has {shown}; expected the true MPG, from {low:g} to {high:g}"
    valid = np.array([e is None for e in errors], dtype=bool)
    rows = pd.DataFrame({data.TARGET: mpg[valid]})
    for j, name in enumerate(NUMBERS):
        rows[name] = numbers[valid, j]
    year = rows["year"].to_numpy()
    rows["year"] = np.where(year >= 1900, year - 1900, year)  # as the data file writes years
    kept = names[valid] if names is not None else [None] * int(valid.sum())
    rows["name"] = pd.array(list(kept), dtype="string")
    rows = rows[list(data.COLUMNS)]
    both = pd.concat([_keys(known), _keys(rows)], ignore_index=True)
    duplicate = both.duplicated(keep="first").to_numpy()[len(known) :]
    problems = tuple(f"row {i}: {e}" for i, e in enumerate(errors) if e is not None)
    return ExtraRows(
        rows=rows[~duplicate].reset_index(drop=True),
        read=len(frame),
        invalid=int((~valid).sum()),
        duplicates=int(duplicate.sum()),
        problems=problems[:SHOWN_PROBLEMS],
    )


def _target(column: pd.Series) -> np.ndarray:
    """The true figures as floats (NaN where missing); a column of text is refused whole."""
    if not (pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)):
        raise ExtraDataError(f"mpg: expected a column of numbers, got {column.dtype}")
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The fields of each car in one form, so equal cars compare equal (None for no name)."""
    keys = frame[list(data.FEATURE_FIELDS)].copy()
    for name in data.FEATURE_FIELDS:
        if name != "name":
            keys[name] = keys[name].astype(np.float64)
    keys["name"] = [v if isinstance(v, str) else None for v in keys["name"]]
    return keys


def log_extra(path: str, extra: ExtraRows) -> None:
    """In the active run: the counts, the file's digest and the kept rows as a dataset input."""
    mlflow.log_params(extra.counts())
    mlflow.set_tags({SHA256_TAG: data.file_sha256(path), "extra_data_file": Path(path).name})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        dataset = mlflow.data.from_pandas(
            extra.rows, source=str(Path(path).resolve()), targets=data.TARGET, name=DATASET_NAME
        )
        mlflow.log_input(dataset, context="training")
    logger.info(
        "extra data %s: %d of %d rows added to training (%d invalid dropped, %d duplicates)",
        path, len(extra.rows), extra.read, extra.invalid, extra.duplicates,
    )  # fmt: skip
    for problem in extra.problems:
        logger.warning("extra data %s: dropped %s", path, problem)
