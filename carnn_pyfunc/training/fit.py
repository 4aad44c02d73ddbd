"""Pure training steps: a config and training rows in, a fitted contract and network out.

No MLflow here: :mod:`carnn_pyfunc.training.run` logs what these return, and cross-validation
scores the same fitted model through the same compiled forward pass that serving runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from carnn_pyfunc import data
from carnn_pyfunc.config import TrainConfig
from carnn_pyfunc.contract import FeatureContract, fit_contract
from carnn_pyfunc.model.forward import litert_forward, to_flatbuffer
from carnn_pyfunc.model.intervals import Calibration, interval
from carnn_pyfunc.model.network import (
    CODECS,
    assemble,
    build_network,
    encode_target,
    pack_targets,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FittedModel:
    """What one training produces: the contract, the network, its flatbuffer and the forward
    pass serving runs (LiteRT on that flatbuffer)."""

    contract: FeatureContract
    network: keras.Model
    flatbuffer: bytes
    forward: Callable[[np.ndarray], np.ndarray]
    history: dict[str, list[float]]
    calibration: Calibration  # out-of-sample residuals (see model.intervals)

    def predict(self, records: pd.DataFrame) -> np.ndarray:
        """MPG of raw records, exactly as the served model computes it."""
        return self.forward(self.contract.transform(records)).astype(np.float64)

    def predict_interval(self, records: pd.DataFrame, level: float):
        """(MPG, low, high) of raw records at ``level``, as the served model computes them."""
        mpg = self.predict(records)
        return (mpg, *interval(mpg, self.calibration.log, level))


def fit_model(
    config: TrainConfig, train: pd.DataFrame, callbacks: list | None = None
) -> FittedModel:
    """Fit the contract on ``train``, then the network; compile it once, as it will be served."""
    contract = fit_contract(train, min_maker_count=config.min_maker_count)
    network, history, calibration = fit_network(config, train, contract, callbacks)
    flatbuffer = to_flatbuffer(network)
    forward = litert_forward(flatbuffer, contract.n_features)
    return FittedModel(contract, network, flatbuffer, forward, history, calibration)


def fit_network(
    config: TrainConfig,
    train: pd.DataFrame,
    contract: FeatureContract,
    callbacks: list | None = None,
) -> tuple[keras.Model, dict[str, list[float]], Calibration]:
    """Fit ``config.ensemble_size`` members on ``train`` and assemble ONE inference network.

    The members train side by side in one Keras model (see :func:`build_network`), each from its
    own initial weights and on all of ``train`` but its own seeded validation part, which scores
    it every epoch. With ``config.patience`` > 0, early stopping watches the members' summed
    validation loss and restores the best epoch. Returns the network (raw features in, MPG out)
    and the per-epoch history: ``loss``/``mae`` on the rows the members learn from,
    ``val_loss``/``val_mae`` on the rows they hold out (``mae`` in MPG, per row the mean over the
    members it counts for), and the calibration scores: each member's log residuals on the
    rows it held out (see :mod:`carnn_pyfunc.model.intervals`).
    """
    members = config.ensemble_size
    held_out = np.zeros((len(train), members), dtype=np.float32)
    for member in range(members):
        _, validation_rows = data.split_positions(
            len(train), test_size=config.validation_size, seed=config.seed + 1000 * member
        )
        held_out[validation_rows, member] = 1.0
    scored = held_out.any(axis=1)  # rows some member holds out
    features = contract.transform(train)
    target = encode_target(train[data.TARGET].to_numpy(), config.target)

    keras.utils.set_random_seed(config.seed)
    model = build_network(
        contract.n_features,
        members=members,
        hidden_units=config.hidden_units,
        hidden_layers=config.hidden_layers,
        dropout=config.dropout,
        l2=config.l2,
        learning_rate=config.learning_rate,
        lr_schedule=config.lr_schedule,
        steps=config.epochs * math.ceil(len(train) / config.batch_size),
        loss=config.loss,
        target=config.target,
    )
    callbacks = list(callbacks or [])
    if config.patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            )
        )
    history = model.fit(
        features,
        pack_targets(target, 1.0 - held_out),
        validation_data=(features[scored], pack_targets(target[scored], held_out[scored])),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    ).history
    logger.info("%d members: %d epochs, best val_mae %.3f", members, len(history["loss"]),
                min(history["val_mae"]))  # fmt: skip
    member_mpg = np.asarray(CODECS[config.target][1](model(features, training=False)))
    actual = np.repeat(train[data.TARGET].to_numpy(dtype=np.float64)[:, None], members, axis=1)
    outside = held_out.astype(bool)  # each member's own validation rows
    calibration = Calibration.of(actual[outside], member_mpg[outside])
    return assemble(model, config.target), history, calibration
