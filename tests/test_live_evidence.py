"""Live evidence in promotion and retraining on served cars, in a real SQLite Model Registry with
real trained versions; prediction logs and labels synthetic, written with pyarrow in the schema."""

from __future__ import annotations

import re
import uuid

import mlflow
import numpy as np
import pandas as pd
import pytest

from carnn_pyfunc import cli, data
from carnn_pyfunc.config import TrainConfig
from carnn_pyfunc.monitoring.labelled import labelled_rows
from carnn_pyfunc.registry.gates import Gates
from carnn_pyfunc.registry.live import LiveWindow
from carnn_pyfunc.registry.promoter import Promoter
from tests.helpers import LENIENT, registry_of
from tests.synthetic_log import write_labels, write_predictions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(auto_mpg) -> pd.DataFrame:
    """The cars production was asked about (raw fields)."""
    return auto_mpg.drop(columns=[data.TARGET]).head(60)


def answers(name: str, version: str, cars: pd.DataFrame) -> np.ndarray:
    return mlflow.pyfunc.load_model(f"models:/{name}/{version}").predict(cars)["mpg"].to_numpy()


def labelled_log(root, cars: pd.DataFrame, true_mpg, labelled: int | None = None) -> str:
    """A log of one request answering ``cars``, the first ``labelled`` rows labelled."""
    request = write_predictions(root, cars)
    n = len(cars) if labelled is None else labelled
    write_labels(root, request, np.asarray(true_mpg)[:n], rows=range(n))
    return str(root)


