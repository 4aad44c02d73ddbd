"""THE feature contract: raw car records -> the network's input matrix.

Training fits it on the training split only (:func:`fit_contract`); serving loads the fitted state
and only applies it (:meth:`FeatureContract.transform`). There is no other copy of this logic.

The transform is written for the serving hot path: one validation pass and one encoding pass on
NumPy arrays with precomputed column positions; no per-request ``get_dummies``.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler

CONTRACT_FORMAT = 2

NUMERIC_FIELDS = ("cylinders", "displacement", "horsepower", "weight", "acceleration", "year")
REQUIRED_FIELDS = ("cylinders", "displacement", "weight", "acceleration", "year")
OPTIONAL_FIELDS = ("horsepower", "origin", "name")
INPUT_FIELDS = (*NUMERIC_FIELDS, "origin", "name")
# Fuel economy is close to a power law of size, power and weight: their logarithms are scaled
# features too (log MPG is then near-linear in them, which the network's linear path can take).
LOG_FIELDS = ("displacement", "horsepower", "weight")
SCALED_FEATURES = (*NUMERIC_FIELDS, *(f"log_{f}" for f in LOG_FIELDS))

ORIGINS = {1: "usa", 2: "europe", 3: "japan"}
OTHER_MAKER = "other"

# Misspellings and aliases of makers found in the UCI car names (see data/README.md).
MAKER_ALIASES = {
    "chevy": "chevrolet",
    "chevroelt": "chevrolet",
    "vw": "volkswagen",
    "vokswagen": "volkswagen",
    "maxda": "mazda",
    "toyouta": "toyota",
    "mercedes-benz": "mercedes",
}

# Engines the numbers do not show, read from the (lower-case) car name, one 0/1 feature each:
# - diesel: runs far more miles per gallon than its size and power suggest: "vw rabbit c
#   (diesel)", "mercedes benz 300d" (a three-digit model number ending in d is Mercedes' naming);
# - rotary: Mazda's rotary-engined RX models ("mazda rx-4", "maxda rx3") run far fewer; the
#   records give them three cylinders, which no piston car in them has.
NAME_FLAGS: dict[str, re.Pattern[str]] = {
    "diesel": re.compile(r"\bdiesel\b|\b\d{3}d\b"),
    "rotary": re.compile(r"^ma[zx]da\s.*\brx-?\d"),
}

# What a real car can have: (lowest, highest, whether the lowest itself is allowed, meaning).
LIMITS: dict[str, tuple[float, float, bool, str]] = {
    "cylinders": (2, 16, True, "a whole number of cylinders from 2 to 16"),
    "displacement": (0, 1000, False, "cubic inches, greater than 0 and at most 1000"),
    "horsepower": (0, 2000, False, "horsepower, greater than 0 and at most 2000"),
    "weight": (0, 20000, False, "pounds, greater than 0 and at most 20000"),
    "acceleration": (0, 100, False, "seconds from 0 to 60 mph, greater than 0 and at most 100"),
    "year": (0, 2099, True, "a model year: two digits (76 for 1976) or four digits 1900-2099"),
    "origin": (1, 3, True, "1 (USA), 2 (Europe) or 3 (Japan)"),
}

# The numbers a record carries: the scaled fields, then the origin code.
_NUMBERS = (*NUMERIC_FIELDS, "origin")
_CYLINDERS, _HORSEPOWER, _YEAR, _ORIGIN = (
    _NUMBERS.index(f) for f in ("cylinders", "horsepower", "year", "origin")
)
_LOGGED = [_NUMBERS.index(f) for f in LOG_FIELDS]
_YEARS = 200  # model years after normalising: 0-99 two-digit, 100-199 for 2000-2099
_NULL_ALLOWED = np.array([f not in REQUIRED_FIELDS for f in _NUMBERS])
_SMALL_BATCH = 64  # up to this many rows, one object conversion beats per-column access
_NAMES_REMEMBERED = 100_000  # distinct car names whose encoding a contract keeps
_IDENTITY = np.arange(_SMALL_BATCH)

PINNED_LIBRARIES = ("mlflow", "tensorflow", "keras", "scikit-learn", "pandas", "numpy", "joblib")


class InvalidRecordError(ValueError):
    """A record cannot be scored; the message names the field, the row and what was expected."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def maker_of(name: object, aliases: dict[str, str] = MAKER_ALIASES) -> str | None:
    """The maker: the first word of a car name, lower case, with known aliases folded."""
    if not isinstance(name, str):
        return None
    words = name.strip().lower().split(maxsplit=1)
    if not words:
        return None
    return aliases.get(words[0], words[0])


