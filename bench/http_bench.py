"""The one-row request at the speed of its HTTP server: `carnn serve` (one worker) beside a
do-nothing ASGI app on the same uvicorn, in interleaved rounds, at 1 and 8 connections; and
100-row and 10,000-row requests (rows/s), so a small-request fast path is not bought with
large-request losses.

    python bench/http_bench.py MODEL_DIR [--duration 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from carnn_pyfunc.processes import BIN, carnn_server, free_port, http_server

BENCH = Path(__file__).resolve().parent
RECORD = {
    "cylinders": 8, "displacement": 307, "acceleration": 12, "weight": 3504,
    "horsepower": 130, "year": 75, "origin": 1, "name": "chevy ltd",
}  # fmt: skip


def body(rows: int) -> bytes:
    return json.dumps({"dataframe_records": [RECORD] * rows}).encode()


def wrk(port: int, connections: int, duration: float, payload: bytes, workdir: Path) -> dict:
    script = workdir / f"post-{len(payload)}.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(payload.decode())}\n"
    )
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration:.0f}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}/invocations"],
        capture_output=True, text=True, check=True, timeout=duration + 60,
    ).stdout  # fmt: skip
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
    }


@contextlib.contextmanager
def floor_server(log: Path):
    port = free_port()
    command = [str(BIN / "uvicorn"), "--app-dir", str(BENCH), "http_floor:app", "--port",
               str(port), "--http", "httptools", "--loop", "uvloop", "--no-access-log"]  # fmt: skip
    with http_server(command, port, log) as started:
        yield port, started.startup_s


def run(model_dir: str, workdir: Path, duration: float = 5.0, rounds: int = 3) -> dict:
    one = body(1)
    samples: dict[tuple[str, int], list[dict]] = {}
    with contextlib.ExitStack() as stack:
        ports = {
            "http_floor": stack.enter_context(floor_server(workdir / "floor.log"))[0],
            "carnn_serve": stack.enter_context(carnn_server(model_dir, workdir / "cs.log"))[0],
        }
        for port in ports.values():
            wrk(port, 8, 1.0, one, workdir)  # warm-up, not counted
        for _ in range(rounds):
            for name, port in ports.items():
                for connections in (1, 8):
                    result = wrk(port, connections, duration, one, workdir)
                    samples.setdefault((name, connections), []).append(result)
        large = {}
        for rows, connections in ((100, 8), (10_000, 2)):
            result = wrk(ports["carnn_serve"], connections, duration, body(rows), workdir)
            large[str(rows)] = result | {"rows_per_s": result["rps"] * rows}
    served = {
        f"{name}_c{connections}": {k: statistics.median(r[k] for r in results)
                                   for k in ("rps", "p50_ms", "p99_ms")}
        for (name, connections), results in samples.items()
    }  # fmt: skip
    return {
        "served_rps_carnn_serve_over_http_floor": served["carnn_serve_c8"]["rps"]
        / served["http_floor_c8"]["rps"],
        "http": served | {"large_requests": large, "rounds": rounds},
    }


def report(results: dict) -> list[str]:
    http = results["http"]
    lines = [
        "",
        "`carnn serve` beside a do-nothing ASGI app on the same uvicorn (one worker, one-row "
        "`dataframe_records`): requests/s (p50 / p99 ms)",
        "",
        "| server | 1 connection | 8 connections |",
        "|---|---:|---:|",
    ]
    for name in ("http_floor", "carnn_serve"):
        c1, c8 = http[f"{name}_c1"], http[f"{name}_c8"]
        lines.append(
            f"| {name} | {c1['rps']:,.0f} ({c1['p50_ms']:.2f} / {c1['p99_ms']:.2f}) | "
            f"{c8['rps']:,.0f} ({c8['p50_ms']:.2f} / {c8['p99_ms']:.2f}) |"
        )
    large = http["large_requests"]
    lines += [
        "",
        "- one-row requests/s at 8 connections, `carnn serve` / the do-nothing app: "
        f"**{results['served_rps_carnn_serve_over_http_floor']:.2f}x**",
        f"- 100-row requests: {large['100']['rows_per_s']:,.0f} rows/s "
        f"(p99 {large['100']['p99_ms']:.1f} ms); 10,000-row requests: "
        f"{large['10000']['rows_per_s']:,.0f} rows/s (p99 {large['10000']['p99_ms']:.1f} ms)",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="carnn-http-bench-") as tmp:
        results = run(args.model_dir, Path(tmp), args.duration, args.rounds)
    print("\n".join(report(results)))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
