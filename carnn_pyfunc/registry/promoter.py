"""Promote and roll back versions of one registered model: the rules, the gates and the store,
put together under the registry-wide lock.

The gates depend on the version alone and are checked before the lock is taken; under the lock
the aliases are read again, the rules plan the moves and the store writes them (all or nothing).
"""

from __future__ import annotations

import contextlib

import mlflow

from carnn_pyfunc.registry import stages
from carnn_pyfunc.registry.gates import Gates, HeldOutScorer
from carnn_pyfunc.registry.live import LiveWindow, compare_live
from carnn_pyfunc.registry.lock import RegistryLock
from carnn_pyfunc.registry.servable import refuse_unservable
from carnn_pyfunc.registry.stages import PRODUCTION, STAGING, Outcome, PromotionRefused
from carnn_pyfunc.registry.store import RegistryStore


class Promoter:
    """Moves versions of one registered model between stages."""

    def __init__(
        self,
        name: str,
        *,
        gates: Gates | None = None,
        live: LiveWindow | None = None,
        legacy_stages: bool = False,
        client: mlflow.MlflowClient | None = None,
        lock_timeout_s: float = 900.0,
        stale_lock_s: float = 120.0,
    ) -> None:
        self.name = name
        self.gates, self.live = gates or Gates(), live
        self.client = client or mlflow.MlflowClient()
        self.store = RegistryStore(self.client, name, legacy_stages=legacy_stages)
        self.scorer = HeldOutScorer(self.client, name, self.gates)
        self.lock = RegistryLock(self.client, name, timeout_s=lock_timeout_s, stale_s=stale_lock_s)

    def aliases(self) -> dict[str, str]:
        return self.store.aliases()

    def stage_of(self, version: str) -> str:
        return self.store.stage_of(version)

    def history(self, version: str) -> list[dict]:
        return self.store.history(version)

    def refusals(self, version: str) -> list[dict]:
        return self.store.refusals(version)

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return self.lock.held()

    def resolve(self, spec: str) -> str:
        """A version number from ``3``, ``latest`` or an alias such as ``@staging``."""
        if spec == "latest":
            versions = self.store.versions()
            if not versions:
                raise PromotionRefused(f"registered model {self.name!r} has no versions")
            return str(max(int(v.version) for v in versions))
        if spec.startswith("@"):
            aliases = self.aliases()
            if spec[1:] not in aliases:
                raise PromotionRefused(f"no version of {self.name!r} holds the alias {spec[1:]!r}")
            return aliases[spec[1:]]
        if not spec.isdigit():
            raise PromotionRefused(
                f"version: expected a number, 'latest' or '@alias', got {spec!r}"
            )
        self.client.get_model_version(self.name, spec)  # raises when it does not exist
        return spec

    def promote(
        self, spec: str, to: str = "auto", *, force: bool = False, reason: str = ""
    ) -> Outcome:
        """Move a version to ``staging``, ``production``, or as far as it qualifies (``auto``).

        Raises PromotionRefused when not even the first step is allowed; an ``auto`` promotion
        that reaches staging but not production returns with ``refused`` set. A refusal by the
        comparison with production (held-out or live) is recorded on the version.
        """
        stages.check_arguments(to, force=force, reason=reason)
        version = self.resolve(spec)
        stage = self.store.stage_of(version)
        stages.check_order(version, stage, to)
        refuse_unservable(self.store, version, stage, to, self.lock)  # its model format
        staging_why, gate_metrics = (
            self.scorer.check_gates(version) if stage != STAGING else (None, None)
        )
        with self.lock.held():
            aliases = self.aliases()
            if self.store.stage_of(version, aliases) != stage:
                raise PromotionRefused(
                    f"version {version} left {stage} while this promotion ran: try again"
                )
            production = aliases.get(PRODUCTION)
            comparison, notes = None, []
            if to != STAGING and production not in (None, version):
                comparison = self.scorer.compare(version, production)
                if self.live is not None:
                    live = compare_live(self.scorer, self.live, version, production)
                    notes += [live[1]] if live[0] is None else []
                    comparison = stages.with_live(comparison, live)
            transitions, refused = stages.plan_promotion(
                version, stage, to, aliases, staging_why=staging_why, gate_metrics=gate_metrics,
                comparison=comparison, force=force, reason=reason,
            )  # fmt: skip
            if not transitions and not refused:
                raise PromotionRefused("nothing to do")
            metrics = comparison[2] if comparison else {}
            refusal = (
                stages.Refusal(version, STAGING, PRODUCTION, refused, metrics) if refused else None
            )
            self.store.apply(transitions, refusal)
        if not transitions:
            raise PromotionRefused(refused)
        return Outcome(version, transitions, refused, notes)

    def rollback(self, *, reason: str = "") -> Outcome:
        """Swap ``production`` and ``previous-production``."""
        with self.lock.held():
            transitions = stages.plan_rollback(self.aliases(), reason)
            refuse_unservable(self.store, transitions[0].version, stages.PREVIOUS, PRODUCTION)
            self.store.apply(transitions)
        return Outcome(transitions[0].version, transitions)

    def table(self) -> list[dict[str, str]]:
        """Every version with its stage, test MAE and latest transition (newest first)."""
        aliases = self.aliases()
        rows = []
        for mv in sorted(self.store.versions(), key=lambda v: -int(v.version)):
            history = self.history(mv.version)
            metrics = self.client.get_run(mv.run_id).data.metrics if mv.run_id else {}
            last = history[-1] if history else None
            rows.append({
                "version": str(mv.version),
                "stage": stages.stage_of(str(mv.version), aliases, mv.tags.get(stages.STAGE_TAG)),
                "test_mae": f"{metrics['test_mae']:.3f}" if "test_mae" in metrics else "",
                "last_transition": (
                    f"{last['when']} {last['from']} -> {last['to']}: {last['why']}" if last else ""
                ),
            })  # fmt: skip
        return rows

    def inconsistencies(self) -> list[str]:
        """Disagreements between the aliases and the versions' stage tags (none expected)."""
        aliases = self.aliases()
        problems = []
        holders = list(aliases.values())
        if len(set(holders)) != len(holders):
            problems.append(f"a version holds two stage aliases: {aliases}")
        for mv in self.store.versions():
            tagged = mv.tags.get(stages.STAGE_TAG, stages.CANDIDATE)
            stage = stages.stage_of(str(mv.version), aliases, tagged)
            if tagged != stage:
                problems.append(f"version {mv.version}: tag stage={tagged} but stage is {stage}")
        return problems
