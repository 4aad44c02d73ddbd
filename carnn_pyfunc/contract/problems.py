"""What is wrong with records: the error type every check raises, and how a value is shown."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Problem:
    """One bad value: where it is and what was expected (``value`` is shown truncated)."""

    row: int
    field: str
    expected: str
    value: str | None = None  # None: the value is missing or null


class InvalidRecordError(ValueError):
    """Records that cannot be scored; the message names the field, the row and what was expected.

    ``problems`` lists up to a few bad values (row, field, expected); ``field`` is the first one's.
    """

    def __init__(self, field_name: str, message: str, problems: list[Problem] | None = None):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.problems = problems or []


def shown(value: object, limit: int = 40) -> str:
    """A client's value as an error may show it: its repr, truncated."""
    try:
        text = repr(value.item() if isinstance(value, np.generic) else value)
    except ValueError:  # an integer longer than Python will print
        text = "an integer of thousands of digits"
    return text if len(text) <= limit else text[: limit - 3] + "..."
