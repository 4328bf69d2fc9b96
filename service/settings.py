"""The one typed settings object. Every knob is an environment variable with prefix ``CESCALE_``.

The defaults are the embedded default: a SQLite file next to the process and the Lambda emulator,
so that a machine with no AWS account and no Postgres runs the whole product.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CESCALE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///./cescale.db",
        description="SQLAlchemy URL: sqlite:///path.db (embedded) or postgresql+psycopg://...",
    )
    backend: Literal["emulator", "aws"] = Field(
        "emulator", description="Serverless platform the control loop drives."
    )
    state_dir: Path = Field(
        Path(".cescale"), description="Local state: the bootstrap API key file lives here."
    )
    api_key_prefix: str = Field("cesk", description="Prefix of generated API keys.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Level of the service's and uvicorn's log lines (stderr)."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="text: time, level, logger, message; json: one object per line."
    )
    idempotency_lock_seconds: float = Field(
        60.0,
        gt=0,
        description="An Idempotency-Key still in progress after this long is considered abandoned.",
    )
    page_size_default: int = Field(50, ge=1, le=500)
    page_size_max: int = Field(200, ge=1, le=1000)
    controller_enabled: bool = Field(
        True, description="Run the control loop inside the API process (APScheduler)."
    )
    controller_interval_s: float = Field(1.0, gt=0, description="Seconds between loop ticks.")
    controller_lease_s: float = Field(
        30.0, gt=0, description="A job whose controller stops renewing is taken over after this."
    )
    controller_batch: int = Field(200, ge=1, description="Jobs advanced per tick per replica.")
    db_statement_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Postgres: no statement of the service or the loop, nor a wait for a lock, "
        "runs longer than this (a tick or request fails and the next one retries).",
    )
    max_attempts: int = Field(4, ge=1, le=20, description="Invocations per task before failing.")
    metrics_interval_s: float = Field(
        60.0, gt=0, description="How often the loop polls each running function's metrics."
    )
    learn_refits_per_tick: int = Field(
        4,
        ge=0,
        description="Statsmodels refits of duration forecasters per tick per replica (the "
        "learn step's budget, by count: each takes ~0.1 s of one core); the others wait.",
    )
    reconcile_interval_s: float = Field(
        60.0,
        gt=0,
        description="How often the loop looks up, in CloudWatch Logs, the REPORT lines of "
        "invocations billed without one (truncated log tail, read timeout).",
    )
    reconcile_horizon_s: float = Field(
        3600.0,
        gt=0,
        description="An invocation whose REPORT line is still not found this long after it "
        "finished is marked missing (and stays counted as unreconciled).",
    )
    store_url: str | None = Field(
        None,
        description="Checkpoints and handler results: file:///path or s3://bucket/prefix "
        "(default: file://<state_dir>/store).",
    )
    events_poll_s: float = Field(
        1.0, gt=0, description="How often a job's event stream looks for new events."
    )
    webhook_interval_s: float = Field(
        5.0, gt=0, description="How often ended jobs are sent to their tenant's webhook."
    )
    webhook_timeout_s: float = Field(5.0, gt=0, description="Timeout of one webhook POST.")
    webhook_max_attempts: int = Field(
        8, ge=1, le=30, description="Attempts before a delivery is marked failed."
    )
    webhook_backoff_s: float = Field(
        10.0, gt=0, description="Wait after the first failed attempt; doubles each time (≤ 1 h)."
    )
    metrics_token: str | None = Field(
        None,
        description="Bearer token GET /metrics requires; unset, /metrics is open (as exporters "
        "usually are).",
    )
    aws_region: str = Field("us-east-1", description="AWS region for the aws backend.")
    aws_endpoint_url: str | None = Field(
        None, description="Override AWS endpoint (e.g. a moto server) for the aws backend."
    )
    aws_role_arn: str | None = Field(
        None,
        description="Execution role of the functions `cescale deploy` creates "
        "(arn:aws:iam::<account>:role/<name>).",
    )
    aws_concurrency_limit: int = Field(
        1000,
        ge=1,
        description="Account concurrency limit to plan with when Lambda's GetAccountSettings is "
        "missing or denied (AWS's default account limit is 1,000).",
    )

    # --- HTTP server limits (cescale serve) ---
    max_body_bytes: int = Field(
        1_048_576, ge=1_024, description="Largest request body; a larger one is a 413."
    )
    request_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3_600,
        description="A request's head, and then its body, must each arrive within this (408).",
    )
    max_connections: int = Field(
        1_000,
        ge=1,
        le=100_000,
        description="Open HTTP connections (and requests in progress) served at once; more "
        "are answered 503 and closed.",
    )
    keep_alive_s: float = Field(
        5.0, gt=0, le=3_600, description="An idle keep-alive connection is closed after this."
    )
    # --- end of HTTP server limits ---

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        # Plain postgres URLs would make SQLAlchemy look for psycopg2; we ship psycopg 3.
        for plain in ("postgres://", "postgresql://"):
            if value.startswith(plain):
                return "postgresql+psycopg://" + value[len(plain) :]
        if not value.startswith(("sqlite://", "postgresql+psycopg://")):
            raise ValueError(
                "CESCALE_DATABASE_URL must be sqlite:///path.db or postgresql+psycopg://user@host/db"
            )
        return value

    @model_validator(mode="after")
    def _store_reachable_from_lambda(self) -> Settings:
        if self.backend == "aws" and not self.resolved_store_url.startswith("s3://"):
            raise ValueError(
                "CESCALE_BACKEND=aws needs a checkpoint store Lambda can reach: set "
                "CESCALE_STORE_URL=s3://bucket/prefix (not "
                f"{self.resolved_store_url.split('://', 1)[0]}://)"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def api_key_file(self) -> Path:
        return self.state_dir / "api-key"

    @property
    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url.rstrip("/")
        return (self.state_dir / "store").resolve().as_uri()


@lru_cache
def get_settings() -> Settings:
    return Settings()
