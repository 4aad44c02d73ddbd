"""Where the microseconds of a one-row request go inside `carnn serve`'s worker: each piece of
the /invocations path timed alone in this process (the best of five rounds, microseconds a
call), and the whole ASGI app called directly (no HTTP server, no sockets), beside a do-nothing
ASGI app the same way. The HTTP server's own share is http_bench.py's do-nothing app.

    python bench/request_costs.py MODEL_DIR [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable

RECORD = {
    "cylinders": 8, "displacement": 307, "acceleration": 12, "weight": 3504,
    "horsepower": 130, "year": 75, "origin": 1, "name": "chevy ltd",
}  # fmt: skip
BODY = json.dumps({"dataframe_records": [RECORD]}).encode()


def best_us(fn: Callable[[], object], calls: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def app_us(app, calls: int, rounds: int = 5) -> float:
    """Microseconds a POST /invocations through ``app`` itself (receive and send in memory)."""
    scope = {"type": "http", "method": "POST", "path": "/invocations",
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", b"%d" % len(BODY))]}  # fmt: skip
    message = {"type": "http.request", "body": BODY, "more_body": False}

    async def receive():
        return message

    async def send(_):
        return None

    async def many(n: int) -> None:
        for _ in range(n):
            await app(scope, receive, send)

    asyncio.run(many(min(calls, 1000)))  # warm up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        asyncio.run(many(calls))
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


async def nothing(scope, receive, send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def run(model_dir: str, calls: int) -> dict[str, float]:
    from carnn_pyfunc.monitoring.log_rows import Entry, ModelId, as_table, rows_of
    from carnn_pyfunc.serving.answers import encode_predictions
    from carnn_pyfunc.serving.app import create_app
    from carnn_pyfunc.serving.loaded import load
    from carnn_pyfunc.serving.metrics import ServiceMetrics
    from carnn_pyfunc.serving.protocol import parse
    from carnn_pyfunc.serving.settings import Settings

    loaded = load(model_dir)
    python_model = loaded.python_model
    records = parse(BODY, "application/json", 100_000).records
    features = python_model.contract.transform(records)
    columns = loaded.answer(records, None)
    metrics = ServiceMetrics()
    histogram, counter = metrics.latency.labels("/invocations"), metrics.rows
    entries = [Entry(str(i), time.time(), records, columns, 1.0, "primary") for i in range(256)]
    model = ModelId("carnn", "1", "run")
    pieces = {
        "parse the JSON body (msgspec)": lambda: parse(BODY, "application/json", 100_000),
        "validate and encode the record": lambda: python_model.contract.transform(records),
        "the network (LiteRT)": lambda: python_model.forward(features),
        "the model's answer (validation, encoding, the network, its checks)": lambda: loaded.answer(
            records, None
        ),
        "the answer as JSON (msgspec)": lambda: encode_predictions(columns),
        "one histogram observation": lambda: histogram.observe(0.001),
        "one counter increment": lambda: counter.inc(),
    }
    costs = {name: best_us(fn, calls) for name, fn in pieces.items()}
    costs["observing it (log row, live signals; per request, in batches of 256)"] = best_us(
        lambda: as_table(rows_of(entries, model)), max(calls // 256, 20)
    ) / len(entries)
    app = create_app(Settings(model_uri=model_dir), loaded)
    costs["the whole app, one request (in memory, no HTTP)"] = app_us(app, calls)
    costs["a do-nothing ASGI app, the same way"] = app_us(nothing, calls)
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args(argv)
    costs = run(args.model_dir, args.calls)
    print("| piece of a one-row request | µs |\n|---|---:|")
    for name, us in costs.items():
        print(f"| {name} | {us:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
