"""Does a model load in a fresh Python process and answer its own input example?

``python -m carnn_pyfunc.registry.fresh_check MODEL_URI`` loads the model by URI (from the
tracking store in ``MLFLOW_TRACKING_URI``), predicts its input example and prints one JSON line:
``{"rows": n, "mpg": [...]}``. :func:`answers_in_fresh_process` runs it and checks the answer.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

from carnn_pyfunc.registry.stages import PromotionRefused


def answers_in_fresh_process(model_uri: str, *, timeout_s: float) -> int:
    """Run this module on ``model_uri`` in a new interpreter; the row count it answered."""
    import mlflow

    from carnn_pyfunc.processes import child_env

    command = [sys.executable, "-m", __name__, model_uri]
    try:
        done = subprocess.run(
            command,
            env=child_env(mlflow.get_tracking_uri()),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise PromotionRefused(
            f"{model_uri} did not load and answer in a fresh process within {timeout_s:.0f} s"
        ) from None
    if done.returncode != 0:
        raise PromotionRefused(
            f"{model_uri} does not load and answer its input example in a fresh process:\n"
            f"{done.stderr.strip()[-2000:]}"
        )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    if len(answer["mpg"]) != answer["rows"] or not all(map(math.isfinite, answer["mpg"])):
        raise PromotionRefused(f"{model_uri} answered its input example with {answer['mpg']}")
    return answer["rows"]


def main(argv: list[str]) -> int:
    import mlflow

    if len(argv) != 1:
        print("usage: python -m carnn_pyfunc.registry.fresh_check MODEL_URI", file=sys.stderr)
        return 2
    model = mlflow.pyfunc.load_model(argv[0])
    example = model.input_example
    if example is None:
        print(f"{argv[0]} has no input example", file=sys.stderr)
        return 1
    mpg = model.predict(example)["mpg"].tolist()
    print(json.dumps({"rows": len(example), "mpg": mpg}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
