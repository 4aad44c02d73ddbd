"""`carnn score`: both engines give the in-process pyfunc's answers row for row (the pandas
engine in the fast tier; Spark in local[2] and `mlflow run . -e score` in the slow one)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from carnn_pyfunc.batch.outcome import BatchError, BatchInputError, check_model
from carnn_pyfunc.batch.replace import write_then_replace
from carnn_pyfunc.cli import main
from tests.helpers import ROOT, VENV_BIN, subprocess_env

BAD = {  # row -> (field, value, the start of its error)
    3: ("weight", -1.0, "weight: has -1; expected pounds"),
    10: ("year", 76.5, "year: has 76.5"),
    20: ("origin", 9.0, "origin: has 9"),
    30: ("cylinders", None, "cylinders: is null"),
}


@pytest.fixture(scope="module")
def cars(auto_mpg) -> pd.DataFrame:
    """The data set's cars (no target), four of them broken, and an id column to pass through."""
    frame = auto_mpg.drop(columns=["mpg"]).reset_index(drop=True)
    frame = frame.astype({c: "float64" for c in frame.columns if c != "name"})
    for row, (field, value, _) in BAD.items():
        frame.loc[row, field] = value
    return frame.assign(id=np.arange(len(frame)))


@pytest.fixture(scope="module")
def expected(loaded_model, cars) -> pd.DataFrame:
    """The in-process pyfunc's answers, row by row."""
    return loaded_model.predict(cars.drop(columns=["id"]), params={"errors": "column"})


def write(frame: pd.DataFrame, path: Path, **parquet) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, **parquet)
    return path


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.suffix == ".csv" else pq.read_table(path).to_pandas()


def score(trained, *args) -> int:
    _, result = trained
    return main(["score", *map(str, args), "--model-uri", result.model_uri])


def assert_same_answers(scored: pd.DataFrame, cars: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(scored.columns) == [*cars.columns, "mpg", "error"]
    assert scored["id"].tolist() == cars["id"].tolist()  # nothing dropped, order kept
    np.testing.assert_allclose(scored["mpg"], expected["mpg"], rtol=1e-6)  # float32 precision
    assert scored["error"].isna().tolist() == expected["error"].isna().tolist()
    assert scored["error"].dropna().tolist() == expected["error"].dropna().tolist()
    for row, (_, _, start) in BAD.items():
        assert scored["error"][row].startswith(start)
        assert np.isnan(scored["mpg"][row])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_pandas_engine_gives_the_pyfuncs_answers_chunk_by_chunk(
    trained, cars, expected, tmp_path, capsys, suffix
):
    source = write(cars, tmp_path / f"cars{suffix}")
    target = tmp_path / f"scored{suffix}"
    assert score(trained, source, target, "--chunk-rows", 64) == 0  # seven chunks
    assert_same_answers(read(target), cars, expected)
    out = capsys.readouterr().out
    assert f"{len(cars):,} rows, {len(BAD)} invalid" in out
    assert "rows/s" in out
    assert leftovers(tmp_path) == []


def test_a_text_cell_in_a_number_column_costs_its_row_only(trained, cars, expected, tmp_path):
    text = cars.astype({"weight": object, "horsepower": object})
    text.loc[5, "weight"] = "heavy"
    text.loc[6, "horsepower"] = "?"  # the raw UCI file's mark for unknown: not a number either
    target = tmp_path / "scored.csv"
    assert score(trained, write(text, tmp_path / "cars.csv"), target) == 0
    scored = read(target)
    assert scored["error"][5] == "weight: has 'heavy'; expected a number: pounds, from 200 to 20000"
    assert scored["error"][6].startswith("horsepower: has '?'")
    good = [i for i in range(len(cars)) if i not in (5, 6, *BAD)]
    np.testing.assert_allclose(scored["mpg"][good], expected["mpg"][good], rtol=1e-6)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_an_empty_file_gives_an_empty_file_with_the_answer_columns(trained, cars, tmp_path, suffix):
    target = tmp_path / f"scored{suffix}"
    assert score(trained, write(cars.head(0), tmp_path / f"empty{suffix}"), target) == 0
    scored = read(target)
    assert len(scored) == 0
    assert list(scored.columns) == [*cars.columns, "mpg", "error"]


def test_a_file_without_a_header_is_refused(trained, tmp_path, capsys):
    (tmp_path / "nothing.csv").write_text("")
    assert score(trained, tmp_path / "nothing.csv", tmp_path / "scored.csv") == 1
    assert "nothing.csv: the file is empty; expected a header line" in capsys.readouterr().err
    assert not (tmp_path / "scored.csv").exists()


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_missing_required_column_names_it_and_leaves_no_output(
    trained, cars, tmp_path, capsys, suffix
):
    source = write(cars.drop(columns=["weight"]), tmp_path / f"cars{suffix}")
    target = tmp_path / f"scored{suffix}"
    assert score(trained, source, target) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: weight: missing required field; expected pounds")
    assert "Traceback" not in err
    assert not target.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.assign(mpg=1.0), "mpg: cars.parquet already has this column"),
        (lambda f: f.assign(error="x"), "error: cars.parquet already has this column"),
    ],
)
def test_an_input_with_the_outputs_own_columns_is_refused(
    trained, cars, tmp_path, capsys, change, message
):
    target = tmp_path / "scored.parquet"
    target.write_bytes(b"an older output")  # left as it was
    assert score(trained, write(change(cars), tmp_path / "cars.parquet"), target) == 1
    assert message in capsys.readouterr().err
    assert target.read_bytes() == b"an older output"


