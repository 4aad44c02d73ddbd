"""Run configuration: MLproject parameters -> --kebab-case flags -> a frozen config -> log_params.

No heavy imports here, so the CLI can build its options (and answer --help) without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from carnn_pyfunc.data import DEFAULT_DATA_PATH

# The losses and target spaces a network can train with (network.py implements each one).
LOSSES = ("mse", "huber")
TARGETS = ("mpg", "log")
# How the learning rate moves over a run (network.py implements each one).
SCHEDULES = ("cosine", "constant")

# --extra-data values that mean no extra cars. Not empty by default: `mlflow run` logs an empty
# parameter as '' (shell-quoted), which the run's own log_params would then contradict.
NO_EXTRA_DATA = ("none", "")

# Python types of config fields, by their annotation (annotations are strings here).
FIELD_TYPES: dict[str, type] = {"int": int, "float": float, "str": str}


def _param(default, help_text: str, check=None):
    """A config field with its CLI help and an optional validity check (value -> bool)."""
    return field(default=default, metadata={"help": help_text, "check": check})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; logged as the run's parameters."""

    epochs: int = _param(
        600, "maximum number of epochs (early stopping may end sooner)", lambda v: v >= 1
    )
    batch_size: int = _param(32, "mini-batch size", lambda v: v >= 1)
    learning_rate: float = _param(0.001, "Adam's (initial) learning rate", lambda v: 0 < v < 1)
    lr_schedule: str = _param(
        "cosine",
        "learning rate over the run: cosine (decays to 0 by the last epoch) or constant",
        lambda v: v in SCHEDULES,
    )
    hidden_units: int = _param(64, "units in each hidden layer", lambda v: v >= 1)
    hidden_layers: int = _param(2, "number of hidden layers", lambda v: 0 <= v <= 16)
    dropout: float = _param(0.0, "dropout rate after each hidden layer", lambda v: 0 <= v < 1)
    l2: float = _param(
        0.002, "L2 weight penalty on the hidden layers and the linear path", lambda v: 0 <= v < 1
    )
    loss: str = _param("huber", "training loss: mse or huber", lambda v: v in LOSSES)
    target: str = _param(
        "log", "what the network fits: mpg, or log (log MPG)", lambda v: v in TARGETS
    )
    ensemble_size: int = _param(
        4,
        "networks averaged inside the one model, each with its own seed and validation part",
        lambda v: 1 <= v <= 20,
    )
    patience: int = _param(
        0, "early-stopping patience in epochs on validation loss; 0 = off", lambda v: v >= 0
    )
    seed: int = _param(
        42, "seed for the split, the weight initialisation and shuffling", lambda v: v >= 0
    )
    test_size: float = _param(
        0.2, "share of the data held out as the test split", lambda v: 0 < v < 1
    )
    validation_size: float = _param(
        0.1, "share of the training split used for per-epoch validation", lambda v: 0 < v < 1
    )
    min_maker_count: int = _param(
        10, "makers with fewer training rows are grouped as 'other'", lambda v: v >= 1
    )
    registered_model_name: str = _param(
        "carnn", "registered model to add a version to; empty: do not register", lambda v: True
    )
    experiment_name: str = _param(
        "carnn",
        "MLflow experiment of the run (unless the run was started by `mlflow run`)",
        lambda v: bool(v.strip()),
    )
    data_path: str = _param(
        str(DEFAULT_DATA_PATH), "the raw UCI auto-mpg.data file", lambda v: Path(v).is_file()
    )
    extra_data: str = _param(
        NO_EXTRA_DATA[0],
        "labelled served cars added to the training split only (Parquet: the fields and mpg, "
        "as `carnn labelled` writes them; validated, de-duplicated); none: no extra cars",
        lambda v: v in NO_EXTRA_DATA or Path(v).is_file(),
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = FIELD_TYPES[f.type]
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(self, f.name, value)
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ValueError(f"{f.name}: expected {f.type}, got {value!r}")
            check = f.metadata["check"]
            if check is not None and not check(value):
                raise ValueError(f"{f.name}: {value!r} is not valid: {f.metadata['help']}")
