"""Container figures for ``make bench``: the project's image built with podman as the slow tests
build it (offline from the wheelhouse, tests/containers.py) around the bench's model; its size
and layers, start to the first /ping from the host with 1 and 2 workers, and resident memory at
idle and after 10,000 requests (the supervisor and each worker apart with 2 workers). Containers
run as deploy/kubernetes runs them: read-only root, a tmpfs at /tmp, 320 MB memory limit.

    python -m bench.container_bench MODEL_DIR [--out FILE]   # from the repository root

bench/bench.py calls ``measure`` (which runs this module in a process of its own, where the
tests' helpers import) and merges the figures into bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AS_DEPLOYED = (
    "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,size=64m,mode=1777",
    "--memory", "320m",
)  # fmt: skip
READY_LINE = "Application startup complete."  # each worker logs it once its model is loaded


# ------------------------------------------------------------------------ parent side
def measure(model_dir: str, workdir: Path) -> dict:
    """The figures (see the module's docstring), or why there are none (no podman, no base)."""
    out = Path(workdir) / "container.json"
    if shutil.which("podman") is None:
        return {"container": {"skipped": "podman is not installed (.ci/run installs it)"}}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.container_bench", str(model_dir), "--out", str(out)],
        cwd=ROOT, timeout=1800,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"bench.container_bench exited {proc.returncode}")
    figures = json.loads(out.read_text())
    w1, w2 = figures["workers1"], figures["workers2"]
    return {
        "container_image_mb": figures["image_mb"],
        "container_start_s_workers1": w1["start_to_ping_s"],
        "container_start_s_workers2": w2["start_to_ping_s"],
        "container_rss_idle_mb_workers1": w1["idle"]["rss_mb"],
        "container_rss_after_10k_mb_workers1": w1["after"]["rss_mb"],
        "container_rss_idle_mb_workers2": w2["idle"]["rss_mb"],
        "container_rss_after_10k_mb_workers2": w2["after"]["rss_mb"],
        "container": figures,
    }


def report(results: dict) -> list[str]:
    c = results.get("container", {})
    if "skipped" in c:
        return ["", f"Container: not measured ({c['skipped']})"]
    lines = [
        "",
        f"Container (podman, read-only root, --memory 320m): image **{c['image_mb']:.0f} MB** ("
        + ", ".join(f"{name} {mb:.0f}" for name, mb in c["layers_mb"].items())
        + ")",
        "",
        "| workers | start to /ping | all workers up | RSS idle | RSS after "
        f"{c['requests']:,} requests | requests/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n in (1, 2):
        w = c[f"workers{n}"]
        lines.append(
            f"| {n} | {w['start_to_ping_s']:.1f} s | {w['all_workers_ready_s']:.1f} s | "
            f"{w['idle']['rss_mb']:.0f} MB | {w['after']['rss_mb']:.0f} MB | {w['rps']:.0f} |"
        )
    w2 = c["workers2"]["after"]
    lines.append(
        f"- with 2 workers after the load: supervisor **{w2['supervisor_rss_mb']:.0f} MB**, "
        "workers " + ", ".join(f"**{mb:.0f} MB**" for mb in w2["worker_rss_mb"]) + " resident"
        f" (PSS total {w2['pss_mb']:.0f} MB)"
    )
    return lines


# ------------------------------------------------------------------------- child side
def memory(container, containers) -> dict:
    """Resident memory of every process in the container (RSS counts shared pages once per
    process; PSS splits them), and the supervisor's and workers' apart."""
    table = containers.processes(container)
    workers = [p for p in table if p["ppid"] == 1 and "spawn_main" in p["cmd"]]
    supervisor = next(p for p in table if p["pid"] == 1)
    return {
        "rss_mb": sum(p["rss_mb"] for p in table),
        "pss_mb": sum(p["pss_mb"] for p in table),
        "supervisor_rss_mb": supervisor["rss_mb"],
        "worker_rss_mb": [w["rss_mb"] for w in workers] or [supervisor["rss_mb"]],
    }


def layers_mb(containers, image: str) -> dict[str, float]:
    """The image's size by layer: the base (the oldest layer), the model's pins, the carnn
    package, and the rest (the model's files, users, metadata)."""
    history = json.loads(containers.podman("history", "--format", "json", image).stdout)
    named = dict.fromkeys(("base", "model requirements", "carnn package", "other"), 0.0)
    for index, layer in enumerate(history):  # newest first
        created, mb = layer.get("CreatedBy", ""), layer.get("size", 0) / 1e6
        if index == len(history) - 1:
            named["base"] += mb
        elif "pip install" in created and "model/requirements.txt" in created:
            named["model requirements"] += mb
        elif "pip install" in created and "./src" in created:
            named["carnn package"] += mb
        else:
            named["other"] += mb
    return named


def answered_200(url: str) -> int:
    """/invocations answered 200, from the server's own /metrics (summed over workers)."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as page:
        text = page.read().decode()
    sample = 'carnn_requests_total{method="POST",route="/invocations",status="200"} '
    lines = [line for line in text.splitlines() if line.startswith(sample)]
    return sum(int(float(line.split()[-1])) for line in lines)


def run_workers(containers, image: str, workers: int, rounds: int, requests: int, load) -> dict:
    env = {"CARNN_WORKERS": str(workers)}
    starts, ready = [], []
    for _ in range(rounds):  # start-up alone, median of the rounds
        with containers.running(image, *AS_DEPLOYED, env_vars=env) as container:
            starts.append(container.startup_s)
            ready.append(container.startup_s + container.wait_for_log(READY_LINE, workers))
    with containers.running(image, *AS_DEPLOYED, env_vars=env) as container:
        container.wait_for_log(READY_LINE, workers)
        time.sleep(2)  # settled
        idle = memory(container, containers)
        served = load(container.port, 8, 600.0, None, max_requests=requests)
        after = memory(container, containers)
        answered = answered_200(container.url)
    if answered != served["requests"]:  # the load generator and the server must agree
        raise RuntimeError(f"sent {served['requests']} requests, the server answered {answered}")
    return {
        "start_to_ping_s": statistics.median(starts),
        "start_samples_s": starts,
        "all_workers_ready_s": statistics.median(ready),
        "idle": idle,
        "after": after,
        "requests": served["requests"],
        "rps": served["rps"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    from bench.bench import load_python
    from tests import containers

    containers.require_base()
    with tempfile.TemporaryDirectory(prefix="carnn-container-bench-") as tmp:
        context = containers.image_context(args.model_dir, Path(tmp) / "context")
        image = "localhost/carnn-bench:latest"
        build_s = containers.offline_build(context, image)
    try:
        figures = {
            "image": image,
            "image_mb": containers.image_mb(image),
            "layers_mb": layers_mb(containers, image),
            "build_s": build_s,
            "requests": args.requests,
        }
        for workers in (1, 2):
            figures[f"workers{workers}"] = run_workers(
                containers, image, workers, args.rounds, args.requests, load_python
            )
            print(f"container, {workers} worker(s): done", file=sys.stderr)
    finally:
        containers.remove_image(image)
    text = json.dumps(figures, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    print("\n".join(report({"container": figures})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
