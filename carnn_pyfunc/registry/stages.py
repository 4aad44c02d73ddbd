"""The stage rules, as pure functions: aliases, a version's stage and the metrics in, moves out.

Every registered version starts as a *candidate*. ``staging``, ``production`` and
``previous-production`` are registered-model aliases, so each names at most one version.

- candidate -> staging: the version passes the absolute gates (see :mod:`.gates`).
- staging -> production: it beats the current production version on the same cars, or the
  promotion is forced with a reason. The replaced version becomes ``previous-production``, and
  the one that was previous-production is archived.
- the live evidence: when a labelled window of served cars is given, the version must not be
  worse than production on those cars either (MAE above production's plus a tolerance); with too
  few labelled cars that gate is skipped with a note. A refusal is recorded on the version.
- rollback: ``production`` and ``previous-production`` swap.

Nothing here reads or writes a registry: these functions can be tested on plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

CANDIDATE, STAGING, PRODUCTION, PREVIOUS, ARCHIVED = (
    "candidate",
    "staging",
    "production",
    "previous-production",
    "archived",
)
ALIASES = (STAGING, PRODUCTION, PREVIOUS)
STAGE_TAG = "stage"
TRANSITION_TAG = "transition."  # + a three-digit sequence number per version
REFUSAL_TAG = "refusal."  # + a three-digit sequence number: a promotion the rules refused
TARGETS = (STAGING, PRODUCTION, "auto")
# What tools that still read the deprecated registry stages see.
LEGACY_STAGES = {
    CANDIDATE: "None",
    STAGING: "Staging",
    PRODUCTION: "Production",
    PREVIOUS: "Archived",
    ARCHIVED: "Archived",
}


class PromotionRefused(Exception):
    """The rules do not allow the transition; the aliases were left as they were."""


@dataclass(frozen=True)
class Transition:
    """One version moving from one stage to another, and why."""

    version: str
    source: str
    target: str
    why: str
    metrics: dict[str, float] = field(default_factory=dict)
    when: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def describe(self) -> str:
        return f"version {self.version}: {self.source} -> {self.target} ({self.why})"

    def record(self) -> dict:
        """The JSON record kept on the version as a ``transition.NNN`` tag."""
        return {
            "from": self.source,
            "to": self.target,
            "when": self.when,
            "why": self.why,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class Refusal:
    """A promotion into ``target`` the rules refused, and why (kept as a ``refusal.NNN`` tag)."""

    version: str
    stage: str
    target: str
    why: str
    metrics: dict[str, float] = field(default_factory=dict)
    when: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def record(self) -> dict:
        return {
            "stage": self.stage,
            "to": self.target,
            "when": self.when,
            "why": self.why,
            "metrics": self.metrics,
        }


@dataclass
class Outcome:
    """What a promote or rollback call did; ``refused`` says why it stopped short, if it did;
    ``notes``: gates that were skipped, and why."""

    version: str
    transitions: list[Transition]
    refused: str | None = None
    notes: list[str] = field(default_factory=list)


def stage_of(version: str, aliases: dict[str, str], stage_tag: str | None) -> str:
    """A version's stage: its stage alias, else archived or candidate (from its stage tag)."""
    for alias, holder in aliases.items():
        if holder == version:
            return alias
    return ARCHIVED if stage_tag == ARCHIVED else CANDIDATE


def check_arguments(to: str, *, force: bool, reason: str) -> None:
    """Refuse a promotion request that is malformed whatever the registry holds."""
    if to not in TARGETS:
        raise PromotionRefused(f"to: expected one of {', '.join(TARGETS)}, got {to!r}")
    if force and not reason.strip():
        raise PromotionRefused("--force needs --reason: the reason is recorded on the version")


def check_order(version: str, stage: str, to: str) -> None:
    """Refuse a promotion the order of the stages does not allow, before anything is computed."""
    if stage == PRODUCTION:
        raise PromotionRefused(f"version {version} is already in production")
    if to == STAGING and stage == STAGING:
        raise PromotionRefused(f"version {version} is already in staging")
    if to == PRODUCTION and stage != STAGING:
        raise PromotionRefused(
            f"version {version} is a {stage}, not in staging: promote it to staging first "
            "(--to staging, or --to auto for both steps)"
        )


def moved(aliases: dict[str, str], transitions: list[Transition]) -> dict[str, str]:
    """The stage aliases after the transitions, applied in order (a new dict)."""
    after = dict(aliases)
    for t in transitions:
        if after.get(t.source) == t.version:
            del after[t.source]
        if t.target in ALIASES:
            after[t.target] = t.version
    return after


