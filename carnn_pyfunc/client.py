"""A small client of `carnn serve` (standard library only: copy it anywhere, or import it).

    from carnn_pyfunc.client import CarnnClient, FieldError

    client = CarnnClient("http://127.0.0.1:5001", token=None, timeout=10)
    client.predict([{"cylinders": 4, "displacement": 97, "weight": 2130,
                     "acceleration": 14.5, "year": 80}])          # -> [35.0...]

Errors are typed: :class:`FieldError` (a bad value: ``.field``, ``.row``, ``.expected``,
``.value``), :class:`AuthenticationError` (401), :class:`ServiceUnavailable` (no connection, after
the retries), :class:`ServiceTimeout` (no answer in time); any other error answer is a
:class:`CarnnError` with the service's status, code and message. Only connection failures
(refused, reset, dropped before an answer) are retried, with a growing pause: a prediction may
safely be asked twice. An answer, even an error, is final, and so is a timeout.
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any


class CarnnError(Exception):
    """The service answered with an error (or could not be reached: see the subclasses)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


class FieldError(CarnnError):
    """A record the service refused: the first bad value's field, row, expectation and value;
    ``problems`` lists every bad value the service named (dicts with the same keys)."""

    def __init__(
        self, message: str, problems: list[dict], *, status: int | None, code: str | None
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.problems = problems
        first = problems[0] if problems else {}
        self.field: str | None = first.get("field")
        self.row: int | None = first.get("row")
        self.expected: str | None = first.get("expected")
        self.value: str | None = first.get("value")


class AuthenticationError(CarnnError):
    """401: the service needs a bearer token, or another one."""


class ServiceUnavailable(CarnnError):
    """No connection to the service (refused, reset, unknown host), after the retries."""


class ServiceTimeout(CarnnError):
    """The service did not answer within the timeout."""


class CarnnClient:
    """``url``: the service's base URL; ``token``: its bearer token, if it has one; ``timeout``:
    seconds per attempt; ``retries``: further attempts after a connection failure."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 30.0,
        *,
        retries: int = 2,
        backoff_s: float = 0.5,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url: expected http://host:port or https://..., got {url!r}")
        if timeout <= 0 or retries < 0:
            raise ValueError("timeout must be positive and retries at least 0")
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self.retries, self.backoff_s = retries, backoff_s

    def predict(self, records: Iterable[Mapping[str, Any]]) -> list[float]:
        """MPG for each record (a mapping of field to value; None or absent for a missing
        optional field), in order."""
        rows = [_jsonable(i, dict(r)) for i, r in enumerate(records)]
        body = json.dumps({"dataframe_records": rows}).encode()
        answer = self._post("/invocations", body, "application/json")
        try:
            mpg = [float(p["mpg"]) for p in answer["predictions"]]
        except (KeyError, TypeError, ValueError):
            raise CarnnError(f"{self.url} answered without predictions: is it carnn?") from None
        if len(mpg) != len(rows):
            raise CarnnError(f"{self.url} answered {len(mpg)} predictions for {len(rows)} records")
        return mpg

    def _post(self, path: str, body: bytes, content_type: str) -> dict:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, body, headers, method="POST")
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as err:  # an answer: final, never retried
                raise _error_of(err.code, err.read()) from None
            except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, resets
                reason = getattr(err, "reason", err)
                if isinstance(reason, TimeoutError):
                    raise ServiceTimeout(
                        f"{self.url} did not answer within {self.timeout:g} s"
                    ) from None
                if attempt == self.retries:
                    tries = f"{attempt + 1} time{'s' if attempt else ''}"
                    raise ServiceUnavailable(
                        f"cannot reach {self.url}: {_reason(reason)} (tried {tries})"
                    ) from None
                time.sleep(self.backoff_s * 2**attempt)
                continue
            try:
                return json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise CarnnError(f"{self.url} answered something other than JSON") from None
        raise AssertionError("unreachable")  # the loop returns or raises


def _error_of(status: int, raw: bytes) -> CarnnError:
    """The typed error for an error answer (the service's JSON shape, or whatever came)."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        text = raw[:200].decode("utf-8", "replace").strip()
        return CarnnError(f"HTTP {status}: {text or 'no details'}", status=status)
    message, code = body["message"], body.get("error_code")
    problems = [p for p in body.get("errors") or [] if isinstance(p, dict) and p.get("field")]
    if status == 401:
        return AuthenticationError(message, status=status, code=code)
    if status == 400 and problems:
        return FieldError(message, problems, status=status, code=code)
    return CarnnError(f"HTTP {status}: {message}", status=status, code=code)


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


def _jsonable(row: int, record: dict[str, Any]) -> dict[str, Any]:
    """NaN (pandas' missing value) as null; infinity is refused here, naming field and row (JSON
    has neither)."""
    out = {}
    for field, value in record.items():
        if hasattr(value, "item") and not isinstance(value, str):  # a NumPy scalar
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            if not math.isnan(value):
                expected = "a finite number"
                problem = {"row": row, "field": field, "expected": expected, "value": repr(value)}
                message = f"{field}: row {row} has {value!r}; expected {expected}"
                raise FieldError(message, [problem], status=None, code=None)
            value = None
        out[field] = value
    return out
