"""The scoring service (`carnn serve`): MLflow's /invocations protocol without its faults.

- ``settings``: the service's configuration (flags -> Settings -> workers' environment).
- ``protocol``: request bodies (JSON formats, CSV, Parquet) -> records and params, strictly
  and within the row limit.
- ``scoring``: POST /invocations on raw ASGI: auth, limits, parse, score, strict JSON out.
- ``limits``: the in-flight limit (503 beyond it); ``answers``: predictions as strict JSON.
- ``errors``: the one error shape (field, row, expected; nothing echoed).
- ``loaded``: the model loaded by MLflow's pyfunc loader, and its description for /model.
- ``openapi``: the OpenAPI document and docs page, generated from the field table.
- ``metrics``: Prometheus metrics.
- ``page``: the web page at / (a form generated from the field table; assets in static/).
- ``csv_scoring``: POST /score.csv, a CSV of cars in and the same rows with mpg and error out.
- ``app``: the ASGI app (/invocations to ``scoring``, the rest via Starlette's routes);
  ``runner``: uvicorn, one or several workers.

May import: :mod:`carnn_pyfunc.contract` (the field table, the error type),
:mod:`carnn_pyfunc.registry.export` (what an exported model records), MLflow, Starlette,
uvicorn, msgspec and prometheus-client; the feature logic stays in the model, never here.
"""
