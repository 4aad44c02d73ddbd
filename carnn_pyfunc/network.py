"""The Keras architecture, as a function of its hyperparameters."""

from __future__ import annotations

import keras


def build_network(
    n_features: int,
    *,
    hidden_units: int = 64,
    hidden_layers: int = 2,
    dropout: float = 0.0,
    learning_rate: float = 1e-3,
) -> keras.Model:
    """A fully connected regression network: ``hidden_layers`` ReLU layers, one linear output.

    Compiled with Adam on mean squared error, reporting mean absolute error.
    """
    if n_features < 1 or hidden_units < 1 or hidden_layers < 0:
        raise ValueError("n_features and hidden_units must be positive, hidden_layers >= 0")
    inputs = keras.Input(shape=(n_features,), name="features")
    x = inputs
    for i in range(hidden_layers):
        x = keras.layers.Dense(hidden_units, activation="relu", name=f"hidden_{i + 1}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
    outputs = keras.layers.Dense(1, name="mpg")(x)
    model = keras.Model(inputs, outputs, name="carnn")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="mse",
        metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
    )
    return model
