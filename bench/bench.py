"""Benchmark: the carnn pyfunc side by side with a naive baseline and a do-nothing floor.

One run trains a model (timed), builds the three pyfuncs from the same artifacts and signature,
measures in-process ``predict``, served ``/invocations`` throughput (127.0.0.1 only, bounded in
time and count) and batch scoring of files (``batch_bench.py``), prints a Markdown table and
writes ``bench/results.json``.

    python bench/bench.py [--duration 8] [--out bench/results.json] [--batch-rows-10m]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from carnn_pyfunc.processes import carnn_server, free_port, http_server, model_server

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
SEED_RECORD = {
    "cylinders": 8, "displacement": 307, "acceleration": 12, "weight": 3504,
    "horsepower": 130, "year": 75, "origin": 1, "name": "chevy ltd",
}  # fmt: skip
BODY = json.dumps({"dataframe_records": [SEED_RECORD]}).encode()
MODELS = ("naive", "carnn", "floor")


# ----------------------------------------------------------------------------- set-up
def build_models(workdir: Path) -> tuple[dict[str, Path], float]:
    """Train once (timed), then save naive and floor pyfuncs with the same artifacts."""
    import mlflow

    from carnn_pyfunc.config import TrainConfig
    from carnn_pyfunc.model.bundle import input_signature
    from carnn_pyfunc.training.run import run_training
    from carnn_pyfunc.versions import training_requirements

    start = time.perf_counter()
    result = run_training(TrainConfig(registered_model_name="carnn-bench"))
    train_seconds = time.perf_counter() - start

    (workdir / "carnn").mkdir()  # the model's own folder: the bench writes beside it
    carnn_dir = Path(
        mlflow.artifacts.download_artifacts(result.model_uri, dst_path=workdir / "carnn")
    )
    artifacts = {
        name: str(carnn_dir / "artifacts" / file)
        for name, file in (
            ("network", "model.keras"),
            ("contract", "contract.json"),
        )
    }
    paths = {"carnn": carnn_dir}
    for name in ("naive", "floor"):
        paths[name] = workdir / name
        mlflow.pyfunc.save_model(
            path=paths[name],
            python_model=str(BENCH / f"{name}_model.py"),
            artifacts=artifacts,
            signature=input_signature(),
            pip_requirements=training_requirements(),
        )
    return paths, train_seconds


def records(n: int):
    """``n`` raw records from the data set, numbers as floats (as MLflow's schema wants)."""
    from carnn_pyfunc import data

    frame = data.load_auto_mpg().drop(columns=[data.TARGET]).dropna()
    rows = frame.sample(n, replace=n > len(frame), random_state=n).reset_index(drop=True)
    return rows.astype({c: "float64" for c in rows.columns if c != "name"})


# ------------------------------------------------------------------------- in-process
def measure_predict(model, frame, budget_s: float = 2.0, max_calls: int = 2000) -> dict:
    for _ in range(3):
        model.predict(frame)
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < max_calls and (len(times) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        model.predict(frame)
        times.append(time.perf_counter() - start)
    return summarise(times, rows=len(frame))


def summarise(times: list[float], rows: int = 1) -> dict:
    times = sorted(times)
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    return {"calls": len(times), "p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3, "rows_per_s": rows / p50}


class PythonModelCall:
    """The pyfunc's own ``predict`` (what the model costs, without MLflow's schema check)."""

    def __init__(self, python_model) -> None:
        self.python_model = python_model

    def predict(self, frame):
        return self.python_model.predict(None, frame)


# ----------------------------------------------------------------------------- served
def serve(model_dir: Path, workers: int, log: Path):
    """`mlflow models serve` on a free 127.0.0.1 port; yields (port, seconds to first /ping)."""
    return model_server(str(model_dir), log, workers=workers)


def load_wrk(port: int, connections: int, duration: float, workdir: Path) -> dict:
    import http_bench  # beside this file

    figures = http_bench.wrk(port, connections, duration, BODY, workdir)
    return {**figures, "tool": "wrk"}


def load_python(
    port: int,
    connections: int,
    duration: float,
    workdir: Path | None = None,
    max_requests: int = 200_000,
) -> dict:
    """Keep-alive clients in threads, bounded by time and by count."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors: list[str] = []
    deadline = time.perf_counter() + duration
    per_client = max_requests // connections

    def client(slot: list[float]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"}
        while time.perf_counter() < deadline and len(slot) < per_client:
            start = time.perf_counter()
            conn.request("POST", "/invocations", body=BODY, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors.append(str(response.status))
                return
            slot.append(time.perf_counter() - start)
        conn.close()

    threads = [threading.Thread(target=client, args=(s,)) for s in latencies]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"HTTP errors: {errors[:5]}")
    times = [t for slot in latencies for t in slot]
    stats = summarise(times)
    return {"rps": len(times) / elapsed, "p50_ms": stats["p50_ms"], "p99_ms": stats["p99_ms"],
            "requests": len(times), "tool": "python"}  # fmt: skip


# ------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load test")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved served rounds")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    parser.add_argument(
        "--batch-rows-10m", action="store_true", help="also batch scoring's peak RSS on 10 M rows"
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import mlflow

    workdir = Path(tempfile.mkdtemp(prefix="carnn-bench-"))
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    os.chdir(workdir)
    try:
        results = run(workdir, args.duration, args.rounds, args.batch_rows_10m)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    print(f"\nwrote {args.out}")
    return 0


def measure_served(paths: dict[str, Path], workdir: Path, duration: float, rounds: int) -> dict:
    """Served throughput; the servers run side by side and are measured in interleaved rounds
    (median of the rounds), so a slow spell of the machine hits them all alike. The three pyfuncs
    under `mlflow models serve`, and carnn under `carnn serve` (one worker, then two)."""
    load = load_wrk if shutil.which("wrk") else load_python
    served: dict[str, dict] = {}
    samples: dict[tuple[str, int], list[dict]] = {}
    starters = {n: (lambda n=n: serve(paths[n], 1, workdir / f"{n}.log")) for n in MODELS}
    starters["carnn_serve"] = lambda: carnn_server(str(paths["carnn"]), workdir / "cs.log")
    with contextlib.ExitStack() as stack:
        ports = {}
        for name, start in starters.items():  # one after another: start-up measured alone
            ports[name], startup = stack.enter_context(start())
            served[name] = {"startup_s": startup}
            load(ports[name], 8, 1.0, workdir)  # warm-up, not counted
        for _ in range(rounds):
            for name in starters:
                for connections in (1, 8):
                    result = load(ports[name], connections, duration, workdir)
                    samples.setdefault((name, connections), []).append(result)
    for name, start in (
        ("carnn_workers2", lambda: serve(paths["carnn"], 2, workdir / "carnn2.log")),
        ("carnn_serve_workers2",
         lambda: carnn_server(str(paths["carnn"]), workdir / "cs2.log", "--workers", "2")),
    ):  # fmt: skip
        with start() as (port, startup):
            served[name] = {"startup_s": startup}
            load(port, 8, 1.0, workdir)
            for connections in (1, 8):
                samples[(name, connections)] = [load(port, connections, duration, workdir)]
    for (name, connections), results in samples.items():
        served[name][f"c{connections}"] = {
            key: statistics.median(r[key] for r in results) for key in ("rps", "p50_ms", "p99_ms")
        } | {"rounds": len(results), "tool": results[0]["tool"]}
    return served


def measure_image(paths: dict[str, Path], workdir: Path, duration: float) -> dict:
    """The Dockerfile's environment built outside Docker (a fresh virtualenv, offline from the
    wheelhouse `make dev` downloads): its installed size, and `carnn serve` run from it: start
    to first /ping, then resident memory after a load test."""
    wheelhouse = Path(sys.prefix) / "wheelhouse"
    image = workdir / "image"
    subprocess.run([sys.executable, "-m", "venv", str(image)], check=True)
    pip = [str(image / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile",
           "--no-index", "--find-links", str(wheelhouse)]  # fmt: skip
    subprocess.run([*pip, "-r", str(paths["carnn"] / "requirements.txt")], check=True)
    subprocess.run([*pip, str(ROOT)], check=True)
    site = next(image.glob("lib/python*/site-packages"))
    size = subprocess.run(["du", "-sm", str(site)], capture_output=True, text=True, check=True)
    port = free_port()
    command = [str(image / "bin" / "carnn"), "serve", "--model-uri", str(paths["carnn"]),
               "--port", str(port)]  # fmt: skip
    env = {
        "PATH": f"{image / 'bin'}:/usr/bin:/bin",
        "HOME": str(workdir),
        "PYTHONDONTWRITEBYTECODE": "1",
    }  # as the image: no .pyc written at start either
    with http_server(command, port, workdir / "image.log", env=env) as started:
        load = load_wrk if shutil.which("wrk") else load_python
        served = load(port, 8, duration, workdir)
        status = Path(f"/proc/{started.process.pid}/status").read_text()
    rss_kb = int(status.split("VmRSS:")[1].split()[0])
    return {
        "env_mb": int(size.stdout.split()[0]),
        "startup_s": started.startup_s,
        "rss_mb": rss_kb / 1024,
        "c8": served,
    }


def run(workdir: Path, duration: float, rounds: int, batch_rows_10m: bool = False) -> dict:
    import batch_bench  # beside this file
    import container_bench
    import http_bench
    import mlflow
    import monitor_bench
    import numpy as np

    paths, train_seconds = build_models(workdir)
    print(f"trained in {train_seconds:.1f} s", file=sys.stderr)

    predict: dict[str, dict[int, dict]] = {}
    frames = {n: records(n) for n in (1, 100, 10_000)}
    loaded = {name: mlflow.pyfunc.load_model(str(paths[name])) for name in MODELS}
    same = loaded["naive"].predict(frames[100])["mpg"] - loaded["carnn"].predict(frames[100])["mpg"]
    assert np.abs(same.to_numpy()).max() < 1e-3, "naive and carnn must compute the same model"
    own: dict[str, dict[int, dict]] = {}
    for name in MODELS:
        predict[name] = {n: measure_predict(loaded[name], frame) for n, frame in frames.items()}
        python_model = PythonModelCall(loaded[name].unwrap_python_model())
        own[name] = {n: measure_predict(python_model, frame) for n, frame in frames.items()}
        print(f"in-process {name}: done", file=sys.stderr)
    del loaded

    served = measure_served(paths, workdir, duration, rounds)
    http = http_bench.run(str(paths["carnn"]), workdir, duration, rounds)
    image = measure_image(paths, workdir, duration)
    batch = batch_bench.run(str(paths["carnn"]), workdir, batch_rows_10m)
    container = container_bench.measure(str(paths["carnn"]), workdir)  # the image, under podman
    rps8 = {k: v["c8"]["rps"] for k, v in served.items()}
    return {
        "image_env_mb": image["env_mb"],
        "served_rss_mb_carnn": image["rss_mb"],
        "startup_s_carnn_over_floor": image["startup_s"] / served["floor"]["startup_s"],
        "image": image,
        "served_rps_carnn_over_floor": rps8["carnn"] / rps8["floor"],
        "served_rps_carnn_over_naive": rps8["carnn"] / rps8["naive"],
        "served_rps_carnn_serve_over_floor": rps8["carnn_serve"] / rps8["floor"],
        "served_c1_p50_workers2_over_workers1": served["carnn_serve_workers2"]["c1"]["p50_ms"]
        / served["carnn_serve"]["c1"]["p50_ms"],
        "predict_1row_speedup_over_naive": own["naive"][1]["p50_ms"] / own["carnn"][1]["p50_ms"],
        "pyfunc_predict_1row_speedup_over_naive": predict["naive"][1]["p50_ms"]
        / predict["carnn"][1]["p50_ms"],
        "predict_10k_rows_per_s_carnn": own["carnn"][10_000]["rows_per_s"],
        "pyfunc_predict_10k_rows_per_s_carnn": predict["carnn"][10_000]["rows_per_s"],
        "train_wall_s": train_seconds,
        "predict": own,
        "pyfunc_predict": predict,
        "served": served,
        **http,
        **batch,
        **container,
        **monitor_bench.run(str(paths["carnn"])),  # monitoring statistics, offline
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }


def report(results: dict) -> str:
    import http_bench  # beside this file

    lines = []
    for key, title in (
        ("predict", "The model's own `predict` (`unwrap_python_model().predict`)"),
        ("pyfunc_predict", "`PyFuncModel.predict` (adds MLflow's schema enforcement)"),
    ):
        lines += [
            f"In-process, {title}: p50 / p99 ms, rows/s at p50",
            "",
            "| rows | " + " | ".join(MODELS) + " |",
            "|---:|" + "---|" * len(MODELS),
        ]
        for n in (1, 100, 10_000):
            cells = []
            for name in MODELS:
                m = results[key][name][n]
                cells.append(f"{m['p50_ms']:.2f} / {m['p99_ms']:.2f}, {m['rows_per_s']:,.0f}")
            lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "Served `/invocations`, one-row `dataframe_records`: requests/s (p50 / p99 ms)",
        "",
        "| server | start to /ping | 1 connection | 8 connections |",
        "|---|---:|---:|---:|",
    ]
    for key, m in results["served"].items():
        c1, c8 = m["c1"], m["c8"]
        lines.append(
            f"| {key} | {m['startup_s']:.1f} s | {c1['rps']:.0f} ({c1['p50_ms']:.1f} / "
            f"{c1['p99_ms']:.1f}) | {c8['rps']:.0f} ({c8['p50_ms']:.1f} / {c8['p99_ms']:.1f}) |"
        )
    r = results
    tool = next(iter(r["served"].values()))["c8"]["tool"]
    lines += [
        "",
        f"- served rps at 8 connections, carnn/floor: **{r['served_rps_carnn_over_floor']:.2f}x**",
        f"- served rps at 8 connections, carnn/naive: **{r['served_rps_carnn_over_naive']:.1f}x**",
        "- served rps at 8 connections, carnn under `carnn serve` / floor under `mlflow models "
        f"serve`: **{r['served_rps_carnn_serve_over_floor']:.2f}x**",
        "- one keep-alive connection, p50 of `carnn serve --workers 2` / `--workers 1`: "
        f"**{r['served_c1_p50_workers2_over_workers1']:.2f}**",
        "- in-process one-row predict, naive p50 / carnn p50: "
        f"**{r['predict_1row_speedup_over_naive']:.0f}x** "
        f"({r['pyfunc_predict_1row_speedup_over_naive']:.0f}x through `PyFuncModel.predict`)",
        "- in-process rows/s on 10,000-row batches (carnn): "
        f"**{r['predict_10k_rows_per_s_carnn']:,.0f}** "
        f"({r['pyfunc_predict_10k_rows_per_s_carnn']:,.0f} through `PyFuncModel.predict`)",
        f"- one training run (default config): **{r['train_wall_s']:.1f} s** wall",
        f"- the image's environment (Dockerfile steps, outside Docker): **{r['image_env_mb']} MB**;"
        f" `carnn serve` from it: **{r['served_rss_mb_carnn']:.0f} MB** resident after a load "
        f"test ({r['image']['c8']['rps']:.0f} requests/s at 8 connections), start to /ping "
        f"{r['image']['startup_s']:.1f} s = **{r['startup_s_carnn_over_floor']:.2f}x** the floor's",
        f"- load generator: {tool}",
    ]
    import batch_bench  # beside this file
    import container_bench
    import monitor_bench

    reports = [*http_bench.report(results), *batch_bench.report(results)]
    reports += monitor_bench.report(results)
    return "\n".join([*lines, *reports, *container_bench.report(results)])


if __name__ == "__main__":
    sys.exit(main())
