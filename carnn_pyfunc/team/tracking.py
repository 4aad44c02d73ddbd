"""MLflow's tracking server on the team cluster: schema upgrade, start in the background, health,
clean shutdown.

``mlflow server --app-name basic-auth`` with the artifact proxy: clients upload and download
artifacts through the server (``mlflow-artifacts:/``), which writes them under
``<team>/artifacts``; users and permissions live in their own database of the same cluster. The
server leads its own session, so stopping it (SIGTERM, then SIGKILL after a grace period) stops
its workers too. The admin password is checked before anything starts.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from carnn_pyfunc.processes import BIN, server_env
from carnn_pyfunc.team.layout import (
    AUTH_DB,
    STORE_DB,
    Layout,
    Settings,
    TeamError,
    server_secret_key,
    write_private,
)
from carnn_pyfunc.team.postgres import Cluster

ADMIN_PASSWORD = "MLFLOW_AUTH_ADMIN_PASSWORD"
MIN_PASSWORD_LENGTH = 12  # MLflow's own rule for every basic-auth password
KNOWN_DEFAULT = "password1234"  # what old MLflow versions shipped; MLflow refuses it
STOP_GRACE_S = 30.0
# A checked password is remembered this long by the worker that checked it: without it every
# request costs a ~0.25 s password hash (a model download is ~80 requests). A password changed or
# a user deleted through the API is forgotten at once by the worker that did it; the other
# workers may accept the old password for up to this long.
AUTH_CACHE_TTL_S = 30


def check_admin_password(env: dict[str, str] | os._Environ = os.environ) -> None:
    """Refuse to start without a usable admin password (MLflow creates the admin user with it)."""
    password = env.get(ADMIN_PASSWORD, "")
    if not password:
        raise TeamError(
            f"{ADMIN_PASSWORD} is not set: export the tracking server's admin password "
            f"({MIN_PASSWORD_LENGTH} characters or more) before starting it"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise TeamError(
            f"{ADMIN_PASSWORD} is {len(password)} characters long: the admin password needs "
            f"{MIN_PASSWORD_LENGTH} or more"
        )
    if password == KNOWN_DEFAULT:
        raise TeamError(f"{ADMIN_PASSWORD} is MLflow's old published default: choose another")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _alive(pid: int) -> bool:
    """Is ``pid`` a live (not zombie) process?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _group_alive(pgid: int) -> bool:
    """Does any live process remain in the process group ``pgid``?"""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(group) == pgid and state != "Z":
                return True
    return False


class TrackingServer:
    """``mlflow server`` of one team directory."""

    def __init__(self, layout: Layout, settings: Settings, cluster: Cluster) -> None:
        self.layout, self.settings, self.cluster = layout, settings, cluster

    def env(self) -> dict[str, str]:
        env = server_env()
        env.update({
            "PGPASSFILE": str(self.layout.pgpass),
            "MLFLOW_AUTH_CONFIG_PATH": str(self.layout.auth_config),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": server_secret_key(self.layout),
        })  # fmt: skip
        # GenAI job runners (six huey processes) are of no use to carnn; MLFLOW_* set by the
        # caller wins.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        return env

    def write_auth_config(self) -> None:
        """basic-auth's settings: users in their own database; signed-in users may read;
        checked passwords remembered for ``AUTH_CACHE_TTL_S``."""
        uri = self.cluster.uri(AUTH_DB).replace("%", "%%")  # configparser interpolates %
        write_private(
            self.layout.auth_config,
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {uri}\n"
            "admin_username = admin\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_S}\n",
        )

    def upgrade_schema(self) -> None:
        """``mlflow db upgrade`` of the store (the server refuses an out-of-date schema)."""
        try:
            done = subprocess.run(
                [str(BIN / "mlflow"), "db", "upgrade", self.cluster.uri(STORE_DB)],
                env=self.env(), capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise TeamError("mlflow db upgrade: no answer in 600 s") from None
        if done.returncode != 0:
            raise TeamError(f"mlflow db upgrade failed: {_last_line(done.stderr)}")

    def pid(self) -> int | None:
        """The running server's pid, None when it is not running (a stale pid file is ignored)."""
        try:
            pid = int(self.layout.server_pid.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"mlflow" in command and _alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def _get(self, path: str) -> int | None:
        """The status of an anonymous GET, None when nothing answers."""
        try:
            conn = http.client.HTTPConnection(self.settings.host, self.settings.port, timeout=5)
            conn.request("GET", path)
            return conn.getresponse().status
        except OSError:
            return None

    def healthy(self) -> bool:
        return self._get("/health") == 200

    def start(self, timeout_s: float = 240.0) -> int:
        """Start the server in the background and wait until it answers; its pid."""
        with socket.socket() as probe:
            # as uvicorn binds: a port whose old connections linger in TIME_WAIT is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.settings.host, self.settings.port))
            except OSError as err:
                raise TeamError(
                    f"{self.settings.host}:{self.settings.port} is not free ({err.strerror}): "
                    "stop what listens there or choose another --port"
                ) from None
        command = [
            str(BIN / "mlflow"), "server", "--backend-store-uri", self.cluster.uri(STORE_DB),
            "--serve-artifacts", "--artifacts-destination", str(self.layout.artifacts),
            "--app-name", "basic-auth", "--host", self.settings.host,
            "--port", str(self.settings.port), "--workers", str(self.settings.workers),
        ]  # fmt: skip
        with open(self.layout.server_log, "ab") as log:
            proc = subprocess.Popen(
                command, env=self.env(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, cwd=self.layout.root, start_new_session=True,
            )  # fmt: skip
        self.layout.server_pid.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout_s
        while not self.healthy():
            if proc.poll() is not None:
                self.layout.server_pid.unlink(missing_ok=True)
                log_text = self.layout.server_log.read_text(errors="replace")
                raise TeamError(
                    f"the tracking server exited with {proc.returncode}: {_last_line(log_text)} "
                    f"(log {self.layout.server_log})"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TeamError(
                    f"the tracking server did not answer in {timeout_s:.0f} s "
                    f"(log {self.layout.server_log})"
                )
            time.sleep(0.2)
        if self._get("/api/2.0/mlflow/experiments/search?max_results=1") != 401:
            self.stop()
            raise TeamError("the tracking server answered without credentials: stopped it")
        return proc.pid

    def stop(self) -> bool:
        """Stop the server and its workers; False when it was not running."""
        pid = self.pid()
        if pid is None:
            self.layout.server_pid.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.layout.server_pid.unlink(missing_ok=True)
        return True
