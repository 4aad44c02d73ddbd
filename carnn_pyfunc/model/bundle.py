"""Log the ONE pyfunc model: the network, the fitted contract, the signature and exact pins.

Logged "from code" (``model_code.py``) with the carnn package as ``code_paths``; the signature
comes from the contract's field table.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from carnn_pyfunc.contract import FIELDS, FeatureContract, save_contract
from carnn_pyfunc.model.pyfunc import (
    CONTRACT_ARTIFACT,
    DEFAULT_MODEL_CONFIG,
    ERROR_COLUMN,
    ERRORS_PARAM,
    NETWORK_ARTIFACT,
    OUTPUT_COLUMN,
    SCALER_ARTIFACT,
)
from carnn_pyfunc.versions import pip_requirements

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
        [ColSpec("double", OUTPUT_COLUMN), ColSpec("string", ERROR_COLUMN, required=False)]
    )
    params = ParamSchema([ParamSpec(ERRORS_PARAM, "string", "raise")])
    return ModelSignature(inputs=Schema(columns), outputs=outputs, params=params)


def log_carnn_model(
    network,
    contract: FeatureContract,
    input_example: pd.DataFrame,
    registered_model_name: str | None,
) -> ModelInfo:
    """Log the pyfunc model in the active run (and register it when a name is given)."""
    with tempfile.TemporaryDirectory(prefix="carnn-model-") as tmp:
        artifacts = {
            NETWORK_ARTIFACT: Path(tmp) / "model.keras",
            SCALER_ARTIFACT: Path(tmp) / "scaler.joblib",
            CONTRACT_ARTIFACT: Path(tmp) / "contract.json",
        }
        network.save(artifacts[NETWORK_ARTIFACT])
        save_contract(contract, artifacts[CONTRACT_ARTIFACT], artifacts[SCALER_ARTIFACT])
        mlflow.log_artifact(str(artifacts[CONTRACT_ARTIFACT]))
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(MODEL_CODE),
            artifacts={k: str(v) for k, v in artifacts.items()},
            code_paths=[str(PACKAGE_DIR)],
            signature=input_signature(),
            input_example=input_example,
            pip_requirements=pip_requirements(),
            model_config=DEFAULT_MODEL_CONFIG,
            registered_model_name=registered_model_name or None,
        )
