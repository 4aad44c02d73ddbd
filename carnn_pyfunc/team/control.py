"""The command line: ``python -m carnn_pyfunc.team start | status | stop | backup | restore``.

Every command is idempotent and prints one line per step; a failure is one ``error:`` line on
stderr and exit code 1. ``status`` exits 0 when both PostgreSQL and the tracking server run, 3
when either is stopped. Settings given to ``start`` are kept in ``<team>/team.json``, so status,
stop and the next start use them without being told again.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from carnn_pyfunc.team import backup
from carnn_pyfunc.team.layout import DEFAULT_DIR, Layout, Settings, TeamError, role_password
from carnn_pyfunc.team.postgres import Cluster
from carnn_pyfunc.team.tracking import TrackingServer, check_admin_password

DIR_VARIABLE = "CARNN_TEAM_DIR"
STOPPED = 3


def say(line: str) -> None:
    print(line, flush=True)


class Team:
    """One team directory: its cluster and its tracking server."""

    def __init__(self, directory: str, **given: object) -> None:
        self.layout = Layout.at(directory)
        recorded = self.layout.settings()
        self.settings = recorded.updated(**given)
        self.cluster = Cluster(self.layout, self.settings)
        self.server = TrackingServer(self.layout, self.settings, self.cluster)
        if self.server.running() and self.settings != recorded:
            raise TeamError(
                f"the tracking server of {self.layout.root} runs with other settings "
                f"({recorded.url}, socket port {recorded.pg_port}): stop it first"
            )

    def pg_line(self) -> str:
        return f"postgres: running (data {self.layout.pgdata}, socket {self.cluster.socket})"

    def server_line(self, pid: int | None) -> str:
        return (
            f"tracking server: running on {self.settings.url} (pid {pid}, basic-auth, "
            f"artifacts {self.layout.artifacts}, log {self.layout.server_log})"
        )

    def start(self, restore_from: Path | None = None) -> int:
        if restore_from is None and self.server.running() and self.cluster.running():
            say(self.pg_line().replace("running", "already running", 1))
            say(self.server_line(self.server.pid()).replace("running", "already running", 1))
            return 0
        check_admin_password()
        if restore_from is not None:
            backup.check_restorable(self.layout, self.cluster, restore_from)
        self.layout.create()
        self.layout.save(self.settings)
        if self.cluster.init():
            say(f"postgres: initialised a cluster in {self.layout.pgdata}")
        if self.cluster.running():
            say(self.pg_line().replace("running", "already running", 1))
        else:
            self.cluster.start()
            say(self.pg_line().replace("running", "started", 1))
        created = self.cluster.ensure_role_and_databases(role_password(self.layout))
        say(f"postgres: created {', '.join(created)}" if created else "postgres: role ready")
        if restore_from is not None:
            for line in backup.restore(self.layout, self.cluster, restore_from):
                say(line)
        if self.server.running():
            say(self.server_line(self.server.pid()).replace("running", "already running", 1))
            return 0
        self.server.write_auth_config()
        self.server.upgrade_schema()
        say(f"schema: mlflow db upgrade of {self.cluster.uri('mlflow')} done")
        pid = self.server.start()
        say(self.server_line(pid).replace("running", "started", 1))
        return 0

    def status(self) -> int:
        pg_up, server_up = self.cluster.running(), self.server.running()
        say(self.pg_line() if pg_up else f"postgres: stopped (data {self.layout.pgdata})")
        if server_up:
            health = "" if self.server.healthy() else " but not answering /health"
            say(self.server_line(self.server.pid()) + health)
        else:
            say(f"tracking server: stopped ({self.settings.url})")
        return 0 if pg_up and server_up else STOPPED

    def stop(self) -> int:
        stopped = self.server.stop()
        say("tracking server: stopped" if stopped else "tracking server: was not running")
        if self.cluster.running():
            self.cluster.stop()
            say("postgres: stopped")
        else:
            say("postgres: was not running")
        return 0

    def backup(self, destination: Path) -> int:
        for line in backup.backup(self.layout, self.cluster, destination):
            say(line)
        return 0


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        default=os.environ.get(DIR_VARIABLE, DEFAULT_DIR),
        help=f"team directory (default ${DIR_VARIABLE} or {DEFAULT_DIR})",
    )
    server = argparse.ArgumentParser(add_help=False)
    defaults = Settings()
    server.add_argument("--host", help=f"tracking server address (default {defaults.host})")
    server.add_argument("--port", type=int, help=f"tracking server port (default {defaults.port})")
    server.add_argument(
        "--pg-port", type=int, help=f"PostgreSQL's socket number (default {defaults.pg_port})"
    )
    server.add_argument("--workers", type=int, help=f"server workers (default {defaults.workers})")
    server.add_argument("--pg-user", help=f"OS user of the cluster (default {defaults.pg_user})")
    top = argparse.ArgumentParser(
        prog="python -m carnn_pyfunc.team",
        description="The team tracking server: PostgreSQL + mlflow server with basic-auth.",
    )
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("start", parents=[common, server], help="start both (idempotent)")
    commands.add_parser("status", parents=[common], help="are both running?")
    commands.add_parser("stop", parents=[common], help="stop the server, then PostgreSQL")
    dump = commands.add_parser("backup", parents=[common], help="pg_dump + artifact copy")
    dump.add_argument("destination", type=Path, help="a new directory")
    load = commands.add_parser(
        "restore", parents=[common, server], help="a backup into a fresh team directory, started"
    )
    load.add_argument("source", type=Path, help="a directory written by backup")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    given = {
        key: getattr(args, key, None) for key in ("host", "port", "pg_port", "workers", "pg_user")
    }
    try:
        team = Team(args.dir, **given)
        if args.command in ("start", "restore"):
            return team.start(args.source.resolve() if args.command == "restore" else None)
        if args.command == "backup":
            return team.backup(args.destination.resolve())
        return team.status() if args.command == "status" else team.stop()
    except TeamError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
    except OSError as err:
        print(f"error: {err.strerror or err}: {err.filename or ''}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
    return 1
