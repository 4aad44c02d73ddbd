"""The team tracking server: PostgreSQL under ``.team/``, MLflow's tracking server on it with
the artifact proxy and the ``basic-auth`` app, started, checked and stopped by one command
(``python -m carnn_pyfunc.team start | status | stop | backup | restore``).

- ``layout``: where everything lives under the team directory, the settings kept there, and the
  secrets generated once with owner-only permissions.
- ``postgres``: the PostgreSQL cluster (initdb, role, databases, start, stop, dump, restore),
  run as the ``postgres`` OS user when we are root, reachable only through its Unix socket.
- ``tracking``: ``mlflow db upgrade`` and ``mlflow server`` in the background (pid file, health,
  clean shutdown), with the admin password checked first.
- ``backup``: ``pg_dump`` of both databases and a copy of the artifacts; restore into a fresh
  team directory.
- ``control``: the command line; one line per step, one ``error:`` line on failure.

May import: :mod:`carnn_pyfunc.processes` (the environment's ``mlflow`` executable) and the
standard library; MLflow runs as a child process, never imported here.
"""