def test_unknown_formats_and_missing_files_are_refused_before_loading(trained, tmp_path, capsys):
    assert score(trained, tmp_path / "cars.json", tmp_path / "out.parquet") == 1
    assert "cars.json: cannot tell the format from the extension '.json'" in capsys.readouterr().err
    assert score(trained, tmp_path / "absent.parquet", tmp_path / "out.parquet") == 1
    assert "absent.parquet: no such file" in capsys.readouterr().err


def test_a_model_without_the_row_by_row_param_is_refused():
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, Schema

    old = Model(
        signature=ModelSignature(Schema([ColSpec("double", "weight")]), Schema([ColSpec("double")]))
    )
    with pytest.raises(BatchInputError, match="cannot score row by row"):
        check_model(old, "models:/old/1")


class LocalFolders:
    """The swap's file system on plain folders; ``failing`` names the calls that raise, such as
    ``rename#2`` (the second rename)."""

    def __init__(self, failing=()) -> None:
        self.failing, self.calls = set(failing), []

    def sibling(self, path: str, name: str) -> str:
        return str(Path(path).with_name(name))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def rename(self, source: str, target: str) -> None:
        self._call("rename")
        os.rename(source, target)

    def delete(self, path: str) -> None:
        self._call("delete")
        shutil.rmtree(path)

    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        if f"{operation}#{self.calls.count(operation)}" in self.failing:
            raise OSError(f"injected failure of {operation}")


def write_output(folder: Path, which: str, parts: int = 3) -> None:
    folder.mkdir()
    for part in range(parts):
        (folder / f"part-{part}").write_text(which)


def complete_output(folder: Path) -> str | None:
    """``old`` or ``new`` when ``folder`` holds that whole output (three parts), else None."""
    texts = [p.read_text() for p in sorted(folder.iterdir())] if folder.is_dir() else []
    return texts[0] if len(texts) == 3 and len(set(texts)) == 1 else None


