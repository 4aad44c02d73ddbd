"""One real training run: what it logs, and the pyfunc model it registers."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.exceptions import MlflowException

from carnn_pyfunc import data
from carnn_pyfunc.contract import load_contract
from carnn_pyfunc.versions import model_requirements
from tests.helpers import SEED_RECORD, as_frame, subprocess_env


@pytest.fixture(scope="module")
def test_split(trained, auto_mpg):
    config, _ = trained
    return data.split(auto_mpg, test_size=config.test_size, seed=config.seed)[1]


@pytest.fixture(scope="module")
def run(trained):
    _, result = trained
    return mlflow.MlflowClient().get_run(result.run_id)


@pytest.fixture(scope="module")
def model_dir(trained, tmp_path_factory):
    _, result = trained
    return mlflow.artifacts.download_artifacts(
        result.model_uri, dst_path=str(tmp_path_factory.mktemp("model"))
    )


def test_run_logs_every_hyperparameter(trained, run):
    config, _ = trained
    for name in ("epochs", "batch_size", "learning_rate", "hidden_units", "seed", "test_size"):
        assert run.data.params[name] == str(getattr(config, name))


def test_run_logs_per_epoch_curves_and_final_metrics(trained, run):
    config, result = trained
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_mae")
    assert [m.step for m in history] == list(range(config.epochs))
    for name in ("loss", "mae", "val_loss"):
        assert len(mlflow.MlflowClient().get_metric_history(run.info.run_id, name)) == config.epochs
    for name in ("test_mae", "test_rmse", "test_r2"):
        assert run.data.metrics[name] == pytest.approx(result.metrics[name])
    assert 0 < run.data.metrics["test_mae"] < 5  # a learned model, not a constant
    assert run.data.metrics["test_r2"] > 0.6


def test_run_records_lineage(run):
    assert run.data.tags["data_sha256"] == data.file_sha256(data.DEFAULT_DATA_PATH)
    assert len(run.data.tags["git_commit"]) == 40
    inputs = {d.tags[0].value: d.dataset for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"training", "testing"}
    assert inputs["training"].digest
    assert inputs["training"].source_type == "local"
    assert "auto-mpg.data" in inputs["training"].source


def test_run_logs_plots_and_contract(run):
    client = mlflow.MlflowClient()
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {
        "plots/learning_curves.png",
        "plots/predicted_vs_actual.png",
        "plots/residuals.png",
    }
    local = client.download_artifacts(run.info.run_id, "plots/residuals.png")
    with open(local, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    contract = json.loads(
        Path(client.download_artifacts(run.info.run_id, "contract.json")).read_text()
    )
    assert contract["required_fields"] == [
        "cylinders", "displacement", "weight", "acceleration", "year",
    ]  # fmt: skip


def test_model_is_registered_as_a_version(trained):
    _, result = trained
    version = mlflow.MlflowClient().get_model_version("carnn-test", result.registered_version)
    assert version.run_id == result.run_id
    assert result.model_uri == f"models:/carnn-test/{result.registered_version}"


def test_model_is_logged_from_code_with_its_artifacts_and_pins(model_dir):
    mlmodel = yaml.safe_load(Path(model_dir, "MLmodel").read_text())
    pyfunc = mlmodel["flavors"]["python_function"]
    assert pyfunc["model_code_path"].endswith("model_code.py")
    assert pyfunc["code"] == "code"
    assert "python_model.pkl" not in str(pyfunc)
    artifacts = {name: spec["path"] for name, spec in pyfunc["artifacts"].items()}
    assert artifacts == {
        "network": "artifacts/model.keras",
        "forward": "artifacts/model.tflite",
        "contract": "artifacts/contract.json",
        "calibration": "artifacts/calibration.json",
        "profile": "artifacts/profile.json",  # the reference profile (monitoring)
        "format": "artifacts/model_format.json",  # the model format (carnn_pyfunc.formats)
    }
    requirements = Path(model_dir, "requirements.txt").read_text().split()
    for pin in model_requirements():
        assert pin in requirements
    names = {r.split("==")[0] for r in requirements}
    assert {"ai-edge-litert", "mlflow-skinny", "pandas", "numpy"} <= names
    assert not names & {"tensorflow", "keras", "scikit-learn", "mlflow"}  # serving needs none
    assert (mlmodel.get("saved_input_example_info") or {}).get("type") == "dataframe"
    # served: the flatbuffer compiled at training time, on LiteRT
    assert pyfunc["config"] == {"forward": "litert", "forward_threads": 0, "tf_threads": 1}


def test_signature_has_required_and_optional_fields(loaded_model):
    inputs = {c.name: c for c in loaded_model.metadata.get_input_schema().inputs}
    required = {n for n, c in inputs.items() if c.required}
    assert required == {"cylinders", "displacement", "weight", "acceleration", "year"}
    assert set(inputs) - required == {"horsepower", "origin", "name"}
    assert inputs["name"].type.name == "string"
    outputs = loaded_model.metadata.get_output_schema().input_names()
    assert outputs == ["mpg", "mpg_low", "mpg_high", "error"]
    params = [p.name for p in loaded_model.metadata.get_params_schema().params]
    assert params == ["errors", "interval"]


def test_pyfunc_equals_the_network_it_carries(loaded_model, model_dir, test_split):
    network = keras.saving.load_model(f"{model_dir}/artifacts/model.keras", compile=False)
    contract = load_contract(f"{model_dir}/artifacts/contract.json")
    features = contract.transform(test_split)
    expected = network.predict(features, verbose=0)[:, 0]
    predicted = loaded_model.predict(test_split.drop(columns=["mpg"]))
    assert list(predicted.columns) == ["mpg"]
    np.testing.assert_allclose(predicted["mpg"].to_numpy(), expected, atol=1e-4)


@pytest.mark.parametrize("forward", ["litert", "tflite", "tf_function"])
def test_fast_path_equals_keras_predict_for_one_and_many_rows(
    trained, model_dir, test_split, forward
):
    _, result = trained
    model = mlflow.pyfunc.load_model(result.model_uri, model_config={"forward": forward})
    network = keras.saving.load_model(f"{model_dir}/artifacts/model.keras", compile=False)
    contract = load_contract(f"{model_dir}/artifacts/contract.json")
    many = test_split.sample(100_000, replace=True, random_state=0).reset_index(drop=True)
    # 1 row, a few, 1,024 (the first size run on every core), then many (blocks of 8,192 and a
    # remainder), then 1 row again: every change of batch size re-plans a TFLite interpreter
    for frame in (
        test_split.head(1),
        test_split.head(7),
        many.head(1024),
        many,
        test_split.tail(1),
    ):
        expected = network.predict(contract.transform(frame), verbose=0, batch_size=8192)[:, 0]
        predicted = model.predict(frame.drop(columns=["mpg"]))["mpg"].to_numpy()
        assert predicted.shape == expected.shape
        np.testing.assert_allclose(predicted, expected, atol=1e-4)


def test_concurrent_predictions_equal_serial_ones(loaded_model, test_split):
    """The server calls predict from several threads at once (one TFLite interpreter)."""
    records = test_split.drop(columns=["mpg"]).reset_index(drop=True)
    batches = [records.iloc[i % len(records) : i % len(records) + 1 + i % 9] for i in range(64)]
    serial = [loaded_model.predict(batch)["mpg"].to_numpy() for batch in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            concurrent = list(
                pool.map(lambda b: loaded_model.predict(b)["mpg"].to_numpy(), batches)
            )
            for got, want in zip(concurrent, serial, strict=True):
                np.testing.assert_array_equal(got, want)


def test_unknown_forward_engine_is_a_named_error(trained):
    _, result = trained
    with pytest.raises(ValueError, match="forward: 'onnx' is not one of"):
        mlflow.pyfunc.load_model(result.model_uri, model_config={"forward": "onnx"})


@pytest.mark.slow
def test_fresh_process_loads_and_predicts_the_same(trained, loaded_model, test_split, tmp_path):
    _, result = trained
    records = test_split.drop(columns=["mpg"])
    records.to_json(tmp_path / "in.json", orient="records")
    script = (
        "import sys, mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "records = pd.read_json(sys.argv[2], orient='records', dtype={'name': str}).astype(\n"
        "    {c: float for c in ['cylinders', 'displacement', 'horsepower', 'weight',\n"
        "                        'acceleration', 'year', 'origin']})\n"
        "model.predict(records).to_json(sys.argv[3], orient='records', double_precision=15)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, result.model_uri, tmp_path / "in.json", tmp_path / "o.json"],
        env=subprocess_env(mlflow.get_tracking_uri()),
        check=True,
        timeout=300,
    )
    fresh = pd.read_json(tmp_path / "o.json", orient="records")["mpg"].to_numpy()
    in_process = loaded_model.predict(records)["mpg"].to_numpy()
    np.testing.assert_allclose(fresh, in_process, rtol=1e-12)


def test_seed_payload_gives_a_plausible_mpg(loaded_model):
    mpg = loaded_model.predict(as_frame([SEED_RECORD]))["mpg"].iloc[0]
    assert 8 < mpg < 25  # a 1975 3,500 lb V8


def test_heavier_car_gets_lower_mpg(loaded_model):
    light, heavy = dict(SEED_RECORD, weight=2200), dict(SEED_RECORD, weight=4800)
    mpg = loaded_model.predict(as_frame([light, heavy]))["mpg"].to_numpy()
    assert mpg[0] > mpg[1]


def test_row_order_does_not_change_a_rows_prediction(loaded_model, test_split):
    records = test_split.drop(columns=["mpg"]).head(50)
    forward = loaded_model.predict(records)["mpg"].to_numpy()
    backward = loaded_model.predict(records.iloc[::-1])["mpg"].to_numpy()
    np.testing.assert_allclose(backward[::-1], forward, rtol=1e-6)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weight": -3504.0}, "weight: row 0"),
        ({"origin": 5.0}, "origin: row 0"),
        ({"cylinders": 0.0}, "cylinders: row 0"),
    ],
)
def test_invalid_records_raise_invalid_parameter_value(loaded_model, changes, message):
    with pytest.raises(MlflowException, match=message) as info:
        loaded_model.predict(as_frame([{**SEED_RECORD, **changes}]))
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_errors_column_scores_every_good_row_and_names_each_bad_one(loaded_model, test_split):
    records = test_split.drop(columns=["mpg"]).head(100).reset_index(drop=True)
    records = records.astype({"weight": object, "name": object})
    expected = loaded_model.predict(records.astype({"weight": "float64", "name": "string"}))
    broken = records.copy()
    broken.loc[3, "weight"] = "heavy"
    broken.loc[10, "year"] = 76.5
    broken.loc[20, "origin"] = 9.0
    broken.loc[30, "name"] = ["not", "a", "name"]
    # the model's own predict: MLflow's schema enforcement would refuse the text in a number
    # column for the whole batch before the model sees it (batch scoring calls the model itself)
    answer = loaded_model.unwrap_python_model().predict(None, broken, {"errors": "column"})
    assert list(answer.columns) == ["mpg", "error"]
    assert len(answer) == len(records)
    bad = {3: "weight: has 'heavy'", 10: "year: has 76.5", 20: "origin: has 9", 30: "name: has"}
    for row, start in bad.items():
        assert answer["error"][row].startswith(start)
        assert np.isnan(answer["mpg"][row])
    good = [i for i in range(len(records)) if i not in bad]
    assert answer["error"][good].isna().all()
    np.testing.assert_allclose(answer["mpg"][good], expected["mpg"][good], rtol=1e-6)


def test_errors_column_still_refuses_a_missing_required_column(loaded_model, test_split):
    records = test_split.drop(columns=["mpg", "weight"]).head(5)
    model = loaded_model.unwrap_python_model()
    with pytest.raises(MlflowException, match=r"^weight: missing required field"):
        model.predict(None, records, {"errors": "column"})
    with pytest.raises(MlflowException, match=r"errors: 'ignore' is not one of raise, column"):
        model.predict(None, records, {"errors": "ignore"})


def test_errors_column_through_mlflows_predict_for_values_out_of_range(loaded_model, test_split):
    records = test_split.drop(columns=["mpg"]).head(10).reset_index(drop=True)
    broken = records.copy()
    broken.loc[4, "weight"] = -1.0
    answer = loaded_model.predict(broken, params={"errors": "column"})
    assert answer["error"][4] == "weight: has -1; expected pounds, from 200 to 20000"
    assert answer["error"].isna().sum() == 9
    np.testing.assert_allclose(
        answer["mpg"].drop(index=4), loaded_model.predict(records)["mpg"].drop(index=4), rtol=1e-6
    )


@pytest.mark.parametrize("rows", [8192, 8192 + 1023, 8192 + 1024, 3 * 8192 + 17])
def test_block_by_block_scoring_equals_one_pass_over_the_whole_matrix(loaded_model, test_split,
                                                                      rows):  # fmt: skip
    """Large batches are encoded and run a block at a time; each row's MPG is the bit it was
    when the whole input matrix went through the network at once (errors mode too)."""
    model = loaded_model.unwrap_python_model()
    cars = test_split.drop(columns=[data.TARGET]).sample(rows, replace=True, random_state=rows)
    cars = cars.reset_index(drop=True)
    whole = model.forward(model.contract.transform(cars)).astype(np.float64)
    np.testing.assert_array_equal(model.answer(cars)["mpg"], whole)
    broken = cars.copy()
    broken.loc[::97, "weight"] = -1.0
    answer = model.answer(broken, {"errors": "column"})
    valid = np.array([e is None for e in answer["error"]])
    assert not valid[::97].any()
    assert valid.sum() == rows - len(range(0, rows, 97))
    np.testing.assert_array_equal(answer["mpg"][valid], whole[valid])
