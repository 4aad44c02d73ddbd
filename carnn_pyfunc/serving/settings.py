"""How `carnn serve` is configured: flags -> a frozen Settings -> environment for its workers."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_MODEL_URI = "models:/carnn@production"
TOKEN_VARIABLE = "CARNN_API_TOKEN"
_PREFIX = "CARNN_SERVE_"


@dataclass(frozen=True)
class Settings:
    model_uri: str = DEFAULT_MODEL_URI
    token: str | None = None  # bearer token; None: no authentication
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 5 * 1024 * 1024
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token.strip()) < 16:
            raise ValueError(f"{TOKEN_VARIABLE}: a token needs at least 16 characters")
        if self.max_body_bytes < 1024:
            raise ValueError("max body size: at least 1024 bytes")
        if self.timeout_s <= 0:
            raise ValueError("timeout: expected a positive number of seconds")

    def to_env(self) -> dict[str, str]:
        """The environment that carries these settings to worker processes."""
        env = {
            f"{_PREFIX}MODEL_URI": self.model_uri,
            f"{_PREFIX}CORS_ORIGINS": ",".join(self.cors_origins),
            f"{_PREFIX}MAX_BODY_BYTES": str(self.max_body_bytes),
            f"{_PREFIX}TIMEOUT_S": str(self.timeout_s),
        }
        if self.token is not None:
            env[TOKEN_VARIABLE] = self.token
        return env

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        origins = env.get(f"{_PREFIX}CORS_ORIGINS", "")
        return cls(
            model_uri=env.get(f"{_PREFIX}MODEL_URI", DEFAULT_MODEL_URI),
            token=env.get(TOKEN_VARIABLE) or None,
            cors_origins=tuple(o for o in origins.split(",") if o),
            max_body_bytes=int(env.get(f"{_PREFIX}MAX_BODY_BYTES", cls.max_body_bytes)),
            timeout_s=float(env.get(f"{_PREFIX}TIMEOUT_S", cls.timeout_s)),
        )
