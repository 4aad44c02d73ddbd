"""Read the raw UCI Auto MPG file, and split it deterministically.

The file has one car per line: eight whitespace-separated fields, a tab and the car name in
double quotes. ``?`` marks a missing horsepower.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "mpg"
FEATURE_FIELDS = (
    "cylinders",
    "displacement",
    "horsepower",
    "weight",
    "acceleration",
    "year",
    "origin",
    "name",
)
COLUMNS = (TARGET, *FEATURE_FIELDS)
SHA256_TAG = "data_sha256"  # run tag: the data file's digest (promotion recomputes splits from it)

# The project's own copy of the data, next to the package.
DEFAULT_DATA_PATH = Path(__file__).resolve().parent.parent / "data" / "auto-mpg.data"


class DataFormatError(ValueError):
    """The data file does not have the UCI Auto MPG layout."""


def load_auto_mpg(path: str | Path = DEFAULT_DATA_PATH) -> pd.DataFrame:
    """Read the raw file into a frame with the columns in ``COLUMNS``.

    Numbers are floats (``horsepower`` is NaN where the file says ``?``), ``name`` is a string.
    Raises ``DataFormatError`` naming the line when a row does not have the expected layout.
    """
    rows: list[list[object]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            numbers_part, sep, name_part = line.rstrip("\n").partition("\t")
            fields = numbers_part.split()
            if not sep or len(fields) != 8:
                raise DataFormatError(
                    f"{path}:{number}: expected 8 numeric fields, a tab and a quoted car name, "
                    f"got {line.strip()!r}"
                )
            try:
                values = [float("nan") if f == "?" else float(f) for f in fields]
            except ValueError as err:
                raise DataFormatError(f"{path}:{number}: {err}") from err
            rows.append([*values, name_part.strip().strip('"')])
    if not rows:
        raise DataFormatError(f"{path}: no rows")
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["name"] = frame["name"].astype("string")
    return frame


def split_positions(n_rows: int, *, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of (train, test): the split is a function of the row count and seed only,
    so a model's held-out rows can be recomputed from the data file and its logged parameters."""
    from sklearn.model_selection import train_test_split  # training and promotion only

    train, test = train_test_split(
        np.arange(n_rows), test_size=test_size, random_state=seed, shuffle=True
    )
    return train, test


def split(frame: pd.DataFrame, *, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into (train, test); the same seed gives the same split."""
    train, test = split_positions(len(frame), test_size=test_size, seed=seed)
    return frame.iloc[train].reset_index(drop=True), frame.iloc[test].reset_index(drop=True)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()
