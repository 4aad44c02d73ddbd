"""The scoring service: a Starlette app speaking MLflow's /invocations protocol.

Routes: POST /invocations; GET /ping, /health, /version (as MLflow's server); GET /model,
/metrics, /openapi.json, /docs; the web page: GET / and /static/{name}, POST /score.csv (CSV in,
CSV out, row by row). With a token set, /invocations, /score.csv, /model and /metrics need
``Authorization: Bearer <token>``; /ping and /health stay open for probes, and the page and its
assets are public (they hold no data and no token: the page asks its user for the token).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from carnn_pyfunc.contract import InvalidRecordError
from carnn_pyfunc.serving import csv_scoring, openapi, page
from carnn_pyfunc.serving.errors import ApiError, invalid_records
from carnn_pyfunc.serving.loaded import LoadedModel, load
from carnn_pyfunc.serving.metrics import ServiceMetrics
from carnn_pyfunc.serving.protocol import parse
from carnn_pyfunc.serving.settings import Settings

logger = logging.getLogger(__name__)

INLINE_ROWS = 256  # up to this many rows, predict in the event loop (well under a millisecond)
Handler = Callable[[Request], Awaitable[Response]]


class Service:
    """The routes' shared state: the model, the settings, the metrics."""

    def __init__(self, model: LoadedModel, settings: Settings) -> None:
        self.model, self.settings = model, settings
        self.metrics = ServiceMetrics()
        info = model.info
        labels = [str(info.get(k) or "") for k in ("name", "version", "alias", "run_id")]
        self.metrics.model.labels(*labels).set(1)
        self.openapi = openapi.document(auth=settings.token is not None)
        self.page = page.render(info, makers=model.makers, auth=settings.token is not None)
        self._token = settings.token.encode() if settings.token else None

    def route(self, path: str, handler: Handler, *, methods=("GET",), auth=False) -> Route:
        """``handler`` with auth (if asked), metrics and the error shape around it."""
        metrics = self.metrics

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            metrics.in_flight.inc()
            try:
                if auth:
                    self._authorise(request)
                response = await handler(request)
            except ApiError as err:
                response = Response(err.body(), err.status, media_type="application/json")
                if err.status == 401:
                    response.headers["WWW-Authenticate"] = "Bearer"
                if err.status == 400:
                    metrics.invalid.labels((err.fields or ["input"])[0]).inc()
            except Exception:  # a bug of ours, not the client's: logged, answered without details
                logger.exception("%s %s failed", request.method, path)
                error = ApiError(500, "INTERNAL_ERROR", "the service failed; see its log")
                response = Response(error.body(), 500, media_type="application/json")
            finally:
                metrics.in_flight.dec()
            metrics.requests.labels(path, request.method, str(response.status_code)).inc()
            metrics.latency.labels(path).observe(time.perf_counter() - started)
            return response

        return Route(path, endpoint, methods=list(methods))

    def _authorise(self, request: Request) -> None:
        if self._token is None:
            return
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, b"Bearer " + self._token):
            raise ApiError(
                401, "UNAUTHENTICATED", "this endpoint needs Authorization: Bearer <token>"
            )

    async def invocations(self, request: Request) -> Response:
        parsed = parse(await self.read_body(request), request.headers.get("content-type"))
        frame = await self.predict(parsed.records, parsed.params)
        self.metrics.rows.inc(len(parsed.records))
        answer = {"predictions": frame.to_dict("records")}
        return Response(json.dumps(answer), media_type="application/json")

    async def predict(self, records, params) -> pd.DataFrame:
        """The model's answer; a big batch in a thread, bounded by the timeout (then a 504)."""
        if len(records) <= INLINE_ROWS:
            return self._predict(records, params)
        work = asyncio.to_thread(self._predict, records, params)
        try:
            return await asyncio.wait_for(work, self.settings.timeout_s)
        except TimeoutError:
            message = f"the prediction took longer than {self.settings.timeout_s:g} s"
            raise ApiError(504, "TIMEOUT", message) from None

    def _predict(self, records, params):
        try:
            return self.model.predict(records, params)
        except MlflowException as err:
            if isinstance(err.__cause__, InvalidRecordError):
                raise invalid_records(err.__cause__) from None
            raise ApiError(400, err.error_code, err.message) from None
        except InvalidRecordError as err:
            raise invalid_records(err) from None

    async def read_body(self, request: Request) -> bytes:
        """The request body, or a 413 as soon as it is over the limit."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "REQUEST_TOO_LARGE", f"the body is over the limit of {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(
                    413, "REQUEST_TOO_LARGE", f"the body is over the limit of {limit} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def ping(self, request: Request) -> Response:
        return Response("\n", media_type="application/json")

    async def version(self, request: Request) -> Response:
        return Response(mlflow.__version__, media_type="application/json")

    async def model_info(self, request: Request) -> Response:
        return JSONResponse(self.model.info)

    async def metrics_page(self, request: Request) -> Response:
        content, media_type = self.metrics.exposition()
        return Response(content, media_type=media_type)

    async def openapi_json(self, request: Request) -> Response:
        return JSONResponse(self.openapi)

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(openapi.docs_page(self.openapi))

    async def index(self, request: Request) -> Response:
        return HTMLResponse(self.page, headers=page.HEADERS)

    async def score_csv(self, request: Request) -> Response:
        return await csv_scoring.score(self, request)

    def routes(self) -> list[Route]:
        return [
            self.route("/invocations", self.invocations, methods=("POST",), auth=True),
            self.route("/ping", self.ping),
            self.route("/health", self.ping),
            self.route("/version", self.version),
            self.route("/model", self.model_info, auth=True),
            self.route("/metrics", self.metrics_page, auth=True),
            self.route("/openapi.json", self.openapi_json),
            self.route("/docs", self.docs),
            self.route("/", self.index),
            self.route("/static/{name}", page.static_file),
            self.route("/score.csv", self.score_csv, methods=("POST",), auth=True),
        ]


def create_app(settings: Settings, model: LoadedModel | None = None) -> Starlette:
    """The app serving ``settings.model_uri`` (or an already loaded ``model``)."""
    service = Service(model or load(settings.model_uri), settings)
    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                expose_headers=list(csv_scoring.SUMMARY_HEADERS),
            )
        )
    app = Starlette(routes=service.routes(), middleware=middleware)
    app.state.service = service
    return app


def app_from_env() -> Starlette:
    """The uvicorn factory each worker calls: settings from the environment ``carnn serve`` set."""
    return create_app(Settings.from_env())