def test_a_candidate_worse_than_production_on_live_traffic_is_refused_and_it_is_recorded(
    client, good, poor, served, tmp_path, capsys
):
    name = registry_of(client, poor, good)  # version 2 beats version 1 on the held-out cars
    Promoter(name, gates=LENIENT).promote("1", "auto")
    # the true figures of the served cars turn out to be what version 1 answered
    root = labelled_log(tmp_path / "log", served, answers(name, "1", served))
    live = LiveWindow(labelled_rows(root), window=root)
    promoter = Promoter(name, gates=LENIENT, live=live)

    outcome = promoter.promote("2", "auto")
    assert outcome.refused.startswith(
        "version 2 stays in staging: worse than production on live traffic: live MAE "
    )
    assert f"for production version 1 on the same 60 labelled served cars in {root}" in (
        outcome.refused
    )
    assert promoter.aliases() == {"production": "1", "staging": "2"}
    (refusal,) = promoter.refusals("2")
    assert (refusal["stage"], refusal["to"], refusal["why"]) == (
        "staging",
        "production",
        outcome.refused,
    )
    metrics = refusal["metrics"]
    assert metrics["candidate_mae"] < metrics["production_mae"]  # held out: it beats production
    assert metrics["live_candidate_mae"] > metrics["live_production_mae"]  # live: it does not
    assert metrics["live_production_mae"] < 1e-6
    assert metrics["live_n_rows"] == 60

    # The same through the CLI: the window is read, the reason printed, the refusal recorded.
    code = cli.main(["promote", "--name", name, "--version", "2", "--to", "production",
                     "--max-mae", "50", "--live-log", root,
                     "--live-since", "2026-11-30"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "live window:   60 labelled served cars in" in captured.out
    assert "refused: version 2 stays in staging: worse than production on live traffic" in (
        captured.err
    )
    assert len(promoter.refusals("2")) == 2
    assert promoter.aliases() == {"production": "1", "staging": "2"}

    # A tolerance above the gap lets it through; so does promotion without the live evidence.
    gap = metrics["live_candidate_mae"] - metrics["live_production_mae"]
    tolerant = LiveWindow(live.rows, window=root, tolerance=gap + 0.01)
    assert Promoter(name, gates=LENIENT, live=tolerant).promote("2", "production").refused is None
    assert Promoter(name).aliases()["production"] == "2"


def test_a_candidate_better_on_live_traffic_is_promoted_with_the_evidence_recorded(
    client, good, poor, served, auto_mpg, tmp_path, capsys
):
    name = registry_of(client, poor, good)
    Promoter(name, gates=LENIENT).promote("1", "auto")
    root = labelled_log(tmp_path / "log", served, auto_mpg[data.TARGET].head(60))
    code = cli.main(["promote", "--name", name, "--version", "2", "--max-mae", "50",
                     "--live-log", root])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "version 2: staging -> production" in out
    assert Promoter(name).aliases() == {"production": "2", "previous-production": "1"}
    record = Promoter(name).history("2")[-1]
    assert "; no worse on live traffic: live MAE" in record["why"]
    assert record["metrics"]["live_candidate_mae"] < record["metrics"]["live_production_mae"]
    assert record["metrics"]["live_n_rows"] == 60
    assert Promoter(name).refusals("2") == []


def test_too_few_labelled_cars_skip_the_live_gate_with_a_note(
    client, good, poor, served, tmp_path, capsys
):
    name = registry_of(client, poor, good)
    Promoter(name, gates=LENIENT).promote("1", "auto")
    # only 10 of the 60 served cars are labelled, and on those version 2 is worse
    root = labelled_log(tmp_path / "log", served, answers(name, "1", served), labelled=10)
    code = cli.main(["promote", "--name", name, "--version", "2", "--max-mae", "50",
                     "--live-log", root])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    note = f"live gate skipped: 10 labelled served cars in {root}, fewer than min_live_rows 30"
    assert f"note: {note}" in out
    assert Promoter(name).aliases()["production"] == "2"  # decided by the held-out cars alone
    assert Promoter(name).history("2")[-1]["why"].endswith(note)
    # with a lower minimum the 10 cars count, and they refuse it
    live = LiveWindow(labelled_rows(root), window=root, min_rows=10)
    again = registry_of(client, poor, good)
    Promoter(again, gates=LENIENT).promote("1", "auto")
    assert "worse than production on live traffic" in (
        Promoter(again, gates=LENIENT, live=live).promote("2", "auto").refused
    )


def run_of(out: str):
    run_id = re.search(r"run id:\s+(\w+)", out)[1]
    return mlflow.MlflowClient().get_run(run_id)


def test_extra_data_adds_only_valid_new_cars_and_only_to_training(trained, auto_mpg, tmp_path,
                                                                  capsys):  # fmt: skip
    config, session_run = trained
    new = auto_mpg.iloc[:8].copy()
    new["weight"] += 7  # cars the data file does not have
    new["name"] = [f"served car {i}" for i in range(8)]
    bad = new.iloc[:3].copy()
    bad["name"] = ["bad 0", "bad 1", "bad 2"]
    bad.loc[bad.index[0], "weight"] = -1.0
    bad.loc[bad.index[1], "cylinders"] = 4.5
    bad.loc[bad.index[2], "mpg"] = np.nan
    train, test = data.split(auto_mpg, test_size=config.test_size, seed=config.seed)
    copies = pd.concat([new.iloc[[1, 5]], train.head(1), test.head(1)])  # served twice; known
    extra = pd.concat([new, bad, copies], ignore_index=True)
    path = tmp_path / "labelled.parquet"
    extra.to_parquet(path)

    name = f"carnn-{uuid.uuid4().hex[:8]}"
    code = cli.main(["train", "--epochs", "3", "--ensemble-size", "1", "--seed", str(config.seed),
                     "--registered-model-name", name, "--extra-data", str(path)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert (
        "extra data:    8 of 15 labelled served cars added to training "
        "(3 invalid dropped, 4 duplicates dropped)"
    ) in out
    run = run_of(out)
    params = run.data.params
    assert int(params["n_train"]) == len(train) + 8
    assert int(params["n_test"]) == len(test)
    assert (params["extra_rows_added"], params["extra_rows_invalid"]) == ("8", "3")
    assert params["extra_rows_duplicate"] == "4"
    assert params["extra_data"] == str(path)
    assert run.data.tags["extra_data_sha256"] == data.file_sha256(path)
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    served = inputs["labelled-served-cars"]
    assert served.dataset.digest
    assert {t.key: t.value for t in served.tags}["mlflow.data.context"] == "training"
    # the held-out cars are the data file's, exactly as without extra data
    session = mlflow.MlflowClient().get_run(session_run.run_id)
    tested = {d.dataset.name: d.dataset.digest for d in session.inputs.dataset_inputs}
    assert inputs["auto-mpg-testing"].dataset.digest == tested["auto-mpg-testing"]


def test_an_unusable_extra_data_file_is_refused_before_training(tmp_path, capsys):
    path = tmp_path / "labelled.parquet"
    pd.DataFrame({"weight": [3000.0]}).to_parquet(path)
    assert cli.main(["train", "--extra-data", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"extra_data: {path}: no 'mpg' column" in err
    assert "Traceback" not in err
    assert cli.main(["train", "--extra-data", str(tmp_path / "none.parquet")]) == 2
    assert cli.main(["train", "--live-log", str(tmp_path)]) == 2  # only with --promote
    assert "add --promote" in capsys.readouterr().err


def test_retraining_on_what_production_saw_is_two_commands(client, auto_mpg, tmp_path, capsys):
    """The drill's last step in small: versions trained on cars up to model year 79 serve the
    80-82 cars; their labelled window exported, then `train --extra-data --promote --live-log`:
    the retrained version reaches production because it beats production on both the held-out
    cars and the live ones."""
    from carnn_pyfunc.training.run import run_training

    lines = data.DEFAULT_DATA_PATH.read_text().splitlines(keepends=True)
    older = tmp_path / "auto-mpg-to-79.data"
    older.write_text("".join(line for line in lines if float(line.split()[6]) <= 79))
    name = f"carnn-{uuid.uuid4().hex[:8]}"
    run_training(TrainConfig(epochs=3, patience=0, seed=7, ensemble_size=1,
                             data_path=str(older), registered_model_name=name))  # fmt: skip
    Promoter(name, gates=Gates(max_mae=50.0, data_path=str(older))).promote("1", "auto")

    late = auto_mpg[auto_mpg["year"] >= 80]
    root = labelled_log(tmp_path / "log", late.drop(columns=[data.TARGET]), late[data.TARGET])
    exported = str(tmp_path / "labelled.parquet")
    assert cli.main(["labelled", "--log", root, "--out", exported]) == 0
    code = cli.main(["train", "--epochs", "60", "--ensemble-size", "1", "--seed", "7",
                     "--data-path", str(older), "--registered-model-name", name,
                     "--extra-data", exported, "--promote", "--live-log", root])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    n = len(late)
    assert f"extra data:    {n} of {n} labelled served cars added to training" in out
    assert f"live window:   {n} labelled served cars in {root}" in out
    assert "version 2: staging -> production" in out, out
    record = Promoter(name).history("2")[-1]
    assert "; no worse on live traffic: live MAE" in record["why"]
    assert record["metrics"]["live_n_rows"] == n
