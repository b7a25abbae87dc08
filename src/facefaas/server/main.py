"""`serve`: run the service on uvicorn with one worker or several.

One worker runs the app in this process. Several workers are uvicorn processes that build the
app from ``FACEFAAS_*`` variables (:func:`~facefaas.server.app.create_app_from_env`); this process
exports the settings for them, reconciles the registry once before they start, and gives them a
shared, emptied Prometheus multiprocess folder.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from facefaas.settings import Settings

__all__ = ["serve"]

log = logging.getLogger(__name__)

_GRACEFUL_SHUTDOWN_SECONDS = 10


def serve(settings: Settings) -> None:
    """Serve until interrupted (blocking)."""
    import uvicorn

    from facefaas.server.requestlog import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    common = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,  # our middleware writes one access line per request, with its id
        "timeout_graceful_shutdown": _GRACEFUL_SHUTDOWN_SECONDS,
        "server_header": False,
    }
    if settings.workers == 1:
        from facefaas.server.app import create_app

        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
        return
    settings = _prepare_workers(settings)
    os.environ.update(settings.to_env())
    # prometheus_client reads this name, in each worker, when it is imported.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.metrics_dir)
    uvicorn.run(
        "facefaas.server.app:create_app_from_env",
        factory=True,
        workers=settings.workers,
        **common,  # type: ignore[arg-type]
    )


def _prepare_workers(settings: Settings) -> Settings:
    from facefaas.registry import Registry

    registry = Registry.open(settings.data_dir, settings.database_url)
    try:
        registry.reconcile()
    finally:
        registry.close()
    metrics_dir = settings.metrics_dir or Path(tempfile.mkdtemp(prefix="facefaas-metrics-"))
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):  # samples of an earlier run's workers
        stale.unlink()
    log.info("%d workers; metrics collected in %s", settings.workers, metrics_dir)
    return settings.model_copy(update={"metrics_dir": metrics_dir})
