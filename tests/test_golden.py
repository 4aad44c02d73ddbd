"""Golden models, one per model format carnn ever wrote (``tests/golden/<format>/``, each trained
by the commit that wrote the format: see ``tests/golden/record.py``). With the current code each
loads and answers exactly what it answered when it was logged, or is refused with the one line
naming the release that serves it; ``servable`` says the same without loading the model."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

# carnn_pyfunc imported before MLflow loads a golden: it runs this code, not its own copy's
from carnn_pyfunc import formats
from carnn_pyfunc.formats import (
    FORMAT_FILE,
    FORMATS,
    MODEL_FORMAT,
    UnservableFormat,
    format_of,
    read_marker,
    refusal,
    servable,
)

GOLDEN = Path(__file__).resolve().parent / "golden"
NUMBERS = sorted(int(p.name) for p in GOLDEN.iterdir() if p.name.isdigit())


def golden(number: int) -> tuple[Path, dict]:
    folder = GOLDEN / str(number)
    return folder / "model", json.loads((folder / "expected.json").read_text())


def refused_with(model_dir: Path, why: str) -> None:
    """Loading refuses with exactly ``why``, one line, and servable() says it too."""
    assert why
    assert "\n" not in why
    with pytest.raises(UnservableFormat) as err:
        mlflow.pyfunc.load_model(str(model_dir))
    assert str(err.value) == why
    assert servable(str(model_dir)) == (False, f"{model_dir}: {why}")


def test_a_golden_for_every_format_and_the_newest_is_what_this_code_writes():
    assert NUMBERS == sorted(FORMATS) == list(range(1, MODEL_FORMAT + 1))
    newest, _ = golden(MODEL_FORMAT)
    assert read_marker(newest / "artifacts" / FORMAT_FILE) == MODEL_FORMAT
    for number in NUMBERS[:-1]:  # written before the marker: told from their artifacts
        assert not (golden(number)[0] / "artifacts" / FORMAT_FILE).exists()


@pytest.mark.parametrize("number", NUMBERS)
def test_golden_loads_with_this_code_and_answers_as_when_it_was_logged(number):
    model_dir, expected = golden(number)
    assert expected["format"] == number
    if "refused" in expected or refusal(number):  # refusal(): a Keras-only one without Keras
        refused_with(model_dir, expected.get("refused") or refusal(number))
        return
    model = mlflow.pyfunc.load_model(str(model_dir))
    python_model = model.unwrap_python_model()
    assert python_model.model_format == number
    frame = pd.DataFrame(expected["inputs"])
    np.testing.assert_allclose(model.predict(frame)["mpg"], expected["mpg"], rtol=1e-6)
    if "mpg_low" in expected:
        ranged = model.predict(frame, params={"interval": 0.9})
        np.testing.assert_allclose(ranged["mpg_low"], expected["mpg_low"], rtol=1e-6)
        np.testing.assert_allclose(ranged["mpg_high"], expected["mpg_high"], rtol=1e-6)
    else:  # logged before intervals: asked for one, a 400-class error naming the param
        with pytest.raises(MlflowException, match=r"^interval: .* no calibration"):
            python_model.answer(frame, {"interval": 0.9})
    ok, why = servable(str(model_dir))
    assert ok
    assert f"model format {number} " in why


def test_format_1_names_the_commits_of_its_own_layout():
    model_dir, expected = golden(1)
    said = "contract format 1 was written by carnn 1b2c752..7eb9daf; serve it with that release"
    assert said in expected["refused"]
    from carnn_pyfunc.contract import load_contract

    with pytest.raises(UnservableFormat, match=r"^contract format 1 .* \(carnn 7eb9daf\)$"):
        load_contract(model_dir / "artifacts" / "contract.json")


def test_a_newer_format_is_refused_by_loading_and_by_servable(tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(golden(MODEL_FORMAT)[0], model_dir)
    (model_dir / "artifacts" / FORMAT_FILE).write_text(json.dumps({"format": MODEL_FORMAT + 1}))
    why = refusal(MODEL_FORMAT + 1)
    assert why.startswith(f"model format {MODEL_FORMAT + 1} is newer than this carnn reads")
    refused_with(model_dir, why)


def test_a_keras_only_format_where_tensorflow_is_missing_is_refused_naming_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        formats.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "tensorflow" else real(name, *args),
    )
    for number, last in ((2, "73b55e9"), (3, "4f24a32")):
        why = refusal(number)
        assert "needs tensorflow, not installed here" in why
        assert f"carnn {last}" in why
        assert servable(str(golden(number)[0]))[1].endswith(why)
    assert refusal(4) == refusal(5) == refusal(6) == ""  # served without TensorFlow


def test_what_is_not_a_known_model_is_not_servable(tmp_path):
    with pytest.raises(UnservableFormat, match="not a carnn model format"):
        format_of({"network", "forward"})
    with pytest.raises(UnservableFormat, match="not a carnn model format"):
        format_of({"network", "scaler", "contract"}, 4)
    ok, why = servable(str(tmp_path))
    assert not ok
    assert why.startswith(f"{tmp_path}: its model format cannot be read")
    broken = tmp_path / "model"
    shutil.copytree(golden(MODEL_FORMAT)[0], broken)
    (broken / "artifacts" / FORMAT_FILE).write_text('{"format": "six"}')
    assert servable(str(broken)) == (
        False,
        f"{broken}: its model format cannot be read: {FORMAT_FILE}: format 'six' is not a "
        "format number",
    )


def test_a_model_trained_now_carries_the_marker(trained):
    _, result = trained
    ok, why = servable(result.model_uri)
    assert ok
    assert why.endswith(f"model format {MODEL_FORMAT} (from its marker), served by this carnn")
