"""POST /invocations: the request's whole way, on raw ASGI (no Request object, no router, no
middleware per request: each costs microseconds on a one-car request that takes ~100).

Auth, the in-flight limit, the body limit, parsing (:mod:`.protocol`), the model's answer
(columns, no DataFrame, for the carnn model; any other pyfunc through MLflow) and strict JSON out
(:mod:`.answers`). A small body of a few hundred cars is worked on in the event loop; a larger
one, a Parquet body, or one of many tiny rows on the scoring thread, one at a time (its turn),
within the timeout. /score.csv uses the same pieces through Starlette, always on the thread.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from mlflow.exceptions import MlflowException

from carnn_pyfunc.contract import InvalidRecordError
from carnn_pyfunc.monitoring.prediction_log import Entry
from carnn_pyfunc.serving.answers import encode_predictions
from carnn_pyfunc.serving.errors import ApiError, invalid_records
from carnn_pyfunc.serving.exchange import (
    INLINE_BYTES,
    JSON_HEADERS,
    error_headers,
    header_value,
    metric_field,
    read_request,
    request_id_of,
)
from carnn_pyfunc.serving.limits import Slot, Slots, Turn
from carnn_pyfunc.serving.loaded import LoadedModel
from carnn_pyfunc.serving.metrics import ServiceMetrics
from carnn_pyfunc.serving.observe import Observer
from carnn_pyfunc.serving.protocol import PARQUET, Parsed, media_type, parse
from carnn_pyfunc.serving.settings import Settings
from carnn_pyfunc.serving.traffic import Traffic

logger = logging.getLogger(__name__)

PATH = "/invocations"
INLINE_ROWS = 512  # small bodies (exchange.INLINE_BYTES) are inline unless of more rows
# Bytes of large bodies in flight in a worker (read, waiting, or worked on), in largest bodies;
# past it a 503 with Retry-After before the body is read (a body of undeclared length: once it
# outgrows a small one, weighed as the largest). Scoring the largest body (~5 MB) holds
# ~90 MB of Python objects, one at a time on the scoring thread: with what waits, a worker stays
# inside a 320 MiB container (tests/test_container.py).
LARGE_BODIES_IN_FLIGHT = 2
IGNORED_HEADER = "X-Carnn-Ignored-Fields"
_JSON = JSON_HEADERS
PARAMS = ("errors", "interval")  # the carnn model's inference params
T = TypeVar("T")


def param_error(err: MlflowException) -> ApiError:
    """The model's refusal of a param (``interval: 0.999 is more than ...``) as a 400 naming it."""
    message = str(err.message)
    name = message.partition(":")[0]
    field = name if name in PARAMS else "input"
    errors = [{"row": None, "field": field, "expected": message, "value": None}]
    return ApiError(400, err.error_code, message, errors)


