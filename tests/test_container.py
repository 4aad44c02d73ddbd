"""The image, built from the Dockerfile with podman and run for real.

Every check goes from the host through the published port (127.0.0.1 only), the way users reach
the service; ``podman exec`` only looks inside (user, processes, memory). One image is built per
session (the ``carnn_image`` fixture, offline from the wheelhouse); every container is removed.
"""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest
import requests

from tests import containers
from tests.helpers import SEED_RECORD, as_frame

pytestmark = pytest.mark.slow

TOKEN = "container-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COLUMNS = list(SEED_RECORD)
# As deploy/kubernetes runs it: read-only root with one writable tmpfs at /tmp, no capabilities,
# no privilege escalation, the Deployment's memory limit, auth required.
AS_DEPLOYED = (
    "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,size=64m,mode=1777",
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--memory", "320m",
)  # fmt: skip
DEPLOYED_ENV = {"CARNN_API_TOKEN": f"{TOKEN}\n", "CARNN_REQUIRE_AUTH": "true"}  # Secrets end in \n
# What a worker maps and the supervisor must not: the compiled libraries of the model stack and
# the service's JSON (MLflow is pure Python, seen in no maps: the supervisor's resident size
# tells that it is absent too).
MODEL_STACK = ("pandas", "numpy", "pyarrow", "litert", "msgspec")

# Inside a container with several workers: /invocations answers counted per worker process, from
# the Prometheus files each worker writes (PROMETHEUS_MULTIPROC_DIR, under /tmp).
ANSWERS_PER_WORKER = """
import glob, json, re
from prometheus_client.mmap_dict import MmapedDict
counts = {}
for path in glob.glob("/tmp/carnn-metrics-*/counter_*.db"):
    pid = int(re.search(r"counter_(\\d+)\\.db$", path).group(1))
    for key, value, _, _ in MmapedDict.read_all_values_from_file(path):
        name, sample, labels, _ = json.loads(key)
        if sample == "carnn_requests_total" and labels.get("route") == "/invocations":
            counts[pid] = counts.get(pid, 0) + value
print(json.dumps(counts))
"""


def records_body(rows: int, *, bad_last: bool = False) -> bytes:
    """A dataframe_split body of ``rows`` copies of the seed record (the last one broken)."""
    row = json.dumps([SEED_RECORD[c] for c in COLUMNS])
    data = [row] * rows
    if bad_last:
        data[-1] = json.dumps([SEED_RECORD[c] if c != "weight" else -1 for c in COLUMNS])
    return (
        f'{{"dataframe_split": {{"columns": {json.dumps(COLUMNS)}, "data": [{",".join(data)}]}}}}'
    ).encode()


def invoke(url: str, body: bytes | dict, headers: dict | None = None) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        f"{url}/invocations",
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        timeout=120,
    )


@pytest.fixture(scope="module")
def deployed(carnn_image):
    """One container run as the Deployment runs it (one worker)."""
    with containers.running(carnn_image.name, *AS_DEPLOYED, env_vars=DEPLOYED_ENV) as container:
        yield container


def test_the_image_is_what_the_dockerfile_declares(carnn_image):
    (image,) = json.loads(containers.podman("image", "inspect", carnn_image.name).stdout)
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert "8080/tcp" in config["ExposedPorts"]
    assert "CARNN_HOST=0.0.0.0" in config["Env"]
    # --format docker keeps the HEALTHCHECK (the OCI format drops it)
    assert image["Healthcheck"]["Test"] == ["CMD", *containers.dockerfile_healthcheck()]
    assert carnn_image.mb > 100  # a base, Python and the model stack: a real image
    image_s = f"{carnn_image.mb:.0f} MB, built in {carnn_image.build_s:.0f} s"
    print(f"\nimage {carnn_image.name}: {image_s}")


