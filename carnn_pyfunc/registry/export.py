"""Write a registered model's directory into the Docker build context (``carnn export``)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

EXPORT_INFO = "registered_model.json"  # written beside MLmodel: which version this is
_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ExportError(Exception):
    """The model cannot be exported (unknown URI, or an output that is not ours to replace)."""


def export(model_uri: str, output: str | Path) -> dict[str, str]:
    """Download ``models:/name@alias`` or ``models:/name/N`` into ``output`` (replaced whole).

    Returns what was exported; it is also written to ``output/registered_model.json``.
    """
    match = _REGISTRY_URI.match(model_uri)
    if not match:
        raise ExportError(
            f"model URI: expected models:/<name>@<alias> or models:/<name>/<version>, "
            f"got {model_uri!r}"
        )
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not (output / "MLmodel").is_file():
        raise ExportError(f"{output} exists and is not an exported model: not replacing it")
    client = mlflow.MlflowClient()
    name = match["name"]
    try:
        if match["alias"]:
            version = client.get_model_version_by_alias(name, match["alias"])
        else:
            version = client.get_model_version(name, match["version"])
    except MlflowException as err:
        raise ExportError(f"{model_uri}: {err.message}") from None
    info = {
        "model_uri": model_uri,
        "name": name,
        "version": str(version.version),
        "run_id": version.run_id or "",
        "source": version.source,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".export-") as tmp:
        staged = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version.version}", dst_path=tmp
            )
        )
        if not (staged / "MLmodel").is_file():
            raise ExportError(f"{model_uri}: the downloaded directory has no MLmodel file")
        (staged / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n")
        if output.exists():
            shutil.rmtree(output)
        staged.rename(output)
    output.chmod(0o755)  # the temporary directory was private; the image's user must read it
    return info
