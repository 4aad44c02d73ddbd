"""Stages in the MLflow Model Registry, built on aliases (MLflow's supported mechanism).

Every registered version starts as a *candidate*. ``staging``, ``production`` and
``previous-production`` are registered-model aliases, so each names at most one version and
``models:/carnn@production`` is what serving loads. The rules:

- candidate -> staging: the version passes absolute gates: its test MAE (recomputed on its own
  held-out split) is at most ``max_mae``, every prediction there is finite, and it loads in a fresh
  Python process and answers its own input example.
- staging -> production: the version beats the current production version on the SAME cars (the
  rows held out by both, recomputed from the data file and each version's logged seed and test
  size), or the promotion is forced with a reason. The replaced version becomes
  ``previous-production``; :meth:`Promoter.rollback` swaps the two back.

Every transition is recorded as version tags (``stage`` and a numbered ``transition.NNN`` JSON:
from, to, when, why, the metrics compared). Transitions run under a registry-wide lock (a
registered model ``<name>.promotion-lock``: creating it is atomic in any MLflow store), so
concurrent promotions see each other's result, and a failing step undoes the steps before it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from carnn_pyfunc import data
from carnn_pyfunc.metrics import regression_metrics
from carnn_pyfunc.server import child_env

logger = logging.getLogger(__name__)

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
LOCK_SUFFIX = ".promotion-lock"
# What tools that still read the deprecated registry stages see.
LEGACY_STAGES = {
    CANDIDATE: "None",
    STAGING: "Staging",
    PRODUCTION: "Production",
    PREVIOUS: "Archived",
    ARCHIVED: "Archived",
}
TARGETS = (STAGING, PRODUCTION, "auto")

# Run in a fresh interpreter: load the model by URI, predict its own input example, print it.
_FRESH_PROCESS_CHECK = """
import json, sys
import mlflow
model = mlflow.pyfunc.load_model(sys.argv[1])
example = model.input_example
if example is None:
    sys.exit("the model has no input example")
