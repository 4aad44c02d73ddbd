"""Log the ONE pyfunc model: the network, its compiled flatbuffer, the fitted contract, the
signature and exact pins.

Logged "from code" (``model_code.py``) with the carnn package as ``code_paths``; the signature
comes from the contract's field table; the requirements are what serving needs (no TensorFlow).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from carnn_pyfunc.contract import FIELDS, FeatureContract, save_contract
from carnn_pyfunc.formats import FORMAT_FILE, marker
from carnn_pyfunc.model.forward import litert_forward
from carnn_pyfunc.model.intervals import HIGH_COLUMN, INTERVAL_PARAM, LOW_COLUMN, Calibration
from carnn_pyfunc.model.pyfunc import (
    CALIBRATION_ARTIFACT,
    CONTRACT_ARTIFACT,
    DEFAULT_MODEL_CONFIG,
    ERROR_COLUMN,
    ERRORS_PARAM,
    FORWARD_ARTIFACT,
    MARKER_ARTIFACT,
    NETWORK_ARTIFACT,
    OUTPUT_COLUMN,
    PROFILE_ARTIFACT,
)
from carnn_pyfunc.versions import model_requirements

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # carnn_pyfunc, shipped as code_paths
MODEL_CODE = Path(__file__).resolve().parent / "model_code.py"
MODEL_NAME = "model"  # the model's name within its run


def input_signature() -> ModelSignature:
    """Raw car records in (the field table's required and optional fields), ``mpg`` out (and
    ``error`` per row with the param ``errors="column"``)."""
    columns = [
        ColSpec("double" if f.numeric else "string", f.name, required=f.required) for f in FIELDS
    ]
    outputs = Schema(
        [
            ColSpec("double", OUTPUT_COLUMN),
            ColSpec("double", LOW_COLUMN, required=False),
            ColSpec("double", HIGH_COLUMN, required=False),
            ColSpec("string", ERROR_COLUMN, required=False),
        ]
    )
    params = ParamSchema(
        [ParamSpec(ERRORS_PARAM, "string", "raise"), ParamSpec(INTERVAL_PARAM, "double", 0.0)]
    )
    return ModelSignature(inputs=Schema(columns), outputs=outputs, params=params)


def check_flatbuffer(network, flatbuffer: bytes, features: np.ndarray, tolerance=1e-4) -> float:
    """The largest difference between the flatbuffer's and the Keras network's answers on
    ``features``; ValueError above ``tolerance`` (the compiled network must be the network)."""
    expected = np.asarray(network(features, training=False))[:, 0]
    got = litert_forward(flatbuffer, features.shape[1])(features)
    worst = float(np.max(np.abs(got - expected)))
    if not worst <= tolerance:
        raise ValueError(f"the compiled network differs from Keras by {worst:g} (> {tolerance:g})")
    return worst


def log_carnn_model(
    network,
    flatbuffer: bytes,
    contract: FeatureContract,
    calibration: Calibration,
    *,
    check_features: np.ndarray,
    input_example: pd.DataFrame,
    registered_model_name: str | None,
    profile: dict | None = None,
) -> ModelInfo:
    """Log the pyfunc model in the active run (and register it when a name is given), after
    checking that the flatbuffer answers like the network on ``check_features``."""
    check_flatbuffer(network, flatbuffer, check_features)
    with tempfile.TemporaryDirectory(prefix="carnn-model-") as tmp:
        artifacts = {
            NETWORK_ARTIFACT: Path(tmp) / "model.keras",
            FORWARD_ARTIFACT: Path(tmp) / "model.tflite",
            CONTRACT_ARTIFACT: Path(tmp) / "contract.json",
            CALIBRATION_ARTIFACT: Path(tmp) / "calibration.json",
            MARKER_ARTIFACT: Path(tmp) / FORMAT_FILE,  # the model format (carnn_pyfunc.formats)
        }
        artifacts[MARKER_ARTIFACT].write_text(json.dumps(marker()) + "\n")
        if profile is not None:  # the reference profile monitoring compares served inputs with
            artifacts[PROFILE_ARTIFACT] = Path(tmp) / "profile.json"
            artifacts[PROFILE_ARTIFACT].write_text(json.dumps(profile, indent=1) + "\n")
            mlflow.log_artifact(str(artifacts[PROFILE_ARTIFACT]))
        network.save(artifacts[NETWORK_ARTIFACT])
        scores = {"method": "split conformal, log residuals", "scores": calibration.log.tolist()}
        artifacts[CALIBRATION_ARTIFACT].write_text(json.dumps(scores) + "\n")
        artifacts[FORWARD_ARTIFACT].write_bytes(flatbuffer)
        save_contract(contract, artifacts[CONTRACT_ARTIFACT])
        mlflow.log_artifact(str(artifacts[CONTRACT_ARTIFACT]))
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(MODEL_CODE),
            artifacts={k: str(v) for k, v in artifacts.items()},
            code_paths=[str(PACKAGE_DIR)],
            signature=input_signature(),
            input_example=input_example,
            pip_requirements=model_requirements(),
            model_config=DEFAULT_MODEL_CONFIG,
            registered_model_name=registered_model_name or None,
        )
