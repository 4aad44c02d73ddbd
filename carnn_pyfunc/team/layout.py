"""Where the team server keeps its cluster, artifacts, logs, settings and secrets.

Everything lives under one directory (``.team/`` by default, git-ignored). Secrets are generated
once, written with owner-only permissions (0600) and re-checked on every start.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

DEFAULT_DIR = ".team"
ROLE = "carnn"  # the PostgreSQL role MLflow connects as
STORE_DB, AUTH_DB = "mlflow", "mlflow_auth"  # runs and registry; users and permissions
DATABASES = (STORE_DB, AUTH_DB)
OWNER_ONLY = 0o600


class TeamError(Exception):
    """A step failed; the message is the one line the user sees."""


@dataclass(frozen=True)
class Settings:
    """What ``start`` was told; kept in ``team.json`` so status, stop and the next start agree."""

    host: str = "127.0.0.1"
    port: int = 5000
    pg_port: int = 5432  # names the cluster's Unix socket only: PostgreSQL listens on no TCP port
    workers: int = 2
    pg_user: str = "postgres" if os.geteuid() == 0 else getpass.getuser()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def updated(self, **given: object) -> Settings:
        """These settings with the given values that are not None."""
        return replace(self, **{k: v for k, v in given.items() if v is not None})


@dataclass(frozen=True)
class Layout:
    """The paths under the team directory."""

    root: Path

    @classmethod
    def at(cls, directory: str | Path) -> Layout:
        return cls(Path(directory).resolve())

    @property
    def pg_root(self) -> Path:  # owned by the cluster's OS user
        return self.root / "postgres"

    @property
    def pgdata(self) -> Path:
        return self.pg_root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.pg_root / "run"

    @property
    def pg_log(self) -> Path:
        return self.pg_root / "postgres.log"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def server_log(self) -> Path:
        return self.root / "server.log"

    @property
    def server_pid(self) -> Path:
        return self.root / "server.pid"

    @property
    def settings_file(self) -> Path:
        return self.root / "team.json"

    @property
    def secret_key(self) -> Path:
        return self.root / "secret_key"

    @property
    def pgpass(self) -> Path:
        return self.root / "pgpass"

    @property
    def auth_config(self) -> Path:
        return self.root / "basic_auth.ini"

    def create(self) -> None:
        """The team directory: private, but searchable so the cluster's OS user reaches its own
        directory inside."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)
        self.artifacts.mkdir(exist_ok=True)

    def settings(self) -> Settings:
        """The settings the last start recorded (defaults when there was none)."""
        try:
            recorded = json.loads(self.settings_file.read_text())
        except FileNotFoundError:
            return Settings()
        except (OSError, ValueError) as err:
            raise TeamError(f"{self.settings_file} is unreadable ({err}): delete it") from None
        known = {f.name for f in fields(Settings)}
        return Settings(**{k: v for k, v in recorded.items() if k in known})

    def save(self, settings: Settings) -> None:
        self.settings_file.write_text(json.dumps(asdict(settings), indent=2) + "\n")


def owner_only_file(path: Path, make: Callable[[], str]) -> str:
    """The content of the secret file ``path``, created once from ``make()`` (mode 0600).

    Created with O_EXCL at mode 0600, so the secret is never readable by others, not even for a
    moment; an existing file whose mode lets others in is narrowed back to 0600.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(OWNER_ONLY)
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(make() + "\n")
    return path.read_text().strip()


def server_secret_key(layout: Layout) -> str:
    """The tracking server's Flask secret key (sessions, CSRF), generated once."""
    return owner_only_file(layout.secret_key, lambda: secrets.token_hex(32))


def role_password(layout: Layout) -> str:
    """The ``carnn`` role's password, generated once and kept as a libpq password file."""
    line = owner_only_file(layout.pgpass, lambda: f"*:*:*:{ROLE}:{secrets.token_hex(24)}")
    return line.rsplit(":", 1)[1]


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with owner-only permissions."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(OWNER_ONLY)
