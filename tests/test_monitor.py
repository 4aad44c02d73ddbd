"""`carnn monitor` over synthetic logs written in the log's schema: reading a window (time,
version, unfinished files, latest labels), the verdict and its exit codes; slow tier: the run
in the MLflow experiment carnn-monitoring, with its metrics and report, for a real model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from carnn_pyfunc import data
from carnn_pyfunc.cli import main
from carnn_pyfunc.contract import fit_contract
from carnn_pyfunc.contract.fields import FIELDS
from carnn_pyfunc.monitoring.profile import build_profile, save_profile
from carnn_pyfunc.monitoring.reading import Window, read_window
from carnn_pyfunc.monitoring.schema import LABEL_SCHEMA, PREDICTION_SCHEMA

START = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)  # a window across midnight: two date folders
TEST = {
    "test_mae": 2.0,
    "test_rmse": 2.7,
    "test_interval_coverage": 0.9,
    "test_interval_width": 9.0,
    "level": 0.9,
}


def write_log(
    root: Path,
    cars: pd.DataFrame,
    mpg,
    *,
    version="1",
    start=START,
    name="carnn",
    half_width=4.5,
    prefix="r",
) -> list[str]:
    """One request per car, a minute apart from ``start``, answered ``mpg`` with an interval;
    written as the prediction log lays it out. Returns the request ids."""
    mpg = np.asarray(mpg, dtype=np.float64)
    times = [start + timedelta(minutes=i) for i in range(len(cars))]
    ids = [f"{prefix}{version}-{i}" for i in range(len(cars))]
    frame = pd.DataFrame(
        {
            "request_id": ids,
            "row": 0,
            "time": times,
            "model_name": name,
            "run_id": "x" * 32,
            "role": "primary",
        }
    )
    for f in FIELDS:
        frame[f.name] = cars[f.name].to_numpy(dtype=np.float64 if f.numeric else object)
    frame["mpg"], frame["mpg_low"], frame["mpg_high"] = mpg, mpg - half_width, mpg + half_width
    frame["error"], frame["latency_ms"] = None, 2.0
    table = as_table(frame, PREDICTION_SCHEMA)
    days = frame["time"].map(lambda t: f"{t:%Y-%m-%d}")
    for day in days.unique():
        folder = root / "predictions" / f"date={day}" / f"model_version={version}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(pa.array(days == day)), folder / f"part-{prefix}.parquet")
    return ids


def as_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Columns as Python lists (NaN as null, times as datetimes) in the schema's types."""
    columns = {
        c: [None if v != v else v for v in frame[c].tolist()] if c in frame else [None] * len(frame)
        for c in schema.names
    }  # columns the schema has and the frame not (a newer schema's): null
    return pa.Table.from_pydict(columns, schema=schema)


def write_labels(root: Path, ids: list[str], mpg, when: datetime) -> None:
    folder = root / "labels" / f"date={when:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    labels = pd.DataFrame(
        {"request_id": ids, "row": 0, "mpg": np.asarray(mpg, float), "time": when}
    )
    table = as_table(labels, LABEL_SCHEMA)
    pq.write_table(table, folder / f"part-{when:%H%M%S}-{ids[0]}.parquet")


@pytest.fixture(scope="module")
def split():
    return data.split(data.load_auto_mpg(), test_size=0.2, seed=42)


@pytest.fixture(scope="module")
def profile_file(split, tmp_path_factory) -> str:
    train, _ = split
    path = tmp_path_factory.mktemp("profile") / "profile.json"
    save_profile(build_profile(train, fit_contract(train, min_maker_count=10), TEST), path)
    return str(path)


