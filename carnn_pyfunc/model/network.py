"""The Keras architecture, as a function of its hyperparameters: the seed ensemble trained as one
model, then assembled into one inference network."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from carnn_pyfunc.config import LOSSES, SCHEDULES, TARGETS

# How the network sees each of config.TARGETS: MPG itself, or its logarithm (relative errors,
# and the multiplicative effect of weight and power on fuel economy become additive).
CODECS: dict[str, tuple[Callable, Callable]] = {
    "mpg": (lambda y: y, lambda z: z),
    "log": (np.log, keras.ops.exp),
}


# Each of config.LOSSES as a function of the absolute error.
ELEMENTWISE_LOSSES: dict[str, Callable] = {
    "mse": lambda error: error * error,
    "huber": lambda error: keras.ops.where(
        error <= 1.0, 0.5 * error * error, error - 0.5
    ),  # delta 1
}


def encode_target(mpg: np.ndarray, target: str) -> np.ndarray:
    """MPG in the network's training space."""
    return np.asarray(CODECS[target][0](mpg), dtype=np.float32)


def pack_targets(encoded: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keras ``y`` for :func:`build_network`'s model: each member's target, then its row mask.

    ``encoded``: (rows,) targets in the training space; ``mask``: (rows, members), 1 where the
    member learns from (or is scored on) the row.
    """
    mask = np.asarray(mask, dtype=np.float32)
    targets = np.repeat(np.asarray(encoded, dtype=np.float32)[:, None], mask.shape[1], axis=1)
    return np.concatenate([targets, mask], axis=1)


def _unpack(y_true, y_pred):
    members = keras.ops.shape(y_pred)[-1]
    return y_true[:, :members], y_true[:, members:]


def _member_loss(loss: str):
    """The members' summed ``loss`` on the rows each of them learns from.

    A sum, not a mean, over members: each member's gradient (and the weight of its own L2
    penalty against it) is exactly what it would be trained alone.
    """

    if loss not in ELEMENTWISE_LOSSES:
        raise ValueError(f"loss: {loss!r} is not one of {tuple(ELEMENTWISE_LOSSES)}")
    elementwise = ELEMENTWISE_LOSSES[loss]

    def member_loss(y_true, y_pred):
        target, mask = _unpack(y_true, y_pred)
        return keras.ops.sum(elementwise(keras.ops.abs(target - y_pred)) * mask, axis=-1)

    return member_loss


def _mpg_mae(target: str):
    """Mean absolute error in MPG whatever the training space (logged as ``mae``): per row, the
    mean over the members the row counts for."""
    decode = CODECS[target][1]

    def mae(y_true, y_pred):
        encoded, mask = _unpack(y_true, y_pred)
        error = keras.ops.abs(decode(encoded) - decode(y_pred)) * mask
        return keras.ops.sum(error, axis=-1) / keras.ops.maximum(keras.ops.sum(mask, axis=-1), 1)

    return mae


def build_network(
    n_features: int,
    *,
    members: int = 1,
    hidden_units: int = 64,
    hidden_layers: int = 2,
    dropout: float = 0.0,
    l2: float = 0.0,
    learning_rate: float = 1e-3,
    lr_schedule: str = "constant",
    steps: int = 1,
    loss: str = "mse",
    target: str = "mpg",
) -> keras.Model:
    """``members`` independent wide & deep regression networks trained as ONE Keras model.

    Each member: ``hidden_layers`` ReLU layers of ``hidden_units`` (L2 penalty, dropout) into one
    linear output, plus a linear path from the inputs straight to that output (same L2 penalty;
    with no hidden layer the member is that linear model alone). The linear path carries what is
    additive in the training space (a model year's own level, the log of weight), the hidden
    layers the rest. The model's output has one column per member. Members share nothing but the
    input and the optimizer step, so all of them train for the price of about one (the network
    is tiny: a training step costs its call overhead, not its arithmetic). Compiled with Adam on
    the members' summed ``loss`` in the ``target`` space, each member on its own rows (see
    :func:`pack_targets`), reporting MAE in MPG. ``lr_schedule`` "cosine" decays the learning
    rate from ``learning_rate`` to 0 over ``steps`` optimizer steps (the whole run): the last
    epochs settle into a minimum instead of jittering around it at full step size.
    """
    if n_features < 1 or members < 1 or hidden_units < 1 or hidden_layers < 0 or steps < 1:
        raise ValueError(
            "n_features, members, hidden_units and steps must be positive, hidden_layers >= 0"
        )
    if loss not in LOSSES or target not in TARGETS or lr_schedule not in SCHEDULES:
        choices = f"loss {LOSSES}, target {TARGETS}, lr_schedule {SCHEDULES}"
        raise ValueError(f"expected one of each: {choices}")
    regulariser = keras.regularizers.L2(l2) if l2 > 0 else None
    inputs = keras.Input(shape=(n_features,), name="features")
    outputs = []
    for member in range(members):
        x = inputs
        for i in range(hidden_layers):
            x = keras.layers.Dense(
                hidden_units,
                activation="relu",
                kernel_regularizer=regulariser,
                name=f"member{member + 1}_hidden_{i + 1}",
            )(x)
            if dropout > 0:
                x = keras.layers.Dropout(dropout, name=f"member{member + 1}_dropout_{i + 1}")(x)
        output = keras.layers.Dense(1, name=f"member{member + 1}_target")(x)
        if hidden_layers:
            linear = keras.layers.Dense(
                1, use_bias=False, kernel_regularizer=regulariser, name=f"member{member + 1}_linear"
            )(inputs)
            output = keras.layers.Add(name=f"member{member + 1}_output")([output, linear])
        outputs.append(output)
    output = outputs[0] if members == 1 else keras.layers.Concatenate(name="members")(outputs)
    model = keras.Model(inputs, output)
    model.compile(
        steps_per_execution=32,  # whole epochs in one compiled call: the model is tiny
        optimizer=keras.optimizers.Adam(
            learning_rate=keras.optimizers.schedules.CosineDecay(learning_rate, steps)
            if lr_schedule == "cosine"
            else learning_rate
        ),
        loss=_member_loss(loss),
        metrics=[_mpg_mae(target)],
    )
    return model


def member_layers(model: keras.Model, path: str = "deep") -> list[list[keras.layers.Dense]]:
    """Each member's Dense layers of a :func:`build_network` model, input to output: of its
    ``deep`` path (hidden layers and output) or of its ``linear`` path (empty without one)."""
    members: dict[str, list[keras.layers.Dense]] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            member, role = layer.name.split("_", 1)
            on_path = members.setdefault(member, [])
            if (role == "linear") == (path == "linear"):
                on_path.append(layer)
    return list(members.values())


def assemble(model: keras.Model, target: str) -> keras.Model:
    """ONE inference network, exactly the members' mean (in the training space) decoded to MPG.

    The members' first hidden layers become one Dense layer side by side on the shared input;
    deeper hidden layers become one grouped layer (``EinsumDense``, a (members, units, units)
    kernel: each member's block, no cross-member zeros to multiply); the output layer averages;
    the members' linear paths, averaged, are one linear layer added to it.
    Serving makes one call however many members there are, and the result is a plain ``.keras``
    file of standard layers with no training configuration inside.
    """
    dense = member_layers(model)
    n_members, depth = len(dense), len(dense[0])
    kernels = [[d[level].get_weights()[0] for d in dense] for level in range(depth)]
    biases = [[d[level].get_weights()[1] for d in dense] for level in range(depth)]
    inputs = keras.Input(shape=model.input_shape[1:], name="features")
    layers = []  # (layer, kernel, bias)
    if depth == 1:  # no hidden layer: the mean of linear models is one linear model
        layer = keras.layers.Dense(1, name="ensemble_mean")
        x = layer(inputs)
        layers.append((layer, np.mean(kernels[0], axis=0), np.mean(biases[0], axis=0)))
    else:
        units = kernels[0][0].shape[1]
        layer = keras.layers.Dense(n_members * units, activation="relu", name="hidden_1")
        x = keras.layers.Reshape((n_members, units), name="members")(layer(inputs))
        layers.append((layer, np.concatenate(kernels[0], axis=1), np.concatenate(biases[0])))
        for level in range(1, depth - 1):
            layer = keras.layers.EinsumDense(
                "bmi,mij->bmj",
                output_shape=(n_members, units),
                bias_axes="mj",
                activation="relu",
                name=f"hidden_{level + 1}",
            )
            x = layer(x)
            layers.append((layer, np.stack(kernels[level]), np.stack(biases[level])))
        layer = keras.layers.EinsumDense(
            "bmi,mij->bj", output_shape=(1,), bias_axes="j", name="ensemble_mean"
        )
        x = layer(x)
        layers.append((layer, np.stack(kernels[-1]) / n_members, np.mean(biases[-1], axis=0)))
    for layer, kernel, bias in layers:
        layer.set_weights([kernel, bias])
    linear = [path[0].get_weights()[0] for path in member_layers(model, "linear") if path]
    if linear:
        layer = keras.layers.Dense(1, use_bias=False, name="linear")
        x = keras.layers.Add(name="wide_and_deep")([x, layer(inputs)])
        layer.set_weights([np.mean(linear, axis=0)])
    if target == "log":
        x = keras.layers.Activation("exponential", name="mpg")(x)
    return keras.Model(inputs, x, name="carnn")
