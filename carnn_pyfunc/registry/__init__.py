"""The Model Registry side: stages built on aliases, the gates, promotion and export.

- ``stages``: the rules as pure functions (aliases, stage and metrics in; transitions out).
- ``gates``: held-out scoring of versions and the comparison with production.
- ``live``: the live evidence: a version and production scored on labelled served cars.
- ``fresh_check``: ``python -m carnn_pyfunc.registry.fresh_check URI``, the fresh-process check.
- ``servable``: a version the running code cannot serve (its model format) is refused first.
- ``lock``: the registry-wide promotion lock (safe against breaking someone else's lock).
- ``store``: reads and writes of aliases, tags, history and refusals, with undo.
- ``promoter``: promote and roll back: the pieces above put together.
- ``export``: a registered version's directory for the Docker build context.

May import: MLflow, :mod:`carnn_pyfunc.data`, :mod:`carnn_pyfunc.metrics`,
:mod:`carnn_pyfunc.processes` and :mod:`carnn_pyfunc.formats`; models are loaded through MLflow's
pyfunc loader, never by importing the model or training packages.
"""
