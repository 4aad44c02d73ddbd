"""Reads and writes of one registered model's stages: aliases, stage tags, history, undo.

A promotion's transitions become registry writes (aliases, tags, optionally the deprecated
registry stages), each paired with the write that undoes it; if any write fails, for any reason,
every write made before it is undone, each undo tried even when another one fails.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from carnn_pyfunc.registry.stages import (
    ALIASES,
    LEGACY_STAGES,
    REFUSAL_TAG,
    STAGE_TAG,
    TRANSITION_TAG,
    Refusal,
    Transition,
    moved,
    stage_of,
)

logger = logging.getLogger(__name__)

# Characters a search filter cannot carry inside a quoted name: matched by LIKE's one-character
# wildcard, then the exact name is kept in Python.
_UNQUOTABLE = str.maketrans({c: "_" for c in "'\"\\%_"})


@dataclass(frozen=True)
class Step:
    """One registry write and the write that undoes it."""

    do: Callable[[], object]
    undo: Callable[[], object]


def apply_steps(steps: list[Step]) -> None:
    """Run the steps in order; if one fails, undo the ones done, newest first, then re-raise.

    Every undo is attempted even if an earlier undo fails (each failure is logged).
    """
    done: list[Step] = []
    try:
        for step in steps:
            step.do()
            done.append(step)
    except BaseException:
        logger.error("a registry write failed: undoing the %d writes before it", len(done))
        for step in reversed(done):
            try:
                step.undo()
            except Exception:  # keep undoing the rest; the original error is re-raised below
                logger.exception("undoing a registry write failed; the registry needs a look")
        raise


def versions_of(client: mlflow.MlflowClient, name: str) -> list[ModelVersion]:
    """Every version of the registered model ``name``, whatever characters the name holds."""
    pattern = name.translate(_UNQUOTABLE)
    found = client.search_model_versions(f"name LIKE '{pattern}'")
    return [mv for mv in found if mv.name == name]


class RegistryStore:
    """One registered model's aliases, versions' stage tags and transition history."""

    def __init__(
        self, client: mlflow.MlflowClient, name: str, *, legacy_stages: bool = False
    ) -> None:
        self.client, self.name, self.legacy_stages = client, name, legacy_stages

    def aliases(self) -> dict[str, str]:
        """Stage aliases of the registered model: alias -> version."""
        model = self.client.get_registered_model(self.name)
        return {alias: str(v) for alias, v in model.aliases.items() if alias in ALIASES}

    def stage_of(self, version: str, aliases: dict[str, str] | None = None) -> str:
        aliases = self.aliases() if aliases is None else aliases
        tag = self.client.get_model_version(self.name, version).tags.get(STAGE_TAG)
        return stage_of(version, aliases, tag)

    def history(self, version: str) -> list[dict]:
        """The version's recorded transitions, oldest first."""
        return self._records(version, TRANSITION_TAG)

    def refusals(self, version: str) -> list[dict]:
        """The promotions of the version the rules refused, oldest first."""
        return self._records(version, REFUSAL_TAG)

    def _records(self, version: str, prefix: str) -> list[dict]:
        tags = self.client.get_model_version(self.name, version).tags
        return [json.loads(tags[k]) for k in sorted(k for k in tags if k.startswith(prefix))]

    def versions(self) -> list[ModelVersion]:
        return versions_of(self.client, self.name)

    def apply(self, transitions: list[Transition], refusal: Refusal | None = None) -> None:
        """Write the transitions (and the refusal that stopped them short); a failure halfway
        leaves the registry as it was."""
        steps = self.steps(transitions)
        if refusal is not None:
            tags = self.client.get_model_version(self.name, refusal.version).tags
            key = f"{REFUSAL_TAG}{1 + sum(k.startswith(REFUSAL_TAG) for k in tags):03d}"
            record = json.dumps(refusal.record())
            writer = self._tag_writer
            steps.append(
                Step(writer(refusal.version, key, record), writer(refusal.version, key, None))
            )
        apply_steps(steps)

    def steps(self, transitions: list[Transition]) -> list[Step]:
        """The registry writes of the transitions, each with the write that undoes it."""
        before = self.aliases()
        after = moved(before, transitions)
        steps = [
            Step(
                self._alias_writer(alias, after.get(alias)),
                self._alias_writer(alias, before.get(alias)),
            )
            for alias in ALIASES
            if before.get(alias) != after.get(alias)
        ]
        versions = {
            t.version: self.client.get_model_version(self.name, t.version) for t in transitions
        }
        if self.legacy_stages:
            legacy = {v: mv.current_stage for v, mv in versions.items()}
            for t in transitions:
                new = LEGACY_STAGES[t.target]
                steps.append(
                    Step(
                        self._legacy_writer(t.version, new),
                        self._legacy_writer(t.version, legacy[t.version]),
                    )
                )
                legacy[t.version] = new
        tags = {v: dict(mv.tags) for v, mv in versions.items()}
        for t in transitions:
            current = tags[t.version]
            key = f"{TRANSITION_TAG}{1 + sum(k.startswith(TRANSITION_TAG) for k in current):03d}"
            record = json.dumps(t.record())
            steps.append(
                Step(
                    self._tag_writer(t.version, key, record), self._tag_writer(t.version, key, None)
                )
            )
            steps.append(
                Step(
                    self._tag_writer(t.version, STAGE_TAG, t.target),
                    self._tag_writer(t.version, STAGE_TAG, current.get(STAGE_TAG)),
                )
            )
            current[key], current[STAGE_TAG] = "", t.target
        return steps

    def _alias_writer(self, alias: str, version: str | None) -> Callable[[], None]:
        if version is None:
            return lambda: self._delete_alias(alias)
        return lambda: self.client.set_registered_model_alias(self.name, alias, version)

    def _delete_alias(self, alias: str) -> None:
        try:
            self.client.delete_registered_model_alias(self.name, alias)
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise

    def _tag_writer(self, version: str, key: str, value: str | None) -> Callable[[], None]:
        if value is None:
            return lambda: self.client.delete_model_version_tag(self.name, version, key)
        return lambda: self.client.set_model_version_tag(self.name, version, key, value)

    def _legacy_writer(self, version: str, stage: str) -> Callable[[], None]:
        def write() -> None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=FutureWarning)
                self.client.transition_model_version_stage(self.name, version, stage)

        return write
