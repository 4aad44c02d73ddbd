"""The seed ensemble: trained side by side in one model, merged into one network = the mean."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from carnn_pyfunc.model.network import (
    _member_loss,
    _mpg_mae,
    assemble,
    build_network,
    member_layers,
    pack_targets,
)


@pytest.mark.parametrize("hidden_layers", [0, 1, 2, 3])
@pytest.mark.parametrize("target", ["mpg", "log"])
def test_assembled_network_is_the_members_mean(tmp_path, hidden_layers, target):
    keras.utils.set_random_seed(0)
    model = build_network(
        10, members=3, hidden_units=8, hidden_layers=hidden_layers, dropout=0.1, target=target
    )
    x = np.random.default_rng(0).random((50, 10), dtype=np.float32)
    outputs = model(x, training=False).numpy()
    assert outputs.shape == (50, 3)
    assert np.ptp(outputs, axis=1).min() > 0  # three different members
    mean = outputs.mean(axis=1, keepdims=True)
    expected = np.exp(mean) if target == "log" else mean
    network = assemble(model, target)
    np.testing.assert_allclose(network(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    # One network's depth, whatever the number of members, and no more weights than the members
    # have (no block-diagonal zeros to multiply); it saves and loads as plain Keras.
    weighted = [layer for layer in network.layers if layer.weights]
    linear = 1 if hidden_layers else 0  # the members' linear paths, averaged: one layer
    assert len(weighted) == hidden_layers + 1 + linear
    # (the members' three output biases become their mean: one number; their three linear
    # kernels one kernel)
    merged = 2 + 2 * 10 if hidden_layers else model.count_params() - (10 + 1)
    assert network.count_params() == model.count_params() - merged
    network.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_array_equal(loaded(x).numpy(), network(x).numpy())


@pytest.mark.parametrize("loss", ["mse", "huber"])
def test_each_member_learns_only_from_its_own_rows(loss):
    rng = np.random.default_rng(1)
    x = rng.random((64, 5), dtype=np.float32)
    y = (x @ np.arange(1, 6, dtype=np.float32) + 3).astype(np.float32)
    mask = np.ones((64, 3), dtype=np.float32)
    mask[:, 1] = 0.0  # member 2 learns from no row
    mask[32:, 2] = 0.0  # member 3 from the first half only
    keras.utils.set_random_seed(1)
    model = build_network(5, members=3, hidden_units=4, hidden_layers=1, loss=loss)
    before = [[w.copy() for layer in m for w in layer.get_weights()] for m in member_layers(model)]
    model.fit(x, pack_targets(y, mask), epochs=3, batch_size=16, verbose=0)
    after = [[w for layer in m for w in layer.get_weights()] for m in member_layers(model)]
    changed = [any(not np.array_equal(a, b) for a, b in zip(aw, bw, strict=True))
               for aw, bw in zip(after, before, strict=True)]  # fmt: skip
    assert changed == [True, False, True]


def test_mae_metric_is_in_mpg_over_the_members_a_row_counts_for():
    y_true = np.log(np.array([20.0, 30.0], dtype=np.float32))
    y_pred = np.log(np.array([[22.0, 10.0], [27.0, 33.0]], dtype=np.float32))
    mask = np.array([[1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    value = keras.ops.convert_to_numpy(_mpg_mae("log")(pack_targets(y_true, mask), y_pred))
    np.testing.assert_allclose(value, [2.0, 3.0], rtol=1e-5)


@pytest.mark.parametrize(("lr_schedule", "final_rate"), [("cosine", 0.0), ("constant", 0.01)])
def test_learning_rate_schedule_runs_over_the_given_steps(lr_schedule, final_rate):
    x = np.random.default_rng(2).random((40, 4), dtype=np.float32)
    y = pack_targets(x.sum(axis=1), np.ones((40, 2)))
    model = build_network(
        4, members=2, hidden_units=4, learning_rate=0.01, lr_schedule=lr_schedule, steps=20
    )
    rates = []
    for _ in range(2):  # 2 x 5 epochs x 2 batches = the 20 steps
        model.fit(x, y, epochs=5, batch_size=20, verbose=0)
        rates.append(float(model.optimizer.learning_rate))
    assert rates[1] == pytest.approx(final_rate, abs=1e-7)
    if lr_schedule == "cosine":
        assert rates[0] == pytest.approx(0.005, rel=1e-4)  # half-way down the cosine


@pytest.mark.parametrize("loss", ["mae", "Huber", ""])
def test_an_unknown_loss_is_an_error_not_mse(loss):
    with pytest.raises(ValueError, match="loss"):
        _member_loss(loss)
