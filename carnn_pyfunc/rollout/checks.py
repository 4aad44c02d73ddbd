"""The rules of one rollout step, pure: evidence in, a verdict and its reasons out.

A step passes when the candidate (the canary) answered enough requests and: its share of 5xx
answers is at most ``max_5xx_rate``; its p99 latency is at most ``max_p99_ms``; the share of
rows where it and production disagree by more than ``disagree_mpg`` is at most
``max_disagree_share`` (both answer every row: one answers, the other shadows); and, with at
least ``min_labels`` labelled rows, its live MAE is at most production's times
``max_mae_ratio``. Defaults follow Flagger's analysis (success rate >= 99%, p99 <= 500 ms).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

# The canary's share of requests: a tag on the registered model that every serving worker polls
# (carnn_pyfunc.serving.traffic) and a rollout moves (.driver).
WEIGHT_TAG = "carnn.canary_percent"


@dataclass(frozen=True)
class Thresholds:
    min_requests: int = 20
    max_5xx_rate: float = 0.01
    max_p99_ms: float = 500.0
    disagree_mpg: float = 2.0
    max_disagree_share: float = 0.10
    min_labels: int = 30
    max_mae_ratio: float = 1.05


@dataclass(frozen=True)
class Evidence:
    """One step's figures for the candidate (and production, for the comparisons)."""

    requests: int  # requests the candidate answered
    errors_5xx: int  # of the candidate's requests (answered or shadowed) that failed
    scored_requests: int  # the candidate's requests, answered or shadowed
    p99_ms: float | None  # over the requests it answered
    compared_rows: int  # rows both versions answered
    disagreeing_rows: int
    labelled_rows: int  # rows both answered that have a true MPG
    mae_candidate: float | None
    mae_production: float | None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)


def judge(e: Evidence, t: Thresholds) -> Verdict:
    reasons = []
    if e.requests < t.min_requests:
        reasons.append(f"the canary answered {e.requests} requests (fewer than {t.min_requests})")
    rate = e.errors_5xx / e.scored_requests if e.scored_requests else 0.0
    if rate > t.max_5xx_rate:
        reasons.append(
            f"5xx rate {rate:.1%} of {e.scored_requests} requests (more than {t.max_5xx_rate:.1%})"
        )
    if e.p99_ms is not None and e.p99_ms > t.max_p99_ms:
        reasons.append(f"p99 latency {e.p99_ms:.0f} ms (more than {t.max_p99_ms:.0f} ms)")
    if e.compared_rows:
        share = e.disagreeing_rows / e.compared_rows
        if share > t.max_disagree_share:
            reasons.append(
                f"{share:.1%} of {e.compared_rows} rows disagree with production by more than "
                f"{t.disagree_mpg:g} MPG (more than {t.max_disagree_share:.1%})"
            )
    enough = e.labelled_rows >= t.min_labels and e.mae_candidate is not None
    if enough and e.mae_production and e.mae_candidate > e.mae_production * t.max_mae_ratio:
        reasons.append(
            f"live MAE {e.mae_candidate:.2f} MPG vs production's {e.mae_production:.2f} on "
            f"the same {e.labelled_rows} labelled rows (more than {t.max_mae_ratio:g}x)"
        )
    return Verdict(not reasons, reasons)


def parse_steps(text: str) -> list[float]:
    """``5,25,50,100`` -> [5.0, 25.0, 50.0, 100.0]: increasing, within (0, 100], ending at 100."""
    try:
        steps = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"steps: {text!r} is not a list of percentages like 5,25,50,100") from None
    if not steps or steps[-1] != 100 or any(not 0 < s <= 100 for s in steps):
        raise ValueError("steps: percentages in (0, 100], the last one 100")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValueError("steps: each larger than the one before")
    return steps
