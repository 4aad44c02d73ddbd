"""The rollout's rules (fast tier): a step's evidence against the thresholds, the steps."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from carnn_pyfunc.monitoring.labels import write_labels
from carnn_pyfunc.rollout.checks import Evidence, Thresholds, judge, parse_steps
from carnn_pyfunc.rollout.evidence import evidence, read_window

GOOD = Evidence(requests=100, errors_5xx=0, scored_requests=200, p99_ms=20.0,
                compared_rows=200, disagreeing_rows=1, labelled_rows=100,
                mae_candidate=1.6, mae_production=1.7)  # fmt: skip


def with_(**changes) -> Evidence:
    return Evidence(**{**GOOD.__dict__, **changes})


def test_a_healthy_step_passes():
    assert judge(GOOD, Thresholds()).passed


@pytest.mark.parametrize(
    ("changes", "words"),
    [({"requests": 3}, "answered 3 requests"), ({"errors_5xx": 5}, "5xx rate 2.5%"),
     ({"p99_ms": 900.0}, "p99 latency 900 ms"), ({"disagreeing_rows": 50}, "rows disagree"),
     ({"mae_candidate": 4.6}, "live MAE 4.60 MPG vs production's 1.70")],
)  # fmt: skip
def test_each_failed_check_is_a_reason(changes, words):
    verdict = judge(with_(**changes), Thresholds())
    assert not verdict.passed
    assert any(words in r for r in verdict.reasons), verdict.reasons


def test_live_mae_is_not_judged_on_too_few_labels():
    assert judge(with_(mae_candidate=9.0, labelled_rows=10), Thresholds()).passed


@pytest.mark.parametrize("text", ["", "5,25", "50,25,100", "0,100", "5,x,100", "5,150"])
def test_bad_steps_are_refused(text):
    with pytest.raises(ValueError, match="steps"):
        parse_steps(text)


def test_steps_parse():
    assert parse_steps("5,25,50,100") == [5, 25, 50, 100]


def test_evidence_pairs_each_row_with_the_other_versions_answer():
    rows = []
    for i in range(10):
        canary = i < 4
        rows.append(
            {
                "request_id": f"r{i}",
                "row": 0,
                "role": "canary" if canary else "primary",
                "mpg": 20.0 + (3 if canary else 0),
                "status": 500 if i == 0 else 200,
                "latency_ms": 5.0,
                "model_version": "2" if canary else "1",
            }
        )
        rows.append({"request_id": f"r{i}", "row": 0, "role": "shadow",
                     "mpg": 20.0 + (0 if canary else 3), "status": 200, "latency_ms": 5.0,
                     "model_version": "1" if canary else "2"})  # fmt: skip
    log = pd.DataFrame(rows)
    labels = pd.DataFrame({"request_id": [f"r{i}" for i in range(10)], "row": 0, "mpg": 20.0})
    e = evidence(log, labels, "2", "1", Thresholds())
    assert e.requests == 4
    assert (e.errors_5xx, e.scored_requests) == (1, 10)
    assert (e.compared_rows, e.disagreeing_rows) == (9, 9)
    assert e.mae_candidate == pytest.approx(3.0)
    assert e.mae_production == pytest.approx(0.0)


def test_a_window_is_read_while_labels_are_being_written(tmp_path):
    """Labels arrive while a step is judged: the reader never opens a file still being written
    (CI once caught ``read_window`` opening a ``.partial`` file that was renamed under it)."""
    root = str(tmp_path / "log")
    write_labels(root, [("r0", 0, 20.0)])
    writer = threading.Thread(
        target=lambda: [write_labels(root, [(f"r{n}", 0, 20.0)]) for n in range(1, 200)]
    )
    writer.start()
    counts = []
    while writer.is_alive():
        counts.append(len(read_window(root, 0.0, time.time())[1]))
    writer.join()
    assert len(counts) > 1
    assert counts[0] >= 1
    assert counts == sorted(counts)  # whole files only, never half of one
    assert not list((tmp_path / "log").rglob("*.partial"))


def test_a_command_s_exit_code_is_the_process_exit_code():
    """`carnn rollout` ends a rolled-back rollout with click's Exit(3): main() must return 3,
    not 0 (a Kubernetes Job would be marked Succeeded)."""
    import click

    from carnn_pyfunc import cli

    def rolled_back():
        raise click.exceptions.Exit(3)

    cli.cli.add_command(click.Command("exit-three", callback=rolled_back))
    try:
        assert cli.main(["exit-three"]) == 3
    finally:
        cli.cli.commands.pop("exit-three", None)


def test_a_rollout_that_fails_to_promote_puts_the_traffic_back(tmp_path):
    """Every step passed, then promotion itself failed (say, the held-out data is missing where
    the rollout runs): the share is 0 again and the reason is on the version, not left at 100."""
    import mlflow

    from carnn_pyfunc.rollout.checks import WEIGHT_TAG
    from carnn_pyfunc.rollout.driver import OUTCOME_TAG, Rollout

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")  # a real registry
    client.create_registered_model("cars")
    for _ in range(2):
        client.create_model_version("cars", source=str(tmp_path))
    client.set_registered_model_alias("cars", "production", "1")
    client.set_registered_model_alias("cars", "canary", "2")

    def promote(version: str, reason: str):
        raise FileNotFoundError("auto-mpg.data")

    lines = []
    run = Rollout("cars", str(tmp_path / "log"), [50, 100], interval_s=0.0, client=client,
                  thresholds=Thresholds(min_requests=0), promote=promote, echo=lines.append,
                  servable=lambda uri: (True, ""))  # fmt: skip
    result = run.run()
    assert not result.promoted
    assert client.get_registered_model("cars").tags[WEIGHT_TAG] == "0"
    outcome = client.get_model_version("cars", "2").tags[OUTCOME_TAG]
    assert "FileNotFoundError" in outcome
    assert "auto-mpg.data" in outcome
    assert str(client.get_model_version_by_alias("cars", "production").version) == "1"
