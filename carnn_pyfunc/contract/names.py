"""What a car name tells: its maker (aliases folded) and engine flags, looked up once per name.

:class:`NameEncoder` remembers each short name's encoding in a bounded table, so a served
process's memory does not grow with the distinct names clients send.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np
import pandas as pd

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

# The remembered-names table: at most this many names, each at most this long (longer names are
# encoded every time, not kept). 10,000 x 200 characters is a few MB at worst.
MAX_REMEMBERED = 10_000
MAX_REMEMBERED_LENGTH = 200
_SMALL_BATCH = 64  # up to this many rows, looking every name up beats factorizing
_IDENTITY = np.arange(_SMALL_BATCH)


class NotAName(TypeError):
    """A value that is neither text nor null where a car name belongs."""


def maker_of(name: object, aliases: dict[str, str] = MAKER_ALIASES) -> str | None:
    """The maker: the first word of a car name, lower case, with known aliases folded."""
    if not isinstance(name, str):
        return None
    words = name.strip().lower().split(maxsplit=1)
    if not words:
        return None
    return aliases.get(words[0], words[0])


def is_name(value: object) -> bool:
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


class NameEncoder:
    """Car names -> (maker position, *name flags), each distinct short name computed once."""

    def __init__(self, makers: tuple[str, ...], aliases: dict[str, str]) -> None:
        self.aliases = aliases
        self.maker_index = {maker: i for i, maker in enumerate(makers)}
        self.other = self.maker_index[OTHER_MAKER]
        self.null = (float(self.other), *name_flags(None))
        self.known: dict[Any, tuple[float, ...]] = {None: self.null}
        self._lock = threading.Lock()

    def encode(self, names: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Each row's maker position and name flags; ``names`` None: no name column.

        Raises :class:`NotAName` with the first row whose value is not text or null.
        """
        if names is None:
            no_flags = np.zeros((n_rows, len(NAME_FLAGS)), dtype=np.float32)
            return np.full(n_rows, self.other, dtype=np.int64), no_flags
        try:
            if n_rows > _SMALL_BATCH:
                codes, uniques = pd.factorize(names, use_na_sentinel=True)  # null -> -1
            else:
                codes, uniques = _IDENTITY[:n_rows], names
            encoded = [self.known.get(n) or self._encode(n) for n in uniques]
        except TypeError:  # a list, a number, bytes ...: not a car name
            row, value = next(((i, v) for i, v in enumerate(names) if not is_name(v)), (0, None))
            raise NotAName(row, value) from None
        table = np.array([*encoded, self.null], dtype=np.float32)[codes]  # code -1: null
        return table[:, 0].astype(np.int64), table[:, 1:]

    def _encode(self, name: object) -> tuple[float, ...]:
        if not is_name(name):
            raise TypeError("not a car name")
        maker = self.maker_index.get(maker_of(name, self.aliases), self.other)
        encoded = (float(maker), *name_flags(name))
        if isinstance(name, str) and len(name) <= MAX_REMEMBERED_LENGTH:
            with self._lock:  # concurrent requests: the size check and the store together
                if len(self.known) < MAX_REMEMBERED:
                    self.known[name] = encoded
        return encoded