def _is_name(value: object) -> bool:
    """Text, or one of the nulls pandas and JSON give for a missing name."""
    return (
        isinstance(value, str)
        or value is None
        or value is pd.NA
        or (isinstance(value, float) and np.isnan(value))
    )


def name_flags(name: object) -> tuple[float, ...]:
    """The :data:`NAME_FLAGS` a car name raises (1.0) or not (0.0), in their order."""
    text = name.lower() if isinstance(name, str) else ""
    return tuple(float(pattern.search(text) is not None) for pattern in NAME_FLAGS.values())


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries the model depends on."""
    return {lib: metadata.version(lib) for lib in PINNED_LIBRARIES}


@dataclass(frozen=True)
class FeatureContract:
    """Fitted state of the feature contract (everything but the scaler is JSON)."""

    horsepower_median: float
    makers: tuple[str, ...]  # known makers; the last one is OTHER_MAKER
    maker_origin: dict[str, int]  # most common origin of each known maker in training
    origin_frequencies: tuple[float, ...]  # share of USA, Europe, Japan in training
    years: tuple[int, ...]  # the (two-digit) model years of the training rows, one feature each
    scaler: MinMaxScaler = field(repr=False, compare=False)  # of SCALED_FEATURES
    maker_aliases: dict[str, str] = field(default_factory=lambda: dict(MAKER_ALIASES))
    limits: dict[str, tuple[float, float, bool, str]] = field(default_factory=lambda: dict(LIMITS))
    versions: dict[str, str] = field(default_factory=library_versions)

    # ----------------------------------------------------------------- layout
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
        maker_index = {maker: i for i, maker in enumerate(self.makers)}
        object.__setattr__(self, "_origin_offset", n_scaled)
        object.__setattr__(self, "_maker_offset", n_scaled + len(ORIGINS))
        object.__setattr__(self, "_year_offset", n_scaled + len(ORIGINS) + len(self.makers))
        year_position = np.full(_YEARS, -1, dtype=np.int64)  # -1: not a training year
        year_position[list(self.years)] = np.arange(len(self.years))
        object.__setattr__(self, "_year_position", year_position)
        object.__setattr__(self, "_maker_index", maker_index)
        object.__setattr__(self, "_other_index", maker_index[OTHER_MAKER])
        # car name -> (maker position, *name flags); None (a null name) encoded once, here
        null_name = (float(self._other_index), *name_flags(None))
        object.__setattr__(self, "_names", {None: null_name})
        object.__setattr__(
            self,
            "_origin_by_maker",
            np.array([self.maker_origin.get(m, 0) for m in self.makers], dtype=np.int64),
        )
        # Inclusive bounds per numeric field; an exclusive lower bound moves up by one ulp.
        low = np.array(
            [
                lo if inclusive else np.nextafter(lo, np.inf)
                for lo, _, inclusive, _ in (self.limits[f] for f in _NUMBERS)
            ]
        )
        high = np.array([self.limits[f][1] for f in _NUMBERS], dtype=np.float64)
        object.__setattr__(self, "_bounds", (low, high))
        object.__setattr__(self, "_scale", np.asarray(self.scaler.scale_, dtype=np.float64))
        object.__setattr__(self, "_shift", np.asarray(self.scaler.min_, dtype=np.float64))
        object.__setattr__(
            self, "_origin_freq", np.asarray(self.origin_frequencies, dtype=np.float32)
        )

    # -------------------------------------------------------------- transform
    def transform(self, records: pd.DataFrame) -> np.ndarray:
        """Validate raw records and encode them as the network's float32 input matrix.

        Raises ``InvalidRecordError`` naming the field, the first bad row and what was expected.
        """
        n_rows = len(records)
        if n_rows == 0:
            raise InvalidRecordError("input", "no records: expected at least one car")
        numbers, names = self._columns(records, n_rows)
        self._check_values(numbers)
        _impute_and_normalise(numbers, self.horsepower_median)

        n_num, n_scaled = len(NUMERIC_FIELDS), len(SCALED_FEATURES)
        out = np.zeros((n_rows, self.n_features), dtype=np.float32)
        out[:, :n_num] = numbers[:, :n_num] * self._scale[:n_num] + self._shift[:n_num]
        logged = np.log(numbers[:, _LOGGED])  # positive: checked above
        out[:, n_num:n_scaled] = logged * self._scale[n_num:] + self._shift[n_num:]

        rows = np.arange(n_rows)
        year = self._year_position[numbers[:, _YEAR].astype(np.int64)]
        seen = year >= 0
        out[rows[seen], self._year_offset + year[seen]] = 1.0
        maker, flags = self._name_features(names, n_rows)
        out[rows, self._maker_offset + maker] = 1.0
        out[:, -len(NAME_FLAGS) :] = flags

        origin = numbers[:, _ORIGIN]
        unknown = np.isnan(origin)
        codes = np.where(unknown, 0, origin).astype(np.int64)
        codes[unknown] = self._origin_by_maker[maker[unknown]]  # a known maker tells the origin
        known = codes > 0
        out[rows[known], self._origin_offset + codes[known] - 1] = 1.0
        if not known.all():  # neither origin nor maker known: the training mix
            out[~known, self._origin_offset : self._maker_offset] = self._origin_freq
        return out

    def _columns(self, records: pd.DataFrame, n_rows: int) -> tuple[np.ndarray, Any]:
        """The numbers as one float64 matrix (NaN where null or absent) and the names."""
        columns = {name: j for j, name in enumerate(records.columns.tolist())}
        for name in REQUIRED_FIELDS:
            if name not in columns:
                raise InvalidRecordError(
                    name, f"missing required field; expected {self.limits[name][3]}"
                )
        if n_rows <= _SMALL_BATCH and all(f in columns for f in _NUMBERS):
            # Few rows: one object conversion of the frame is cheaper than column access.
            block = records.to_numpy(dtype=object)
            with contextlib.suppress(TypeError, ValueError):  # None, pd.NA, text: column path
                numbers = block[:, [columns[f] for f in _NUMBERS]].astype(np.float64)
                return numbers, block[:, columns["name"]] if "name" in columns else None
        # the column's own array: Arrow strings factorize ~3x faster than an object copy
        names = records["name"].array if "name" in columns else None
        numbers = np.empty((n_rows, len(_NUMBERS)), dtype=np.float64)
        for j, name in enumerate(_NUMBERS):
            numbers[:, j] = self._number_column(records, name) if name in columns else np.nan
        return numbers, names

    def _number_column(self, records: pd.DataFrame, name: str) -> np.ndarray:
        column = records[name]
        values = column.to_numpy()
        try:
            if values.dtype.kind in "iuf":  # plain NumPy numbers: no null handling needed
                return values.astype(np.float64, copy=False)
            return column.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            bad = _first_non_numeric(column)
            raise InvalidRecordError(
                name,
                f"row {bad} has {column.iloc[bad]!r}; expected a number: {self.limits[name][3]}",
            ) from None

    def _check_values(self, numbers: np.ndarray) -> None:
        """Required fields present and every present value within what a real car has."""
        low, high = self._bounds
        with np.errstate(invalid="ignore"):
            bad = ~((numbers >= low) & (numbers <= high))  # NaN is bad here ...
            bad &= ~(_NULL_ALLOWED & np.isnan(numbers))  # ... unless the field is optional
            for j in (_CYLINDERS, _ORIGIN):  # whole numbers
                column = numbers[:, j]
                bad[:, j] |= ~np.isnan(column) & (column != np.round(column))
            year = numbers[:, _YEAR]
            bad[:, _YEAR] |= (year > 99) & (year < 1900)
        if not bad.any():
            return
        row, j = divmod(int(np.argmax(bad)), bad.shape[1])  # first bad row, then field
        name, value = _NUMBERS[j], numbers[row, j]
        count = f"{int(bad[:, j].sum())} of {len(numbers)} rows"
        what = "is null" if np.isnan(value) else f"has {value:g}"
        required = "a required field: " if np.isnan(value) else ""
        raise InvalidRecordError(
            name, f"row {row} {what} ({count}); {required}expected {self.limits[name][3]}"
        )

    def _name_features(self, names: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Each row's maker position and name flags, looked up once per distinct name."""
        if names is None:
            no_flags = np.zeros((n_rows, len(NAME_FLAGS)), dtype=np.float32)
            return np.full(n_rows, self._other_index, dtype=np.int64), no_flags
        known = self._names
        try:
            if n_rows > _SMALL_BATCH:
                codes, uniques = pd.factorize(names, use_na_sentinel=True)  # null -> -1
            else:  # a few rows: cheaper to look every name up than to factorize
                codes, uniques = _IDENTITY[:n_rows], names
            encoded = [known.get(n) or self._encode_name(n) for n in uniques]
        except TypeError:  # a list, a number, ...: not a car name
            bad = next(((i, v) for i, v in enumerate(names) if not _is_name(v)), None)
            if bad is None:
                raise
            row, value = bad
            raise InvalidRecordError(
                "name", f"row {row} has {value!r}; expected text (the car name) or null"
            ) from None
        table = np.array(
            [*encoded, known[None]],  # code -1, a null name
            dtype=np.float32,
        )[codes]
        return table[:, 0].astype(np.int64), table[:, 1:]

    def _encode_name(self, name: object) -> tuple[float, ...]:
        """(maker position, *name flags) of one name; remembered for the next call."""
        if not _is_name(name):
            raise TypeError(f"not a car name: {name!r}")
        maker = self._maker_index.get(maker_of(name, self.maker_aliases), self._other_index)
        encoded = (float(maker), *name_flags(name))
        if isinstance(name, str) and len(self._names) < _NAMES_REMEMBERED:
            self._names[name] = encoded  # a dict store: atomic for concurrent requests
        return encoded

    # ---------------------------------------------------------- persistence
    def to_json_dict(self) -> dict[str, Any]:
        """Everything but the scaler, as plain JSON (the scaler goes to joblib)."""
        state = asdict(self)
        state.pop("scaler")
        return {
            "format": CONTRACT_FORMAT,
            "input_fields": list(INPUT_FIELDS),
            "required_fields": list(REQUIRED_FIELDS),
            "optional_fields": list(OPTIONAL_FIELDS),
            "numeric_fields": list(NUMERIC_FIELDS),
            "log_fields": list(LOG_FIELDS),
            "scaled_features": list(SCALED_FEATURES),
            "origins": {str(code): name for code, name in ORIGINS.items()},
            "feature_names": list(self.feature_names),
            **state,
        }

    def save(self, contract_path: str | Path, scaler_path: str | Path) -> None:
        Path(contract_path).write_text(json.dumps(self.to_json_dict(), indent=2) + "\n")
        joblib.dump(self.scaler, scaler_path)

    @classmethod
    def load(cls, contract_path: str | Path, scaler_path: str | Path) -> FeatureContract:
        state = json.loads(Path(contract_path).read_text())
        if state.get("format") != CONTRACT_FORMAT:
            raise ValueError(
                f"{contract_path}: contract format {state.get('format')!r}, "
                f"expected {CONTRACT_FORMAT}"
            )
        contract = cls(
            horsepower_median=float(state["horsepower_median"]),
            makers=tuple(state["makers"]),
            maker_origin={k: int(v) for k, v in state["maker_origin"].items()},
            origin_frequencies=tuple(state["origin_frequencies"]),
            years=tuple(state["years"]),
            scaler=joblib.load(scaler_path),
            maker_aliases=dict(state["maker_aliases"]),
            limits={k: tuple(v) for k, v in state["limits"].items()},
            versions=dict(state["versions"]),
        )
        if list(contract.feature_names) != state["feature_names"]:
            raise ValueError(f"{contract_path}: feature names do not match the contract layout")
        return contract


