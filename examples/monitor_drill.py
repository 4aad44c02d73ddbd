"""The monitoring drill's traffic: cars posted to a running `carnn serve --prediction-log`, each
request asking for the 90% interval, then every car's true MPG posted to /feedback.

    python examples/monitor_drill.py well      # held-out cars of the default split, resampled
    python examples/monitor_drill.py kilograms # the same cars, weight sent in kilograms
    python examples/monitor_drill.py late      # cars of model years 1980-82

Options: --url (default http://127.0.0.1:5001), --cars (2000), --seed (0), --token (a bearer
token, when the service requires one). README.md, section Monitoring, walks through it.
"""

from __future__ import annotations

import argparse
import math
import sys
import uuid

import numpy as np
import requests

from carnn_pyfunc import data

SCENARIOS = ("well", "kilograms", "late")
BATCH = 25  # cars a request


def cars_for(scenario: str, n: int, seed: int, split_seed: int, test_size: float):
    """``n`` cars (raw fields and true ``mpg``) for a scenario."""
    frame = data.load_auto_mpg()
    if scenario == "late":
        pool = frame[frame["year"] >= 80]
    else:
        _, pool = data.split(frame, test_size=test_size, seed=split_seed)
    cars = pool.iloc[np.random.default_rng(seed).integers(0, len(pool), n)]
    if scenario == "kilograms":
        cars = cars.assign(weight=cars["weight"] / 2.205)
    return cars.reset_index(drop=True)


def records(cars) -> list[dict]:
    rows = cars.drop(columns=[data.TARGET]).to_dict("records")
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in rows
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--url", default="http://127.0.0.1:5001")
    parser.add_argument("--cars", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=42, help="the model's --seed")
    parser.add_argument("--test-size", type=float, default=0.2, help="the model's --test-size")
    parser.add_argument("--token", help="bearer token, if the service requires one")
    args = parser.parse_args(argv)

    cars = cars_for(args.scenario, args.cars, args.seed, args.split_seed, args.test_size)
    session = requests.Session()
    if args.token:
        session.headers["Authorization"] = f"Bearer {args.token}"
    run = uuid.uuid4().hex[:8]
    labels = []
    for start in range(0, len(cars), BATCH):
        chunk = cars.iloc[start : start + BATCH]
        request_id = f"drill-{args.scenario}-{run}-{start}"
        answer = session.post(
            f"{args.url}/invocations",
            json={"dataframe_records": records(chunk), "params": {"interval": 0.9}},
            headers={"X-Request-Id": request_id},
            timeout=60,
        )
        answer.raise_for_status()
        labels += [
            {"request_id": request_id, "row": i, "mpg": float(mpg)}
            for i, mpg in enumerate(chunk[data.TARGET])
        ]
    feedback = session.post(f"{args.url}/feedback", json={"labels": labels}, timeout=60)
    feedback.raise_for_status()
    print(f"{args.scenario}: {len(cars)} cars answered, {feedback.json()['accepted']} labels sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
