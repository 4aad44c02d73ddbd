"""The model formats carnn ever wrote, which of them this code serves, and a cheap check of one.

A *model format* is one number for the whole set of artifacts a logged carnn model carries.
Models logged from this release on say it in a ``model_format.json`` artifact (the marker);
older models carry none and their format is told from what they hold: the artifacts the MLmodel
file lists and, for the three Keras-only formats that list the same ones, the contract's own
``format``. Each row of :data:`FORMATS` names the commits that wrote it (``first..last`` of
this repository's history) and whether this code serves it.

The marker is an artifact, not MLmodel ``metadata``, because the pyfunc's ``load_context`` sees
only its artifacts: loading itself refuses a format it does not read (also a newer model met by
an older release after a code rollback), not only the registry's checks. :func:`servable` reads
the MLmodel file and the marker, nothing else.

A leaf: imports nothing of carnn; MLflow only inside :func:`servable`.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

FORMAT_ARTIFACT = "format"  # the marker's artifact name in the MLmodel file
FORMAT_FILE = "model_format.json"
MODEL_FORMAT = 6  # what this code writes
CONTRACT_FORMAT = 4  # what contract.json's own ``format`` is when this code writes it


class UnservableFormat(ValueError):
    """This code does not serve a model of this format here; the message is one line saying
    why and which release does."""


@dataclass(frozen=True)
class ModelFormat:
    number: int
    contract: int  # contract.json's ``format``
    artifacts: frozenset[str]  # the artifact names the MLmodel file lists (without the marker)
    written_by: str  # carnn commits, first..last ("first.." while this code writes it)
    refused: str = ""  # why this code cannot serve it ("" when it can)
    needs: tuple[str, ...] = ()  # modules it needs here beyond serving's


_KERAS_ONLY = frozenset({"network", "scaler", "contract"})
_COMPILED = frozenset({"network", "forward", "contract"})
_KERAS_NEEDS = ("tensorflow", "joblib")  # its Keras network runs here; its scaler is a pickle
FORMATS: dict[int, ModelFormat] = {
    f.number: f
    for f in (
        # contract 1: no log fields, no model-year one-hots (nor, before 6cb0e42 and 1b2c752,
        # the diesel and rotary flags); the scaler a joblib pickle; only the Keras network
        ModelFormat(
            1,
            1,
            _KERAS_ONLY,
            "1d04ef0..7eb9daf",
            refused="its network takes features this encoder does not make "
            "(no log fields or model-year one-hots)",
        ),
        # contract 2: this encoder's layout, the field limits inside (unused: the field table
        # validates), the scaler a joblib pickle; only the Keras network
        ModelFormat(2, 2, _KERAS_ONLY, "83ddeb7..73b55e9", needs=_KERAS_NEEDS),
        # contract 3: the same without the limits
        ModelFormat(3, 3, _KERAS_ONLY, "39851bb..4f24a32", needs=_KERAS_NEEDS),
        # contract 4: the scaler's numbers in JSON; the network also compiled (model.tflite)
        ModelFormat(4, 4, _COMPILED, "afb2138..f90478b"),
        # + calibration.json: the prediction intervals' conformal scores
        ModelFormat(5, 4, _COMPILED | {"calibration"}, "78e2834..91c3589"),
        # + profile.json (monitoring's reference); the marker from 2026-12 on
        ModelFormat(6, 4, _COMPILED | {"calibration", "profile"}, "0dd5d3c.."),
    )
}
# Contract format 1 changed its layout twice without a new number: told apart by its name flags.
_CONTRACT_1_BY_FLAGS = {0: "1d04ef0..2a16dc0", 1: "6cb0e42..995436b", 2: "1b2c752..7eb9daf"}


def last_commit(written_by: str) -> str:
    """The release to serve a format with: the last commit that wrote it."""
    return written_by.split("..")[-1] or "HEAD"


def contract_written_by(number: object, feature_names: Iterable[str] | None = None) -> str | None:
    """The commits that wrote contracts of this format (and, for format 1, this layout)."""
    if number == 1 and feature_names is not None:
        return _CONTRACT_1_BY_FLAGS[sum(n in ("diesel", "rotary") for n in feature_names)]
    rows = [f.written_by.split("..") for f in FORMATS.values() if f.contract == number]
    return f"{rows[0][0]}..{rows[-1][1]}" if rows else None


def contract_refusal(number: object, feature_names: Iterable[str] | None = None) -> str:
    """One line: why this code does not read a contract of that format, and what does."""
    return _contract_line(number, contract_written_by(number, feature_names))


def _contract_line(number: object, written_by: str | None) -> str:
    if written_by is None:
        return (
            f"contract format {number!r} is not one carnn wrote up to this release "
            f"(formats 1-{CONTRACT_FORMAT}): serve it with the release that logged it"
        )
    return (
        f"contract format {number} was written by carnn {written_by}; serve it with that "
        f"release (carnn {last_commit(written_by)})"
    )


def refusal(number: int, written_by: str | None = None) -> str:
    """One line: why this code does not serve model format ``number`` here, or "" if it does
    (``written_by``: the commits that wrote this model, when known closer than its format's)."""
    known = FORMATS.get(number)
    if known is None:
        return (
            f"model format {number!r} is newer than this carnn reads (formats 1-{MODEL_FORMAT}): "
            "serve it with the release that logged it"
        )
    if known.refused:
        said = _contract_line(known.contract, written_by or known.written_by)
        return f"model format {number}: {said}: {known.refused}"
    missing = [m for m in known.needs if importlib.util.find_spec(m) is None]
    if missing:
        return (
            f"model format {number} (written by carnn {known.written_by}) runs its network in "
            f"Keras and needs {', '.join(missing)}, not installed here: install carnn[train] "
            f"or serve it with carnn {last_commit(known.written_by)}"
        )
    return ""


def format_of(artifacts: Iterable[str], contract_format: object = None) -> int:
    """The format of a model without a marker, from the artifacts it lists (and, for the
    Keras-only formats, which list the same ones, its contract's format)."""
    names = frozenset(artifacts)
    found = [
        f.number
        for f in FORMATS.values()
        if f.artifacts == names and contract_format in (None, f.contract)
    ]
    if len(found) != 1:
        raise UnservableFormat(
            f"not a carnn model format this release knows: artifacts {sorted(names)}, "
            f"contract format {contract_format!r}"
        )
    return found[0]


def read_marker(path: str | Path) -> int:
    """The format number a ``model_format.json`` holds."""
    number = json.loads(Path(path).read_text()).get("format")
    if not isinstance(number, int) or isinstance(number, bool):
        raise UnservableFormat(f"{FORMAT_FILE}: format {number!r} is not a format number")
    return number


def marker() -> dict[str, int]:
    """What ``model_format.json`` holds for a model logged by this code."""
    return {"format": MODEL_FORMAT, "contract_format": CONTRACT_FORMAT}


def model_format(artifacts: Mapping[str, str], contract_format: object = None) -> int:
    """The format of a model's artifacts (name -> local path): its marker, else told from what
    it holds."""
    if FORMAT_ARTIFACT in artifacts:
        return read_marker(artifacts[FORMAT_ARTIFACT])
    return format_of(artifacts, contract_format)


def servable(model_uri: str) -> tuple[bool, str]:
    """Can this code, in this environment, serve the model at ``model_uri``? Yes or no, and a
    one-line reason.

    Cheap: reads the MLmodel file and the marker (a model without one: its contract.json if the
    artifacts do not tell its format); never loads the model.
    """
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    def fetch(relative: str) -> str:
        return download_artifacts(artifact_uri=f"{model_uri.rstrip('/')}/{relative}")

    written_by = None
    try:
        conf = Model.load(model_uri).flavors.get("python_function", {})
        listed = {name: spec["path"] for name, spec in (conf.get("artifacts") or {}).items()}
        if FORMAT_ARTIFACT in listed:
            number, how = read_marker(fetch(listed[FORMAT_ARTIFACT])), "its marker"
        else:
            contract = {}
            if "forward" not in listed and "contract" in listed:
                contract = json.loads(Path(fetch(listed["contract"])).read_text())
            number, how = format_of(listed, contract.get("format")), "its artifacts"
            written_by = contract_written_by(contract.get("format"), contract.get("feature_names"))
    except (MlflowException, OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return False, f"{model_uri}: its model format cannot be read: {first}"
    why = refusal(number, written_by)
    if why:
        return False, f"{model_uri}: {why}"
    return True, f"{model_uri}: model format {number} (from {how}), served by this carnn"
