"""`serve`: run the service on uvicorn with one worker or several.

One worker runs the app in this process. Several workers are uvicorn processes that build the
app from ``FACEFAAS_*`` variables (:func:`~facefaas.server.app.create_app_from_env`); this process
exports the settings for them, reconciles the registry once before they start, and gives them a
shared, emptied Prometheus multiprocess folder.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facefaas.settings import Settings

if TYPE_CHECKING:
    from facefaas.server.http_protocol import EdgeConfig

__all__ = ["edge_config", "serve"]

log = logging.getLogger(__name__)

# On SIGTERM the service lets work in flight go on for drain_seconds, then stops it and answers
# 503 (Service.begin_drain); uvicorn waits this much longer for those answers to be written.
_ANSWER_SECONDS = 5
_STARTUP_FAILURE = 3  # uvicorn's exit status when the app does not start


def serve(settings: Settings) -> None:
    """Serve until interrupted (blocking)."""
    from uvicorn import Server
    from uvicorn.supervisors import Multiprocess

    from facefaas.server.requestlog import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    # Files the service writes (registry, model store, metrics) are for this user alone.
    os.umask(0o077)
    if settings.workers == 1:
        from facefaas.server.app import create_app

        server = Server(edge_config(settings, create_app(settings)))
        server.run()
        if not server.started:
            raise SystemExit(_STARTUP_FAILURE)
        return
    settings = _prepare_workers(settings)
    os.environ.update(settings.to_env())
    # prometheus_client reads this name, in each worker, when it is imported.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.metrics_dir)
    config = edge_config(
        settings, "facefaas.server.app:create_app_from_env", factory=True, workers=settings.workers
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def edge_config(settings: Settings, app: Any, **kwargs: Any) -> EdgeConfig:
    """The uvicorn configuration of ``app`` under ``settings``: address, timeouts, limits."""
    from facefaas.server.http_protocol import EdgeConfig

    return EdgeConfig(
        app,
        header_timeout=settings.header_timeout,
        max_connections=settings.max_connections,
        retry_after=settings.retry_after,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,  # our middleware writes one access line per request, with its id
        timeout_graceful_shutdown=math.ceil(settings.drain_seconds) + _ANSWER_SECONDS,
        timeout_keep_alive=settings.keep_alive_timeout,
        server_header=False,
        **kwargs,
    )


def _prepare_workers(settings: Settings) -> Settings:
    from facefaas.registry import Registry

    registry = Registry.open(settings.data_dir, settings.database_url, settings.shared_files)
    try:
        registry.reconcile()
    finally:
        registry.close()
    metrics_dir = settings.metrics_dir or Path(tempfile.mkdtemp(prefix="facefaas-metrics-"))
    metrics_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):  # samples of an earlier run's workers
        stale.unlink()
    log.info("%d workers; metrics collected in %s", settings.workers, metrics_dir)
    return settings.model_copy(update={"metrics_dir": metrics_dir})
