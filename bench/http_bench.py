"""The one-row request at the speed of its HTTP server: `carnn serve` (one worker) beside a
do-nothing ASGI app on the same uvicorn, in interleaved rounds, at 1 and 8 connections; and
100-row and 10,000-row requests (rows/s), so a small-request fast path is not bought with
large-request losses. In the same rounds: `carnn serve` with the prediction log, with a shadow
and with a 50% canary, for what each costs against the fast path.

    python bench/http_bench.py MODEL_DIR [--duration 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
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
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
    }


def ping_while_busy(port: int, seconds: float, clients: int = 8, rows: int = 100_000) -> dict:
    """/ping's latency while ``clients`` send the largest allowed requests back to back (each
    answered 200, or 503 with Retry-After past the worker's large-body budget)."""
    import http.client
    import threading

    row = [RECORD[c] for c in RECORD]  # dataframe_split: 100,000 rows in ~4 MB, under 5 MiB
    payload = json.dumps({"dataframe_split": {"columns": list(RECORD), "data": [row] * rows}})
    payload, stop = payload.encode(), threading.Event()
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def count(status: str) -> None:
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while not stop.is_set():
            try:
                conn.request("POST", "/invocations", body=payload,
                             headers={"Content-Type": "application/json"})  # fmt: skip
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as err:
                count(type(err).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            count(str(response.status))
            if response.status == 503:
                time.sleep(0.05)  # a client that honours Retry-After, sooner

    pool = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in pool:
        thread.start()
    pings, conn = [], http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        conn.request("GET", "/ping")
        conn.getresponse().read()
        pings.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    stop.set()
    for thread in pool:
        thread.join(timeout=120)
    if not statuses.get("200"):
        raise RuntimeError(f"no largest request was answered: {statuses}")
    pings.sort()
    p99 = pings[math.ceil(0.99 * len(pings)) - 1]  # nearest rank
    return {"seconds": seconds, "clients": clients, "rows": rows, "pings": len(pings),
            "ping_p50_ms": pings[len(pings) // 2], "ping_p99_ms": p99,
            "statuses": dict(sorted(statuses.items()))}  # fmt: skip


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
    variants = {  # name -> extra flags of `carnn serve`; the same model all the time
        "carnn_serve": [],
        "carnn_serve_log": ["--prediction-log", str(workdir / "log-plain")],
        "carnn_serve_shadow": ["--prediction-log", str(workdir / "log-shadow"),
                               "--shadow", model_dir],
        "carnn_serve_canary": ["--prediction-log", str(workdir / "log-canary"),
                               "--canary", model_dir, "--canary-percent", "50"],
    }  # fmt: skip
    with contextlib.ExitStack() as stack:
        ports = {"http_floor": stack.enter_context(floor_server(workdir / "floor.log"))[0]}
        for name, flags in variants.items():
            server = carnn_server(model_dir, workdir / f"{name}.log", *flags)
            ports[name] = stack.enter_context(server)[0]
        for port in ports.values():
            wrk(port, 8, 1.0, one, workdir)  # warm-up, not counted
        for _ in range(rounds):
            for name, port in ports.items():
                for connections in (1, 8) if name in ("http_floor", "carnn_serve") else (8,):
                    result = wrk(port, connections, duration, one, workdir)
                    samples.setdefault((name, connections), []).append(result)
        large = {}
        for rows, connections in ((100, 8), (10_000, 2)):
            result = wrk(ports["carnn_serve"], connections, duration, body(rows), workdir)
            large[str(rows)] = result | {"rows_per_s": result["rps"] * rows}
        busy = ping_while_busy(ports["carnn_serve"], seconds=30.0)
    served = {
        f"{name}_c{connections}": {k: statistics.median(r[k] for r in results)
                                   for k in ("rps", "p50_ms", "p99_ms")}
        for (name, connections), results in samples.items()
    }  # fmt: skip
    rps = {name: served[f"{name}_c8"]["rps"] for name in ports}
    return {
        "served_rps_carnn_serve_over_http_floor": rps["carnn_serve"] / rps["http_floor"],
        "served_rps_with_log_over_without": rps["carnn_serve_log"] / rps["carnn_serve"],
        "served_rps_with_shadow_over_without": rps["carnn_serve_shadow"] / rps["carnn_serve_log"],
        "canary_routing_cost": 1 - rps["carnn_serve_canary"] / rps["carnn_serve_shadow"],
        "ping_p99_ms_under_largest_requests": busy["ping_p99_ms"],
        "http": served | {"large_requests": large, "rounds": rounds, "busy": busy},
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
    for name in ("http_floor", "carnn_serve", "carnn_serve_log", "carnn_serve_shadow",
                 "carnn_serve_canary"):  # fmt: skip
        c1, c8 = http.get(f"{name}_c1"), http[f"{name}_c8"]
        one = f"{c1['rps']:,.0f} ({c1['p50_ms']:.2f} / {c1['p99_ms']:.2f})" if c1 else "-"
        lines.append(
            f"| {name} | {one} | {c8['rps']:,.0f} ({c8['p50_ms']:.2f} / {c8['p99_ms']:.2f}) |"
        )
    large = http["large_requests"]
    lines += [
        "",
        "- one-row requests/s at 8 connections, `carnn serve` / the do-nothing app: "
        f"**{results['served_rps_carnn_serve_over_http_floor']:.2f}x**",
        "- with the prediction log / without: "
        f"**{results['served_rps_with_log_over_without']:.2f}x**; with a shadow (and the log) / "
        f"without: **{results['served_rps_with_shadow_over_without']:.2f}x**; canary routing "
        f"(50%, shadowed) against a shadow alone: **{results['canary_routing_cost']:+.1%}** cost",
        f"- 100-row requests: {large['100']['rows_per_s']:,.0f} rows/s "
        f"(p99 {large['100']['p99_ms']:.1f} ms); 10,000-row requests: "
        f"{large['10000']['rows_per_s']:,.0f} rows/s (p99 {large['10000']['p99_ms']:.1f} ms)",
        f"- `/ping` while {http['busy']['clients']} clients send 100,000-row requests for "
        f"{http['busy']['seconds']:.0f} s: p50 {http['busy']['ping_p50_ms']:.1f} ms, p99 "
        f"**{results['ping_p99_ms_under_largest_requests']:.1f} ms** (goal < 100; answers "
        f"{http['busy']['statuses']})",
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
