"""Cross-validation against baselines, and the Optuna sweep, logged to a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest

from carnn_pyfunc.cli import main
from carnn_pyfunc.config import LOSSES, SCHEDULES, TARGETS, TrainConfig
from carnn_pyfunc.contract import fit_contract
from carnn_pyfunc.training.baselines import BASELINES, TUNED, tree_columns, tuned_fit_predict
from carnn_pyfunc.training.evaluation import (
    NETWORK,
    cv_splits,
    network_fit_predict,
    run_evaluation,
    summarise,
)
from carnn_pyfunc.training.fit import fit_model
from carnn_pyfunc.training.sweep import run_sweep, suggest

TINY = {"epochs": 8, "patience": 0, "ensemble_size": 2}


def test_folds_are_deterministic_disjoint_and_cover_every_row():
    a = cv_splits(398, folds=5, repeats=2, seed=3)
    b = cv_splits(398, folds=5, repeats=2, seed=3)
    assert len(a) == 10
    for (train_a, test_a), (train_b, test_b) in zip(a, b, strict=True):
        np.testing.assert_array_equal(train_a, train_b)
        np.testing.assert_array_equal(test_a, test_b)
        assert not set(train_a) & set(test_a)
    first_repeat = np.sort(np.concatenate([test for _, test in a[:5]]))
    np.testing.assert_array_equal(first_repeat, np.arange(398))
    other = cv_splits(398, folds=5, repeats=1, seed=4)
    assert not np.array_equal(other[0][1], a[0][1])


def test_summary_is_mean_and_sample_std():
    summary = summarise(
        [{"mae": 1.0, "rmse": 2.0, "r2": 0.5}, {"mae": 3.0, "rmse": 2.0, "r2": 0.7}]
    )
    assert summary["cv_mae"] == 2.0
    assert summary["cv_mae_std"] == pytest.approx(np.sqrt(2.0))
    assert summary["cv_rmse_std"] == 0.0


def test_tree_baselines_see_the_year_as_a_number_only(auto_mpg):
    contract = fit_contract(auto_mpg, min_maker_count=10)
    names = [contract.feature_names[j] for j in tree_columns(contract)]
    assert "year" in names
    assert "weight" in names
    assert "rotary" in names
    assert "maker_other" in names
    assert not [n for n in names if n.startswith(("year_", "log_"))]
    assert len(names) == contract.n_features - len(contract.years) - 3


@pytest.mark.parametrize("args", [["--folds", "1"], ["--repeats", "0"], ["--seed", "-1"]])
def test_evaluate_rejects_bad_parameters(capsys, args):
    assert main(["evaluate", *args]) == 2
    assert args[0] in capsys.readouterr().err


@pytest.mark.slow
def test_evaluation_logs_comparable_nested_runs(tracking_uri):
    mlflow.set_experiment("carnn-eval-test")
    summaries = run_evaluation(TrainConfig(**TINY), folds=3, repeats=1, seed=1, baseline_trials=2)
    assert set(summaries) == {NETWORK, *BASELINES, *TUNED}
    client = mlflow.MlflowClient()
    parent = client.search_runs(
        [mlflow.get_experiment_by_name("carnn-eval-test").experiment_id],
        "tags.mlflow.runName = 'evaluate'",
    )[0]
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert {run.data.tags["model"] for run in children} == set(summaries)
    for run in children:
        name = run.data.tags["model"]
        for metric in ("cv_mae", "cv_mae_std", "cv_rmse", "cv_rmse_std", "cv_r2", "cv_r2_std"):
            assert run.data.metrics[metric] == pytest.approx(summaries[name][metric])
        assert len(client.get_metric_history(run.info.run_id, "fold_mae")) == 3
    saved = json.loads(
        Path(client.download_artifacts(parent.info.run_id, "cv_summary.json")).read_text()
    )
    assert saved == summaries  # JSON keeps every float exactly
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "cv_comparison.png" in artifacts
    # The baselines are real models: better than always predicting the mean (MAE ~6.5 MPG).
    assert summaries["random_forest"]["cv_mae"] < 2.5
    assert summaries["ridge"]["cv_r2"] > 0.7
    forest = next(r for r in children if r.data.tags["model"] == "random_forest")
    assert forest.data.params["features"] == "tree_columns"
    tuned = next(r for r in children if r.data.tags["model"] == "random_forest_tuned")
    assert tuned.data.params["trials"] == "2"
    # The network's 90% interval: coverage and width per fold and overall, beside a constant one.
    network = summaries[NETWORK]
    for key in ("cv_interval_coverage", "cv_interval_width", "cv_constant_interval_width"):
        assert key in network
    assert 0.5 < network["cv_interval_coverage"] <= 1.0
    assert network["cv_interval_width"] > 0
    assert parent.data.metrics["cv_interval_coverage"] == network["cv_interval_coverage"]


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_point_of_the_search_space_is_a_valid_config(loss, target, schedule):
    params = {"hidden_units": 16, "hidden_layers": 3, "learning_rate": 1e-2, "batch_size": 64,
              "lr_schedule": schedule, "dropout": 0.3, "l2": 1e-6, "loss": loss,
              "target": target}  # fmt: skip
    config = suggest(optuna.trial.FixedTrial(params), TrainConfig())
    assert (config.loss, config.target, config.lr_schedule) == (loss, target, schedule)
    assert config.hidden_layers == 3


@pytest.mark.slow
def test_sweep_runs_trials_and_registers_the_best(tracking_uri):
    mlflow.set_experiment("carnn-sweep-test")
    base = TrainConfig(**TINY, registered_model_name="carnn-sweep-test")
    best, cv_mae, result = run_sweep(base, trials=2, timeout_s=300, folds=2, seed=3)
    client = mlflow.MlflowClient()
    experiment = mlflow.get_experiment_by_name("carnn-sweep-test").experiment_id
    parent = client.search_runs([experiment], "tags.mlflow.runName = 'sweep'")[0]
    trials = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    trial_maes = [r.data.metrics["cv_mae"] for r in trials if "cv_mae" in r.data.metrics]
    assert len(trial_maes) == 2
    assert parent.data.metrics["best_cv_mae"] == pytest.approx(min(trial_maes)) == cv_mae
    assert parent.data.params["best_hidden_units"] == str(best.hidden_units)
    version = client.get_model_version("carnn-sweep-test", result.registered_version)
    assert client.get_run(version.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert client.get_run(version.run_id).data.params["hidden_units"] == str(best.hidden_units)


def test_cross_validation_scores_the_compiled_forward_that_serving_runs(auto_mpg):
    """Evaluate what is served: the fold's predictions are the TFLite forward's, to the bit."""
    from carnn_pyfunc.model.forward import compile_forward

    config = TrainConfig(epochs=3, ensemble_size=1, hidden_units=8, seed=3)
    train, test = (
        auto_mpg.iloc[:300].reset_index(drop=True),
        auto_mpg.iloc[300:].reset_index(drop=True),
    )
    predicted = network_fit_predict(config)(train, test, 0)
    contract = fit_contract(train, min_maker_count=config.min_maker_count)
    fitted = fit_model(config, train)  # the same seeded fit again: the network it served
    served = compile_forward(fitted.network, contract.n_features)(contract.transform(test))
    np.testing.assert_array_equal(predicted.mpg, served.astype(np.float64))
    low, high = predicted.intervals["interval"]
    assert (low < predicted.mpg).all()
    assert (predicted.mpg < high).all()


def test_a_tuned_baseline_never_sees_the_held_out_fold(auto_mpg):
    """Tuning inside the training fold: the same training rows with two different held-out sets
    pick the same hyperparameters and so make the same prediction for a car they share."""
    make, columns = TUNED["hist_gradient_boosting_tuned"]
    fit_predict = tuned_fit_predict(make, min_maker_count=10, columns=columns, trials=3)
    cars = auto_mpg.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, shared = cars.iloc[:300], cars.iloc[[300]]
    first = fit_predict(train, pd.concat([shared, cars.iloc[301:340]]), 0)
    second = fit_predict(train, pd.concat([shared, cars.iloc[340:]]), 0)
    assert first[0] == second[0]
    assert np.abs(first[1:] - cars["mpg"].iloc[301:340].to_numpy()).mean() < 3.5
