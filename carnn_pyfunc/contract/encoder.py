"""The fitted feature contract: raw car records -> the network's float32 input matrix.

Training fits it on the training split only (:func:`carnn_pyfunc.contract.fitting.fit_contract`);
serving loads the fitted state and only applies it (:meth:`FeatureContract.transform`). There is
no other copy of this logic. The transform is written for the serving hot path: one validation
pass and one encoding pass on NumPy arrays with precomputed column positions.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

from carnn_pyfunc.contract import fast
from carnn_pyfunc.contract.fields import NUMERIC_FIELDS, ORIGINS
from carnn_pyfunc.contract.names import MAKER_ALIASES, NAME_FLAGS, NameEncoder, NotAName
from carnn_pyfunc.contract.rows import row_problems
from carnn_pyfunc.contract.validation import (
    NUMBERS,
    InvalidRecordError,
    Problem,
    check_values,
    read_columns,
    shown,
)
from carnn_pyfunc.versions import library_versions

# Fuel economy is close to a power law of size, power and weight: their logarithms are scaled
# features too (log MPG is then near-linear in them, which the network's linear path can take).
LOG_FIELDS = ("displacement", "horsepower", "weight")
SCALED_FEATURES = (*NUMERIC_FIELDS, *(f"log_{f}" for f in LOG_FIELDS))

HORSEPOWER, YEAR, ORIGIN = (NUMBERS.index(f) for f in ("horsepower", "year", "origin"))
LOGGED = [NUMBERS.index(f) for f in LOG_FIELDS]
_YEARS = 200  # model years after normalising: 0-99 two-digit, 100-199 for 2000-2099


def impute_and_normalise(numeric: np.ndarray, horsepower_median: float) -> None:
    """In place, on a matrix whose first columns are NUMERIC_FIELDS: impute horsepower, make
    years two-digit."""
    hp = numeric[:, HORSEPOWER]
    hp[np.isnan(hp)] = horsepower_median
    year = numeric[:, YEAR]
    year[year >= 1900] -= 1900


@dataclass(frozen=True)
class FeatureContract:
    """Fitted state of the feature contract, all of it plain JSON (no pickle to load)."""

    horsepower_median: float
    makers: tuple[str, ...]  # known makers; the last one is OTHER_MAKER
    maker_origin: dict[str, int]  # most common origin of each known maker in training
    origin_frequencies: tuple[float, ...]  # share of USA, Europe, Japan in training
    years: tuple[int, ...]  # the (two-digit) model years of the training rows, one feature each
    # the fitted min-max scaler of SCALED_FEATURES: scaled = value * scale + shift
    scale: tuple[float, ...] = field(repr=False)
    shift: tuple[float, ...] = field(repr=False)
    maker_aliases: dict[str, str] = field(default_factory=lambda: dict(MAKER_ALIASES))
    versions: dict[str, str] = field(default_factory=library_versions)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Scaled numbers, then one-hot origin, maker and model year, then the name flags.

        The year is both a number (its trend) and one-hot (each year's own level: the fleet did
        not improve smoothly); a year outside the training years has only the number.
        """
        return (
            *SCALED_FEATURES,
            *(f"origin_{name}" for name in ORIGINS.values()),
            *(f"maker_{m}" for m in self.makers),
            *(f"year_{y}" for y in self.years),
            *NAME_FLAGS,
        )

    @property
    def n_features(self) -> int:
        return (
            len(SCALED_FEATURES)
            + len(ORIGINS)
            + len(self.makers)
            + len(self.years)
            + len(NAME_FLAGS)
        )

    def __post_init__(self) -> None:
        # Precomputed positions and arrays for the hot path (frozen dataclass: set via object).
        n_scaled = len(SCALED_FEATURES)
        year_position = np.full(_YEARS, -1, dtype=np.int64)  # -1: not a training year
        year_position[list(self.years)] = np.arange(len(self.years))
        origin_by_maker = [self.maker_origin.get(m, 0) for m in self.makers]
        hot = {
            "_origin_offset": n_scaled,
            "_maker_offset": n_scaled + len(ORIGINS),
            "_year_offset": n_scaled + len(ORIGINS) + len(self.makers),
            "_year_position": year_position,
            "_names": NameEncoder(self.makers, self.maker_aliases),
            "_origin_by_maker": np.array(origin_by_maker, dtype=np.int64),
            "_scale": np.asarray(self.scale, dtype=np.float64),
            "_shift": np.asarray(self.shift, dtype=np.float64),
            "_origin_freq": np.asarray(self.origin_frequencies, dtype=np.float32),
        }
        # the same numbers as Python scalars, for the few-records path (contract.fast)
        hot |= {
            "_n_features": self.n_features,
            "_scale_list": hot["_scale"].tolist(),
            "_shift_list": hot["_shift"].tolist(),
            "_year_list": year_position.tolist(),
            "_origin_freq_list": hot["_origin_freq"].tolist(),
        }
        for name, value in hot.items():
            object.__setattr__(self, name, value)

    def transform(self, records) -> np.ndarray:
        """Validate raw records (a DataFrame) and encode them as the network's input matrix.

        Raises ``InvalidRecordError`` naming the field, the first bad row and what was expected.
        """
        if type(records) is list and 0 < len(records) <= fast.MAX_ROWS:
            features = fast.transform_few(self, records)  # None: the vectorised path decides
            if features is not None:
                return features
        return self.encode(*self.validated(records))

    def validated(self, records) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw records validated, as :meth:`encode` takes them: (numbers, maker positions, name
        flags); ``InvalidRecordError`` naming the field, the first bad row and what was
        expected. Encoding block by block keeps the input matrix small."""
        numbers, names = read_columns(records)
        check_values(numbers)
        maker, flags = self._encode_names(names, len(numbers))
        return numbers, maker, flags

    def transform_rows(self, records) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """Row by row: (the input matrix of the valid rows, which rows are valid, one error line
        or None per row). One bad row never fails the others; a missing required column raises."""
        parts, valid, errors = self.validated_rows(records)
        return self.encode(*parts), valid, errors

    def validated_rows(self, records) -> tuple[tuple, np.ndarray, list[str | None]]:
        """:meth:`transform_rows` with the valid rows as :meth:`validated` gives them."""
        numbers, names, errors = row_problems(records)
        valid = np.fromiter(map(operator.is_, errors, repeat(None)), bool, len(errors))
        kept = names[valid] if names is not None else None
        maker, flags = self._encode_names(kept, int(valid.sum()))
        return (numbers[valid], maker, flags), valid, errors

    def _encode_names(self, names: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            return self._names.encode(names, n_rows)
        except NotAName as err:
            row, value = err.args
            expected = "text (the car name) or null"
            raise InvalidRecordError(
                "name",
                f"row {row} has {shown(value)}; expected {expected}",
                [Problem(row, "name", expected, shown(value))],
            ) from None

    def encode(self, numbers: np.ndarray, maker: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """The input matrix of validated numbers (modified in place) and encoded names."""
        impute_and_normalise(numbers, self.horsepower_median)
        n_rows = len(numbers)
        n_num, n_scaled = len(NUMERIC_FIELDS), len(SCALED_FEATURES)
        out = np.zeros((n_rows, self.n_features), dtype=np.float32)
        out[:, :n_num] = numbers[:, :n_num] * self._scale[:n_num] + self._shift[:n_num]
        logged = np.log(numbers[:, LOGGED])  # positive: validated
        out[:, n_num:n_scaled] = logged * self._scale[n_num:] + self._shift[n_num:]

        rows = np.arange(n_rows)
        year = self._year_position[numbers[:, YEAR].astype(np.int64)]
        seen = year >= 0
        out[rows[seen], self._year_offset + year[seen]] = 1.0
        out[rows, self._maker_offset + maker] = 1.0
        out[:, -len(NAME_FLAGS) :] = flags

        origin = numbers[:, ORIGIN]
        unknown = np.isnan(origin)
        codes = np.where(unknown, 0, origin).astype(np.int64)
        codes[unknown] = self._origin_by_maker[maker[unknown]]  # a known maker tells the origin
        known = codes > 0
        out[rows[known], self._origin_offset + codes[known] - 1] = 1.0
        if not known.all():  # neither origin nor maker known: the training mix
            out[~known, self._origin_offset : self._maker_offset] = self._origin_freq
        return out
