"""THE field table: every input field of a car record, once.

Validation (:mod:`.validation`), the MLflow signature (:mod:`carnn_pyfunc.model.signature`), the
README's field table (:func:`markdown_table`, checked by a test) and the scoring service's OpenAPI
document and web form come from this table; nothing else lists the fields.
"""

from __future__ import annotations

from dataclasses import dataclass

ORIGINS = {1: "usa", 2: "europe", 3: "japan"}
ORIGIN_LABELS = {1: "USA", 2: "Europe", 3: "Japan"}


@dataclass(frozen=True)
class Field:
    """One input field: its type, whether it is required, its limits, unit and help text.

    ``kind`` is ``number`` (any real), ``whole`` (a whole number) or ``text``. ``low``/``high``
    bound a number (``low_inclusive``: whether ``low`` itself is allowed): what a real car can
    have, and what keeps the network's answer finite (a weight of 1e-300 pounds would make its
    logarithm, and the answer, blow up). ``expected`` is what an error says a valid value is.
    """

    name: str
    kind: str
    required: bool
    low: float | None
    high: float | None
    low_inclusive: bool
    unit: str
    label: str
    help: str
    expected: str
    example: float | str

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


FIELDS: tuple[Field, ...] = (
    Field(
        name="cylinders", kind="whole", required=True, low=2, high=16, low_inclusive=True,
        unit="cylinders", label="Cylinders",
        help="number of cylinders, a whole number from 2 to 16",
        expected="a whole number of cylinders from 2 to 16", example=8,
    ),
    Field(
        name="displacement", kind="number", required=True, low=10, high=1000, low_inclusive=True,
        unit="cubic inches", label="Displacement",
        help="engine displacement in cubic inches, 10 to 1000",
        expected="cubic inches, from 10 to 1000", example=307.0,
    ),
    Field(
        name="horsepower", kind="number", required=False, low=5, high=2000, low_inclusive=True,
        unit="hp", label="Horsepower",
        help="engine power, 5 to 2000; missing or null: the training median",
        expected="horsepower, from 5 to 2000", example=130.0,
    ),
    Field(
        name="weight", kind="number", required=True, low=200, high=20000, low_inclusive=True,
        unit="pounds", label="Weight",
        help="weight in pounds, 200 to 20000",
        expected="pounds, from 200 to 20000", example=3504.0,
    ),
    Field(
        name="acceleration", kind="number", required=True, low=1, high=100, low_inclusive=True,
        unit="seconds", label="Acceleration (0-60 mph)",
        help="seconds from 0 to 60 mph, 1 to 100",
        expected="seconds from 0 to 60 mph, from 1 to 100", example=12.0,
    ),
    Field(
        name="year", kind="whole", required=True, low=0, high=2099, low_inclusive=True,
        unit="model year", label="Model year",
        help="model year, a whole number: two digits as in the data (`76` for 1976) or four "
        "digits (1900-2099); a year the training data has (1970-1982) also gets its own learned "
        "level, any other only the trend",
        expected="a whole model year: two digits (76 for 1976) or four digits 1900-2099",
        example=75,
    ),
    Field(
        name="origin", kind="whole", required=False, low=1, high=3, low_inclusive=True,
        unit="region", label="Origin",
        help="1 = USA, 2 = Europe, 3 = Japan; missing or null: the maker's origin if the maker "
        "is known, else the training mix",
        expected="1 (USA), 2 (Europe) or 3 (Japan)", example=1,
    ),
    Field(
        name="name", kind="text", required=False, low=None, high=None, low_inclusive=True,
        unit="", label="Car name",
        help="car name (text; a number or a list is an error naming `name`); its first word is "
        "the maker (`chevy`, `vw`, … folded to `chevrolet`, `volkswagen`, …); unknown or "
        "missing: `other`. The word `diesel`, or a Mercedes-style `300d` model, marks a diesel; "
        "a Mazda `RX` model (`mazda rx-7`) a rotary engine",
        expected="text (the car name) or null", example="chevy ltd",
    ),
)  # fmt: skip

BY_NAME = {f.name: f for f in FIELDS}
INPUT_FIELDS = tuple(f.name for f in FIELDS)
REQUIRED_FIELDS = tuple(f.name for f in FIELDS if f.required)
OPTIONAL_FIELDS = tuple(f.name for f in FIELDS if not f.required)
# The scaled numeric fields (origin is one-hot, not scaled).
NUMERIC_FIELDS = tuple(f.name for f in FIELDS if f.numeric and f.name != "origin")


def example_record() -> dict[str, float | str]:
    """One valid record: each field's example."""
    return {f.name: f.example for f in FIELDS}


def markdown_table() -> str:
    """The README's field table."""
    lines = ["| field | required | meaning |", "|---|---|---|"]
    for f in FIELDS:
        lines.append(f"| `{f.name}` | {'yes' if f.required else 'no'} | {f.help} |")
    return "\n".join(lines)
