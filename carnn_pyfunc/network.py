"""The Keras architecture, as a function of its hyperparameters, and the ensemble built from it."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

# How the network sees the target: MPG itself, or its logarithm (relative errors, and the
# multiplicative effect of weight and power on fuel economy become additive).
TARGETS: dict[str, tuple[Callable, Callable]] = {
    "mpg": (lambda y: y, lambda z: z),
    "log": (np.log, keras.ops.exp),
}
LOSSES = ("mse", "huber")


def encode_target(mpg: np.ndarray, target: str) -> np.ndarray:
    """MPG in the network's training space."""
    return np.asarray(TARGETS[target][0](mpg), dtype=np.float32)


def _mpg_mae(target: str):
    """Mean absolute error in MPG whatever the training space (logged as ``mae``)."""
    decode = TARGETS[target][1]

    def mae(y_true, y_pred):
        y_true = keras.ops.reshape(y_true, keras.ops.shape(y_pred))  # (n,) vs (n, 1)
        return keras.ops.mean(keras.ops.abs(decode(y_true) - decode(y_pred)), axis=-1)

    return mae


def build_network(
    n_features: int,
    *,
    hidden_units: int = 64,
    hidden_layers: int = 2,
    dropout: float = 0.0,
    l2: float = 0.0,
    learning_rate: float = 1e-3,
    loss: str = "mse",
    target: str = "mpg",
    prefix: str = "",
) -> keras.Model:
    """A fully connected regression network: ``hidden_layers`` ReLU layers, one linear output.

    Compiled with Adam on ``loss`` in the ``target`` space, reporting MAE in MPG.
    """
    if n_features < 1 or hidden_units < 1 or hidden_layers < 0:
        raise ValueError("n_features and hidden_units must be positive, hidden_layers >= 0")
    if loss not in LOSSES or target not in TARGETS:
        raise ValueError(f"loss must be one of {LOSSES}, target one of {tuple(TARGETS)}")
    regulariser = keras.regularizers.L2(l2) if l2 > 0 else None
    inputs = keras.Input(shape=(n_features,), name="features")
    x = inputs
    for i in range(hidden_layers):
        x = keras.layers.Dense(
            hidden_units,
            activation="relu",
            kernel_regularizer=regulariser,
            name=f"{prefix}hidden_{i + 1}",
        )(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"{prefix}dropout_{i + 1}")(x)
    outputs = keras.layers.Dense(1, name=f"{prefix}target")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        steps_per_execution=32,  # whole epochs in one compiled call: the model is tiny
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss={"mse": "mse", "huber": keras.losses.Huber(delta=1.0)}[loss],
        metrics=[_mpg_mae(target)],
    )
    return model


def assemble(members: list[keras.Model], target: str) -> keras.Model:
    """ONE inference network: the members' mean in the training space, decoded to MPG.

    The members' own layers (uniquely named) are wired into one graph of standard layers, so it
    saves and loads as a plain ``.keras`` file, with no training configuration inside.
    """
    inputs = keras.Input(shape=members[0].input_shape[1:], name="features")
    outputs = []
    for member in members:
        x = inputs
        for layer in member.layers[1:]:  # after the member's own input
            x = layer(x)
        outputs.append(x)
    x = keras.layers.Average(name="ensemble_mean")(outputs) if len(outputs) > 1 else outputs[0]
    if target == "log":
        x = keras.layers.Activation("exponential", name="mpg")(x)
    elif target == "mpg":
        x = keras.layers.Identity(name="mpg")(x)
    return keras.Model(inputs, x, name="carnn")
