"""How `carnn serve` is configured: flags or ``CARNN_*`` variables -> a frozen Settings -> the
workers.

The command's options (``carnn_pyfunc.cli.serve``) are the one list of settings; each reads the
variable ``CARNN_`` + its name in capitals (``--max-rows`` <- ``CARNN_MAX_ROWS``; a flag wins).
Worker processes receive the resolved settings as one JSON variable of their own.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

DEFAULT_MODEL_URI = "models:/carnn@production"
ENV_PREFIX = "CARNN"  # every setting's variable: CARNN_<OPTION>
TOKEN_VARIABLE = "CARNN_API_TOKEN"
TOKEN_FILE_VARIABLE = "CARNN_TOKEN_FILE"
REQUIRE_AUTH_VARIABLE = "CARNN_REQUIRE_AUTH"
WORKER_VARIABLE = "CARNN_WORKER_SETTINGS"  # internal: the supervisor -> its workers
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Settings:
    model_uri: str = DEFAULT_MODEL_URI
    token: str | None = None  # bearer token; None: no authentication
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 5 * 1024 * 1024
    max_rows: int = 100_000  # rows a request may hold; more: 413
    max_in_flight: int = 16  # requests a worker works on at once; more: 503 at once
    timeout_s: float = 30.0
    prediction_log: str | None = None  # root of the prediction log; None: no log
    prediction_log_sample: float = 1.0  # share of requests logged
    shadow_uri: str | None = None  # scores every request's rows in the background
    canary_uri: str | None = None  # answers canary_percent % of requests
    canary_percent: float | None = None  # None: the registry's weight tag, polled
    poll_s: float = 5.0  # seconds between registry polls (aliases, the canary weight)

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"a token needs at least {MIN_TOKEN_LENGTH} characters")
        if self.max_body_bytes < 1024:
            raise ValueError("max body size: at least 1024 bytes")
        if self.max_rows < 1 or self.max_in_flight < 1:
            raise ValueError("max rows and max in flight: at least 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout: expected a positive number of seconds")
        if self.canary_percent is not None and not 0 <= self.canary_percent <= 100:
            raise ValueError("canary percent: expected 0 to 100")
        if self.shadow_uri and self.canary_uri:
            raise ValueError("a shadow or a canary, not both (a canary is shadowed already)")
        if not 0 < self.prediction_log_sample <= 1:
            raise ValueError("prediction log sample: expected a share in (0, 1]")

    def to_env(self) -> dict[str, str]:
        """The environment that carries these settings to worker processes."""
        return {WORKER_VARIABLE: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """The settings a supervisor handed its workers (defaults when there are none)."""
        env = os.environ if env is None else env
        given = json.loads(env.get(WORKER_VARIABLE) or "{}")
        if "cors_origins" in given:
            given["cors_origins"] = tuple(given["cors_origins"])
        return cls(**given)


class MissingSecret(ValueError):
    """Auth is required and no token was given."""


def resolve_token(token: str | None, token_file: str | None, *, required: bool) -> str | None:
    """The bearer token from ``--api-token``/``$CARNN_API_TOKEN`` or a file, stripped of the
    whitespace around it (a Kubernetes Secret often ends in a newline). Fails closed: with
    ``required``, no token (or an empty one) is an error naming the variables, never no auth."""
    if token is not None and token_file is not None:
        raise ValueError(f"give the token by {TOKEN_VARIABLE} or {TOKEN_FILE_VARIABLE}, not both")
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as handle:
                token = handle.read()
        except (OSError, UnicodeError) as err:
            raise ValueError(f"{TOKEN_FILE_VARIABLE}: cannot read {token_file}: {err}") from None
    token = (token or "").strip() or None
    if token is None and required:
        raise MissingSecret(
            f"{REQUIRE_AUTH_VARIABLE} is set but no token was given: set {TOKEN_VARIABLE} or "
            f"{TOKEN_FILE_VARIABLE}"
        )
    return token