def into(
    target: str, version: str, stage: str, why: str, metrics: dict, aliases: dict[str, str]
) -> list[Transition]:
    """The transition of ``version`` into ``target`` and of whoever it displaces."""
    moves = [Transition(version, stage, target, why, metrics)]
    holder = aliases.get(target)
    if holder is None or holder == version:
        return moves
    if target != PRODUCTION:
        return [
            *moves,
            Transition(holder, target, CANDIDATE, f"replaced in {target} by version {version}"),
        ]
    moves.append(Transition(holder, PRODUCTION, PREVIOUS, f"replaced by version {version}"))
    displaced = aliases.get(PREVIOUS)
    if displaced is not None and displaced != version:
        why = f"version {holder} is previous-production now"
        moves.append(Transition(displaced, PREVIOUS, ARCHIVED, why))
    return moves


def plan_promotion(
    version: str,
    stage: str,
    to: str,
    aliases: dict[str, str],
    *,
    staging_why: str | None,
    gate_metrics: dict | None,
    comparison: tuple[bool, str, dict] | None,
    force: bool = False,
    reason: str = "",
) -> tuple[list[Transition], str | None]:
    """The transitions of one promotion and, if it stops short of production, why.

    ``staging_why``/``gate_metrics``: the passed gates (None when the version is in staging
    already); ``comparison``: (beats production?, why, metrics), None when there is no production.
    """
    reason = reason.strip()
    transitions: list[Transition] = []
    if gate_metrics is not None:
        why = staging_why + (f"; {reason}" if reason and not force else "")
        transitions += into(STAGING, version, stage, why, gate_metrics, aliases)
        aliases, stage = moved(aliases, transitions), STAGING
    if to == STAGING:
        return transitions, None
    ok, why, metrics = comparison or (True, "the first version to pass the gates", {})
    if force and not ok:
        ok, why = True, f"forced ({why}): {reason}"
    elif reason:
        why = f"{why}; {reason}"
    if not ok:
        return transitions, f"version {version} stays in staging: {why}"
    return [*transitions, *into(PRODUCTION, version, stage, why, metrics, aliases)], None


Comparison = tuple[bool, str, dict]  # (good enough?, why, the metrics looked at)


def live_skipped(n_rows: int, min_rows: int, window: str) -> tuple[None, str, dict] | None:
    """The live gate's note when the window holds too few labelled cars to judge by, else None."""
    if n_rows >= min_rows:
        return None
    why = (
        f"live gate skipped: {n_rows} labelled served cars in {window}, fewer than "
        f"min_live_rows {min_rows}"
    )
    return None, why, {"live_n_rows": float(n_rows)}


def live_verdict(
    version: str,
    production: str,
    candidate: dict[str, float],
    current: dict[str, float],
    *,
    tolerance: float,
    window: str,
) -> Comparison:
    """Is ``version`` no worse than ``production`` on the same labelled served cars?

    ``candidate``/``current``: each version's ``mae``, ``finite_share`` and ``n_rows`` there.
    Worse means a candidate MAE above production's plus ``tolerance`` (MPG), or any answer that
    is not finite.
    """
    n_rows = int(candidate["n_rows"])
    metrics = {
        "live_candidate_mae": candidate["mae"],
        "live_production_mae": current["mae"],
        "live_n_rows": float(n_rows),
        "live_tolerance": float(tolerance),
    }
    if candidate["finite_share"] < 1.0:
        share = 1 - candidate["finite_share"]
        why = f"{share:.1%} of its answers on {n_rows} labelled served cars are not finite"
        return False, why, metrics
    versus = (
        f"live MAE {candidate['mae']:.3f} vs {current['mae']:.3f} MPG for production version "
        f"{production} on the same {n_rows} labelled served cars in {window}"
    )
    if candidate["mae"] > current["mae"] + tolerance:
        allowed = f" (tolerance {tolerance:g})" if tolerance else ""
        return False, f"worse than production on live traffic: {versus}{allowed}", metrics
    return True, f"no worse on live traffic: {versus}", metrics


def with_live(comparison: Comparison | None, live: tuple | None) -> Comparison | None:
    """The production comparison with the live verdict folded in: refused if either refuses;
    a skipped live gate (verdict None) only adds its note."""
    if comparison is None or live is None:
        return comparison
    ok, why, metrics = comparison
    live_ok, live_why, live_metrics = live
    metrics = {**metrics, **live_metrics}
    if ok and live_ok is False:
        return False, live_why, metrics
    return ok, f"{why}; {live_why}", metrics


def plan_rollback(aliases: dict[str, str], reason: str = "") -> list[Transition]:
    """Swap ``production`` and ``previous-production``."""
    current, previous = aliases.get(PRODUCTION), aliases.get(PREVIOUS)
    if current is None or previous is None:
        raise PromotionRefused(
            f"nothing to roll back to: production is {current or 'unset'}, "
            f"previous-production is {previous or 'unset'}"
        )
    why = "rollback" + (f": {reason.strip()}" if reason.strip() else "")
    return [
        Transition(previous, PREVIOUS, PRODUCTION, why, {"replaces": float(current)}),
        Transition(current, PRODUCTION, PREVIOUS, why, {"replaced_by": float(previous)}),
    ]
