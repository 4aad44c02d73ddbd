"""Batch scoring benchmark: `carnn score` on a generated Parquet file of 1 M cars (one in a
thousand invalid, so the error column is exercised), Parquet in and out.

- pandas engine, in this process: the file read, scored and written (the model loaded before);
- Spark on local[2], the same file: the session's start and a first job (Python workers start
  and import) reported apart, then the same job again;
- the two engines in interleaved rounds, the median of each;
- with ``--rows-10m``: `carnn score` on 10 M rows in a child process, its peak resident memory
  (``os.wait4``'s ``ru_maxrss``: that child alone).

Called by ``bench/bench.py`` (``make bench``), or alone on a logged model:

    python bench/batch_bench.py --model-uri models:/carnn/1 [--rows-10m] [--out batch.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 1_000_000
ROWS_10M = 10_000_000
BAD_EVERY = 1000  # every 1000th car has a weight of -1: its row gets an error, not an MPG
GROUP_ROWS = 100_000  # rows per Parquet row group in the generated files


def make_input(path: Path, rows: int, seed: int = 0) -> Path:
    """``rows`` cars sampled from the data set (numbers as float64), written group by group so
    generating 10 M rows takes no more memory than 100 k."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from carnn_pyfunc import data

    cars = data.load_auto_mpg().drop(columns=[data.TARGET]).reset_index(drop=True)
    cars = cars.astype({c: "float64" for c in cars.columns if c != "name"})
    table = pa.Table.from_pandas(cars, preserve_index=False)
    weight = table.schema.get_field_index("weight")
    rng = np.random.default_rng(seed)
    with pq.ParquetWriter(path, table.schema) as writer:
        for start in range(0, rows, GROUP_ROWS):
            group = table.take(rng.integers(0, len(cars), min(GROUP_ROWS, rows - start)))
            bad = (np.arange(start, start + group.num_rows) % BAD_EVERY) == BAD_EVERY - 1
            weights = pc.if_else(pa.array(bad), -1.0, group.column(weight))
            writer.write_table(group.set_column(weight, "weight", weights))
    return path


