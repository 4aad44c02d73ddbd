"""The ensemble merged into one network computes exactly the members' mean."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from carnn_pyfunc.network import _mpg_mae, assemble, build_network


@pytest.mark.parametrize("hidden_layers", [0, 1, 2, 3])
@pytest.mark.parametrize("target", ["mpg", "log"])
def test_assembled_network_is_the_members_mean(tmp_path, hidden_layers, target):
    members = []
    for i in range(3):
        keras.utils.set_random_seed(i)
        members.append(
            build_network(
                10,
                hidden_units=8,
                hidden_layers=hidden_layers,
                dropout=0.1,
                target=target,
                prefix=f"m{i}_",
            )
        )
    x = np.random.default_rng(0).random((50, 10), dtype=np.float32)
    mean = np.mean([m(x, training=False).numpy() for m in members], axis=0)
    expected = np.exp(mean) if target == "log" else mean
    network = assemble(members, target)
    np.testing.assert_allclose(network(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    # One network's depth, whatever the number of members: it saves and loads as plain Keras.
    dense = [layer for layer in network.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == hidden_layers + 1
    network.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_array_equal(loaded(x).numpy(), network(x).numpy())


def test_mae_metric_is_in_mpg_for_a_log_target():
    y_true = np.log(np.array([20.0, 30.0], dtype=np.float32))
    y_pred = np.log(np.array([[22.0], [27.0]], dtype=np.float32))
    value = keras.ops.convert_to_numpy(_mpg_mae("log")(y_true, y_pred))
    np.testing.assert_allclose(value, [2.0, 3.0], rtol=1e-5)
