"""The input's columns against the field table: can this file be scored at all, and which of its
columns go to the model.

Only the table's names, kinds and ``expected`` texts are read here; every VALUE is checked by the
model itself (``errors="column"``), so a bad value costs its row, never the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from carnn_pyfunc.batch.outcome import ERROR_COLUMN, OUTPUT_COLUMN, BatchInputError
from carnn_pyfunc.contract.fields import BY_NAME, FIELDS, REQUIRED_FIELDS

NUMBER, TEXT, NULL = "number", "text", "null"  # column kinds, as the engines map their types
_SHOWN = 12  # columns listed in an error


def field_columns(names: Sequence[str], source: str) -> list[str]:
    """The field table's columns present in ``names``, in the table's order.

    BatchInputError, naming the column, when a required field is missing, a column appears twice
    or the input already has a column the output adds (``mpg``, ``error``: it would be lost).
    """
    twice = sorted(name for name, count in Counter(names).items() if count > 1)
    if twice:
        raise BatchInputError(f"{twice[0]}: the column appears more than once in {source}")
    missing = [name for name in REQUIRED_FIELDS if name not in names]
    if missing:
        field = BY_NAME[missing[0]]
        raise BatchInputError(
            f"{field.name}: missing required field; expected {field.expected} "
            f"({source} has {_listed(names)})"
        )
    for added in (OUTPUT_COLUMN, ERROR_COLUMN):
        if added in names:
            raise BatchInputError(
                f"{added}: {source} already has this column, which the output adds "
                "(the model's answer); rename or drop it first"
            )
    return [f.name for f in FIELDS if f.name in names]


def check_kinds(kinds: Mapping[str, str], source: str) -> None:
    """For an engine that passes columns through MLflow's schema enforcement (Spark): each field
    column must hold the field's kind (``number`` or ``text``) or only nulls; ``kinds`` maps the
    field columns to a kind or, for any other type, the type's name."""
    for name, kind in kinds.items():
        field = BY_NAME[name]
        wanted = NUMBER if field.numeric else TEXT
        if kind not in (wanted, NULL):
            raise BatchInputError(
                f"{name}: the column holds {kind} in {source}; expected "
                f"{'numbers' if wanted == NUMBER else 'text'} ({field.expected})"
            )


def _listed(names: Sequence[str]) -> str:
    if not names:
        return "no columns"
    shown = ", ".join(names[:_SHOWN])
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return f"the columns {shown}{more}"