@pytest.mark.parametrize(
    ("failing", "survivor"),
    [
        ((), "new"),
        (("rename#1",), "old"),  # moving the previous output aside
        (("rename#2",), "old"),  # moving the new one in: the previous one is put back
        (("delete#1",), "new"),  # removing the previous one, once the new one is in place
    ],
)
def test_replacing_an_output_leaves_exactly_one_complete_output(tmp_path, failing, survivor):
    target = tmp_path / "scored"
    write_output(target, "old")

    def write_new(path: str) -> None:
        assert complete_output(target) == "old"  # the previous output stays meanwhile
        write_output(Path(path), "new")

    refused = pytest.raises(BatchError, match="previous output")
    with refused if survivor == "old" else contextlib.nullcontext():
        write_then_replace(LocalFolders(failing), str(target), write_new)
    assert complete_output(target) == survivor
    others = [p.name for p in tmp_path.iterdir() if p != target]
    if "delete#1" in failing:  # only the cleanup failed: the previous output is left beside
        assert [name.endswith(".previous") for name in others] == [True]
    else:
        assert others == []


def test_a_write_that_fails_midway_leaves_the_previous_output(tmp_path):
    target = tmp_path / "scored"
    write_output(target, "old")

    def write_half(path: str) -> None:
        write_output(Path(path), "new", parts=1)
        raise BatchError("the Spark job failed: injected")

    with pytest.raises(BatchError, match="injected"):
        write_then_replace(LocalFolders(), str(target), write_half)
    assert complete_output(target) == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scored"]


def test_a_failed_put_back_names_where_the_previous_output_is(tmp_path):
    target = tmp_path / "scored"
    write_output(target, "old")
    failing = LocalFolders({"rename#2", "rename#3"})  # moving in and putting back
    with pytest.raises(BatchError, match=r"the previous output is at (\S+)$") as refused:
        write_then_replace(failing, str(target), lambda path: write_output(Path(path), "new"))
    aside = Path(str(refused.value).rsplit(" ", 1)[-1])
    assert complete_output(aside) == "old"  # still exactly one complete output, named
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == [aside.name]


def test_a_new_output_moves_in_where_there_was_none(tmp_path):
    target = tmp_path / "scored"
    write_then_replace(LocalFolders(), str(target), lambda path: write_output(Path(path), "new"))
    assert complete_output(target) == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["scored"]


# ---------------------------------------------------------------------------- Spark (slow)
@pytest.fixture(scope="module")
def spark():
    from carnn_pyfunc.batch.spark_engine import start_session

    session = start_session(
        "local[2]",
        {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.sql.files.maxPartitionBytes": "4096",  # several tasks on a small file
        },
    )
    yield session
    session.stop()


@pytest.mark.slow
def test_spark_engine_gives_the_pyfuncs_answers_in_order(trained, spark, cars, expected, tmp_path):
    from carnn_pyfunc.batch.spark_engine import score_parquet

    source = write(cars, tmp_path / "cars.parquet", row_group_size=50)
    target = tmp_path / "scored"
    target.mkdir()  # an older output is replaced
    (target / "old.parquet").write_bytes(b"old")
    summary = score_parquet(spark, trained[1].model_uri, str(source), str(target))
    assert (summary.rows, summary.invalid) == (len(cars), len(BAD))
    assert_same_answers(read(target), cars, expected)
    assert leftovers(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("failing", "survivor"),
    [("rename#1", 10), ("rename#2", 10), ("delete#1", 30)],  # rows of the old and new outputs
)
def test_spark_never_loses_the_output_when_a_step_fails(
    trained, spark, cars, tmp_path, monkeypatch, failing, survivor
):
    from carnn_pyfunc.batch.spark_engine import HadoopFolders, score_parquet

    uri, target = trained[1].model_uri, tmp_path / "out" / "scored"
    target.parent.mkdir()
    score_parquet(spark, uri, str(write(cars.head(10), tmp_path / "old.parquet")), str(target))
    calls: list[str] = []

    def injected(operation: str):
        real = getattr(HadoopFolders, operation)

        def call(self, *args) -> None:
            calls.append(operation)
            if f"{operation}#{calls.count(operation)}" == failing:
                raise OSError(f"injected failure of {operation}")
            real(self, *args)

        return call

    for operation in ("rename", "delete"):
        monkeypatch.setattr(HadoopFolders, operation, injected(operation))
    source = write(cars.head(30), tmp_path / "new.parquet")
    with pytest.raises(BatchError) if survivor == 10 else contextlib.nullcontext():
        score_parquet(spark, uri, str(source), str(target))
    assert read(target)["id"].tolist() == list(range(survivor))  # one complete output
    others = [p.name for p in target.parent.iterdir() if p != target]
    assert all(name.endswith(".previous") for name in others)  # no partial output left
    assert len(others) == (1 if failing == "delete#1" else 0)


