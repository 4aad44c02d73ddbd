"""The scoring service: an ASGI app speaking MLflow's /invocations protocol (POST /invocations
is answered by :mod:`.scoring` directly; every other route goes through Starlette).

Routes: POST /invocations; GET /ping, /health, /version (as MLflow's server); GET /model,
/metrics, /openapi.json, /docs; the web page: GET / and /static/{name}, POST /score.csv (CSV in,
CSV out, row by row). With a token set, /invocations, /score.csv, /model and /metrics need
``Authorization: Bearer <token>``; /ping and /health stay open for probes, and the page and its
assets are public (they hold no data and no token: the page asks its user for the token).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable

import mlflow
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from carnn_pyfunc.formats import UnservableFormat
from carnn_pyfunc.monitoring.prediction_log import ModelId, PredictionLog
from carnn_pyfunc.serving import csv_scoring, feedback, openapi, page
from carnn_pyfunc.serving.answers import encode
from carnn_pyfunc.serving.errors import ApiError
from carnn_pyfunc.serving.exchange import error_headers, metric_field, read_body
from carnn_pyfunc.serving.loaded import LoadedModel, load
from carnn_pyfunc.serving.metrics import ServiceMetrics
from carnn_pyfunc.serving.observe import Observer, training_ranges
from carnn_pyfunc.serving.runtime import favour_event_loop
from carnn_pyfunc.serving.scoring import IGNORED_HEADER, PATH, Scoring
from carnn_pyfunc.serving.settings import Settings
from carnn_pyfunc.serving.traffic import Traffic, Version

logger = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]


class Service:
    """The routes' shared state: the model, the settings, the metrics, the scoring."""

    def __init__(self, model: LoadedModel, settings: Settings) -> None:
        self.model, self.settings = model, settings
        self.metrics = ServiceMetrics()
        info = model.info
        labels = [str(info.get(k) or "") for k in ("name", "version", "alias", "run_id")]
        self.metrics.model.labels(*labels).set(1)
        self.openapi = openapi.document(auth=settings.token is not None)
        self.page = page.render(info, makers=model.makers, auth=settings.token is not None)
        self.scoring = Scoring(model, settings, self.metrics)
        self.scoring.observer = self.observer = observer_for(model, settings, self.metrics)
        self.scoring.traffic = self.traffic = traffic_for(model, settings, self)

    async def feedback(self, request: Request) -> Response:
        chunks = request.stream()
        declared = request.headers.get("content-length", "")
        body = await read_body(chunks, declared, self.settings.max_body_bytes)
        labels = feedback.parse_labels(body)
        written = await asyncio.to_thread(feedback.store, self.settings.prediction_log, labels)
        self.metrics.labels.inc(written)
        return Response(encode({"accepted": written}), media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        yield
        await asyncio.to_thread(self.traffic.close)  # shadow scoring's last rows ...
        await asyncio.to_thread(self.observer.close)  # ... and the log's, at shutdown

    def route(
        self, path: str, handler: Handler, *, methods=("GET",), auth=False, limited=False
    ) -> Route:
        """``handler`` with auth (if asked), the in-flight limit (``limited``: scoring routes;
        probes and metrics are always answered), metrics and the error shape around it."""
        metrics, scoring = self.metrics, self.scoring

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            metrics.in_flight.inc()
            slot = None
            try:
                if auth:
                    scoring.authorise(request.headers.get("authorization", "").encode())
                if limited:
                    slot = scoring.slots.take()
                response = await handler(request)
            except ApiError as err:
                headers = {k.decode(): v.decode() for k, v in error_headers(err)}
                response = Response(err.body(), err.status, headers=headers)
                if err.status == 400:
                    metrics.invalid.labels(metric_field(err.fields)).inc()
            except Exception:  # a bug of ours, not the client's: logged, answered without details
                logger.exception("%s %s failed", request.method, path)
                error = ApiError(500, "INTERNAL_ERROR", "the service failed; see its log")
                response = Response(error.body(), 500, media_type="application/json")
            finally:
                metrics.in_flight.dec()
                if slot is not None and not slot.held:
                    slot.free()
            metrics.requests.labels(path, request.method, str(response.status_code)).inc()
            metrics.latency.labels(path).observe(time.perf_counter() - started)
            return response

        return Route(path, endpoint, methods=list(methods))

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
        return await csv_scoring.score(self.scoring, request)

    def routes(self) -> list[Route]:
        return [
            self.route("/ping", self.ping),
            self.route("/health", self.ping),
            self.route("/version", self.version),
            self.route("/model", self.model_info, auth=True),
            self.route("/metrics", self.metrics_page, auth=True),
            self.route("/openapi.json", self.openapi_json),
            self.route("/docs", self.docs),
            self.route("/", self.index),
            self.route("/static/{name}", page.static_file),
            self.route("/score.csv", self.score_csv, methods=("POST",), auth=True, limited=True),
            self.route("/feedback", self.feedback, methods=("POST",), auth=True, limited=True),
        ]


class App:
    """The ASGI app: POST /invocations straight to :class:`Scoring`, the rest through
    Starlette's router."""

    def __init__(self, service: Service) -> None:
        self.service, self.scoring = service, service.scoring
        self.routes = Starlette(routes=service.routes(), lifespan=service.lifespan)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH:
            await self.scoring(scope, receive, send)
        else:
            await self.routes(scope, receive, send)


def observer_for(model: LoadedModel, settings: Settings, metrics: ServiceMetrics) -> Observer:
    """Live signals always; the prediction log when ``settings`` name one."""
    contract = getattr(model.python_model, "contract", None)
    ranges = training_ranges(contract) if contract is not None else {}
    log = None
    if settings.prediction_log:
        info = model.info
        log = PredictionLog(
            settings.prediction_log,
            ModelId(info.get("name"), info.get("version"), info.get("run_id")),
            sample=settings.prediction_log_sample,
            on_written=metrics.log_written.inc,
            on_dropped=metrics.log_dropped.inc,
        )
    return Observer(metrics, ranges, log)


def traffic_for(model: LoadedModel, settings: Settings, service: Service) -> Traffic:
    """The primary, and the canary or shadow ``settings`` name (loaded now)."""
    second = settings.canary_uri or settings.shadow_uri
    other = Version("canary", second, load(second)) if second else None
    return Traffic(
        Version("primary", settings.model_uri, model),
        other if settings.canary_uri else None,
        shadow=other if settings.shadow_uri else None,
        percent=settings.canary_percent,
        poll_s=settings.poll_s,
        metrics=service.metrics,
        observer=service.observer,
    )


def create_app(settings: Settings, model: LoadedModel | None = None):
    """The ASGI app serving ``settings.model_uri`` (or an already loaded ``model``)."""
    app = App(Service(model or load(settings.model_uri), settings))
    # The libraries and the model are loaded for good: the collector's full passes need not
    # walk their millions of objects again (each pass was a tens-of-ms pause at the p99).
    gc.collect()
    gc.freeze()
    favour_event_loop()  # the event loop before a large request's thread: see serving.runtime
    if not settings.cors_origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=[*csv_scoring.SUMMARY_HEADERS, IGNORED_HEADER],
    )


def app_from_env():
    """The uvicorn factory each worker calls: settings from the environment ``carnn serve`` set.
    A model this release cannot serve stops the worker with one line saying why."""
    try:
        return create_app(Settings.from_env())
    except UnservableFormat as err:
        raise SystemExit(f"error: {err}") from None
