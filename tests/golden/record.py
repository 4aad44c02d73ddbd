"""Record a golden model: a tiny real model trained by the carnn of one commit, with its answers.

    python tests/golden/record.py COMMIT FORMAT

checks COMMIT out into a temporary git worktree, trains a tiny model there (one member, a few
epochs, nothing registered) with this virtualenv, asks that commit's own code what the model
answers for :data:`INPUTS`, and saves the model directory as ``tests/golden/FORMAT/model`` (its
``code/`` copy left out: the tests load goldens with the current code; ``model.keras`` left out
when the model carries the compiled ``model.tflite`` that serving reads) beside ``expected.json``.
The worktree and the temporary tracking store are removed afterwards; nothing is committed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent
ROOT = GOLDEN.parent.parent
TINY = {
    "epochs": 20,
    "ensemble-size": 1,
    "hidden-units": 8,
    "hidden-layers": 1,
    "seed": 7,
    "patience": 0,
    "registered-model-name": "",
}

# Valid for every release's validation; between them: a diesel by word and by Mercedes' name, a
# rotary Mazda, a four-digit year, a year outside the training years, missing horsepower, origin
# and name, an unknown maker, an alias (vw, maxda).
INPUTS = [
    {"cylinders": 8.0, "displacement": 307.0, "horsepower": 130.0, "weight": 3504.0,
     "acceleration": 12.0, "year": 70.0, "origin": 1.0, "name": "chevrolet chevelle malibu"},
    {"cylinders": 4.0, "displacement": 90.0, "horsepower": 48.0, "weight": 2085.0,
     "acceleration": 21.7, "year": 80.0, "origin": 2.0, "name": "vw rabbit c (diesel)"},
    {"cylinders": 3.0, "displacement": 70.0, "horsepower": 90.0, "weight": 2124.0,
     "acceleration": 13.5, "year": 73.0, "origin": 3.0, "name": "maxda rx3"},
    {"cylinders": 4.0, "displacement": 98.0, "horsepower": None, "weight": 2046.0,
     "acceleration": 19.0, "year": 1971.0, "origin": None, "name": "ford pinto"},
    {"cylinders": 6.0, "displacement": 200.0, "horsepower": 95.0, "weight": 3000.0,
     "acceleration": 16.0, "year": 82.0, "origin": None, "name": None},
    {"cylinders": 4.0, "displacement": 120.0, "horsepower": 88.0, "weight": 2500.0,
     "acceleration": 15.0, "year": 85.0, "origin": 1.0, "name": "tesla roadster"},
    {"cylinders": 5.0, "displacement": 183.0, "horsepower": 77.0, "weight": 3530.0,
     "acceleration": 20.1, "year": 79.0, "origin": 2.0, "name": "mercedes benz 300d"},
    {"cylinders": 8.0, "displacement": 455.0, "horsepower": 225.0, "weight": 4951.0,
     "acceleration": 11.0, "year": 73.0, "origin": 1.0, "name": "buick electra 225 custom"},
]  # fmt: skip

# Run in the worktree (its package first on sys.path): the old code's own answers.
_ANSWER = """
import json, sys
import carnn_pyfunc, mlflow, pandas as pd
assert carnn_pyfunc.__file__.startswith(sys.argv[1]), carnn_pyfunc.__file__
model = mlflow.pyfunc.load_model(sys.argv[2])
frame = pd.DataFrame(json.loads(sys.argv[3]))
out = {"mpg": model.predict(frame)["mpg"].tolist()}
try:
    ranged = model.predict(frame, params={"interval": 0.9})
    out.update(mpg_low=ranged["mpg_low"].tolist(), mpg_high=ranged["mpg_high"].tolist())
except Exception as err:  # a release without intervals
    out["interval_error"] = type(err).__name__
print(json.dumps(out))
"""
_DOWNLOAD = """
import mlflow, sys
print(mlflow.artifacts.download_artifacts(sys.argv[1], dst_path=sys.argv[2]))
"""


def run(command: list[str], **kwargs) -> str:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.exit(f"{command[:3]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def record(commit: str, fmt: str) -> Path:
    sha = run(["git", "rev-parse", "--short", commit], cwd=ROOT).strip()
    scratch = Path(tempfile.mkdtemp(prefix=f"carnn-golden-{fmt}-"))
    tree = scratch / "tree"
    run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT)
    try:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}"}
        env.pop("PYTHONPATH", None)
        flags = [part for k, v in TINY.items() for part in (f"--{k}", str(v))]
        said = run([sys.executable, str(tree / "train.py"), *flags], cwd=scratch, env=env)
        uri = next(line.split()[-1] for line in said.splitlines() if line.startswith("model URI"))
        local = run([sys.executable, "-c", _DOWNLOAD, uri, str(scratch / "dl")], env=env, cwd=tree)
        model = Path(local.strip())
        answers = run(
            [sys.executable, "-c", _ANSWER, str(tree), str(model), json.dumps(INPUTS)],
            env=env, cwd=tree,
        )  # fmt: skip
        target = GOLDEN / fmt
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model, target / "model", ignore=shutil.ignore_patterns("code"))
        if (target / "model" / "artifacts" / "model.tflite").is_file():
            (target / "model" / "artifacts" / "model.keras").unlink()
        expected = {"format": int(fmt), "commit": sha, "inputs": INPUTS}
        expected.update(json.loads(answers.strip().splitlines()[-1]))
        (target / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
        return target
    finally:
        run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(record(sys.argv[1], sys.argv[2]))