class Scoring:
    """Parse, score and answer, within the service's limits."""

    def __init__(self, model: LoadedModel, settings: Settings, metrics: ServiceMetrics) -> None:
        self.model, self.settings, self.metrics = model, settings, metrics
        self.slots = Slots(settings.max_in_flight)
        self.large = Slots(LARGE_BODIES_IN_FLIGHT * settings.max_body_bytes,
                           "bytes of large request bodies")  # fmt: skip
        self._token = b"Bearer " + settings.token.encode() if settings.token else None
        # one thread: large requests are worked on one at a time (they hold the GIL most of the
        # time anyway); with the turn, one large request's Python records at a time
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="carnn-score")
        self.turn = Turn(settings.timeout_s)
        self.observer: Observer | None = None  # set by the app: live signals, prediction log
        self.traffic: Traffic | None = None  # set by the app: which version answers
        self.role = "primary"
        self._latency = metrics.latency.labels(PATH)
        self._ok = metrics.requests.labels(PATH, "POST", "200")

    def authorise(self, header: bytes) -> None:
        """A 401 unless ``header`` (the Authorization header) carries the token."""
        if self._token is not None and not hmac.compare_digest(header, self._token):
            raise ApiError(
                401, "UNAUTHENTICATED", "this endpoint needs Authorization: Bearer <token>"
            )

    async def __call__(self, scope, receive, send) -> None:
        started = time.perf_counter()
        metrics = self.metrics
        metrics.in_flight.inc()
        slot, large, status, extra, version, request_id = None, [], 200, [], None, ""
        turn = False
        try:
            if scope["method"] != "POST":
                raise ApiError(405, "METHOD_NOT_ALLOWED", "POST records to /invocations")
            headers = dict(scope["headers"])
            self.authorise(headers.get(b"authorization", b""))
            slot = self.slots.take()
            declared = headers.get(b"content-length", b"").decode("latin-1")
            body = await self.read(receive, declared, large)  # (a 503 here: no version's fault)
            request_id = request_id_of(headers)
            version, other = self.traffic.pick(request_id)
            content_type = media_type(headers.get(b"content-type", b"").decode("latin-1"))
            model, parsed = version.model, None
            inline = len(body) <= INLINE_BYTES and content_type != PARQUET
            if inline:  # no coroutine or thread for a few cars (parsed: how many)
                parsed = parsed_request(body, content_type, self.settings.max_rows)
                inline = len(parsed.records) <= INLINE_ROWS
            if inline:
                payload, ignored, parsed, columns = self.answered(parsed, model)
            else:
                job = lambda: self.turn.within(  # noqa: E731
                    self.invocations, body, content_type, model, parsed
                )
                payload, ignored, parsed, columns = await self.work(job)
                turn = True  # this request's records are the ones the next large one waits for
            if ignored:
                extra = [(IGNORED_HEADER.lower().encode(), header_value(ignored))]
            response_headers = [*_JSON, *extra, (b"x-request-id", request_id.encode()),
                                (b"x-carnn-model-version", version.label)]  # fmt: skip
            latency_ms = (time.perf_counter() - started) * 1000
            entry = Entry(request_id, time.time(), parsed.records, columns, latency_ms,
                          version.role, version.id)  # fmt: skip
            if inline:
                self.observer.record(entry)
            else:  # made compact by the observer; then the next large request starts
                self.observer.prepare_soon(entry, done=self.turn.end)
                turn = False
            if other is not None and inline:
                self.traffic.shadow(other, entry, parsed.params)
            elif other is not None:  # a large request's records are not kept for a shadow
                metrics.shadow_skipped.inc()
        except ApiError as err:
            status, payload, response_headers = err.status, err.body(), error_headers(err)
            if status == 400:
                metrics.invalid.labels(metric_field(err.fields)).inc()
            if status >= 500 and version is not None:
                self.observer.record(failed(request_id, version, status, started))
        except Exception:  # a bug of ours, not the client's: logged, answered without details
            logger.exception("POST %s failed", PATH)
            status, response_headers = 500, list(_JSON)
            payload = ApiError(500, "INTERNAL_ERROR", "the service failed; see its log").body()
            if version is not None:
                self.observer.record(failed(request_id, version, status, started))
        finally:
            metrics.in_flight.dec()
            if turn:  # answered with an error after its records were made
                self.turn.end()
            for held in (slot, *large):
                if held is not None and not held.held:
                    held.free()
        response_headers.append((b"content-length", b"%d" % len(payload)))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})
        counter = self._ok if status == 200 else metrics.requests.labels(PATH, "POST", str(status))
        counter.inc()
        elapsed = time.perf_counter() - started
        self._latency.observe(elapsed)
        if version is not None:
            scored, latency = metrics.of_version(version.role, version.id.version, status)
            scored.inc()
            latency.observe(elapsed)
        self.observer.tick()  # the answer is out: the loop's turn to observe

    async def read(self, receive, declared: str, large: list[Slot]) -> bytes:
        """The body, its large-body bytes taken first (:func:`.exchange.read_request`)."""
        return await read_request(
            receive, declared, self.settings.max_body_bytes, self.large, large
        )

    def invocations(
        self, body: bytes, content_type: str | None, model: LoadedModel, parsed: Parsed | None
    ) -> tuple:
        """:meth:`answered` of a large request, on the scoring thread within its turn:
        ``body`` parsed unless ``parsed``."""
        parsed = parsed or parsed_request(body, content_type, self.settings.max_rows)
        return self.answered(parsed, model)

    def answered(self, parsed: Parsed, model: LoadedModel) -> tuple:
        """(the answer's JSON, ignored columns, the parsed request, the answer's columns)."""
        columns = self.score(parsed.records, parsed.params, model)
        self.metrics.rows.inc(len(parsed.records))
        return encode_predictions(columns), parsed.ignored, parsed, columns

    def score(self, records, params, model: LoadedModel | None = None) -> dict:
        """The answer's columns of ``model`` (the primary's by default): :func:`answer_of`."""
        return answer_of(model or self.traffic.primary.model, records, params)

    async def work(self, job: Callable[[], T]) -> T:
        """``job`` (a large body parsed and scored within :meth:`Turn.within`) on the scoring
        thread, bounded by the timeout (then a 504). A job that outlives its request (a 504, a
        cancelled request) keeps its in-flight slot and its large-body bytes until it ends, and
        hands the turn back then: the limits count real work."""
        future = asyncio.get_running_loop().run_in_executor(self.executor, job)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.settings.timeout_s)
        except (TimeoutError, asyncio.CancelledError) as err:
            self.slots.detach(future)
            self.large.detach(future)
            # its records are not observed: the turn comes back when it returns
            future.add_done_callback(self.turn.end_if_done)
            if isinstance(err, asyncio.CancelledError):
                raise
            message = f"the prediction took longer than {self.settings.timeout_s:g} s"
            raise ApiError(504, "TIMEOUT", message) from None


def failed(request_id: str, version, status: int, started: float) -> Entry:
    """A 5xx of a version is evidence too: one row in the log with its status."""
    answer = {"mpg": [float("nan")], "error": [f"HTTP {status}"]}
    latency = (time.perf_counter() - started) * 1000
    return Entry(request_id, time.time(), [{}], answer, latency, version.role, version.id, status)


def answer_of(model: LoadedModel, records, params) -> dict:
    """The answer's columns of ``model``, or the ApiError naming what is wrong."""
    try:
        return model.answer(records, params)
    except MlflowException as err:
        if isinstance(err.__cause__, InvalidRecordError):
            raise invalid_records(err.__cause__) from None
        raise param_error(err) from None
    except InvalidRecordError as err:
        raise invalid_records(err) from None


def parsed_request(body: bytes, content_type: str | None, max_rows: int) -> Parsed:
    """:func:`.protocol.parse`, a misspelt field name as the API's 400."""
    try:
        return parse(body, content_type, max_rows)
    except InvalidRecordError as err:
        raise invalid_records(err) from None
