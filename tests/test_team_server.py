"""The team tracking server for real: a PostgreSQL cluster and `mlflow server` with basic-auth,
started by `python -m carnn_pyfunc.team` on a free 127.0.0.1 port in a directory of their own,
always stopped. Every command runs against it as a separate process with credentials."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException

from carnn_pyfunc.processes import free_port
from carnn_pyfunc.registry.lock import LOCK_SUFFIX
from carnn_pyfunc.registry.promoter import Promoter
from carnn_pyfunc.registry.stages import CANDIDATE, PREVIOUS, PRODUCTION, STAGE_TAG
from carnn_pyfunc.team.postgres import pg_bin
from tests.helpers import ROOT, SEED_RECORD, as_frame, carnn_server, subprocess_env

pytestmark = [
    pytest.mark.slow,
    # importing MLflow's auth client imports its server app: Starlette's notice, not ours
    pytest.mark.filterwarnings("ignore:starlette.middleware.wsgi is deprecated"),
]

ADMIN = ("admin", "team-admin-password")
READER, MANAGER = ("reader", "reader-password-123"), ("manager", "manager-password-12")
NAME = "carnn"
TINY = ["--epochs", "20", "--ensemble-size", "1", "--patience", "0", "--seed", "7"]
LENIENT = ["--max-mae", "50"]  # a 20-epoch network is a fine stand-in for promotion mechanics
# `carnn evaluate` and `carnn sweep` with the recipe shrunk to 5 epochs and one member.
SHRUNK_CLI = (
    "import sys; from dataclasses import replace; from carnn_pyfunc import cli; "
    "from carnn_pyfunc.cli import train as t; full = t.train_config; "
    "t.train_config = lambda **o: replace(full(**o), epochs=5, ensemble_size=1, patience=0); "
    "sys.exit(cli.main(sys.argv[1:]))"
)


@dataclass(frozen=True)
class Team:
    directory: Path
    url: str
    started: str  # what the first start printed


def team(directory: Path, *args: str, password: str | None = ADMIN[1]):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_AUTH_ADMIN_PASSWORD"}
    if password is not None:
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
    command = [sys.executable, "-m", "carnn_pyfunc.team", args[0], "--dir", str(directory)]
    return subprocess.run([*command, *args[1:]], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def as_user(url: str, user: tuple[str, str], **extra: str) -> dict[str, str]:
    env = subprocess_env(url)
    env.update(MLFLOW_TRACKING_USERNAME=user[0], MLFLOW_TRACKING_PASSWORD=user[1],
               MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false", **extra)  # fmt: skip
    return env


def carnn(url: str, user: tuple[str, str], *args: str, timeout: float = 600):
    return subprocess.run([sys.executable, "-m", "carnn_pyfunc.cli", *args], cwd=ROOT,
                          env=as_user(url, user), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def server():
    # Under /tmp, searchable: the cluster's OS user must reach its directory (pytest's are private).
    root = Path(tempfile.mkdtemp(prefix="carnn-team-"))
    root.chmod(0o711)
    directory = root / "team"
    try:
        started = team(directory, "start", "--port", str(free_port()))
        assert started.returncode == 0, started.stdout + started.stderr
        settings = json.loads((directory / "team.json").read_text())
        yield Team(directory, f"http://127.0.0.1:{settings['port']}", started.stdout)
    finally:
        stopped = team(directory, "stop")
        shutil.rmtree(root, ignore_errors=True)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


@pytest.fixture(scope="module")
def admin(server):
    """An in-process client of the server, signed in as the admin (for set-up and checks)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
        patch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
        yield mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url)