def cars(test: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return test.iloc[rng.integers(0, len(test), n)].reset_index(drop=True)


def monitor(root, profile_file, *args) -> int:
    return main(
        [
            "monitor",
            "--prediction-log",
            str(root),
            "--profile",
            profile_file,
            "--since",
            f"{START:%Y-%m-%dT%H:%M}",
            "--last",
            "1d",
            "--until",
            f"{START + timedelta(days=1):%Y-%m-%dT%H:%M}",
            "--no-log-run",
            *args,
        ]
    )


# --------------------------------------------------------------------------- reading
def test_a_window_holds_its_own_rows_and_the_latest_label_of_each(split, tmp_path):
    _, test = split
    window_cars = cars(test, 150)
    ids = write_log(tmp_path, window_cars, window_cars["mpg"])  # 22:00 to 23:59, then next day
    write_log(tmp_path, window_cars.head(5), [20.0] * 5, version="2", prefix="v")
    write_log(
        tmp_path, window_cars.head(5), [20.0] * 5, start=START - timedelta(hours=3), prefix="early"
    )
    write_labels(tmp_path, ids[:50], [99.0] * 50, START + timedelta(hours=1))
    write_labels(tmp_path, ids[:50], window_cars["mpg"][:50], START + timedelta(hours=2))
    unfinished = next((tmp_path / "predictions").rglob("*.parquet"))
    unfinished.with_name("part-x.parquet.partial").write_bytes(b"half a file")
    rows = read_window(str(tmp_path), Window(START, START + timedelta(hours=3)))
    assert len(rows) == 155
    assert sorted(rows["date"].unique()) == ["2026-12-01", "2026-12-02"]
    one = read_window(str(tmp_path), Window(START, START + timedelta(hours=3), "carnn", "1"))
    assert len(one) == 150
    assert one["label"].notna().sum() == 50
    assert (one["label"].dropna() < 99).all()  # the later label won
    hour = read_window(str(tmp_path), Window(START, START + timedelta(hours=1), None, "1"))
    assert len(hour) == 60


def test_exit_0_when_well_3_with_reasons_on_an_alert_1_without_a_log(
    split, profile_file, tmp_path, capsys
):
    _, test = split
    well = cars(test, 400)
    ids = write_log(tmp_path / "well", well, well["mpg"] + 1.0)
    write_labels(tmp_path / "well", ids, well["mpg"], START + timedelta(hours=8))
    assert monitor(tmp_path / "well", profile_file, "--report", str(tmp_path / "r.html")) == 0
    out = capsys.readouterr().out
    assert "all is well" in out
    assert "labels 400: MAE 1.00" in out
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") == 8 + 2  # a histogram per field, MAE and coverage over time

    kg = well.assign(weight=well["weight"] / 2.205)
    ids = write_log(tmp_path / "kg", kg, well["mpg"] + 6.0)
    write_labels(tmp_path / "kg", ids, well["mpg"], START + timedelta(hours=8))
    assert monitor(tmp_path / "kg", profile_file) == 3
    err = capsys.readouterr().err
    assert "ALERT" in err
    assert "weight: " in err
    assert "outside the training range" in err
    assert "live MAE 6.00 mpg" in err

    assert monitor(tmp_path / "nothing", profile_file) == 1
    assert "no prediction log here" in capsys.readouterr().err


def test_a_model_without_a_profile_is_a_one_line_error(split, tmp_path, capsys, monkeypatch):
    from carnn_pyfunc.monitoring import monitor as mon

    def no_profile(uri):
        raise mon.ProfileMissing(f"{uri} carries no reference profile")

    monkeypatch.setattr(mon, "profile_of", no_profile)
    _, test = split
    write_log(tmp_path, cars(test, 10), [20.0] * 10, version="4")
    code = main(
        [
            "monitor",
            "--prediction-log",
            str(tmp_path),
            "--since",
            "2026-12-01",
            "--until",
            "2026-12-03",
            "--no-log-run",
        ]
    )
    assert code == 1
    assert "models:/carnn/4 carries no reference profile" in capsys.readouterr().err


# -------------------------------------------------------------- slow: a real model
@pytest.mark.slow
def test_one_run_per_window_in_carnn_monitoring_with_metrics_and_report(
    trained, loaded_model, tracking_uri, tmp_path
):
    config, result = trained
    _, test = data.split(data.load_auto_mpg(), test_size=config.test_size, seed=config.seed)
    window_cars = cars(test, 300, seed=1)
    fields = window_cars.drop(columns=["mpg"])
    answer = loaded_model.predict(
        fields.astype({c: "float64" for c in fields.columns if c != "name"}),
        params={"interval": 0.9},
    )
    root = tmp_path / "log"
    ids = write_log(
        root, fields, answer["mpg"], version=result.registered_version, name="carnn-test"
    )
    # the served intervals, not the synthetic ones
    for path in (root / "predictions").rglob("*.parquet"):
        table = pq.read_table(path).to_pandas()
        index = table["request_id"].map({r: i for i, r in enumerate(ids)})
        table["mpg_low"] = answer["mpg_low"].to_numpy()[index]
        table["mpg_high"] = answer["mpg_high"].to_numpy()[index]
        pq.write_table(as_table(table, PREDICTION_SCHEMA), path)
    write_labels(root, ids, window_cars["mpg"], START + timedelta(hours=6))
    args = [
        "monitor",
        "--prediction-log",
        str(root),
        "--since",
        "2026-12-01T20:00",
        "--until",
        "2026-12-02T12:00",
        "--no-progress",
        "--min-coverage",  # the tiny test model's own test coverage is below the default 80%
        "0.6",
    ]
    assert main(args) == 0

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("carnn-monitoring")
    (run,) = client.search_runs([experiment.experiment_id])
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["model_name"] == "carnn-test"
    assert tags["model_version"] == result.registered_version
    assert tags["window_start"] == "2026-12-01T20:00:00+00:00"
    assert tags["verdict"] == "well"
    for name in ("weight", "year", "horsepower"):
        assert 0 <= metrics[f"drift_p_{name}"] <= 1
        assert f"wasserstein_{name}" in metrics
        assert f"psi_{name}" in metrics
        assert metrics[f"outside_range_{name}"] < 0.1
    assert "js_maker" in metrics
    assert metrics["live_labels"] == 300
    assert metrics["live_mae"] == pytest.approx(result.metrics["test_mae"], rel=0.35)
    assert metrics["live_coverage"] == pytest.approx(
        result.metrics["test_interval_coverage"], abs=0.15
    )
    history = client.get_metric_history(run.info.run_id, "live_mae_over_time")
    assert len(history) == 12
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"monitor_report.html", "drift.json"} <= files
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=tmp_path))
    report = (local / "monitor_report.html").read_text()
    assert "carnn-test version" in report
    assert "all is well" in report
    table = json.loads((local / "drift.json").read_text())
    assert {row["field"] for row in table} == {
        "cylinders",
        "displacement",
        "horsepower",
        "weight",
        "acceleration",
        "year",
        "origin",
        "maker",
    }

    kg = fields.assign(weight=fields["weight"] / 2.205)
    kg_answer = loaded_model.predict(kg.astype({c: "float64" for c in kg.columns if c != "name"}))
    ids = write_log(
        root,
        kg,
        kg_answer["mpg"],
        version=result.registered_version,
        name="carnn-test",
        start=START + timedelta(days=1),
        prefix="kg",
    )
    write_labels(root, ids, window_cars["mpg"], START + timedelta(days=1, hours=6))
    args = [
        "monitor",
        "--prediction-log",
        str(root),
        "--since",
        "2026-12-02T20:00",
        "--until",
        "2026-12-03T12:00",
        "--no-progress",
    ]
    assert main(args) == 3
    runs = client.search_runs([experiment.experiment_id], "tags.verdict = 'alert'")
    assert len(runs) == 1
    assert "weight" in runs[0].data.tags["reasons"]
    assert runs[0].data.metrics["live_mae_ratio"] > 1.25


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # pyspark's, on pandas 3
def test_the_spark_engine_reads_the_window_as_pyarrow_does(split, profile_file, tmp_path):
    from carnn_pyfunc.monitoring.spark_reading import read_window_spark, session

    _, test = split
    window_cars = cars(test, 150)
    ids = write_log(tmp_path, window_cars, window_cars["mpg"])
    write_log(tmp_path, window_cars.head(5), [20.0] * 5, version="2", prefix="v")
    write_labels(tmp_path, ids[:50], [99.0] * 50, START + timedelta(hours=1))
    write_labels(tmp_path, ids[:50], window_cars["mpg"][:50], START + timedelta(hours=2))
    next((tmp_path / "predictions").rglob("*.parquet")).with_name("x.parquet.partial").write_text(
        ""
    )
    spark = session("local[1]")
    try:
        window = Window(START, START + timedelta(hours=3), "carnn", "1")
        keys = ["request_id", "row"]
        here = read_window(str(tmp_path), window).sort_values(keys).reset_index(drop=True)
        there = read_window_spark(str(tmp_path), window, spark=spark)
        there = there.sort_values(keys).reset_index(drop=True)[here.columns]
        pd.testing.assert_frame_equal(here, there, check_dtype=False)
        sampled = read_window_spark(str(tmp_path), window, sample_rows=50, spark=spark)
        assert 20 < len(sampled) < 100
    finally:
        spark.stop()  # other tests start sessions of their own settings