def io_floor(source: Path, target: Path, chunk_rows: int) -> float:
    """Seconds for a pass that only reads ``source`` in the pandas engine's chunks and writes
    each back with mpg and error columns (no model; serial, where the engine overlaps reading
    and writing with scoring): what any engine pays for the files alone."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = time.perf_counter()
    parquet = pq.ParquetFile(source)
    writer = None
    for batch in parquet.iter_batches(chunk_rows):
        table = pa.Table.from_batches([batch])
        n = table.num_rows  # answers shaped like the engine's: varied MPG, an error now and then
        table = table.append_column("mpg", pa.array(10.0 + np.arange(n) % 400 / 10.0))
        errors = np.where(np.arange(n) % BAD_EVERY == BAD_EVERY - 1, "weight: bad", None)
        table = table.append_column("error", pa.array(errors, pa.string()))
        if writer is None:
            writer = pq.ParquetWriter(target, table.schema, compression="snappy")
        writer.write_table(table)
    writer.close()
    return time.perf_counter() - start


def measure_engines(model_uri: str, source: Path, workdir: Path, rounds: int = 3) -> dict:
    """Both engines on ``source`` in interleaved rounds (the median of each), so a busy spell of
    the machine hits both alike; Spark's session start and first job are measured apart."""
    from carnn_pyfunc.batch import pandas_engine, spark_engine

    start = time.perf_counter()
    model = pandas_engine.load_model(model_uri)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    spark = spark_engine.start_session(
        "local[2]", {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
    )
    startup_s = time.perf_counter() - start
    runs: dict[str, list] = {"pandas": [], "spark": []}
    floor_s = []
    try:
        first = spark_engine.score_parquet(spark, model_uri, str(source), str(workdir / "spark"))
        for _ in range(rounds):
            runs["pandas"].append(
                pandas_engine.score_file(model, source, workdir / "out.parquet", progress=False)
            )
            floor_s.append(io_floor(source, workdir / "floor.parquet", pandas_engine.CHUNK_ROWS))
            runs["spark"].append(
                spark_engine.score_parquet(spark, model_uri, str(source), str(workdir / "spark"))
            )
    finally:
        spark.stop()
    results = {}
    for engine, summaries in runs.items():
        assert all(s.invalid == s.rows // BAD_EVERY for s in summaries), summaries
        seconds = statistics.median(s.seconds for s in summaries)
        results[engine] = {"rows": summaries[0].rows, "seconds": seconds,
                           "rows_per_s": summaries[0].rows / seconds, "rounds": rounds,
                           "all_seconds": [s.seconds for s in summaries]}  # fmt: skip
    results["pandas"]["model_load_s"] = load_s
    floor = statistics.median(floor_s)
    results["io_floor"] = {"seconds": floor, "rows_per_s": results["pandas"]["rows"] / floor,
                           "all_seconds": floor_s}  # fmt: skip
    results["spark"] |= {"startup_s": startup_s, "first_job_s": first.seconds,
                         "first_job_rows_per_s": first.rows_per_s}  # fmt: skip
    return results


def measure_peak_rss(model_uri: str, workdir: Path) -> dict:
    """`carnn score` of 10 M rows in a child process: its wall time and peak resident memory."""
    source = make_input(workdir / "cars-10m.parquet", ROWS_10M, seed=1)
    target = workdir / "scored-10m.parquet"
    carnn = str(Path(sys.executable).parent / "carnn")
    command = [carnn, "score", str(source), str(target), "--model-uri", model_uri, "--no-progress"]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = child.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"carnn score failed ({child.returncode}):\n{output[-3000:]}")
    (workdir / "cars-10m.parquet").unlink()
    target.unlink()
    return {"rows": ROWS_10M, "peak_rss_mb": usage.ru_maxrss / 1024, "wall_s": wall}


def run(model_uri: str, workdir: Path, rows_10m: bool = False) -> dict:
    """The batch goals' keys for bench/results.json, and the details under ``batch``."""
    source = make_input(workdir / "cars-1m.parquet", ROWS)
    engines = measure_engines(model_uri, source, workdir)
    pandas, spark = engines["pandas"], engines["spark"]
    print(f"batch: pandas {pandas['rows_per_s']:,.0f}, spark {spark['rows_per_s']:,.0f} rows/s",
          file=sys.stderr)  # fmt: skip
    results = {
        "batch_rows_per_s_pandas": pandas["rows_per_s"],
        "batch_rows_per_s_spark": spark["rows_per_s"],
        "batch_spark_over_pandas": spark["rows_per_s"] / pandas["rows_per_s"],
        "batch_spark_startup_s": spark["startup_s"],
        "batch_over_io_floor": pandas["rows_per_s"] / engines["io_floor"]["rows_per_s"],
        "batch": {"pandas": pandas, "spark": spark, "io_floor": engines["io_floor"]},
    }
    if rows_10m:
        peak = measure_peak_rss(model_uri, workdir)
        results["batch_peak_rss_mb_pandas"] = peak["peak_rss_mb"]
        results["batch"]["pandas_10m"] = peak
    return results


def report(results: dict) -> list[str]:
    pandas, spark = results["batch"]["pandas"], results["batch"]["spark"]
    lines = [
        f"- batch scoring, 1 M rows Parquet to Parquet with the error column, pandas engine: "
        f"**{pandas['rows_per_s']:,.0f} rows/s** ({pandas['seconds']:.2f} s; model load "
        f"{pandas['model_load_s']:.1f} s apart); over a pass that only reads and writes the "
        f"same files in the same chunks ({results['batch']['io_floor']['rows_per_s']:,.0f} "
        f"rows/s): **{results['batch_over_io_floor']:.2f}** (`batch_over_io_floor`)",
        f"- the same on Spark local[2]: **{spark['rows_per_s']:,.0f} rows/s** "
        f"({spark['seconds']:.2f} s a job; session start {spark['startup_s']:.1f} s and a first "
        f"job of {spark['first_job_s']:.1f} s apart), spark/pandas "
        f"**{results['batch_spark_over_pandas']:.2f}**",
    ]
    if "pandas_10m" in results["batch"]:
        peak = results["batch"]["pandas_10m"]
        lines.append(
            f"- `carnn score` of 10 M rows: peak resident memory "
            f"**{peak['peak_rss_mb']:,.0f} MB**, {peak['wall_s']:.1f} s wall"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", required=True, help="a logged carnn model")
    parser.add_argument("--rows-10m", action="store_true", help="also the 10 M-row peak RSS")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="carnn-batch-bench-") as workdir:
        results = run(args.model_uri, Path(workdir), args.rows_10m)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(report(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