def fit_contract(train: pd.DataFrame, *, min_maker_count: int = 5) -> FeatureContract:
    """Fit the contract on the training split only.

    Makers with fewer than ``min_maker_count`` training rows are grouped as ``other``;
    missing horsepower is imputed with the training median; a MinMaxScaler is fitted on the
    numeric fields after imputation and the logarithms of LOG_FIELDS; the training rows' model
    years are the one-hot years.
    """
    if min_maker_count < 1:
        raise ValueError("min_maker_count must be at least 1")
    makers = train["name"].map(maker_of)
    counts = makers.value_counts()
    vocabulary = sorted(m for m, c in counts.items() if c >= min_maker_count and m != OTHER_MAKER)
    maker_origin = {m: int(train.loc[makers == m, "origin"].mode().iloc[0]) for m in vocabulary}
    origin_share = train["origin"].value_counts(normalize=True)
    hp_median = float(train["horsepower"].median())
    if math.isnan(hp_median):
        raise ValueError("horsepower: no training row has a value to take the median of")

    numeric = train[list(NUMERIC_FIELDS)].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    _impute_and_normalise(numeric, hp_median)
    scaler = MinMaxScaler().fit(np.concatenate([numeric, np.log(numeric[:, _LOGGED])], axis=1))
    return FeatureContract(
        horsepower_median=hp_median,
        makers=(*vocabulary, OTHER_MAKER),
        maker_origin=maker_origin,
        origin_frequencies=tuple(float(origin_share.get(code, 0.0)) for code in ORIGINS),
        years=tuple(int(y) for y in np.unique(numeric[:, _YEAR])),
        scaler=scaler,
    )


def _impute_and_normalise(numeric: np.ndarray, horsepower_median: float) -> None:
    """In place, on a matrix of NUMERIC_FIELDS: impute horsepower, make years two-digit."""
    hp = numeric[:, _HORSEPOWER]
    hp[np.isnan(hp)] = horsepower_median
    year = numeric[:, _YEAR]
    year[year >= 1900] -= 1900


def _first_non_numeric(column: pd.Series) -> int:
    """Position of the first value that is neither null nor a number."""
    for position, value in enumerate(column):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            return position
    return 0


if __name__ == "__main__":  # the model's pip requirements, one per line (see Makefile)
    print("\n".join(f"{lib}=={version}" for lib, version in library_versions().items()))
