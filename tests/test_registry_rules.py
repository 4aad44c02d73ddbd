"""The registry's pieces without trained models: the stage rules on plain dicts, the undo of a
failed promotion, the lock against a real SQLite store, names that need quoting."""

from __future__ import annotations

import contextlib
import time
import uuid

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from carnn_pyfunc.registry import stages
from carnn_pyfunc.registry.lock import GUARD_SUFFIX, HEARTBEAT_TAG, LOCK_SUFFIX, RegistryLock
from carnn_pyfunc.registry.promoter import Promoter
from carnn_pyfunc.registry.stages import PromotionRefused
from carnn_pyfunc.registry.store import Step, apply_steps, versions_of

GATES = ("passes the gates", {"test_mae": 1.6})


def plan(aliases, to="auto", comparison=None, stage="candidate", **kwargs):
    return stages.plan_promotion(
        "3", stage, to, aliases, staging_why=GATES[0] if stage == "candidate" else None,
        gate_metrics=GATES[1] if stage == "candidate" else None, comparison=comparison, **kwargs,
    )  # fmt: skip


def test_the_first_version_through_the_gates_goes_to_production():
    transitions, refused = plan({})
    assert refused is None
    assert [(t.version, t.source, t.target) for t in transitions] == [
        ("3", "candidate", "staging"),
        ("3", "staging", "production"),
    ]


def test_a_better_version_displaces_production_and_archives_previous():
    aliases = {"production": "2", "previous-production": "1", "staging": "4"}
    transitions, _ = plan(aliases, comparison=(True, "beats production", {}))
    assert [(t.version, t.source, t.target) for t in transitions] == [
        ("3", "candidate", "staging"),
        ("4", "staging", "candidate"),
        ("3", "staging", "production"),
        ("2", "production", "previous-production"),
        ("1", "previous-production", "archived"),
    ]
    assert stages.moved(aliases, transitions) == {"production": "3", "previous-production": "2"}


def test_planning_does_not_change_the_callers_aliases():
    aliases = {"production": "2", "staging": "4"}
    plan(aliases, comparison=(True, "beats production", {}))
    assert aliases == {"production": "2", "staging": "4"}
    stages.into("staging", "3", "candidate", "why", {}, aliases)
    assert aliases == {"production": "2", "staging": "4"}


def test_a_version_that_does_not_beat_production_stays_in_staging_unless_forced():
    worse = (False, "does not beat production", {"candidate_mae": 2.0})
    transitions, refused = plan({"production": "2"}, comparison=worse)
    assert [t.target for t in transitions] == ["staging"]
    assert refused == "version 3 stays in staging: does not beat production"
    forced, refused = plan({"production": "2"}, comparison=worse, force=True, reason="hotfix")
    assert refused is None
    assert forced[-2].why == "forced (does not beat production): hotfix"


@pytest.mark.parametrize(
    ("stage", "to", "message"),
    [
        ("production", "auto", "already in production"),
        ("staging", "staging", "already in staging"),
        ("candidate", "production", "promote it to staging first"),
        ("archived", "production", "promote it to staging first"),
    ],
)
def test_the_order_of_stages_is_enforced(stage, to, message):
    with pytest.raises(PromotionRefused, match=message):
        stages.check_order("3", stage, to)


@pytest.mark.parametrize(
    ("to", "force", "reason", "message"),
    [("live", False, "", "to: expected one of"), ("auto", True, " ", "--force needs --reason")],
)
def test_malformed_requests_are_refused(to, force, reason, message):
    with pytest.raises(PromotionRefused, match=message):
        stages.check_arguments(to, force=force, reason=reason)


def test_rollback_swaps_production_and_previous():
    transitions = stages.plan_rollback({"production": "2", "previous-production": "1"}, "bad")
    assert stages.moved({"production": "2", "previous-production": "1"}, transitions) == {
        "production": "1",
        "previous-production": "2",
    }
    with pytest.raises(PromotionRefused, match="previous-production is unset"):
        stages.plan_rollback({"production": "2"})


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_any_failure_halfway_undoes_every_write_before_it(error):
    log: list[str] = []

    def failing() -> None:
        raise error

    steps = [
        Step(lambda: log.append("do 1"), lambda: log.append("undo 1")),
        Step(lambda: log.append("do 2"), lambda: log.append("undo 2")),
        Step(failing, lambda: log.append("undo 3")),
    ]
    with pytest.raises(type(error)):
        apply_steps(steps)
    assert log == ["do 1", "do 2", "undo 2", "undo 1"]


def test_a_failing_undo_does_not_stop_the_other_undos():
    log: list[str] = []

    def broken() -> None:
        raise MlflowException("registry unreachable")

    def failing() -> None:
        raise MlflowException("tag too long")

    steps = [
        Step(lambda: log.append("do 1"), lambda: log.append("undo 1")),
        Step(lambda: log.append("do 2"), broken),
        Step(failing, lambda: log.append("undo 3")),
    ]
    with pytest.raises(MlflowException, match="tag too long"):
        apply_steps(steps)
    assert log == ["do 1", "do 2", "undo 1"]


