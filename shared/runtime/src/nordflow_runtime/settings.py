"""Settings every service reads from its environment (one Settings class per service extends it)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Common settings; each is read from the upper-case env variable of its name."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(description="Kafka brokers, host:port[,host:port]")
    database_url: SecretStr = Field(description="PostgreSQL URL; the service uses its own schema")
    http_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - a container listens on its pod IP
        description="Interface for /healthz, /readyz, /metrics",
    )
    http_port: int = Field(default=8080, ge=0, le=65535)
    http_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="A request body's limit (413 beyond it); some paths have their own",
    )
    log_level: str = Field(default="INFO")
    consumer_batch_size: int = Field(default=200, ge=1, description="Records per DB transaction")
    consumer_poll_ms: int = Field(default=200, ge=10)
    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_poll_seconds: float = Field(default=0.2, gt=0)
    consumer_batch_attempts: int = Field(
        default=3, ge=1, le=100, description="Tries of a failing batch before record by record"
    )
    consumer_record_attempts: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Tries of a failing record (the database answering) before it is dead-lettered",
    )
    kafka_metadata_max_age_ms: int = Field(
        default=30_000,
        ge=1_000,
        le=300_000,
        description="How old the consumer's cluster metadata may get before it is fetched again "
        "(bounds the wait on a broker that lost a partition's leadership)",
    )
    stuck_after_failures: int = Field(
        default=3, ge=1, le=1000, description="Failures in a row that turn readiness red"
    )
    consumer_stall_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Polls returning nothing this long while records wait (lag above zero, or "
        "a partition without a position) turn readiness red",
    )
    retry_initial_seconds: float = Field(default=0.5, gt=0, description="First retry backoff")
    retry_max_seconds: float = Field(default=30.0, gt=0, description="Backoff cap")
    inbox_retention_days: int = Field(
        default=45,
        ge=1,
        description="Keep consumed event ids longer than any topic keeps data (DLQ: 30 days)",
    )
    outbox_retention_hours: int = Field(default=24, ge=1, description="Keep published rows")
    database_pool_size: int = Field(
        default=10, ge=2, le=200, description="Database connections the process may hold"
    )

    def require_pool(self, needed: int, setting: str) -> None:
        """Refuse to start with fewer than ``needed`` database connections; ``setting`` names
        what needs them (e.g. ``SEND_CONCURRENCY 8``)."""
        if self.database_pool_size < needed:
            raise ValueError(
                f"DATABASE_POOL_SIZE {self.database_pool_size} is too small for {setting}: "
                f"it must be at least {needed}"
            )
