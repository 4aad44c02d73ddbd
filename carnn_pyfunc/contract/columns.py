"""Which columns a batch has: each field at most once, a near miss of a field name an error, any
other column ignored (clients send ids and the label beside the fields) and listed as such.

``Horsepower``, ``horse_power`` or ``horsepowr`` is almost certainly meant as ``horsepower``:
ignoring it would score the car with the training median instead of the value sent, a silent
wrong answer. A name matches when it equals a field but for case, ``-``, ``_`` and spaces, or is
a short edit away from one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from carnn_pyfunc.contract.fields import INPUT_FIELDS
from carnn_pyfunc.contract.problems import InvalidRecordError, Problem, shown

_KNOWN = frozenset(INPUT_FIELDS)
_LONGEST = 40  # longer names are never near misses (and are not compared)


def _folded(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch not in "-_ \t.")


_FOLDED = {_folded(f): f for f in INPUT_FIELDS}


def near_miss(name: str) -> str | None:
    """The field ``name`` was most likely meant as, or None when it is no near miss."""
    if name in _KNOWN or len(name) > _LONGEST:
        return None
    folded = _folded(name)
    if folded in _FOLDED:
        return _FOLDED[folded]
    allowed = 1 if len(folded) <= 5 else 2
    best = min(INPUT_FIELDS, key=lambda f: _distance(folded, f))
    return best if _distance(folded, best) <= allowed else None


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (both short)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def check_columns(names: Iterable[object], *, ordered: bool = True) -> list[str]:
    """The ignored columns of a batch with these column names (sorted); InvalidRecordError naming
    the column for a duplicate (``ordered``: the names are a table's header, where a repeat is a
    duplicate) or a near miss of a field name."""
    if not ordered and isinstance(names, set | frozenset) and names <= _KNOWN:
        return []  # the common case: only field names
    names = [str(n) for n in names]
    if ordered:
        twice = [name for name, count in Counter(names).items() if count > 1]
        if twice:
            raise InvalidRecordError(
                shown(twice[0])[1:-1],
                "the column appears more than once; expected each field once",
                [Problem(0, shown(twice[0])[1:-1], "each field once")],
            )
    ignored = sorted(set(names) - _KNOWN)
    for name in ignored:
        meant = near_miss(name)
        if meant is not None:
            label = shown(name)[1:-1]
            raise InvalidRecordError(
                label,
                f"unknown field; did you mean {meant}?",
                [Problem(0, label, f"a field name: did you mean {meant}?")],
            )
    return ignored