@pytest.fixture
def client(tracking_uri):
    return mlflow.MlflowClient()


@pytest.mark.parametrize("name", ["o'brien's carnn", 'the "best" carnn', "100%_carnn\\x"])
def test_registry_reads_work_for_names_that_need_quoting(client, name):
    client.create_registered_model(name)
    client.create_registered_model(name.replace("carnn", "other"))  # a near name: not matched
    for _ in range(2):
        client.create_model_version(name, "file:///nowhere/model")
    assert sorted(int(mv.version) for mv in versions_of(client, name)) == [1, 2]
    promoter = Promoter(name, client=client)
    assert promoter.resolve("latest") == "2"
    assert [row["version"] for row in promoter.table()] == ["2", "1"]
    assert promoter.inconsistencies() == []


class InterleavingClient(mlflow.MlflowClient):
    """A real client; the first time it takes ``target`` (the guard: it is about to delete the
    lock it judged stale), other processes act right before."""

    def __init__(self, target: str, meanwhile) -> None:
        super().__init__()
        self.target, self.meanwhile = target, meanwhile

    def create_registered_model(self, name, *args, **kwargs):
        if name == self.target and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return super().create_registered_model(name, *args, **kwargs)


def test_breaking_a_stale_lock_never_deletes_a_fresh_one_taken_meanwhile(client):
    name = f"carnn-{uuid.uuid4().hex[:8]}"
    lock = name + LOCK_SUFFIX
    client.create_registered_model(lock, description="held by a process that hangs")
    fresh = RegistryLock(client, name, beat_s=0.05)
    with contextlib.ExitStack() as fresh_holds:

        def owner_releases_and_another_promotion_takes_it() -> None:
            client.delete_registered_model(lock)
            fresh_holds.enter_context(fresh.held())

        breaker = Promoter(
            name,
            client=InterleavingClient(
                lock + GUARD_SUFFIX, owner_releases_and_another_promotion_takes_it
            ),
            stale_lock_s=0.5,  # the hanging lock is judged stale after 0.5 s unchanged
            lock_timeout_s=2.0,  # the fresh one renews: never stale
        )
        with (
            pytest.raises(PromotionRefused, match="another promotion holds the lock"),
            breaker.locked(),
        ):
            pass
        assert breaker.client.meanwhile is None  # it judged the hanging lock stale, and then
        assert client.get_registered_model(lock).description == fresh.token  # left the fresh one


@pytest.mark.parametrize("skew_s", [6 * 3600.0, -6 * 3600.0])
def test_a_live_holder_is_never_broken_whatever_the_clocks_say(client, skew_s):
    """Holder and waiter disagree by 12 hours (and with the store); the holder renews, so the
    waiter, which waits well past the stale interval, never breaks its lock."""
    name = f"carnn-{uuid.uuid4().hex[:8]}"
    holder = RegistryLock(client, name, beat_s=0.1, clock=lambda: time.monotonic() + skew_s)
    waiter = RegistryLock(
        client,
        name,
        stale_s=0.6,
        timeout_s=2.0,
        poll_s=0.05,
        clock=lambda: time.monotonic() - skew_s,
    )
    with holder.held():
        with (
            pytest.raises(PromotionRefused, match="another promotion holds the lock"),
            waiter.held(),
        ):
            pass
        assert client.get_registered_model(name + LOCK_SUFFIX).description == holder.token
        assert holder.heartbeat.beats >= 3


def test_a_holder_that_stops_renewing_is_broken_after_the_stale_interval(client, caplog):
    name = f"carnn-{uuid.uuid4().hex[:8]}"
    lock = name + LOCK_SUFFIX
    holder = RegistryLock(client, name, beat_s=0.05)
    waiter = RegistryLock(client, name, stale_s=0.5, timeout_s=10.0, poll_s=0.05)
    holding = holder.held()
    holding.__enter__()
    holder.heartbeat.stop()  # its process hangs: no more heartbeats
    start = time.monotonic()
    with waiter.held():
        waited = time.monotonic() - start
        assert client.get_registered_model(lock).description == waiter.token
        holding.__exit__(None, None, None)  # the hung holder wakes: it leaves the new lock alone
        assert client.get_registered_model(lock).description == waiter.token
    assert 0.5 <= waited < 10.0
    assert "no longer ours at release" in caplog.text


@pytest.mark.parametrize("fails", [False, True])
def test_release_stops_the_heartbeat(client, fails):
    name = f"carnn-{uuid.uuid4().hex[:8]}"
    lock = name + LOCK_SUFFIX
    holder = RegistryLock(client, name, beat_s=0.05)
    with contextlib.suppress(RuntimeError), holder.held():
        deadline = time.monotonic() + 10
        while holder.heartbeat.beats < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert int(client.get_registered_model(lock).tags[HEARTBEAT_TAG]) >= 2  # renewed
        if fails:
            raise RuntimeError("the promotion failed")
    assert not holder.heartbeat.thread.is_alive()
    client.create_registered_model(lock, description="held by the next promotion")
    time.sleep(0.3)  # six beats' time
    assert client.get_registered_model(lock).tags == {}  # nobody renews it but its holder


