"""One rollout: the canary's weight through the steps, judged on each step's live evidence;
promoted through the registry at the end, or rolled back.

State lives in the registry only: the weight is the registered model's tag
:data:`~carnn_pyfunc.serving.traffic.WEIGHT_TAG` (one write per step), the outcome a tag on the
candidate version (``carnn.rollout``), the promotion the registry's own (gates, lock, undo).
Killed midway, a rollout leaves production where it was and the weight at its last step;
``carnn rollout --abort`` sets it to 0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import mlflow

from carnn_pyfunc.formats import servable
from carnn_pyfunc.registry.stages import PromotionRefused
from carnn_pyfunc.rollout.checks import WEIGHT_TAG, Thresholds, Verdict, judge
from carnn_pyfunc.rollout.evidence import evidence, read_window

logger = logging.getLogger(__name__)
OUTCOME_TAG = "carnn.rollout"
PRODUCTION = "production"


class RolloutRefused(Exception):
    """The rollout cannot start (no candidate, the candidate is production, not servable)."""


@dataclass
class Result:
    candidate: str
    production: str
    promoted: bool
    steps: list[tuple[float, Verdict]] = field(default_factory=list)
    reason: str = ""


@dataclass
class Rollout:
    name: str
    log_root: str
    steps: list[float]
    interval_s: float
    thresholds: Thresholds = field(default_factory=Thresholds)
    candidate_alias: str = "canary"
    promote: Callable[[str, str], object] | None = None  # (version, reason) -> registry outcome
    echo: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    client: mlflow.MlflowClient = field(default_factory=mlflow.MlflowClient)
    servable: Callable[[str], tuple[bool, str]] = servable  # can this release serve the URI?

    def versions(self) -> tuple[str, str]:
        try:
            candidate = self.client.get_model_version_by_alias(self.name, self.candidate_alias)
            production = self.client.get_model_version_by_alias(self.name, PRODUCTION)
        except mlflow.exceptions.MlflowException as err:
            raise RolloutRefused(f"{self.name}: {err.message}") from None
        if candidate.version == production.version:
            raise RolloutRefused(
                f"{self.name}@{self.candidate_alias} is version {candidate.version}, which is "
                "production already"
            )
        return str(candidate.version), str(production.version)

    def set_weight(self, percent: float) -> None:
        self.client.set_registered_model_tag(self.name, WEIGHT_TAG, f"{percent:g}")

    def run(self) -> Result:
        candidate, production = self.versions()
        able, why = self.servable(f"models:/{self.name}/{candidate}")
        if not able:  # this release cannot serve it: no traffic moves
            raise RolloutRefused(f"version {candidate}: {why}")
        result = Result(candidate, production, promoted=False)
        try:
            return self._advance(result)
        except Exception as err:  # whatever stopped it (a log, the data, the server): traffic back
            logger.exception("rollout of version %s stopped", candidate)
            return self._roll_back(result, f"the rollout stopped: {type(err).__name__}: {err}")

    def _advance(self, result: Result) -> Result:
        candidate, production = result.candidate, result.production
        for percent in self.steps:
            self.set_weight(percent)
            started = self.clock()
            self.echo(f"step {percent:g}%: version {candidate} answers {percent:g}% of requests "
                      f"for {self.interval_s:g} s")  # fmt: skip
            self.sleep(self.interval_s)
            log, labels = read_window(self.log_root, started, self.clock())
            found = evidence(log, labels, candidate, production, self.thresholds)
            verdict = judge(found, self.thresholds)
            result.steps.append((percent, verdict))
            self.echo(_summary(percent, found, verdict))
            if not verdict.passed:
                return self._roll_back(result, f"step {percent:g}%: " + "; ".join(verdict.reasons))
        reason = f"rollout: passed {', '.join(f'{p:g}%' for p in self.steps)}"
        try:
            outcome = self.promote(candidate, reason) if self.promote is not None else None
        except (PromotionRefused, mlflow.exceptions.MlflowException) as err:  # the gates said no
            return self._roll_back(result, f"promotion refused: {err}")
        if getattr(outcome, "refused", None):  # stopped short of production
            return self._roll_back(result, f"promotion refused: {outcome.refused}")
        self.set_weight(0)
        self.client.set_model_version_tag(self.name, candidate, OUTCOME_TAG, f"promoted; {reason}")
        result.promoted, result.reason = True, reason
        self.echo(f"promoted version {candidate} to production ({reason})")
        return result

    def _roll_back(self, result: Result, reason: str) -> Result:
        self.set_weight(0)
        tag = f"rolled back: {reason}"[:5000]
        self.client.set_model_version_tag(self.name, result.candidate, OUTCOME_TAG, tag)
        result.reason = reason
        self.echo(f"rolled back version {result.candidate}: {reason}")
        return result


def _summary(percent: float, e, verdict: Verdict) -> str:
    mae = (f", live MAE {e.mae_candidate:.2f} vs {e.mae_production:.2f} on {e.labelled_rows} rows"
           if e.mae_candidate is not None else "")  # fmt: skip
    p99 = f"{e.p99_ms:.0f} ms" if e.p99_ms is not None else "-"
    state = "passed" if verdict.passed else "FAILED"
    return (f"  {state}: {e.requests} canary requests, {e.errors_5xx} 5xx of "
            f"{e.scored_requests}, p99 {p99}, {e.disagreeing_rows} of {e.compared_rows} rows "
            f"disagree{mae}")  # fmt: skip
