"""Conformal prediction intervals: the quantile rule, and intervals through the logged model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from carnn_pyfunc.model.intervals import conformal_quantile, interval, log_residuals
from tests.helpers import SEED_RECORD, as_frame


def test_the_conformal_quantile_is_the_ceil_n_plus_one_rank():
    scores = np.arange(1, 20, dtype=float)  # 19 scores
    assert conformal_quantile(scores, 0.9) == 18.0  # ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile(scores, 0.5) == 10.0
    assert conformal_quantile(scores, 0.99) == math.inf  # too few scores for that level


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_a_level_outside_zero_one_is_refused(level):
    with pytest.raises(ValueError, match="interval"):
        conformal_quantile(np.ones(10), level)


def test_intervals_cover_new_draws_at_the_level_on_exchangeable_data():
    rng = np.random.default_rng(0)
    truth = rng.uniform(10, 40, 20_000)
    predicted = truth * np.exp(rng.normal(0, 0.1, truth.shape))
    scores = log_residuals(truth[:2000], predicted[:2000])
    low, high = interval(predicted[2000:], scores, 0.9)
    coverage = np.mean((truth[2000:] >= low) & (truth[2000:] <= high))
    assert 0.88 < coverage < 0.92
    assert (high - low > 0).all()


def test_the_model_answers_intervals_only_when_asked(loaded_model):
    frame = as_frame([SEED_RECORD, {**SEED_RECORD, "weight": 2000}])
    plain = loaded_model.predict(frame)
    assert list(plain.columns) == ["mpg"]
    wide = loaded_model.predict(frame, params={"interval": 0.95})
    narrow = loaded_model.predict(frame, params={"interval": 0.5})
    assert list(wide.columns) == ["mpg", "mpg_low", "mpg_high"]
    np.testing.assert_array_equal(wide["mpg"], plain["mpg"])
    assert (wide["mpg_low"] < narrow["mpg_low"]).all()
    assert (narrow["mpg_low"] < plain["mpg"]).all()
    assert (plain["mpg"] < narrow["mpg_high"]).all()
    assert (narrow["mpg_high"] < wide["mpg_high"]).all()


@pytest.mark.parametrize("level", [1.5, -0.2, "wide", True])
def test_a_bad_level_is_an_error_naming_interval(loaded_model, level):
    model = loaded_model.unwrap_python_model()
    with pytest.raises(MlflowException, match=r"^interval: ") as info:
        model.predict(None, as_frame([SEED_RECORD]), {"interval": level})
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
