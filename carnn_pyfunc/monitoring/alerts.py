"""When a window is an alert: the thresholds (each a `carnn monitor` option with its default)
and the reasons, in words a person on call can act on. Pure: tables and figures in, reasons out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

CORRECTIONS = ("holm", "bh")  # see :mod:`.drift`


def _option(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Thresholds:
    """What makes an alert. Defaults, and why:

    - a field drifts at a corrected p-value below ``alpha`` (0.05) with an effect of at least
      ``min_shift`` (0.25) reference standard deviations (numbers, Wasserstein) or ``min_js``
      (0.3) Jensen-Shannon distance (categories): in-distribution windows of 2,000 rows drawn
      from 80 held-out cars show shifts up to about 0.2 sd and 0.25 (the maker's many small
      categories) from sampling alone (bench/monitor_bench.py);
    - alert when at least ``drift_share`` (0.5) of the fields drift;
    - alert when more than ``max_outside`` (0.1) of a field's inputs lie outside the training
      range: the model is extrapolating (in-distribution windows show at most a few percent);
    - drift and range are judged on windows of at least ``min_rows`` (30) rows;
    - alert when the live MAE exceeds ``mae_ratio`` (1.25) times the test MAE, or the interval
      coverage is below ``min_coverage`` (0.8), on at least ``min_labels`` (30) labelled rows.
    """

    alpha: float = _option(0.05, "a field's corrected p-value below this is significant")
    correction: str = _option(
        "holm", "multiple-testing correction across fields: holm (family-wise) or bh (FDR)"
    )
    min_shift: float = _option(
        0.25, "a number field drifts only if also shifted this many reference sd (Wasserstein)"
    )
    min_js: float = _option(
        0.3, "a category field drifts only if also this far in Jensen-Shannon distance (0-1)"
    )
    drift_share: float = _option(0.5, "alert when at least this share of the fields drift")
    max_outside: float = _option(
        0.1, "alert when more than this share of a field's inputs is outside the training range"
    )
    min_rows: int = _option(30, "drift and range are judged on windows of at least this many rows")
    mae_ratio: float = _option(1.25, "alert when the live MAE exceeds this times the test MAE")
    min_coverage: float = _option(0.8, "alert when the live interval coverage is below this")
    min_labels: int = _option(30, "accuracy is judged on at least this many labelled rows")

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction: {self.correction!r} is not one of {CORRECTIONS}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "correction" and (not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{f.name}: {value!r} is not a number >= 0")


def judge_fields(table: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """The drift table with a ``drifting`` column (False on windows below ``min_rows``)."""
    from carnn_pyfunc.monitoring.drift import drifting  # scipy: not for `carnn --help`

    t = thresholds
    calls = drifting(table, alpha=t.alpha, min_shift=t.min_shift, min_js=t.min_js)
    return table.assign(drifting=calls & (table["rows"] >= t.min_rows))


def reasons(table: pd.DataFrame, live: dict[str, float], test: dict, t: Thresholds) -> list[str]:
    """Why the window is an alert; empty when all is well. ``table`` has been judged."""
    found = []
    judged = table[table["rows"] >= t.min_rows]
    drifted = judged.index[judged["drifting"]].tolist()
    if len(judged) and len(drifted) >= t.drift_share * len(table):
        found.append(
            f"{len(drifted)} of {len(table)} fields drift (alert at {t.drift_share:.0%}): "
            + ", ".join(_drift_words(table.loc[name]) for name in drifted)
        )
    outside = judged[judged["outside"] > t.max_outside]
    for name, row in outside.iterrows():
        found.append(
            f"{name}: {row['outside']:.0%} of {int(row['rows'])} inputs outside the training "
            f"range (alert above {t.max_outside:.0%})"
            + (f"; {_drift_words(row)}" if row["drifting"] else "")
        )
    labels = live.get("labels", 0.0)
    test_mae = test.get("test_mae")
    if labels >= t.min_labels and test_mae and live["mae"] > t.mae_ratio * test_mae:
        found.append(
            f"live MAE {live['mae']:.2f} mpg (95% CI {live['mae_low']:.2f}-{live['mae_high']:.2f})"
            f" on {int(labels)} labels is {live['mae'] / test_mae:.2f}x the test MAE "
            f"{test_mae:.2f} (alert above {t.mae_ratio:.2f}x)"
        )
    covered = live.get("interval_labels", 0.0)
    coverage = live.get("coverage", math.nan)
    if covered >= t.min_labels and coverage < t.min_coverage:
        found.append(
            f"interval coverage {coverage:.0%} (95% CI {live['coverage_low']:.0%}-"
            f"{live['coverage_high']:.0%}) on {int(covered)} labels, below {t.min_coverage:.0%}"
            f" (test: {test.get('test_interval_coverage', math.nan):.0%})"
        )
    return found


def _drift_words(row: pd.Series) -> str:
    """A drifting field in a few words: its test's corrected p and its effect."""
    effect = f"shift {row['shift']:.2f} sd" if row["kind"] == "number" else f"JS {row['js']:.2f}"
    return f"{row.name} (p={row['p_adjusted']:.1e}, {effect})"
