"""The served model: loaded by MLflow's pyfunc loader, described for /model, called per request.

The carnn pyfunc validates every record itself (the contract is stricter than the signature),
so requests call the loaded Python model's own ``answer`` (``predict``'s columns, without a
DataFrame or MLflow's wrappers around ``predict``: schema enforcement and type-hint checks);
any other pyfunc goes through ``PyFuncModel.predict``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from carnn_pyfunc.contract import FIELDS, OTHER_MAKER
from carnn_pyfunc.registry.export import EXPORT_INFO

REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


@dataclass
class LoadedModel:
    pyfunc: mlflow.pyfunc.PyFuncModel
    info: dict[str, Any]

    def __post_init__(self) -> None:
        try:
            self._python_model = self.pyfunc.unwrap_python_model()
        except MlflowException:  # not a PythonModel: MLflow's own predict path
            self._python_model = None

    def answer(self, records: list[dict] | pd.DataFrame, params: dict | None) -> dict[str, Any]:
        """The model's answer as columns (name -> array or list, one value per record)."""
        answer = getattr(self._python_model, "answer", None)
        if answer is not None:  # the carnn model: its own columns, no DataFrame in between
            return answer(records, params)
        if self._python_model is not None:
            frame = self._python_model.predict(None, records, params)
        else:
            frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(records)
            frame = self.pyfunc.predict(frame, params=params)
        return {str(c): _plain(frame[c]) for c in frame.columns}

    @property
    def python_model(self):
        """The loaded PythonModel (None for other flavors)."""
        return self._python_model

    @property
    def makers(self) -> tuple[str, ...]:
        """The makers the model knows by name (for the web page's suggestions); none if the
        model has no fitted contract."""
        contract = getattr(self._python_model, "contract", None)
        return tuple(m for m in getattr(contract, "makers", ()) if m != OTHER_MAKER)


def load(model_uri: str) -> LoadedModel:
    """Load ``model_uri`` (``models:/name@alias``, ``models:/name/N``, ``runs:/...`` or a path)."""
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    return LoadedModel(pyfunc, describe(model_uri, pyfunc))


def registered(model_uri: str) -> tuple[str | None, str | None, str | None]:
    """(name, version, run id) of a registered model URI; Nones for any other URI."""
    match = REGISTRY_URI.match(model_uri)
    if not match:
        return None, None, None
    client = mlflow.MlflowClient()
    version = (
        client.get_model_version_by_alias(match["name"], match["alias"])
        if match["alias"]
        else client.get_model_version(match["name"], match["version"])
    )
    return match["name"], str(version.version), version.run_id


def describe(model_uri: str, pyfunc: mlflow.pyfunc.PyFuncModel) -> dict[str, Any]:
    """Registered name, version, alias, run id, training time and the input fields."""
    meta = pyfunc.metadata
    info: dict[str, Any] = {
        "model_uri": model_uri,
        "name": None,
        "version": None,
        "alias": None,
        "run_id": meta.run_id,
        "trained_at": meta.utc_time_created,
    }
    match = REGISTRY_URI.match(model_uri)
    if match:
        client = mlflow.MlflowClient()
        version = (
            client.get_model_version_by_alias(match["name"], match["alias"])
            if match["alias"]
            else client.get_model_version(match["name"], match["version"])
        )
        info.update(name=match["name"], version=str(version.version), alias=match["alias"])
        info["run_id"] = version.run_id or info["run_id"]
        info["trained_at"] = _iso(version.creation_timestamp) or info["trained_at"]
    elif (Path(model_uri) / EXPORT_INFO).is_file():  # an exported model directory
        exported = json.loads((Path(model_uri) / EXPORT_INFO).read_text())
        alias = REGISTRY_URI.match(exported.get("model_uri", ""))
        info.update(
            name=exported.get("name"),
            version=exported.get("version"),
            alias=alias["alias"] if alias else None,
            run_id=exported.get("run_id") or info["run_id"],
        )
    info["fields"] = [
        {"name": f.name, "required": f.required, "kind": f.kind, "unit": f.unit, "help": f.help}
        for f in FIELDS
    ]
    return info


def _iso(milliseconds: int | None) -> str | None:
    if not milliseconds:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, UTC).isoformat(timespec="seconds")


def _plain(column: pd.Series):
    """A column as a positional array: floats as float64 (NaN missing), the rest as objects
    (None missing)."""
    if column.dtype.kind in "fiu":
        return column.to_numpy(dtype="float64")
    return column.to_numpy(dtype=object, na_value=None)
