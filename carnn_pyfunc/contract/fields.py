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
    bound a number (``low_inclusive``: whether ``low`` itself is allowed); ``expected`` is what an
    error message says a valid value is.
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


# fmt: off  (one field per block reads as a table)
FIELDS: tuple[Field, ...] = (
    Field(
        "cylinders",
        "whole",
        True,
        2,
        16,
        True,
        "cylinders",
        "Cylinders",
        "number of cylinders, a whole number from 2 to 16",
        "a whole number of cylinders from 2 to 16",
        8,
    ),
    Field(
        "displacement",
        "number",
        True,
        0,
        1000,
        False,
        "cubic inches",
        "Displacement",
        "engine displacement in cubic inches, > 0 and ≤ 1000",
        "cubic inches, greater than 0 and at most 1000",
        307.0,
    ),
    Field(
        "horsepower",
        "number",
        False,
        0,
        2000,
        False,
        "hp",
        "Horsepower",
        "engine power, > 0 and ≤ 2000; missing or null: the training median",
        "horsepower, greater than 0 and at most 2000",
        130.0,
    ),
    Field(
        "weight",
        "number",
        True,
        0,
        20000,
        False,
        "pounds",
        "Weight",
        "weight in pounds, > 0 and ≤ 20000",
        "pounds, greater than 0 and at most 20000",
        3504.0,
    ),
    Field(
        "acceleration",
        "number",
        True,
        0,
        100,
        False,
        "seconds",
        "Acceleration (0-60 mph)",
        "seconds from 0 to 60 mph, > 0 and ≤ 100",
        "seconds from 0 to 60 mph, greater than 0 and at most 100",
        12.0,
    ),
    Field(
        "year",
        "whole",
        True,
        0,
        2099,
        True,
        "model year",
        "Model year",
        "model year, a whole number: two digits as in the data (`76` for 1976) or four digits "
        "(1900-2099); a year the training data has (1970-1982) also gets its own learned level, "
        "any other only the trend",
        "a whole model year: two digits (76 for 1976) or four digits 1900-2099",
        75,
    ),
    Field(
        "origin",
        "whole",
        False,
        1,
        3,
        True,
        "region",
        "Origin",
        "1 = USA, 2 = Europe, 3 = Japan; missing or null: the maker's origin if the maker is "
        "known, else the training mix",
        "1 (USA), 2 (Europe) or 3 (Japan)",
        1,
    ),
    Field(
        "name",
        "text",
        False,
        None,
        None,
        True,
        "",
        "Car name",
        "car name (text; a number or a list is an error naming `name`); its first word is the "
        "maker (`chevy`, `vw`, … folded to `chevrolet`, `volkswagen`, …); unknown or missing: "
        "`other`. The word `diesel`, or a Mercedes-style `300d` model, marks a diesel; a Mazda "
        "`RX` model (`mazda rx-7`) a rotary engine",
        "text (the car name) or null",
        "chevy ltd",
    ),
)
# fmt: on

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