def test_a_heartbeat_stops_when_its_lock_was_broken(client):
    name = f"carnn-{uuid.uuid4().hex[:8]}"
    lock = name + LOCK_SUFFIX
    holder = RegistryLock(client, name, beat_s=0.05)
    with holder.held():
        # meanwhile another process judged ours stale, broke it and took the lock
        client.delete_registered_model(lock)
        client.create_registered_model(lock, description="held by the next promotion")
        holder.heartbeat.thread.join(timeout=10)
        assert not holder.heartbeat.thread.is_alive()
        assert client.get_registered_model(lock).tags == {}  # the other's lock is left as it is


def test_a_lock_broken_as_stale_is_not_deleted_by_its_old_holder(client):
    name = f"carnn-{uuid.uuid4().hex[:8]}"
    lock = name + LOCK_SUFFIX
    with Promoter(name, client=client).locked():
        # meanwhile another process judged ours stale, broke it and took the lock
        client.delete_registered_model(lock)
        client.create_registered_model(lock, description="held by the next promotion")
    assert client.get_registered_model(lock).description == "held by the next promotion"
    client.delete_registered_model(lock)
    with Promoter(name, client=client).locked():  # our own lock is released as usual
        assert client.get_registered_model(lock)
    with pytest.raises(MlflowException, match=r"RESOURCE_DOES_NOT_EXIST|not found"):
        client.get_registered_model(lock)


WINDOW = "log since 2026-12-01 00:00"


def live(candidate_mae, production_mae=2.0, finite=1.0, tolerance=0.0):
    return stages.live_verdict(
        "3", "2", {"mae": candidate_mae, "finite_share": finite, "n_rows": 40.0},
        {"mae": production_mae, "finite_share": 1.0, "n_rows": 40.0},
        tolerance=tolerance, window=WINDOW,
    )  # fmt: skip


def test_the_live_gate_refuses_only_a_candidate_worse_than_production():
    ok, why, metrics = live(2.5)
    assert not ok
    assert why == (
        "worse than production on live traffic: live MAE 2.500 vs 2.000 MPG for production "
        f"version 2 on the same 40 labelled served cars in {WINDOW}"
    )
    assert metrics == {"live_candidate_mae": 2.5, "live_production_mae": 2.0,
                       "live_n_rows": 40.0, "live_tolerance": 0.0}  # fmt: skip
    assert live(2.0)[0]  # as good as production on live traffic is not worse
    assert live(1.5)[1].startswith("no worse on live traffic: live MAE 1.500 vs 2.000")
    assert live(2.4, tolerance=0.5)[0]
    assert live(2.6, tolerance=0.5)[1].endswith("(tolerance 0.5)")
    assert live(1.0, finite=0.95)[:2] == (
        False,
        "5.0% of its answers on 40 labelled served cars are not finite",
    )


def test_too_few_labelled_cars_skip_the_live_gate_with_a_note():
    assert stages.live_skipped(30, 30, WINDOW) is None
    verdict, note, metrics = stages.live_skipped(29, 30, WINDOW)
    assert verdict is None
    assert note == (
        f"live gate skipped: 29 labelled served cars in {WINDOW}, fewer than min_live_rows 30"
    )
    assert metrics == {"live_n_rows": 29.0}


def test_the_live_verdict_folds_into_the_production_comparison():
    beats = (True, "beats production: MAE 1.9 vs 2.1", {"candidate_mae": 1.9})
    refused = stages.with_live(beats, live(2.5))
    assert refused[0] is False
    assert refused[1].startswith("worse than production on live traffic")
    assert refused[2]["candidate_mae"] == 1.9
    assert refused[2]["live_candidate_mae"] == 2.5
    skipped = stages.with_live(beats, stages.live_skipped(3, 30, WINDOW))
    assert skipped[0] is True
    note = f"live gate skipped: 3 labelled served cars in {WINDOW}, fewer than min_live_rows 30"
    assert skipped[1] == f"{beats[1]}; {note}"
    passed = stages.with_live(beats, live(1.5))
    assert passed[0]
    assert "; no worse on live traffic" in passed[1]
    behind = (False, "does not beat production: MAE 2.3 vs 2.1", {})
    assert stages.with_live(behind, live(1.5))[0] is False
    assert stages.with_live(beats, None) == beats
    assert stages.with_live(None, live(2.5)) is None  # no production: nothing to compare with

    transitions, why = plan({"production": "2"}, comparison=refused)
    assert [t.target for t in transitions] == ["staging"]
    assert why.startswith("version 3 stays in staging: worse than production on live traffic")
    forced, why = plan({"production": "2"}, comparison=refused, force=True, reason="hotfix")
    assert why is None
    assert forced[-2].why.startswith("forced (worse than production on live")


def test_a_refusal_is_recorded_as_a_json_record():
    refusal = stages.Refusal("3", "staging", "production", "worse on live traffic", {"n": 1.0})
    assert refusal.record() == {
        "stage": "staging",
        "to": "production",
        "when": refusal.when,
        "why": "worse on live traffic",
        "metrics": {"n": 1.0},
    }