def test_from_the_host_ping_invocations_page_and_metrics(deployed, loaded_model):
    url = deployed.url
    assert requests.get(f"{url}/ping", timeout=10).status_code == 200

    answer = invoke(url, {"dataframe_records": [SEED_RECORD]}, AUTH)
    assert answer.status_code == 200, answer.text
    expected = loaded_model.predict(as_frame([SEED_RECORD]))["mpg"].iloc[0]
    assert answer.json()["predictions"][0]["mpg"] == pytest.approx(expected, rel=1e-6)

    bad = invoke(url, {"dataframe_records": [{**SEED_RECORD, "weight": -1}]}, AUTH)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "weight"

    page = requests.get(f"{url}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<form" in page.text

    metrics = requests.get(f"{url}/metrics", headers=AUTH, timeout=10)
    assert metrics.status_code == 200
    assert 'carnn_requests_total{method="POST",route="/invocations",status="200"}' in metrics.text


def test_auth_is_on_with_the_token_from_the_environment(deployed):
    record = {"dataframe_records": [SEED_RECORD]}
    assert invoke(deployed.url, record).status_code == 401
    assert invoke(deployed.url, record, {"Authorization": "Bearer wrong-token-0123456789"}
                  ).status_code == 401  # fmt: skip
    assert requests.get(f"{deployed.url}/metrics", timeout=10).status_code == 401
    # the Secret's trailing newline is not part of the token
    assert invoke(deployed.url, record, AUTH).status_code == 200


def test_healthy_non_root_and_read_only(deployed):
    assert deployed.healthcheck() == "healthy"
    assert deployed.exec("id", "-u").stdout.strip() == "10001"
    (server,) = [p for p in containers.processes(deployed, MODEL_STACK) if p["pid"] == 1]
    assert server["cmd"].split()[1:3] == ["/usr/local/bin/carnn", "serve"]
    status = deployed.exec("cat", "/proc/1/status").stdout
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert uids == ["10001"] * 4  # real, effective, saved, file system
    write = deployed.exec("touch", "/opt/carnn/written")
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr
    inspect = deployed.inspect()
    assert inspect["HostConfig"]["ReadonlyRootfs"] is True
    assert inspect["HostConfig"]["Memory"] == 320 * 1024 * 1024


def test_a_missing_token_stops_the_service_when_auth_is_required(carnn_image):
    with containers.running(carnn_image.name, env_vars={"CARNN_REQUIRE_AUTH": "true"},
                            wait=False) as container:  # fmt: skip
        deadline = time.monotonic() + 60
        while container.running():
            assert time.monotonic() < deadline, "the service started without a token"
            time.sleep(0.2)
        assert container.inspect()["State"]["ExitCode"] != 0
        log = container.logs()
    assert "CARNN_REQUIRE_AUTH" in log
    assert "CARNN_API_TOKEN" in log


def test_two_workers_both_answer_and_the_supervisor_holds_no_model(carnn_image):
    env = {**DEPLOYED_ENV, "CARNN_WORKERS": "2"}
    with containers.running(carnn_image.name, *AS_DEPLOYED, env_vars=env) as container:
        container.wait_for_log("Application startup complete.", times=2)  # each worker's
        sent = 300
        statuses = fresh_connection_load(container.port, sent, threads=8)
        assert statuses == {200: sent}
        per_worker = container.exec("python", "-c", ANSWERS_PER_WORKER)
        assert per_worker.returncode == 0, per_worker.stderr
        answered = {int(pid): n for pid, n in json.loads(per_worker.stdout).items()}
        table = containers.processes(container, MODEL_STACK)
        log = container.logs()
    assert "Child process died" not in log
    workers = [p for p in table if p["ppid"] == 1 and "spawn_main" in p["cmd"]]
    supervisor = next(p for p in table if p["pid"] == 1)
    assert len(workers) == 2, table
    assert set(answered) == {w["pid"] for w in workers}  # the answers came from both workers
    assert all(n > 0 for n in answered.values())
    assert sum(answered.values()) == sent
    for worker in workers:
        assert worker["maps"] == sorted(MODEL_STACK), worker  # each worker holds the model
    assert supervisor["maps"] == [], supervisor  # the supervisor none of its libraries
    assert supervisor["rss_mb"] < 0.5 * min(w["rss_mb"] for w in workers)
    print(
        f"\nsupervisor {supervisor['rss_mb']:.0f} MB RSS; workers "
        + ", ".join(f"{w['rss_mb']:.0f} MB RSS ({w['pss_mb']:.0f} PSS)" for w in workers)
        + f"; answers per worker {sorted(answered.values())}"
    )


def fresh_connection_load(port: int, total: int, threads: int) -> dict[int, int]:
    """``total`` one-row requests from ``threads`` clients, a new connection each time."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    body = json.dumps({"dataframe_records": [SEED_RECORD]})
    headers = {"Content-Type": "application/json", **AUTH}
    remaining = [total]

    def client() -> None:
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/invocations", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            conn.close()
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    return statuses


class Client(threading.Thread):
    """A keep-alive client posting ``body`` until the server goes away; it records when each
    request was sent and answered, and how the first failure looked."""

    def __init__(self, port: int, body: bytes) -> None:
        super().__init__(daemon=True)
        self.port, self.body = port, body
        self.answers: list[tuple[float, float, int, int]] = []  # sent, answered, status, bytes
        self.failure: BaseException | None = None

    def run(self) -> None:
        headers = {"Content-Type": "application/json", **AUTH}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while True:
            sent = time.monotonic()
            try:
                conn.request("POST", "/invocations", body=self.body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (ConnectionError, http.client.HTTPException, OSError) as err:
                self.failure = err
                return
            self.answers.append((sent, time.monotonic(), response.status, len(payload)))
            if response.getheader("connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)


def test_sigterm_under_load_answers_what_it_read_and_exits_in_the_grace_period(carnn_image):
    env = {**DEPLOYED_ENV, "CARNN_ACCESS_LOG": "true"}
    body = records_body(2000)  # tens of ms each: requests are in flight when the signal comes
    with containers.running(carnn_image.name, *AS_DEPLOYED, env_vars=env) as container:
        clients = [Client(container.port, body) for _ in range(6)]
        for client in clients:
            client.start()
        time.sleep(3)
        signalled = time.monotonic()
        stop = containers.podman("stop", "--time", "40", container.name, timeout=90)
        stopped_s = time.monotonic() - signalled
        for client in clients:
            client.join(timeout=60)
        state = container.inspect()["State"]
        log = container.logs()
    answers = [a for c in clients for a in c.answers]
    assert stop.returncode == 0
    assert stopped_s < 40, "podman had to kill it: the grace period ran out"
    assert state["ExitCode"] == 0, log[-2000:]  # a clean exit on SIGTERM, not a kill (137)
    assert "Cancel" not in log  # uvicorn cancels tasks only when its graceful timeout runs out
    assert len(answers) > 20
    assert {status for _, _, status, _ in answers} == {200}
    assert len({size for *_, size in answers}) == 1  # every answer whole
    in_flight = [a for a in answers if a[0] < signalled < a[1]]
    assert in_flight, "no request was in flight at the signal: the test proves nothing"
    for client in clients:  # a connection ends refused or closed before an answer began
        assert not client.is_alive()
        assert isinstance(client.failure, ConnectionError | http.client.RemoteDisconnected), repr(
            client.failure
        )
    # every answer the server wrote reached its client
    assert log.count('"POST /invocations HTTP/1.1" 200') == len(answers)
    print(f"\nSIGTERM: {len(in_flight)} in flight answered, stopped in {stopped_s:.1f} s")


def test_a_flood_of_the_largest_requests_under_the_memory_limit(carnn_image):
    max_rows = 100_000  # carnn serve's default --max-rows (CARNN_MAX_ROWS)
    bodies = {
        "largest": (records_body(max_rows), 200),
        "a row too many": (records_body(max_rows + 1), 413),
        "bad last row": (records_body(max_rows, bad_last=True), 400),
        "body too big": (b'{"dataframe_records": [' + b" " * (5 * 1024 * 1024) + b"]}", 413),
    }
    assert len(bodies["largest"][0]) <= 5 * 1024 * 1024  # under --max-body-mb 5
    with containers.running(carnn_image.name, *AS_DEPLOYED, env_vars=DEPLOYED_ENV) as container:
        results: list[tuple[str, int | str, bool]] = []  # kind, status, Retry-After given
        lock = threading.Lock()

        def flood(kinds: list[str]) -> None:
            for kind in kinds:
                try:
                    answer = invoke(container.url, bodies[kind][0], AUTH)
                    status, retry = answer.status_code, "retry-after" in answer.headers
                except requests.RequestException as err:
                    status, retry = repr(err), False
                with lock:
                    results.append((kind, status, retry))

        order = list(bodies) * 3
        threads = [threading.Thread(target=flood, args=(order[i:] + order[:i],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        state = container.inspect()["State"]
        peak_mb = container_memory_peak_mb(container) if state["Running"] else float("nan")
        still = containers.pings(container.port)
    # podman 4.3 on cgroup v1 reports OOMKilled false even when the kernel's OOM killer ended
    # the server: a kill shows as exit 137 and a stopped container.
    assert state["OOMKilled"] is False
    assert state["Running"] is True, f"exit {state['ExitCode']}: killed at the memory limit"
    assert still
    assert len(results) == 8 * len(order)
    # Each request gets its own answer; "come back later" (503 with Retry-After) is an answer
    # too, but the largest allowed request must get through.
    wrong = [
        (kind, status)
        for kind, status, retry in results
        if status != bodies[kind][1] and not (status == 503 and retry)
    ]
    assert not wrong, wrong
    assert any(kind == "largest" and status == 200 for kind, status, _ in results)
    print(f"\nflood of {len(results)} requests: peak {peak_mb:.0f} MB of 320")


def container_memory_peak_mb(container: containers.Container) -> float:
    """The container's highest memory use (cgroup v1 max_usage, or v2 memory.peak)."""
    path = container.inspect()["State"].get("CgroupPath", "")
    assert path.strip("/"), "no cgroup: the container is not running"
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        for root in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup"):
            try:
                with open(f"{root}{path}/{name}") as handle:
                    return int(handle.read()) / 2**20
            except OSError:
                continue
    raise AssertionError(f"no memory figures for cgroup {path!r}")
