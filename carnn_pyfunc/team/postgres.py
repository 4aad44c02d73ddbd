"""The team's PostgreSQL cluster under ``<team>/postgres``, reachable only through its Unix socket.

PostgreSQL refuses to run as root, so when we are root the cluster belongs to the ``postgres`` OS
user (``runuser -u postgres -- ...``); otherwise to whoever runs the command. It listens on no
TCP port: the socket lives in ``<team>/postgres/run``, the bootstrap superuser (named after that
OS user) connects by ``peer`` authentication, and MLflow connects as the role ``carnn`` with a
password (``scram-sha-256``) read from a libpq password file, so no password is ever on a command
line. MLflow's driver is psycopg 3 (``postgresql+psycopg://``, SQLAlchemy's default for
``postgresql://`` since 2.1, spelled out).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from carnn_pyfunc.team.layout import DATABASES, ROLE, Layout, Settings, TeamError

PG_BIN_VARIABLE = "CARNN_PG_BIN"  # a PostgreSQL bin directory, when initdb is not on PATH
SOCKET_PATH_MAX = 107  # sun_path: the longest Unix socket path the kernel takes
CONF_FILE = "carnn_team.conf"  # included by postgresql.conf, rewritten on every start


def pg_bin() -> Path:
    """PostgreSQL's bin directory: $CARNN_PG_BIN, initdb on PATH, or the newest Debian one."""
    given = os.environ.get(PG_BIN_VARIABLE)
    if given:
        if not (Path(given) / "initdb").is_file():
            raise TeamError(f"{PG_BIN_VARIABLE}={given} holds no initdb")
        return Path(given)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # /usr/local/bin/initdb may be a lone symlink
    debian = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not debian:
        raise TeamError(
            "PostgreSQL not found: install it (Debian: apt-get install postgresql) or set "
            f"{PG_BIN_VARIABLE} to its bin directory"
        )
    return max(debian, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _conf_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _as_user(user: str, command: list[str]) -> list[str]:
    """``command`` run as the OS user ``user`` (we can only switch users as root)."""
    return (
        ["runuser", "-u", user, "--", *command] if os.geteuid() == 0 and user != "root" else command
    )


def _give(user: str, path: Path) -> None:
    if os.geteuid() == 0 and user != "root":
        shutil.chown(path, user=user, group=None)


def _access_rules(superuser: str) -> str:
    """pg_hba.conf: the superuser by peer, the role by password, both on the socket only."""
    return (
        "# carnn team server: Unix socket only (listen_addresses is empty)\n"
        f"local all {superuser} peer\n"
        f"local all {ROLE} scram-sha-256\n"
    )


def _server_settings(port: int, socket_dir: Path) -> str:
    return (
        "listen_addresses = ''\n"
        f"port = {port}\n"
        f"unix_socket_directories = {_conf_quote(str(socket_dir))}\n"
        "max_connections = 200\n"
    )


class Cluster:
    """Initialise, start, stop, dump and restore the cluster of one team directory."""

    def __init__(self, layout: Layout, settings: Settings) -> None:
        self.layout, self.settings = layout, settings
        self.bin = pg_bin()

    @property
    def socket(self) -> Path:
        return self.layout.socket_dir / f".s.PGSQL.{self.settings.pg_port}"

    def uri(self, database: str) -> str:
        """The SQLAlchemy URI MLflow connects with (password from the libpq password file)."""
        host = quote(str(self.layout.socket_dir), safe="/")
        return f"postgresql+psycopg://{ROLE}@/{database}?host={host}&port={self.settings.pg_port}"

    def _run(self, command: list[str], what: str, *, timeout: float = 120, **kwargs) -> str:
        """Run a PostgreSQL tool as the cluster's OS user; its output, or TeamError."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        cwd = self.layout.pg_root if self.layout.pg_root.is_dir() else "/"
        try:
            done = subprocess.run(
                _as_user(self.settings.pg_user, command), stderr=subprocess.PIPE, text=True,
                cwd=cwd, timeout=timeout, start_new_session=True, check=False, **kwargs,
            )  # fmt: skip
        except FileNotFoundError as err:
            raise TeamError(f"{what}: {err.filename} not found") from None
        except subprocess.TimeoutExpired:
            raise TeamError(f"{what}: no answer in {timeout:.0f} s") from None
        if done.returncode != 0:
            raise TeamError(f"{what} failed: {_last_line(done.stderr)}")
        return done.stdout or ""

    def _tool(self, name: str) -> str:
        return str(self.bin / name)

    def initialised(self) -> bool:
        return (self.layout.pgdata / "PG_VERSION").is_file()

    def running(self) -> bool:
        if not self.initialised():
            return False
        command = [self._tool("pg_ctl"), "status", "-D", str(self.layout.pgdata)]
        status = subprocess.run(
            _as_user(self.settings.pg_user, command), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd="/", check=False,
        )  # fmt: skip
        return status.returncode == 0

    def init(self) -> bool:
        """initdb once, with our access rules; False when the cluster exists already."""
        if self.initialised():
            return False
        if len(str(self.socket)) > SOCKET_PATH_MAX:
            raise TeamError(
                f"the socket path {self.socket} is longer than {SOCKET_PATH_MAX} characters: "
                "use a shorter team directory"
            )
        for directory in (self.layout.pg_root, self.layout.pgdata, self.layout.socket_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
            _give(self.settings.pg_user, directory)
        try:
            self._run(["test", "-w", str(self.layout.pgdata)], "checking the data directory")
        except TeamError:
            raise TeamError(
                f"the OS user {self.settings.pg_user!r} cannot write {self.layout.pgdata}: every "
                f"directory above {self.layout.root} must be searchable by it (chmod o+x)"
            ) from None
        self._run(
            [self._tool("initdb"), "-D", str(self.layout.pgdata), "-E", "UTF8", "--no-locale",
             "--auth-local=peer", "--auth-host=reject", "--no-instructions"],
            "initdb", timeout=300,
        )  # fmt: skip
        (self.layout.pgdata / "pg_hba.conf").write_text(_access_rules(self.settings.pg_user))
        with open(self.layout.pgdata / "postgresql.conf", "a") as conf:
            conf.write(f"\ninclude_if_exists = {_conf_quote(CONF_FILE)}\n")
        return True

    def start(self) -> None:
        conf = self.layout.pgdata / CONF_FILE
        conf.write_text(_server_settings(self.settings.pg_port, self.layout.socket_dir))
        _give(self.settings.pg_user, conf)
        self.layout.pg_log.touch()
        _give(self.settings.pg_user, self.layout.pg_log)
        try:
            self._run(
                [self._tool("pg_ctl"), "start", "-D", str(self.layout.pgdata), "-l",
                 str(self.layout.pg_log), "-w", "-t", "60"],
                "starting PostgreSQL", stdout=subprocess.DEVNULL, timeout=90,
            )  # fmt: skip
        except TeamError:
            log = self.layout.pg_log.read_text(errors="replace")
            raise TeamError(
                f"PostgreSQL did not start: {_last_line(log)} (log {self.layout.pg_log})"
            ) from None

    def stop(self) -> None:
        self._run(
            [self._tool("pg_ctl"), "stop", "-D", str(self.layout.pgdata), "-m", "fast", "-w",
             "-t", "60"],
            "stopping PostgreSQL", stdout=subprocess.DEVNULL, timeout=90,
        )  # fmt: skip

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the bootstrap superuser over the socket (on stdin: nothing in ps)."""
        return self._run(
            [self._tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.layout.socket_dir), "-p", str(self.settings.pg_port),
             "-d", database, "-f", "-"],
            "psql", input=sql,
        )  # fmt: skip

    def ensure_role_and_databases(self, password: str) -> list[str]:
        """The role (its password set to ours) and the databases; what had to be created."""
        created = []
        exists = self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}';").strip()
        self.psql(f"{'ALTER' if exists else 'CREATE'} ROLE {ROLE} LOGIN PASSWORD '{password}';")
        if not exists:
            created.append(f"role {ROLE}")
        databases = set(self.psql("SELECT datname FROM pg_database;").split())
        for database in DATABASES:
            if database not in databases:
                self.psql(f"CREATE DATABASE {database} OWNER {ROLE};")
                created.append(f"database {database}")
        return created

    def dump(self, database: str, path: Path) -> None:
        """``pg_dump -Fc`` of one database into ``path`` (written by us, not by the OS user)."""
        with open(path, "wb") as out:
            self._run(
                [self._tool("pg_dump"), "-h", str(self.layout.socket_dir), "-p",
                 str(self.settings.pg_port), "-Fc", "-d", database],
                f"pg_dump of {database}", stdout=out, timeout=3600,
            )  # fmt: skip

    def restore(self, database: str, path: Path) -> None:
        """``pg_restore`` a ``pg_dump -Fc`` file into an empty database, owned by the role."""
        with open(path, "rb") as dump:
            self._run(
                [self._tool("pg_restore"), "-h", str(self.layout.socket_dir), "-p",
                 str(self.settings.pg_port), "-d", database, "--no-owner", "--no-privileges",
                 f"--role={ROLE}", "--exit-on-error"],
                f"pg_restore of {database}", stdin=dump, timeout=3600,
            )  # fmt: skip