print(json.dumps({"rows": len(example), "mpg": model.predict(example)["mpg"].tolist()}))
"""


class PromotionRefused(Exception):
    """The rules do not allow the transition; the aliases were left as they were."""


@dataclass(frozen=True)
class Gates:
    """The absolute gates for staging and what the comparisons are computed on."""

    max_mae: float = 2.5  # MPG; Ridge regression scores ~2.6 in cross-validation
    min_eval_rows: int = 30  # fewest shared held-out cars a production comparison may rest on
    data_path: str = str(data.DEFAULT_DATA_PATH)
    fresh_process_timeout_s: float = 300.0


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


@dataclass
class Outcome:
    """What a promote or rollback call did; ``refused`` says why it stopped short, if it did."""

    version: str
    transitions: list[Transition]
    refused: str | None = None


@dataclass(frozen=True)
class Step:
    """One registry write and the write that undoes it."""

    do: Callable[[], object]
    undo: Callable[[], object]


class Promoter:
    """Moves versions of one registered model between stages."""

    def __init__(
        self,
        name: str,
        *,
        gates: Gates = Gates(),
        legacy_stages: bool = False,
        client: mlflow.MlflowClient | None = None,
        lock_timeout_s: float = 900.0,
        stale_lock_s: float = 1800.0,
    ) -> None:
        self.name = name
        self.gates = gates
        self.legacy_stages = legacy_stages
        self.client = client or mlflow.MlflowClient()
        self.lock_timeout_s = lock_timeout_s
        self.stale_lock_s = stale_lock_s
        self._models: dict[str, mlflow.pyfunc.PyFuncModel] = {}

    # ----- reading the registry ------------------------------------------------------------
    def resolve(self, spec: str) -> str:
        """A version number from ``3``, ``latest`` or an alias such as ``@staging``."""
        if spec == "latest":
            versions = self.client.search_model_versions(f"name = '{self.name}'")
            if not versions:
                raise PromotionRefused(f"registered model {self.name!r} has no versions")
            return str(max(int(v.version) for v in versions))
        if spec.startswith("@"):
            alias = spec[1:]
            aliases = self.aliases()
            if alias not in aliases:
                raise PromotionRefused(f"no version of {self.name!r} holds the alias {alias!r}")
            return aliases[alias]
        if not spec.isdigit():
            raise PromotionRefused(
                f"version: expected a number, 'latest' or '@alias', got {spec!r}"
            )
        self.client.get_model_version(self.name, spec)  # raises when it does not exist
        return spec

    def aliases(self) -> dict[str, str]:
        """Stage aliases of the registered model: alias -> version."""
        model = self.client.get_registered_model(self.name)
        return {alias: str(v) for alias, v in model.aliases.items() if alias in ALIASES}

    def stage_of(self, version: str, aliases: dict[str, str] | None = None) -> str:
        """The version's stage: its stage alias, else archived or candidate (from its tags)."""
        aliases = self.aliases() if aliases is None else aliases
        for alias, holder in aliases.items():
            if holder == version:
                return alias
        tag = self.client.get_model_version(self.name, version).tags.get(STAGE_TAG)
        return ARCHIVED if tag == ARCHIVED else CANDIDATE

    def history(self, version: str) -> list[dict]:
        """The version's recorded transitions, oldest first."""
        tags = self.client.get_model_version(self.name, version).tags
        keys = sorted(k for k in tags if k.startswith(TRANSITION_TAG))
        return [json.loads(tags[k]) for k in keys]

    # ----- evaluating versions -------------------------------------------------------------
    def held_out(self, version: str) -> np.ndarray:
        """Positions in the data file of the cars the version was NOT trained on."""
        run_id = self.client.get_model_version(self.name, version).run_id
        if not run_id:
            raise PromotionRefused(f"version {version} has no training run to recompute its split")
        run = self.client.get_run(run_id)
        try:
            seed, test_size = int(run.data.params["seed"]), float(run.data.params["test_size"])
        except KeyError as err:
            raise PromotionRefused(
                f"version {version}: its run {run_id} did not log the parameter {err.args[0]!r}, "
                "so its held-out split cannot be recomputed"
            ) from None
        recorded, actual = run.data.tags.get(data.SHA256_TAG), self.data_sha256
        if recorded != actual:
            raise PromotionRefused(
                f"version {version} was trained on data with sha256 {recorded}, but "
                f"{self.gates.data_path} has sha256 {actual}: its held-out split cannot be "
                "recomputed from this file"
            )
        _, test = data.split_positions(len(self.frame), test_size=test_size, seed=seed)
        return np.sort(test)

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        return data.load_auto_mpg(self.gates.data_path)

    @functools.cached_property
    def data_sha256(self) -> str:
        return data.file_sha256(self.gates.data_path)

    def score(self, version: str, positions: np.ndarray) -> dict[str, float]:
        """MAE, RMSE, R² and the share of finite predictions of the version on those rows."""
        if version not in self._models:
            self._models[version] = mlflow.pyfunc.load_model(f"models:/{self.name}/{version}")
        rows = self.frame.iloc[positions]
        predicted = self._models[version].predict(rows.drop(columns=[data.TARGET]))["mpg"]
        predicted = predicted.to_numpy(dtype=np.float64)
        finite = np.isfinite(predicted)
        actual = rows[data.TARGET].to_numpy(dtype=np.float64)
        metrics = regression_metrics(actual[finite], predicted[finite]) if finite.any() else {}
        return {**metrics, "finite_share": float(finite.mean()), "n_rows": float(len(rows))}

    def answers_in_fresh_process(self, version: str) -> int:
        """Load the version in a new interpreter and predict its input example; the row count."""
        env = child_env(mlflow.get_tracking_uri())
        uri = f"models:/{self.name}/{version}"
        try:
            done = subprocess.run(
                [sys.executable, "-c", _FRESH_PROCESS_CHECK, uri],
                env=env,
                capture_output=True,
                text=True,
                timeout=self.gates.fresh_process_timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise PromotionRefused(
                f"version {version} did not load and answer in a fresh process within "
                f"{self.gates.fresh_process_timeout_s:.0f} s"
            ) from None
        if done.returncode != 0:
            raise PromotionRefused(
                f"version {version} does not load and answer its input example in a fresh "
                f"process:\n{done.stderr.strip()[-2000:]}"
            )
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        if len(answer["mpg"]) != answer["rows"] or not all(map(math.isfinite, answer["mpg"])):
            raise PromotionRefused(
                f"version {version} answered its input example with {answer['mpg']}"
            )
        return answer["rows"]

    def check_gates(self, version: str) -> dict[str, float]:
        """The absolute gates; returns the metrics they looked at or raises PromotionRefused."""
        metrics = self.score(version, self.held_out(version))
        if metrics["finite_share"] < 1.0:
            raise PromotionRefused(
                f"version {version}: {1 - metrics['finite_share']:.1%} of its predictions on its "
                "held-out cars are not finite"
            )
        if metrics["mae"] > self.gates.max_mae:
            raise PromotionRefused(
                f"version {version}: test MAE {metrics['mae']:.3f} MPG on its "
                f"{metrics['n_rows']:.0f} held-out cars is above the gate max_mae "
                f"{self.gates.max_mae:g}"
            )
        rows = self.answers_in_fresh_process(version)
        logger.info("version %s loads in a fresh process and answers %d rows", version, rows)
        return {
            "test_mae": metrics["mae"],
            "test_rmse": metrics["rmse"],
            "n_rows": metrics["n_rows"],
            "max_mae": self.gates.max_mae,
        }

    def compare(self, version: str, production: str) -> tuple[bool, str, dict[str, float]]:
        """Does ``version`` beat ``production`` on the cars held out by both?"""
        shared = np.intersect1d(self.held_out(version), self.held_out(production))
        if len(shared) < self.gates.min_eval_rows:
            return (
                False,
                (
                    f"only {len(shared)} cars are held out by both version {version} and "
                    f"production version {production} (min_eval_rows "
                    f"{self.gates.min_eval_rows}): train with "
                    "the same seed and test size to compare them"
                ),
                {"n_rows": float(len(shared))},
            )
        new, old = self.score(version, shared), self.score(production, shared)
        metrics = {
            "candidate_mae": new["mae"],
            "production_mae": old["mae"],
            "candidate_rmse": new["rmse"],
            "production_rmse": old["rmse"],
            "production_version": float(production),
            "n_rows": float(len(shared)),
        }
        versus = (
            f"MAE {new['mae']:.3f} vs {old['mae']:.3f} MPG for production version {production} "
            f"on the same {len(shared)} held-out cars"
        )
        if new["finite_share"] < 1.0:
            return False, f"version {version} has non-finite predictions", metrics
        if new["mae"] < old["mae"]:
            return True, f"beats production: {versus}", metrics
        return False, f"does not beat production: {versus}", metrics

    # ----- moving versions -----------------------------------------------------------------
    def promote(
        self, spec: str, to: str = "auto", *, force: bool = False, reason: str = ""
    ) -> Outcome:
        """Move a version to ``staging``, ``production``, or as far as it qualifies (``auto``).

        Raises PromotionRefused when not even the first step is allowed; an ``auto`` promotion
        that reaches staging but not production returns with ``refused`` set.
        """
        if to not in TARGETS:
            raise PromotionRefused(f"to: expected one of {', '.join(TARGETS)}, got {to!r}")
        if force and not reason.strip():
            raise PromotionRefused("--force needs --reason: the reason is recorded on the version")
        version = self.resolve(spec)
        stage = self.stage_of(version)
        if stage == PRODUCTION:
            raise PromotionRefused(f"version {version} is already in production")
        if to == STAGING and stage == STAGING:
            raise PromotionRefused(f"version {version} is already in staging")
        if to == PRODUCTION and stage != STAGING:
            raise PromotionRefused(
                f"version {version} is a {stage}, not in staging: promote it to staging first "
                "(--to staging, or --to auto for both steps)"
            )
        # The gates depend on the version alone: checked before taking the lock.
        gate_metrics = self.check_gates(version) if stage != STAGING else None
        with self.locked():
            aliases = self.aliases()
            if self.stage_of(version, aliases) != stage:
                raise PromotionRefused(
                    f"version {version} left {stage} while this promotion ran: try again"
                )
            transitions: list[Transition] = []
            if gate_metrics is not None:
                why = (
                    f"passes the gates: test MAE {gate_metrics['test_mae']:.3f} <= "
                    f"{self.gates.max_mae:g} on its held-out cars, all finite, loads and answers "
                    "in a fresh process"
                ) + (f"; {reason.strip()}" if reason.strip() and not force else "")
                transitions += self._into(STAGING, version, stage, why, gate_metrics, aliases)
                stage = STAGING
            refused = None
            if to != STAGING:
                production = aliases.get(PRODUCTION)
                if production is None:
                    ok, why, metrics = True, "the first version to pass the gates", {}
                else:
                    ok, why, metrics = self.compare(version, production)
                if force and not ok:
                    ok, why = True, f"forced ({why}): {reason.strip()}"
                elif reason.strip():
                    why = f"{why}; {reason.strip()}"
                if ok:
                    transitions += self._into(PRODUCTION, version, stage, why, metrics, aliases)
                else:
                    refused = f"version {version} stays in staging: {why}"
            if not transitions:
                raise PromotionRefused(refused or "nothing to do")
            self.apply(transitions)
        return Outcome(version, transitions, refused)

    def rollback(self, *, reason: str = "") -> Outcome:
        """Swap ``production`` and ``previous-production``."""
        with self.locked():
            aliases = self.aliases()
            current, previous = aliases.get(PRODUCTION), aliases.get(PREVIOUS)
            if current is None or previous is None:
                raise PromotionRefused(
                    f"nothing to roll back to: production is {current or 'unset'}, "
                    f"previous-production is {previous or 'unset'}"
                )
            why = "rollback" + (f": {reason.strip()}" if reason.strip() else "")
            transitions = [
                Transition(previous, PREVIOUS, PRODUCTION, why, {"replaces": float(current)}),
                Transition(current, PRODUCTION, PREVIOUS, why, {"replaced_by": float(previous)}),
            ]
            self.apply(transitions)
        return Outcome(previous, transitions)

    def _into(
        self, target: str, version: str, stage: str, why: str, metrics: dict, aliases: dict
    ) -> list[Transition]:
        """The transition of ``version`` into ``target`` and of whoever it displaces."""
        moves = [Transition(version, stage, target, why, metrics)]
        holder = aliases.get(target)
        if holder is not None and holder != version:
            if target == PRODUCTION:
                moves.append(
                    Transition(holder, PRODUCTION, PREVIOUS, f"replaced by version {version}")
                )
                displaced = aliases.get(PREVIOUS)
                if displaced is not None and displaced != version:
                    moves.append(
                        Transition(
                            displaced,
                            PREVIOUS,
                            ARCHIVED,
                            f"version {holder} is previous-production now",
                        )
                    )
            else:
                moves.append(
                    Transition(
                        holder, target, CANDIDATE, f"replaced in {target} by version {version}"
                    )
                )
        moved = _moved(aliases, moves)  # ``aliases`` becomes what it will be after the moves
        aliases.clear()
        aliases.update(moved)
        return moves

    def apply(self, transitions: list[Transition]) -> None:
        """Write the transitions (aliases, legacy stages, tags); undo all of it if a write fails."""
        done: list[Step] = []
        try:
            for step in self.steps(transitions):
                step.do()
                done.append(step)
        except MlflowException:
            logger.error("a registry write failed: undoing the %d writes before it", len(done))
            for step in reversed(done):
                step.undo()
            raise

    def steps(self, transitions: list[Transition]) -> list[Step]:
        """The registry writes of the transitions, each with the write that undoes it."""
        client, name = self.client, self.name
        before = self.aliases()
        after = _moved(before, transitions)
        steps = [
            Step(
                do=_alias_writer(client, name, alias, after.get(alias)),
                undo=_alias_writer(client, name, alias, before.get(alias)),
            )
            for alias in ALIASES
            if before.get(alias) != after.get(alias)
        ]
        versions = {t.version: client.get_model_version(name, t.version) for t in transitions}
        if self.legacy_stages:
            legacy = {v: mv.current_stage for v, mv in versions.items()}
            for t in transitions:
                new = LEGACY_STAGES[t.target]
                steps.append(
                    Step(
                        do=_legacy_writer(client, name, t.version, new),
                        undo=_legacy_writer(client, name, t.version, legacy[t.version]),
                    )
                )
                legacy[t.version] = new
        tags = {v: dict(mv.tags) for v, mv in versions.items()}
        for t in transitions:
            current = tags[t.version]
            key = f"{TRANSITION_TAG}{1 + sum(k.startswith(TRANSITION_TAG) for k in current):03d}"
            record = {
                "from": t.source,
                "to": t.target,
                "when": t.when,
                "why": t.why,
                "metrics": t.metrics,
            }
            steps.append(
                Step(
                    do=_tag_writer(client, name, t.version, key, json.dumps(record)),
                    undo=_tag_writer(client, name, t.version, key, None),
                )
            )
            steps.append(
                Step(
                    do=_tag_writer(client, name, t.version, STAGE_TAG, t.target),
                    undo=_tag_writer(client, name, t.version, STAGE_TAG, current.get(STAGE_TAG)),
                )
            )
            current[key], current[STAGE_TAG] = "", t.target
        return steps

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry-wide promotion lock (a registered model that only one can create)."""
        lock = f"{self.name}{LOCK_SUFFIX}"
        holder = f"{socket.gethostname()}:{os.getpid()}"
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                self.client.create_registered_model(lock, description=f"held by {holder}")
                break
            except MlflowException as err:
                if err.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            self._break_if_stale(lock)
            if time.monotonic() > deadline:
                raise PromotionRefused(
                    f"another promotion holds the lock {lock!r} (waited "
                    f"{self.lock_timeout_s:.0f} s); if its process is gone, delete that "
                    "registered model"
                )
            time.sleep(0.2)
        try:
            yield
        finally:
            self.client.delete_registered_model(lock)

    def _break_if_stale(self, lock: str) -> None:
        try:
            held = self.client.get_registered_model(lock)
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return  # released meanwhile
            raise
        age_s = time.time() - held.creation_timestamp / 1000
        if age_s > self.stale_lock_s:
            logger.warning(
                "breaking the promotion lock %s (%s, %.0f s old)", lock, held.description, age_s
            )
            with contextlib.suppress(MlflowException):
                self.client.delete_registered_model(lock)

    # ----- reporting -----------------------------------------------------------------------
    def table(self) -> list[dict[str, str]]:
        """Every version with its stage, test MAE and latest transition (newest first)."""
        aliases = self.aliases()
        rows = []
        versions = self.client.search_model_versions(f"name = '{self.name}'")
        for mv in sorted(versions, key=lambda v: -int(v.version)):
            history = self.history(mv.version)
            metrics = self.client.get_run(mv.run_id).data.metrics if mv.run_id else {}
            rows.append(
                {
                    "version": str(mv.version),
                    "stage": self.stage_of(str(mv.version), aliases),
                    "test_mae": f"{metrics['test_mae']:.3f}" if "test_mae" in metrics else "",
                    "last_transition": (
                        f"{history[-1]['when']} {history[-1]['from']} -> {history[-1]['to']}: "
                        f"{history[-1]['why']}"
                    )
                    if history
                    else "",
                }
            )
        return rows

    def inconsistencies(self) -> list[str]:
        """Disagreements between the aliases and the versions' stage tags (none expected)."""
        aliases = self.aliases()
        problems = []
        holders = list(aliases.values())
        if len(set(holders)) != len(holders):
            problems.append(f"a version holds two stage aliases: {aliases}")
        for mv in self.client.search_model_versions(f"name = '{self.name}'"):
            stage = self.stage_of(str(mv.version), aliases)
            tagged = mv.tags.get(STAGE_TAG, CANDIDATE)
            if tagged != stage:
                problems.append(f"version {mv.version}: tag stage={tagged} but stage is {stage}")
        return problems


def _moved(aliases: dict[str, str], transitions: list[Transition]) -> dict[str, str]:
    """The stage aliases after the transitions, applied in order."""
    after = dict(aliases)
    for t in transitions:
        if after.get(t.source) == t.version:
            del after[t.source]
        if t.target in ALIASES:
            after[t.target] = t.version
    return after


def _alias_writer(client, name: str, alias: str, version: str | None) -> Callable[[], None]:
    if version is None:
        return lambda: _delete_alias(client, name, alias)
    return lambda: client.set_registered_model_alias(name, alias, version)


def _delete_alias(client, name: str, alias: str) -> None:
    try:
        client.delete_registered_model_alias(name, alias)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


def _tag_writer(client, name: str, version: str, key: str, value: str | None):
    if value is None:
        return lambda: client.delete_model_version_tag(name, version, key)
    return lambda: client.set_model_version_tag(name, version, key, value)


def _legacy_writer(client, name: str, version: str, stage: str) -> Callable[[], None]:
    def write() -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            client.transition_model_version_stage(name, version, stage)

    return write
