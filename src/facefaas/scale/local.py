"""`serve_on_ray`: ``facefaas serve --ray``, the Ray Serve application started from a shell.

It starts a Ray instance of its own on this machine (or joins ``ray_address``), deploys
:func:`.serve.build` with the HTTP proxy on ``host:port``, says where it listens, and on Ctrl+C
or SIGTERM takes the application down again: the whole Ray instance when it started it, only
its application when it joined a cluster. The model store is reconciled once, before any
replica starts, as ``facefaas serve --workers N`` does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from facefaas.settings import Settings

__all__ = ["APP_NAME", "serve_on_ray", "stop_handle_loop"]

APP_NAME = "facefaas"


def serve_on_ray(settings: Settings, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGINT or SIGTERM (blocking); ``announce`` gets the lines for the user."""
    import ray
    from ray import serve

    from facefaas.registry import Registry
    from facefaas.scale.serve import build

    registry = Registry.open(settings.data_dir, settings.database_url, settings.shared_files)
    try:
        registry.reconcile()
    finally:
        registry.close()
    own = settings.ray_address is None
    # "local": a new instance even where another one runs on this machine (`ray start`).
    address = settings.ray_address or "local"
    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    # After ray.init, which installs handlers of its own for the driver.
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        serve.start(http_options={"host": settings.host, "port": settings.port})
        serve.run(build(settings), name=APP_NAME, route_prefix="/", blocking=False)
        most = max(settings.ray_max_replicas, settings.ray_min_replicas)
        announce(
            f"facefaas on Ray Serve at {settings.url}  (API docs: {settings.url}/docs); "
            f"{settings.ray_min_replicas}-{most} detector replicas, "
            f"{settings.ray_models_per_replica} models each"
        )
        while not stop.wait(0.5):
            pass
        announce("stopping")
    finally:
        try:
            if own:
                serve.shutdown()  # type: ignore[no-untyped-call]
            else:
                serve.delete(APP_NAME)
        finally:
            stop_handle_loop()
            ray.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def stop_handle_loop() -> None:
    """Stop the event loop thread that Serve's handles run in this process (``serve.run``
    starts it). Left running past ``ray.shutdown()``, it touches the shut-down core worker, and
    Ray then ends the whole process at once, exit status 1 (seen in the tests' driver logs:
    "The core worker has already been shutdown ... The process will exit"). Serve has no public
    call for this; a later handle starts a new loop."""
    import gc
    import time

    from ray.serve._private.router import SingletonThreadRouter

    # Handles and object references dropped earlier are freed now, while Ray still runs: freed
    # later (by whichever thread next runs the garbage collector), they too would call into it.
    gc.collect()
    time.sleep(1.0)  # the long-poll callbacks of a just-deleted controller settle
    loop = SingletonThreadRouter._asyncio_loop
    if loop is None:
        return
    with SingletonThreadRouter._asyncio_loop_creation_lock:
        SingletonThreadRouter._asyncio_loop = None
    loop.call_soon_threadsafe(loop.stop)
    deadline = time.monotonic() + 5
    while loop.is_running() and time.monotonic() < deadline:
        time.sleep(0.05)
