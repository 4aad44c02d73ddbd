"""Back up a running team server and restore it into a fresh team directory.

A backup is a directory: ``mlflow.dump`` and ``mlflow_auth.dump`` (``pg_dump -Fc`` of the store
and of the users and permissions) and ``artifacts/`` (a copy of the artifact store). The
databases are dumped first and the artifacts copied after: every artifact a dumped row refers to
was uploaded before that row was written, so the copy holds it. The artifact URIs the store keeps
are ``mlflow-artifacts:/...``, relative to the server's artifact destination, so a restored
server with another directory serves the same files.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from carnn_pyfunc.team.layout import DATABASES, Layout, TeamError
from carnn_pyfunc.team.postgres import Cluster

ARTIFACTS = "artifacts"


def _dump_file(directory: Path, database: str) -> Path:
    return directory / f"{database}.dump"


def _count_files(directory: Path) -> int:
    return sum(1 for p in directory.rglob("*") if p.is_file())


def backup(layout: Layout, cluster: Cluster, destination: Path) -> Iterator[str]:
    """Dump both databases, then copy the artifacts, into the new directory ``destination``."""
    if not cluster.running():
        raise TeamError(f"PostgreSQL of {layout.root} is not running: start the team server")
    if destination.exists() and any(destination.iterdir()):
        raise TeamError(f"{destination} exists and is not empty: choose a new directory")
    destination.mkdir(parents=True, exist_ok=True)
    destination.chmod(0o700)  # the auth dump holds the users' password hashes
    for database in DATABASES:
        path = _dump_file(destination, database)
        cluster.dump(database, path)
        yield f"backup: pg_dump of {database} -> {path} ({path.stat().st_size:,} bytes)"
    copied = shutil.copytree(layout.artifacts, destination / ARTIFACTS)
    yield f"backup: artifacts -> {copied} ({_count_files(copied):,} files)"


def check_restorable(layout: Layout, cluster: Cluster, source: Path) -> None:
    """Refuse before anything starts: a backup that is incomplete, or a directory in use."""
    missing = [
        str(p)
        for p in (*(_dump_file(source, d) for d in DATABASES), source / ARTIFACTS)
        if not p.exists()
    ]
    if missing:
        raise TeamError(f"{source} is not a team server backup: missing {', '.join(missing)}")
    if cluster.initialised():
        raise TeamError(
            f"{layout.pgdata} holds a cluster already: restore into a fresh team directory"
        )
    if layout.artifacts.exists() and any(layout.artifacts.iterdir()):
        raise TeamError(f"{layout.artifacts} is not empty: restore into a fresh team directory")


def restore(layout: Layout, cluster: Cluster, source: Path) -> Iterator[str]:
    """Load the dumps into the (new, empty) databases and copy the artifacts in."""
    for database in DATABASES:
        cluster.restore(database, _dump_file(source, database))
        yield f"restore: {database} <- {_dump_file(source, database)}"
    shutil.copytree(source / ARTIFACTS, layout.artifacts, dirs_exist_ok=True)
    yield f"restore: artifacts <- {source / ARTIFACTS} ({_count_files(layout.artifacts):,} files)"
