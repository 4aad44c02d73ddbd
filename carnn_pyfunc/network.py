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
    """ONE inference network, exactly the members' mean (in the training space) decoded to MPG.

    The members are merged into a single wider MLP: their first hidden layers side by side,
    deeper hidden layers block-diagonal, the output layer averaging. Serving then costs one
    network's worth of operations however many members there are, and the result is a plain
    ``.keras`` file of standard layers with no training configuration inside.
    """
    dense = [
        [layer for layer in m.layers if isinstance(layer, keras.layers.Dense)] for m in members
    ]
    n_members, depth = len(members), len(dense[0])
    inputs = keras.Input(shape=members[0].input_shape[1:], name="features")
    x, weights = inputs, []
    for level in range(depth):
        kernels = [d[level].get_weights()[0] for d in dense]
        biases = [d[level].get_weights()[1] for d in dense]
        if level == depth - 1:  # the output: average the members' outputs
            kernel = (
                np.concatenate(kernels, axis=0) if depth > 1 else np.sum(kernels, axis=0)
            ) / n_members
            bias = np.mean(biases, axis=0)
            activation, name = None, "ensemble_mean"
        else:  # hidden: side by side on the shared input, block-diagonal after that
            kernel = np.concatenate(kernels, axis=1) if level == 0 else _block_diagonal(kernels)
            bias = np.concatenate(biases)
            activation, name = "relu", f"hidden_{level + 1}"
        layer = keras.layers.Dense(kernel.shape[1], activation=activation, name=name)
        x = layer(x)
        weights.append((layer, kernel, bias))
    for layer, kernel, bias in weights:
        layer.set_weights([kernel, bias])
    if target == "log":
        x = keras.layers.Activation("exponential", name="mpg")(x)
    return keras.Model(inputs, x, name="carnn")


def _block_diagonal(blocks: list[np.ndarray]) -> np.ndarray:
    rows, cols = sum(b.shape[0] for b in blocks), sum(b.shape[1] for b in blocks)
    out = np.zeros((rows, cols), dtype=blocks[0].dtype)
    r = c = 0
    for block in blocks:
        out[r : r + block.shape[0], c : c + block.shape[1]] = block
        r, c = r + block.shape[0], c + block.shape[1]
    return out
