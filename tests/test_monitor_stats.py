"""Fast tier: the monitor's statistics (drift, live accuracy, alert reasons) on tiny arrays and
on profiles of the real data's training split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carnn_pyfunc import data
from carnn_pyfunc.contract import fit_contract
from carnn_pyfunc.monitoring import accuracy, drift
from carnn_pyfunc.monitoring.alerts import Thresholds, judge_fields, reasons
from carnn_pyfunc.monitoring.profile import build_profile

TEST = {"test_mae": 2.0, "test_rmse": 2.7, "test_interval_coverage": 0.9, "level": 0.9}


@pytest.fixture(scope="module")
def split():
    return data.split(data.load_auto_mpg(), test_size=0.2, seed=42)


@pytest.fixture(scope="module")
def profile(split):
    train, _ = split
    return build_profile(train, fit_contract(train, min_maker_count=10), TEST)


def resampled(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return frame.iloc[rng.integers(0, len(frame), n)].reset_index(drop=True)


# ------------------------------------------------------------------- multiple testing
def test_holm_matches_the_textbook_example_and_never_lowers_a_p_value():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    adjusted = drift.holm(p)
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert (adjusted >= p).all()
    assert (adjusted <= 1).all()


@pytest.mark.parametrize("seed", range(5))
def test_holm_keeps_the_order_of_the_p_values(seed):
    p = np.random.default_rng(seed).uniform(0, 0.2, size=9)
    adjusted = drift.holm(p)
    order = np.argsort(p)
    assert (np.diff(adjusted[order]) >= 0).all()  # monotone in the raw p-values
    assert (drift.holm(np.minimum(p * 0.5, 1)) <= adjusted).all()  # smaller in, smaller out


def test_corrections_skip_untested_fields_and_bh_is_less_strict():
    p = [0.01, np.nan, 0.02, 0.03]
    holm, bh = drift.correct(p, "holm"), drift.correct(p, "bh")
    assert np.isnan(holm[1])
    assert np.isnan(bh[1])
    np.testing.assert_allclose(holm[[0, 2, 3]], [0.03, 0.04, 0.04])
    assert (bh[[0, 2, 3]] <= holm[[0, 2, 3]]).all()
    with pytest.raises(ValueError, match="holm, bh"):
        drift.correct(p, "bonferroni")


# ------------------------------------------------------------------------ numbers
def test_identical_samples_do_not_drift():
    x = np.random.default_rng(0).normal(10, 2, 300)
    result = drift.number_drift(x, x.copy(), x.min(), x.max())
    assert result["p"] == pytest.approx(1.0)
    assert result["shift"] == 0
    assert result["psi"] == pytest.approx(0)
    assert result["outside"] == 0


def test_a_shifted_sample_drifts_by_its_shift_in_standard_deviations():
    rng = np.random.default_rng(1)
    reference, current = rng.normal(0, 1, 400), rng.normal(1, 1, 400)
    result = drift.number_drift(reference, current, reference.min(), reference.max())
    assert result["p"] < 1e-10
    assert result["shift"] == pytest.approx(1.0, abs=0.15)
    assert result["psi"] > 0.5


def test_psi_bins_follow_the_reference_and_outside_share_counts_both_ends():
    reference = np.array([4, 4, 4, 6, 6, 8, 8, 8, 8, 4], dtype=float)
    np.testing.assert_array_equal(drift.decile_edges(reference), [4, 6, 8])  # one bin a value
    assert drift.psi(reference, reference) == pytest.approx(0)
    assert drift.outside_share(np.array([1.0, 5.0, 9.0, 5.0]), 4, 8) == 0.5
    assert np.isnan(drift.outside_share(np.array([]), 4, 8))


def test_too_few_values_give_no_test():
    result = drift.number_drift(np.arange(10.0), np.array([3.0]), 0, 9)
    assert np.isnan(result["p"])
    assert result["outside"] == 0


# ---------------------------------------------------------------------- categories
def test_same_shares_do_not_drift_and_other_shares_do():
    reference = {"a": 0.5, "b": 0.3, "c": 0.2}
    same = drift.category_drift(reference, ["a"] * 50 + ["b"] * 30 + ["c"] * 20, 300)
    assert same["p"] == pytest.approx(1.0)
    assert same["js"] == pytest.approx(0, abs=1e-9)
    other = drift.category_drift(reference, ["c"] * 80 + ["a"] * 20, 300)
    assert other["p"] < 1e-10
    assert other["js"] > 0.3


def test_an_unseen_category_is_counted_and_tested_without_dividing_by_zero():
    reference = {"4.0": 0.5, "6.0": 0.2, "8.0": 0.3}
    result = drift.category_drift(reference, ["12.0"] * 10 + ["4.0"] * 40 + ["8.0"] * 50, 300)
    assert result["unseen"] == pytest.approx(0.1)
    assert np.isfinite(result["statistic"])
    assert result["p"] < 0.01


def test_small_counts_are_pooled_and_a_tiny_window_is_not_a_drift():
    reference = {k: 0.05 for k in "abcdefghijklmnopqrst"}  # twenty makers of 5%
    result = drift.category_drift(reference, list("abc"), 300)  # each expected 0.15 times
    assert result["p"] == 1.0  # one pooled bin: nothing to compare
    observed, expected = drift.pool_rare(np.array([30.0, 3, 2, 1]), np.array([28.0, 4, 2, 2]))
    assert observed.sum() == 36
    assert expected.sum() == 36
    assert (expected >= 5).all()


# ------------------------------------------------------------------ whole windows
def test_training_rows_do_not_drift_from_their_own_profile(split, profile):
    train, _ = split
    table = judge_fields(drift.drift_table(train, profile), Thresholds())
    assert not table["drifting"].any()
    assert (table["p_adjusted"] > 0.5).all()
    assert reasons(table, accuracy.live_accuracy([], []), TEST, Thresholds()) == []


def test_four_digit_years_are_the_two_digit_years(split, profile):
    _, test = split
    four = test.assign(year=test["year"] + 1900)
    pd.testing.assert_frame_equal(
        drift.drift_table(four, profile), drift.drift_table(test, profile)
    )


def test_weight_in_kilograms_drifts_and_is_outside_the_range(split, profile):
    _, test = split
    window = resampled(test, 200, 0)
    window["weight"] /= 2.205
    table = judge_fields(drift.drift_table(window, profile), Thresholds())
    assert table.loc["weight", "drifting"]
    assert table.loc["weight", "outside"] > 0.5
    found = reasons(table, accuracy.live_accuracy([], []), TEST, Thresholds())
    assert any(r.startswith("weight: ") and "outside the training range" in r for r in found)


@pytest.mark.parametrize("seed", range(3))
def test_in_distribution_windows_are_well(split, profile, seed):
    _, test = split
    table = judge_fields(drift.drift_table(resampled(test, 2000, seed), profile), Thresholds())
    assert reasons(table, accuracy.live_accuracy([], []), TEST, Thresholds()) == []


def test_half_the_fields_drifting_is_an_alert_and_fewer_rows_than_min_rows_are_not(profile):
    table = pd.DataFrame(
        {
            "kind": ["number"] * 4,
            "rows": [100] * 4,
            "p_adjusted": [1e-6, 1e-6, 0.5, 0.9],
            "shift": [1.0, 0.5, 0.1, 0.0],
            "js": np.nan,
            "outside": 0.0,
        },
        index=["a", "b", "c", "d"],
    )
    judged = judge_fields(table, Thresholds())
    assert judged["drifting"].tolist() == [True, True, False, False]
    assert reasons(judged, {}, TEST, Thresholds())[0].startswith("2 of 4 fields drift")
    small = judge_fields(table.assign(rows=10), Thresholds())
    assert not small["drifting"].any()
    assert reasons(small, {}, TEST, Thresholds()) == []


# ------------------------------------------------------------------------ accuracy
def test_bootstrap_intervals_hold_the_point_estimates_and_are_seeded():
    rng = np.random.default_rng(3)
    actual = rng.normal(25, 6, 200)
    predicted = actual + rng.normal(0, 2.5, 200)
    live = accuracy.live_accuracy(actual, predicted, predicted - 4, predicted + 4, seed=1)
    for key in ("mae", "rmse", "coverage"):
        assert live[f"{key}_low"] <= live[key] <= live[f"{key}_high"], key
    assert live["labels"] == 200
    assert live["width"] == pytest.approx(8)
    assert accuracy.live_accuracy(actual, predicted, seed=1)["mae_low"] == live["mae_low"]
    assert accuracy.live_accuracy(actual, predicted, seed=2)["mae_low"] != live["mae_low"]


def test_no_labels_no_figures_and_a_worse_model_is_an_alert():
    empty = accuracy.live_accuracy(np.array([]), np.array([]))
    assert empty["labels"] == 0
    assert np.isnan(empty["mae"])
    assert np.isnan(empty["coverage"])
    actual = np.linspace(10, 40, 40)
    live = accuracy.live_accuracy(actual, actual + 3.0, actual + 1.0, actual + 5.0)
    assert accuracy.against_test(live, TEST)["mae_ratio"] == pytest.approx(1.5)
    table = pd.DataFrame(columns=["kind", "rows", "p_adjusted", "shift", "js", "outside"])
    found = reasons(table.assign(drifting=[]), live, TEST, Thresholds())
    assert len(found) == 2
    assert found[0].startswith("live MAE 3.00 mpg")
    assert "1.50x the test MAE 2.00" in found[0]
    assert found[1].startswith("interval coverage 0%")
    assert reasons(table.assign(drifting=[]), live, TEST, Thresholds(min_labels=41)) == []


def test_accuracy_over_time_slices_the_span():
    times = pd.date_range("2026-12-01", periods=24, freq="h", tz="UTC")
    labelled = pd.DataFrame(
        {
            "time": times,
            "mpg": 20.0,
            "label": [20.0] * 12 + [24.0] * 12,
            "mpg_low": 18.0,
            "mpg_high": 22.0,
        }
    )
    slices = accuracy.accuracy_over_time(labelled, buckets=4)
    assert slices["labels"].tolist() == [6, 6, 6, 6]
    assert slices["mae"].tolist() == [0, 0, 4, 4]
    assert slices["coverage"].tolist() == [1, 1, 0, 0]


def test_thresholds_refuse_nonsense():
    with pytest.raises(ValueError, match="correction"):
        Thresholds(correction="none")
    with pytest.raises(ValueError, match="alpha"):
        Thresholds(alpha=-1)


def test_the_monitor_extra_is_pinned_and_stays_out_of_the_serving_image():
    import tomllib

    from carnn_pyfunc.versions import model_requirements, serving_requirements
    from tests.helpers import ROOT

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    monitor = extras["optional-dependencies"]["monitor"]
    assert all("==" in pin for pin in monitor)
    served = " ".join(model_requirements() + serving_requirements())
    assert "scipy" not in served
    assert "mlflow==" not in served  # the image has mlflow-skinny only
