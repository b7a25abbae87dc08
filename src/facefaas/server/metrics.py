"""Prometheus metrics of one app, in its own registry (several apps may share a process).

With several worker processes, ``Settings.metrics_dir`` (``PROMETHEUS_MULTIPROC_DIR``) is set by
``facefaas serve`` and every worker writes its samples there; ``/metrics`` on any worker then
shows the sum over all of them (``prometheus_client``'s multiprocess mode).

Metrics:

- ``facefaas_inference_seconds{model,function}``: histogram, decode + detect + render time;
- ``facefaas_faces_per_image{model}``: histogram of faces returned per image;

``model`` is the model's id, or ``private`` for every private model: ``/metrics`` needs no key,
so it must not tell which private models exist or how much they are used.

- ``facefaas_requests_in_flight``: gauge of HTTP requests being served;
- ``facefaas_inference_pending``: gauge of inference jobs running or queued;
- ``facefaas_http_responses_total{status}`` and ``facefaas_http_errors_total{status}``;
- ``facefaas_process_resident_memory_bytes``: resident memory per worker (``pid`` label in
  multiprocess mode), plus the standard ``process_*`` metrics in single-process mode;
- ``facefaas_redis_errors_total{use}``: Redis commands that failed, by what they counted
  (``rate_limit``, ``uploads_in_progress``, ``health``); each fell back to this process
  (:mod:`facefaas.server.redis_link`).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "PRIVATE_LABEL", "Metrics", "resident_memory_bytes"]

PRIVATE_LABEL = "private"  # the model label of every private model

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
_FACE_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200)


def resident_memory_bytes() -> int:
    """This process's resident set size in bytes (peak RSS where /proc is not available)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class Metrics:
    """The instruments of one app. ``multiprocess_dir`` switches to multiprocess mode."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess = multiprocess_dir is not None
        self.registry = CollectorRegistry(auto_describe=True)
        if not self.multiprocess:
            ProcessCollector(registry=self.registry)
        registry = self.registry
        self.inference_seconds = Histogram(
            "facefaas_inference_seconds",
            "Time to decode, detect and render one image, by model and function.",
            ["model", "function"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.faces_per_image = Histogram(
            "facefaas_faces_per_image",
            "Faces returned per image, by model.",
            ["model"],
            buckets=_FACE_BUCKETS,
            registry=registry,
        )
        self.requests_in_flight = Gauge(
            "facefaas_requests_in_flight",
            "HTTP requests being served.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.inference_pending = Gauge(
            "facefaas_inference_pending",
            "Inference jobs running or waiting for a thread.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.responses = Counter(
            "facefaas_http_responses",
            "HTTP responses by status.",
            ["status"],
            registry=registry,
        )
        self.errors = Counter(
            "facefaas_http_errors",
            "HTTP error responses (status >= 400) by status.",
            ["status"],
            registry=registry,
        )
        self.redis_errors = Counter(
            "facefaas_redis_errors",
            "Redis commands that failed (the count fell back to this process), by use.",
            ["use"],
            registry=registry,
        )
        self.memory = Gauge(
            "facefaas_process_resident_memory_bytes",
            "Resident memory of the worker process.",
            registry=registry,
            multiprocess_mode="livesum",
        )

    def request_started(self) -> None:
        self.requests_in_flight.inc()

    def request_finished(self, method: str, path: str, status: int, seconds: float) -> None:
        self.requests_in_flight.dec()
        self.responses.labels(str(status)).inc()
        if status >= 400:
            self.errors.labels(str(status)).inc()

    def observe_inference(
        self, model: str, function: str, seconds: float, faces: int, *, private: bool
    ) -> None:
        """Count one image of ``model`` (labelled :data:`PRIVATE_LABEL` when ``private``)."""
        label = PRIVATE_LABEL if private else model
        self.inference_seconds.labels(label, function).observe(seconds)
        self.faces_per_image.labels(label).observe(faces)

    def redis_error(self, use: str) -> None:
        self.redis_errors.labels(use).inc()

    def update_memory(self) -> None:
        self.memory.set(resident_memory_bytes())

    def render(self) -> bytes:
        """The text exposition of every metric (all workers' in multiprocess mode)."""
        self.update_memory()
        if self.multiprocess:
            from prometheus_client import multiprocess

            collected = CollectorRegistry()
            multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
            return generate_latest(collected)
        return generate_latest(self.registry)

    def close(self) -> None:
        """Mark this worker dead so its live gauges leave the multiprocess sums."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
