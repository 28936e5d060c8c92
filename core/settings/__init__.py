"""Settings: `TUNELOOP_<FIELD>` when shared by all components, else `TUNELOOP_<COMPONENT>_<FIELD>`.

Nothing here runs at import: `get_settings()` reads the environment when it is called.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings.api import ApiSettings
from core.settings.base import ComponentSettings, split_list
from core.settings.monitor import MonitorSettings
from core.settings.operations import (
    CANARY_MAX_SHARE,
    CanarySettings,
    ReviewSettings,
    WorkerSettings,
)
from core.settings.retention import RetentionSettings
from core.settings.retrain import (
    SEARCH_MAX_SECONDS,
    SEARCH_MAX_TRIALS,
    Precision,
    RetrainSettings,
    RolloutMode,
    Sampler,
)

__all__ = [
    "CANARY_MAX_SHARE",
    "DEFAULT_MODEL",
    "SEARCH_MAX_SECONDS",
    "SEARCH_MAX_TRIALS",
    "ApiSettings",
    "CanarySettings",
    "ComponentSettings",
    "MonitorSettings",
    "Precision",
    "RetentionSettings",
    "RetrainSettings",
    "ReviewSettings",
    "RolloutMode",
    "Sampler",
    "Settings",
    "WorkerSettings",
    "get_settings",
    "options_from",
    "split_list",
]

T = TypeVar("T")

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "admin", "password", "token"}


class Settings(ComponentSettings):
    """Shared settings, plus each component's own under its attribute."""

    model_config = SettingsConfigDict(env_prefix="TUNELOOP_")

    env: Literal["development", "production"] = Field(
        "development",
        description="`production` refuses a missing or placeholder admin token and open mode.",
    )
    home: Path = Field(Path.home() / ".tuneloop", description="All local state.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty: SQLite at `$TUNELOOP_HOME/tuneloop.db`."
    )
    broker_url: str = Field(
        "", description="Celery broker; empty: a file transport under `$TUNELOOP_HOME/broker`."
    )
    # Rule: longer than any run. Redis hands an unacknowledged message out again after this; a
    # dead worker's run is taken up sooner through its lease (TUNELOOP_RETRAIN_LEASE_SECONDS),
    # and a copy delivered while the run trains finds the lease held and does nothing.
    broker_visibility_seconds: int = Field(
        6 * 3600, ge=1, description="Redis broker: seconds before an unacknowledged task is resent."
    )
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token with every scope, beside the keys of `tuneloop keys`; unset: "
        "only those keys.",
    )
    model: str = Field(DEFAULT_MODEL, description="Base model: Hugging Face id or local path.")
    artifact_dir: Path | None = Field(
        None, description="Model versions and reports; empty: `$TUNELOOP_HOME/artifacts`."
    )
    device: str = Field(
        "auto", description="`auto` (CUDA when present, else CPU), `cpu`, `cuda:N`."
    )
    log_level: str = Field("INFO", description="Python log level.")
    # Rule: production logs go to a collector that parses JSON; a developer's terminal is read.
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="`json`: one object per line (time, level, logger, message, request_id); "
        "`text`: plain lines; `auto`: json in production, text otherwise.",
    )

    api: ApiSettings = Field(default_factory=lambda: ApiSettings())
    retrain: RetrainSettings = Field(default_factory=lambda: RetrainSettings())
    monitor: MonitorSettings = Field(default_factory=lambda: MonitorSettings())
    worker: WorkerSettings = Field(default_factory=lambda: WorkerSettings())
    retention: RetentionSettings = Field(default_factory=lambda: RetentionSettings())
    review: ReviewSettings = Field(default_factory=lambda: ReviewSettings())
    canary: CanarySettings = Field(default_factory=lambda: CanarySettings())

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str) -> str:
        if url:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                make_url(url)
            except ArgumentError:
                raise ValueError(
                    "not a database URL; e.g. sqlite:////path/tuneloop.db or "
                    "postgresql+psycopg://user@host:5432/db"
                ) from None
        return url

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, url: str) -> str:
        from kombu.transport import TRANSPORT_ALIASES

        scheme = url.partition("://")[0].partition("+")[0] if "://" in url else url
        if url and scheme not in TRANSPORT_ALIASES:
            raise ValueError(
                f"unknown broker transport {scheme!r}; e.g. redis://host:6379/0, "
                "amqp://user@host//, or empty for the embedded file transport"
            )
        return url

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'tuneloop.db'}"
        if self.artifact_dir is None:
            self.artifact_dir = self.home / "artifacts"
        if self.env == "production":
            token = self.admin_token.get_secret_value() if self.admin_token else ""
            if len(token) < 16 or token.lower() in PLACEHOLDER_SECRETS:
                raise ValueError("TUNELOOP_ADMIN_TOKEN must be a real secret in production")
            if self.api.open:
                raise ValueError("TUNELOOP_API_OPEN is for local development, not production")
        return self

    @property
    def artifacts(self) -> Path:
        """The artifact directory, derived from home when unset."""
        assert self.artifact_dir is not None
        return self.artifact_dir

    @property
    def log_json(self) -> bool:
        """Whether logs are JSON lines (see `log_format`)."""
        return self.log_format == "json" or (self.log_format == "auto" and self.env == "production")

    @property
    def token(self) -> str | None:
        """The admin token in clear, or None when unset or empty."""
        return self.admin_token.get_secret_value() if self.admin_token else None


def get_settings(**overrides: object) -> Settings:
    """Read settings from the environment; keyword arguments win over it."""
    return Settings(**overrides)  # type: ignore[arg-type]


def options_from(cls: type[T], source: BaseSettings, **overrides: Any) -> T:
    """Build a dataclass of options from the settings fields of the same names."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {n: getattr(source, n) for n in names if n in type(source).model_fields}
    return cls(**{**values, **overrides})
