"""`Settings`: the one configuration object of the service, read once and passed explicitly.

Values come, highest priority first, from keyword arguments (the ``facefaas serve`` flags), then
environment variables prefixed ``FACEFAAS_`` (``FACEFAAS_PORT=9000``), then the defaults below.
This module is the only place in facefaas that reads the environment.

List settings (``cors_origins``, ``providers``) accept a comma-separated string in the environment
(``FACEFAAS_CORS_ORIGINS=https://a.example,https://b.example``) or a JSON list.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["ENV_PREFIX", "Settings", "default_data_dir"]

ENV_PREFIX = "FACEFAAS_"

MiB = 1024 * 1024
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/facefaas``, or ``~/.local/share/facefaas`` when that is not set."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "facefaas"


def _default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the service can be told. Sizes are bytes, times seconds.

    ``rate_limit`` uses the ``limits`` notation (``"600/minute"``, ``"10/second;1000/hour"``);
    an empty string turns rate limiting off. ``database_url`` is a SQLAlchemy URL; when unset the
    registry is SQLite (WAL) at ``data_dir / "registry.sqlite3"``.
    """

    # hide_input_in_errors: a refused redis_url or upload_token must not be echoed in the error.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    shared_files: Literal["auto", "local", "database"] = Field(
        default="auto",
        description="where model files, job inputs and job results live: 'local' (the data "
        "folder), 'database' (the registry's database, so every replica on every machine reads "
        "them; the data folder is a cache); 'auto': database when database_url is set (not "
        "SQLite), else local",
    )  # fmt: skip

    max_body_bytes: int = Field(
        default=32 * MiB, ge=1024, description="largest request body for images"
    )
    max_pixels: int = Field(
        default=50_000_000, ge=64, description="largest decoded image, width*height"
    )
    max_model_bytes: int = Field(default=64 * MiB, ge=1024, description="largest model upload")
    max_batch_items: int = Field(default=32, ge=1, le=1000)

    inference_threads: int = Field(default_factory=_default_threads, ge=1, le=256)
    queue_size: int = Field(
        default=16, ge=0, le=10_000, description="requests waiting beyond the threads"
    )
    retry_after: int = Field(default=1, ge=1, le=3600, description="Retry-After sent with a 503")
    max_request_bytes: int = Field(
        default=1024 * MiB,
        ge=16 * MiB,
        description="largest estimated peak memory of one image's detection (facefaas.cost); "
        "over it a request is a 422 with its estimate, unless it asks fit=true",
    )
    memory_budget: int = Field(
        default=2048 * MiB,
        ge=64 * MiB,
        description="memory the service may use: admitted requests' estimates share what the "
        "loaded models leave of it (reserve_bytes)",
    )
    reserve_bytes: int = Field(
        default=512 * MiB,
        ge=0,
        description="part of memory_budget kept for the process itself (models, sessions, Python)",
    )
    request_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="deadline of a request's work from its arrival, seconds (504 past it)",
    )
    drain_seconds: float = Field(
        default=20.0,
        ge=0,
        le=600,
        description="on SIGTERM, how long work in flight may go on; then it is answered 503",
    )
    model_cache_size: int = Field(default=8, ge=1, le=1000, description="detectors kept loaded")
    providers: Annotated[list[str], NoDecode] = Field(default_factory=list)

    rate_limit: str = Field(
        default="600/minute",
        description="per client address (and per key once verified, see key_rate_limit); "
        "'' turns rate limiting off",
    )
    key_rate_limit: str | None = Field(
        default=None,
        description="per verified key (a key that opens the model it calls); default: rate_limit",
    )
    # Counting across processes and replicas (server/redis_link.py, docs/service.md).
    redis_url: SecretStr | None = Field(
        default=None,
        description="redis://[:password@]host:port[/db]: rate limits and uploads in progress are "
        "counted there, for every process and replica; unset: in this process's memory",
    )
    redis_timeout: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="seconds a Redis command may take; past it the count falls back to this "
        "process for a few seconds",
    )
    upload_token: SecretStr | None = Field(
        default=None, description="token needed to upload models (from the environment only)"
    )
    upload_token_file: Path | None = Field(
        default=None, description="file whose first line is the upload token, if none is given"
    )
    # Uploads (server/imports.py, server/uploads.py).
    open_uploads: bool = Field(
        default=False,
        description="anyone may upload without the upload token, even when bound to a "
        "non-loopback address (a loopback-bound server without a token is always open)",
    )
    upload_quota_models: int = Field(
        default=20, ge=0, description="models one uploader (token or client address) may keep"
    )
    upload_quota_bytes: int = Field(
        default=512 * MiB, ge=0, description="bytes of model files one uploader may keep"
    )
    storage_bytes: int = Field(
        default=4096 * MiB, ge=0, description="bytes of all uploaded models' files (507 past it)"
    )
    import_workers: int = Field(
        default=2, ge=1, le=64, description="model imports at once, each in a process of its own"
    )
    import_queue_size: int = Field(
        default=4, ge=0, le=1000, description="imports waiting beyond those (then 503)"
    )
    import_cpu_seconds: int = Field(
        default=30, ge=1, le=3600, description="CPU seconds one import may use (413 past it)"
    )
    import_memory_bytes: int = Field(
        default=1024 * MiB,
        ge=64 * MiB,
        description="address space one import process may use (413 past it)",
    )
    import_wall_seconds: float = Field(
        default=120.0, gt=0, le=3600, description="wall-clock seconds of one import (503 past it)"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="origins whose pages may call the API; none by default"
    )

    # The HTTP edge: what a slow or stalled client may hold (server/http_protocol.py and
    # server/edge_limits.py).
    max_connections: int = Field(
        default=256, ge=1, le=100_000, description="open connections per worker; past it, 503"
    )
    header_timeout: float = Field(
        default=10.0, gt=0, le=3600, description="seconds to send a request's line and headers"
    )
    keep_alive_timeout: float = Field(
        default=5.0, gt=0, le=3600, description="seconds an idle connection is kept open"
    )
    body_timeout: float = Field(
        default=20.0, gt=0, le=3600,
        description="seconds a request body may take, plus 1 s per body_min_rate bytes received",
    )  # fmt: skip
    body_min_rate: int = Field(
        default=16 * 1024, ge=1, description="bytes per second a slow body must keep up"
    )
    body_buffer_bytes: int = Field(
        default=256 * MiB, ge=64 * 1024,
        description="request body bytes held at once by all requests of a worker",
    )  # fmt: skip
    body_buffer_wait: float = Field(
        default=2.0, ge=0, le=60, description="seconds a body waits for buffer room; then 503"
    )

    # Images by URL and callbacks (facefaas.fetch, server/remote.py); ephemeral storage.
    fetch_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs and host names ('*.example.org': its subdomains) that fetches and "
        "callbacks may reach although the guard refuses them (loopback, private, ...)",
    )
    fetch_connect_timeout: float = Field(
        default=5.0, gt=0, le=300, description="seconds to connect to a fetched or called URL"
    )
    fetch_read_timeout: float = Field(
        default=10.0, gt=0, le=600, description="seconds a fetched or called server may be silent"
    )
    fetch_timeout: float = Field(
        default=30.0, gt=0, le=3600, description="seconds for a whole fetch, redirects included"
    )
    ephemeral_ttl: float = Field(
        default=3600.0, gt=0, le=30 * 86400, description="seconds an ephemeral value is kept"
    )
    ephemeral_max_value_bytes: int = Field(
        default=64 * 1024, ge=16, description="largest ephemeral value, bytes of JSON (413)"
    )
    ephemeral_max_values: int = Field(
        default=10_000, ge=1, description="ephemeral values kept at once (507 past it)"
    )
    ephemeral_sweep_interval: float = Field(
        default=60.0, gt=0, le=86400, description="seconds between sweeps of expired values"
    )

    # Jobs (facefaas.jobs, server/jobs.py, routes/jobs.py).
    job_worker: bool = Field(
        default=True, description="run the job worker in this process (False: API only)"
    )
    job_threads: int | None = Field(
        default=None, ge=1, le=256,
        description="inference threads jobs may occupy at once while synchronous calls are "
        "being made; default inference_threads - 1 (at least 1): at least one thread stays free "
        "for synchronous calls",
    )  # fmt: skip
    job_borrow_after: float | None = Field(
        default=2.0, ge=0, le=3600,
        description="seconds without a synchronous call after which jobs may also use the "
        "threads kept for them (given back at the next image: a synchronous call then waits "
        "at most for one job image); None: never",
    )  # fmt: skip
    job_lifetime: float = Field(
        default=3600.0, gt=0, le=30 * 86400,
        description="default seconds a job's results are kept after it ends",
    )  # fmt: skip
    job_max_lifetime: float = Field(
        default=7 * 86400.0, gt=0, description="longest lifetime a job may ask for"
    )
    job_max_items: int = Field(default=1000, ge=1, le=1_000_000, description="images per job")
    job_max_upload_bytes: int = Field(
        default=256 * MiB, ge=1024, description="largest job upload (all its images, or a zip)"
    )
    job_max_active_per_client: int = Field(
        default=8, ge=1, description="unfinished jobs one client address may have (then 429)"
    )
    job_lease_seconds: float = Field(
        default=60.0, gt=0, le=3600,
        description="an item claimed by a worker that stops renewing is redone after this",
    )  # fmt: skip
    job_poll_interval: float = Field(
        default=0.5, gt=0, le=60, description="seconds between looks for queued job items"
    )
    job_sweep_interval: float = Field(
        default=60.0, gt=0, le=86400, description="seconds between sweeps of expired jobs"
    )
    webhook_retry_seconds: float = Field(
        default=3600.0, ge=0, le=7 * 86400,
        description="how long a failing webhook is retried (exponential backoff, at least once)",
    )  # fmt: skip

    # Ray Serve (facefaas.scale.serve, `facefaas serve --ray`): the detector deployment's
    # replicas, each holding the models it serves. The one place these options live.
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster `facefaas serve --ray` joins ('auto': the local one); "
        "default: a Ray instance of its own on this machine",
    )
    ray_min_replicas: int = Field(default=1, ge=0, le=1000, description="detector replicas, least")
    ray_max_replicas: int = Field(default=2, ge=1, le=1000, description="detector replicas, most")
    ray_initial_replicas: int | None = Field(
        default=None, ge=0, le=1000, description="detector replicas at start; default: the least"
    )
    ray_target_ongoing_requests: float | None = Field(
        default=None, gt=0, le=1000,
        description="requests in progress per detector replica that autoscaling aims at; "
        "default: inference_threads",
    )  # fmt: skip
    ray_max_ongoing_requests: int | None = Field(
        default=None, ge=1, le=10_000,
        description="requests one detector replica takes at once, default inference_threads + 1; "
        "more wait in the ingress, then go to a replica without the model (which loads it)",
    )  # fmt: skip
    ray_max_queued_requests: int = Field(
        default=64, ge=-1, le=100_000,
        description="requests waiting for a detector replica per ingress; then 503 (-1: no limit)",
    )  # fmt: skip
    ray_models_per_replica: int = Field(
        default=4, ge=1, le=1000, description="models each detector replica keeps loaded (LRU)"
    )
    ray_replica_cpus: float = Field(
        default=1.0, gt=0, le=1024, description="CPUs Ray reserves for each detector replica"
    )
    ray_ingress_replicas: int = Field(
        default=1, ge=1, le=1000, description="HTTP ingress replicas (auth, parsing, registry)"
    )
    ray_detector_deployment: bool = Field(
        default=True,
        description="run the models on detector replicas, each holding the models it serves; "
        "False: in the ingress replicas themselves (each keeps model_cache_size models), which "
        "then scale as the detector replicas would: one hop less, no model-aware placement",
    )
    ray_batching: bool = Field(
        default=False,
        description="collect concurrent requests for one model into one call (@serve.batch); "
        "off: it did not help on CPU (benchmarks/scale.py)",
    )
    ray_batch_size: int = Field(default=4, ge=1, le=256, description="most requests in a batch")
    ray_batch_wait: float = Field(
        default=0.005, ge=0, le=10, description="seconds a batch waits to fill"
    )

    metrics_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "metrics_dir", f"{ENV_PREFIX}METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR"
        ),
        description="prometheus_client multiprocess folder; set by `facefaas serve` for workers>1",
    )

    log_format: Literal["json", "text"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="before")
    @classmethod
    def _token_from_file(cls, data: Any) -> Any:
        # The token never needs to be on a command line (where `ps` shows it): a file will do.
        if (
            not isinstance(data, dict)
            or data.get("upload_token")
            or not data.get("upload_token_file")
        ):
            return data
        path = Path(data["upload_token_file"])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"upload_token_file {str(path)!r}: {exc}") from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise ValueError(f"upload_token_file {str(path)!r} is empty")
        return {**data, "upload_token": token}

    @field_validator("cors_origins", "providers", "fetch_allow", mode="before")
    @classmethod
    def _lists_from_text(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("fetch_allow")
    @classmethod
    def _valid_allowlist(cls, value: list[str]) -> list[str]:
        from facefaas.fetch import Allowlist

        Allowlist.parse(value)  # ValueError names a bad entry
        return value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _valid_redis_url(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None or (isinstance(text, str) and not text.strip()):
            return None  # FACEFAAS_REDIS_URL= (empty) means no Redis
        if not isinstance(text, str) or not text.strip().startswith(_REDIS_SCHEMES):
            # The value may hold a password: never repeat it in the message.
            raise ValueError(f"redis_url must start with one of {', '.join(_REDIS_SCHEMES)}")
        return text.strip()

    @field_validator("rate_limit", "key_rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if text:
            from limits import parse_many

            try:
                parse_many(text)
            except ValueError as exc:
                raise ValueError(f"rate_limit {value!r}: {exc}") from None
        return text

    @property
    def effective_job_threads(self) -> int:
        """Threads jobs may occupy: ``job_threads``, else ``inference_threads - 1``, at least 1
        and at most ``inference_threads``."""
        wanted = self.job_threads or self.inference_threads - 1
        return max(1, min(wanted, self.inference_threads))

    @property
    def url(self) -> str:
        """The base URL the service answers at (``0.0.0.0`` shown as ``127.0.0.1``)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def resolved_database_url(self) -> str:
        """``database_url``, or the SQLite file in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'registry.sqlite3').resolve()}"

    def to_env(self) -> dict[str, str]:
        """These settings as ``FACEFAAS_*`` variables, for worker processes started by uvicorn."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                text = value.get_secret_value()
            elif isinstance(value, list):
                text = json.dumps(value)
            else:
                text = str(value)
            env[f"{ENV_PREFIX}{name.upper()}"] = text
        return env