@pytest.mark.slow
def test_spark_keeps_the_order_of_several_files(trained, spark, cars, expected, tmp_path):
    from carnn_pyfunc.batch.spark_engine import score_parquet

    folder = tmp_path / "cars"
    folder.mkdir()
    write(cars.head(100), folder / "part-0.parquet")  # the smaller file first: Spark reads the
    write(cars.iloc[100:], folder / "part-1.parquet")  # largest first
    score_parquet(spark, trained[1].model_uri, str(folder), str(tmp_path / "scored"))
    assert_same_answers(read(tmp_path / "scored"), cars, expected)


@pytest.mark.slow
def test_spark_empty_file_and_missing_column(trained, spark, cars, tmp_path):
    from carnn_pyfunc.batch.spark_engine import score_parquet

    uri = trained[1].model_uri
    summary = score_parquet(
        spark, uri, str(write(cars.head(0), tmp_path / "e.parquet")), str(tmp_path / "e")
    )
    assert summary.rows == 0
    assert list(read(tmp_path / "e").columns) == [*cars.columns, "mpg", "error"]
    source = write(cars.drop(columns=["weight"]), tmp_path / "w.parquet")
    with pytest.raises(BatchInputError, match=r"^weight: missing required field"):
        score_parquet(spark, uri, str(source), str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()
    text = write(cars.astype({"weight": str}), tmp_path / "t.parquet")
    with pytest.raises(BatchInputError, match=r"^weight: the column holds text"):
        score_parquet(spark, uri, str(text), str(tmp_path / "t"))


@pytest.mark.slow
def test_spark_gives_each_task_the_cores_spark_gave_it(spark):
    from carnn_pyfunc.batch.spark_engine import task_model_config

    assert task_model_config(spark) == {"forward_threads": 1}


def run(*command: str, tracking_uri: str) -> subprocess.CompletedProcess:
    env = {**subprocess_env(tracking_uri), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_spark_submit_of_score_py(trained, cars, expected, tracking_uri, tmp_path):
    """The README's cluster command, on a local master: spark-submit runs score.py."""
    source = write(cars, tmp_path / "cars.parquet")
    done = run(
        f"{VENV_BIN}/spark-submit", "--master", "local[2]", "--conf", "spark.ui.enabled=false",
        "--conf", f"spark.pyspark.python={VENV_BIN}/python", str(ROOT / "score.py"),
        str(source), str(tmp_path / "scored"), "--engine", "spark",
        "--model-uri", trained[1].model_uri,
        tracking_uri=tracking_uri,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "spark session: started in" in done.stdout
    assert f"{len(cars):,} rows, {len(BAD)} invalid" in done.stdout
    assert_same_answers(read(tmp_path / "scored"), cars, expected)


@pytest.mark.slow
def test_mlflow_run_entry_point_score(trained, cars, expected, tracking_uri, tmp_path):
    source = write(cars, tmp_path / "cars.parquet")
    done = run(
        f"{VENV_BIN}/mlflow", "run", str(ROOT), "-e", "score", "--env-manager", "local",
        "--experiment-name", "carnn-score", "-P", f"input={source}",
        "-P", f"output={tmp_path / 'scored.parquet'}", "-P", f"model_uri={trained[1].model_uri}",
        tracking_uri=tracking_uri,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_answers(read(tmp_path / "scored.parquet"), cars, expected)
    (scoring,) = mlflow.search_runs(experiment_names=["carnn-score"], output_format="list")
    assert scoring.data.metrics["rows"] == len(cars)
    assert scoring.data.metrics["invalid_rows"] == len(BAD)