@pytest.fixture(scope="module")
def trained(server, admin):
    """`make train` against the server: train.py --promote, as the admin."""
    done = subprocess.run([sys.executable, "train.py", "--promote", *TINY], cwd=ROOT,
                          env=as_user(server.url, ADMIN), capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def users(server, admin):
    """A READ and a MANAGE user of the registered model, made with MLflow's own auth API."""
    from mlflow.server import get_app_client

    auth = get_app_client("basic-auth", tracking_uri=server.url)
    for (username, password), permission in ((READER, "READ"), (MANAGER, "MANAGE")):
        auth.create_user(username, password)
        auth.grant_user_permission(username, "registered_model", NAME, permission)


def new_version(admin: mlflow.MlflowClient) -> str:
    """Another candidate version with version 1's model and run."""
    first = admin.get_model_version(NAME, "1")
    model_id = first.model_id or first.source.removeprefix("models:/")  # models:/m-<id>
    created = admin.create_model_version(NAME, first.source, run_id=first.run_id, model_id=model_id)
    return str(created.version)


@pytest.fixture(scope="module")
def releases(server, trained, users, admin) -> dict[str, str]:
    """Production and previous-production: made by the tests before, else by a manager here."""
    promoter = Promoter(NAME, client=admin)
    while not {PRODUCTION, PREVIOUS} <= set(promoter.aliases()):
        done = carnn(server.url, MANAGER, "promote", "--version", new_version(admin), *LENIENT,
                     "--force", "--reason", "a release to work with")  # fmt: skip
        assert done.returncode == 0, done.stderr
    return promoter.aliases()


def check_history(admin: mlflow.MlflowClient) -> None:
    """Aliases and stage tags agree; each version's history is one unbroken, numbered chain."""
    promoter = Promoter(NAME, client=admin)
    assert promoter.inconsistencies() == []
    versions = promoter.store.versions()
    assert [v.tags.get(STAGE_TAG) for v in versions].count(PRODUCTION) == 1
    for mv in versions:
        keys = sorted(k for k in mv.tags if k.startswith("transition."))
        assert keys == [f"transition.{i:03d}" for i in range(1, len(keys) + 1)], mv.version
        moves = [json.loads(mv.tags[k]) for k in keys]
        for before, after in zip([{"to": CANDIDATE}, *moves], moves, strict=False):
            assert after["from"] == before["to"], (mv.version, moves)
        assert (moves[-1]["to"] if moves else CANDIDATE) == mv.tags.get(STAGE_TAG, CANDIDATE)


@pytest.mark.parametrize("password", [None, "too-short"])
def test_start_refuses_a_missing_or_short_admin_password(tmp_path, password):
    done = team(tmp_path / "team", "start", "--port", str(free_port()), password=password)
    assert done.returncode == 1
    assert done.stderr.startswith("error: MLFLOW_AUTH_ADMIN_PASSWORD")
    assert len(done.stderr.splitlines()) == 1
    assert done.stdout == ""
    assert not (tmp_path / "team").exists()  # refused before anything was created


def test_start_is_idempotent_one_line_a_step_and_keeps_secrets_private(server):
    steps = server.started.splitlines()
    assert [s.split(":")[0] for s in steps] == [
        "postgres", "postgres", "postgres", "schema", "tracking server"]  # fmt: skip
    assert steps[-1].startswith(f"tracking server: started on {server.url}")
    key = (server.directory / "secret_key").read_text()
    again = team(server.directory, "start", password=None)  # running: no password needed
    assert again.returncode == 0, again.stderr
    assert [line.split(": ")[1].split()[:2] for line in again.stdout.splitlines()] == [
        ["already", "running"], ["already", "running"]]  # fmt: skip
    status = team(server.directory, "status")
    assert status.returncode == 0, status.stdout
    assert len(status.stdout.splitlines()) == 2, status.stdout
    assert (server.directory / "secret_key").read_text() == key
    for secret in ("secret_key", "pgpass", "basic_auth.ini"):
        assert (server.directory / secret).stat().st_mode & 0o777 == 0o600, secret


def test_no_request_without_credentials_gets_data(server, trained):
    paths = ["/", "/version", "/api/2.0/mlflow/experiments/search?max_results=5",
             "/api/2.0/mlflow/registered-models/search", "/api/2.0/mlflow/runs/search",
             "/ajax-api/2.0/mlflow/registered-models/search", "/graphql",
             "/api/2.0/mlflow-artifacts/artifacts?path=1",
             "/model-versions/get-artifact?path=MLmodel&name=carnn&version=1",
             "/api/2.0/mlflow/users/get?username=admin"]  # fmt: skip
    for auth in (None, ("admin", "not-the-password"), ("nobody", ADMIN[1])):
        for path in paths:
            response = requests.get(server.url + path, auth=auth, timeout=30)
            assert response.status_code == 401, (path, auth, response.text[:200])
            assert "carnn" not in response.text
    search = f"{server.url}/api/2.0/mlflow/registered-models/search"
    assert requests.get(search, auth=ADMIN, timeout=30).status_code == 200


def test_train_logs_through_the_artifact_proxy_and_hints_the_server(server, trained, admin):
    assert "model URI:     models:/carnn/1" in trained.stdout
    assert f"see the run:   {server.url}/#/experiments/" in trained.stdout
    run = admin.get_run(admin.get_model_version(NAME, "1").run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # uploaded through the server
    assert list((server.directory / "artifacts").rglob("MLmodel"))  # ... which wrote them here


def test_a_read_user_lists_but_may_not_promote_a_manage_user_promotes(
    server, trained, users, admin
):
    version = new_version(admin)
    staged = carnn(server.url, MANAGER, "promote", "--version", version, "--to", "staging",
                   *LENIENT)  # fmt: skip
    assert staged.returncode == 0, staged.stderr
    listed = carnn(server.url, READER, "stages")
    assert listed.returncode == 0, listed.stderr
    assert f"{version}  staging" in listed.stdout
    refused = carnn(server.url, READER, "promote", "--version", version, "--to", "production",
                    "--force", "--reason", "not mine to ship")  # fmt: skip
    assert refused.returncode == 1
    denied = [line for line in refused.stderr.splitlines() if "permission denied" in line]
    assert len(denied) == 1, refused.stderr
    assert denied[0].startswith("error: permission denied"), refused.stderr
    assert "Traceback" not in refused.stderr
    assert Promoter(NAME, client=admin).aliases().get("staging") == version
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        admin.get_registered_model(NAME + LOCK_SUFFIX)  # the reader's lock was released
    shipped = carnn(server.url, MANAGER, "promote", "--version", version, "--to", "production",
                    "--force", "--reason", "first team release")  # fmt: skip
    assert shipped.returncode == 0, shipped.stderr
    assert Promoter(NAME, client=admin).aliases()[PRODUCTION] == version
    check_history(admin)


def test_evaluate_and_sweep_log_through_the_server(server, trained, admin):
    env = as_user(server.url, ADMIN)
    for args in (["evaluate", "--folds", "2", "--repeats", "1", "--baseline-trials", "1",
                  "--experiment-name", "team-cv"],
                 ["sweep", "--trials", "1", "--folds", "2", "--registered-model-name",
                  "carnn-sweep", "--experiment-name", "team-sweep"]):  # fmt: skip
        done = subprocess.run([sys.executable, "-c", SHRUNK_CLI, *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    cv = admin.get_experiment_by_name("team-cv").experiment_id
    parent = admin.search_runs([cv], "tags.mlflow.runName = 'evaluate'")[0]
    assert {a.path for a in admin.list_artifacts(parent.info.run_id)} >= {
        "cv_summary.json", "cv_comparison.png"}  # fmt: skip
    assert admin.get_model_version("carnn-sweep", "1").run_id


def test_two_concurrent_promotions_five_rounds_lose_nothing(server, trained, users, admin):
    for round_ in range(1, 6):
        pair = [new_version(admin), new_version(admin)]
        env = as_user(server.url, MANAGER)
        promote = [sys.executable, "-m", "carnn_pyfunc.cli", "promote", *LENIENT, "--force"]
        procs = []
        for version in pair:
            command = [*promote, "--version", version, "--reason", f"round {round_}"]
            procs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))  # fmt: skip
        outputs = [proc.communicate(timeout=900)[0] for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], outputs
        aliases = Promoter(NAME, client=admin).aliases()
        assert {aliases[PRODUCTION], aliases[PREVIOUS]} == set(pair), outputs
        check_history(admin)
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        admin.get_registered_model(NAME + LOCK_SUFFIX)


def test_a_read_user_exports_and_serves_production(server, releases, admin, tmp_path):
    production = admin.get_model_version_by_alias(NAME, PRODUCTION)
    exported = carnn(server.url, READER, "export", "--model-uri", "models:/carnn@production",
                     "--output", str(tmp_path / "model"))  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    info = json.loads((tmp_path / "model" / "registered_model.json").read_text())
    assert info["version"] == production.version
    expected = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    env = as_user(server.url, READER)
    with carnn_server("models:/carnn@production", tmp_path / "serve.log", env) as url:
        response = requests.post(f"{url}/invocations", json={"dataframe_records": [SEED_RECORD]},
                                 timeout=60)  # fmt: skip
    assert response.status_code == 200, response.text
    local = expected.predict(as_frame([SEED_RECORD]))["mpg"].iloc[0]
    assert response.json()["predictions"][0]["mpg"] == pytest.approx(local, rel=1e-6)


def snapshot(admin: mlflow.MlflowClient) -> dict:
    experiments = [e.experiment_id for e in admin.search_experiments()]
    return {
        "runs": sorted(r.info.run_id for r in admin.search_runs(experiments, max_results=1000)),
        "versions": sorted((v.name, v.version, v.source) for v in admin.search_model_versions()),
        "aliases": {m.name: m.aliases for m in admin.search_registered_models()},
    }


def test_postgres_restarted_under_the_running_server_loses_nothing(server, releases, admin):
    before = snapshot(admin)
    pgdata = server.directory / "postgres" / "data"
    owner = json.loads((server.directory / "team.json").read_text())["pg_user"]
    as_owner = ["runuser", "-u", owner, "--"] if os.geteuid() == 0 else []
    log = server.directory / "postgres" / "postgres.log"  # else the postmaster holds our pipe
    restart = [str(pg_bin() / "pg_ctl"), "restart", "-D", str(pgdata), "-m", "fast", "-w",
               "-l", str(log)]  # fmt: skip
    subprocess.run([*as_owner, *restart], cwd="/", check=True, capture_output=True, timeout=120)
    listed = carnn(server.url, READER, "stages")
    assert listed.returncode == 0, listed.stderr
    assert snapshot(admin) == before
    rolled = carnn(server.url, MANAGER, "rollback", "--reason", "after the database restart")
    assert rolled.returncode == 0, rolled.stderr
    check_history(admin)


def test_backup_restored_into_a_fresh_cluster_serves_the_same_model(server, releases, admin):
    root = server.directory.parent
    saved = team(server.directory, "backup", str(root / "backup"))
    assert saved.returncode == 0, saved.stderr
    assert len(saved.stdout.splitlines()) == 3, saved.stdout
    fresh = root / "restored"
    restored = team(fresh, "restore", str(root / "backup"), "--port", str(free_port()))
    try:
        assert restored.returncode == 0, restored.stdout + restored.stderr
        url = f"http://127.0.0.1:{json.loads((fresh / 'team.json').read_text())['port']}"
        listed = [carnn(u, READER, "stages") for u in (server.url, url)]
        assert listed[0].returncode == listed[1].returncode == 0, listed[1].stderr
        assert listed[0].stdout == listed[1].stdout  # versions, stages, MAEs, histories
        answers = []
        for base in (server.url, url):
            env = as_user(base, READER)
            with carnn_server("models:/carnn@production", root / "serve.log", env) as served:
                answers.append(
                    requests.post(
                        f"{served}/invocations",
                        timeout=60,
                        json={"dataframe_records": [SEED_RECORD]},
                    ).json()
                )
        assert "predictions" in answers[0]
        assert answers[0] == answers[1]
    finally:
        stopped = team(fresh, "stop")
        assert stopped.returncode == 0, stopped.stderr


def test_killed_server_fails_training_in_one_line_and_registers_nothing(
    server, trained, admin, tmp_path
):
    before = snapshot(admin)["versions"]
    log = tmp_path / "train.err"
    env = as_user(server.url, ADMIN, MLFLOW_HTTP_REQUEST_MAX_RETRIES="1")
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "train.py", "--promote", *TINY, "--epochs",
                                 "400"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=err)  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while "epoch 10/400" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        os.killpg(int((server.directory / "server.pid").read_text()), signal.SIGKILL)
        assert proc.wait(timeout=600) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines[-1].startswith("error: "), lines[-3:]
    assert server.url.split("//")[1] in lines[-1], lines[-3:]
    assert "Traceback" not in log.read_text()
    restarted = team(server.directory, "start")
    assert restarted.returncode == 0, restarted.stderr
    assert "tracking server: started" in restarted.stdout
    assert snapshot(admin)["versions"] == before  # nothing registered by the failed run ...
    for name, version, _ in before:  # ... and every version still has its model on disk
        uri = admin.get_model_version_download_uri(name, version)
        assert (server.directory / "artifacts" / uri.split(":/", 1)[1] / "MLmodel").is_file()
