"""The facefaas HTTP service as a Ray Serve application: ``facefaas.scale.serve:app``.

Two deployments:

- **ingress** (:class:`Ingress`): the same FastAPI app as ``facefaas serve``
  (:func:`~facefaas.server.app.create_app`, through ``@serve.ingress``): keys, parsing, the
  typed request, cost planning, the registry, jobs, metrics. Its images go to
- **detector** (:class:`~.detector.DetectorReplica`): replicas that hold the models they serve
  (``@serve.multiplexed``) and run them, autoscaled between ``ray_min_replicas`` and
  ``ray_max_replicas`` on ``ray_target_ongoing_requests``.

With ``ray_detector_deployment=False`` there is only the ingress, running the models itself as
the plain service does and scaled by the same ``ray_*`` replica settings: one hop less per
request (``benchmarks/scale.py`` measures it), but every replica loads whatever it is asked for.

``app`` is an application builder: ``serve run facefaas.scale.serve:app`` (settings from
``FACEFAAS_*``), ``serve run facefaas.scale.serve:app ray_max_replicas=4 data_dir=/data``, or a
``serve deploy`` config file with ``import_path: facefaas.scale.serve:app`` and ``args:``. Its
arguments are :class:`~facefaas.settings.Settings` fields (the ``ray_*`` ones are the
deployment's options); the settings are resolved once, where the application is built, and
handed to every replica. Every replica must reach the same registry: one ``database_url``
(PostgreSQL) and model files every node can read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from facefaas.scale.detector import DetectorReplica
from facefaas.scale.remote import RayInference
from facefaas.settings import Settings

__all__ = ["DETECTOR", "INGRESS", "Ingress", "app", "build"]

INGRESS = "facefaas"
DETECTOR = "facefaas-detector"


@serve.ingress()
class Ingress:
    """The FastAPI app in a Serve replica, its images sent to the detector deployment (or run
    here, with ``detector`` None)."""

    def __init__(self, detector: DeploymentHandle[Any] | None, settings: Settings) -> None:
        self._detector = detector
        self._settings = settings

    def __serve_build_asgi_app__(self) -> FastAPI:
        from facefaas.server.app import create_app
        from facefaas.server.requestlog import configure_logging

        settings = self._settings
        configure_logging(settings.log_format, settings.log_level)
        inference = None  # without a detector deployment, this replica runs the models
        if self._detector is not None:
            inference = RayInference(self._detector, retry_after=settings.retry_after)
        # Several ingress replicas share the store: it is reconciled once, before deploying
        # (`facefaas serve --ray`), never by a replica while another one takes uploads.
        return create_app(settings, reconcile=False, inference=inference)


def build(settings: Settings) -> Application:
    """The application of ``settings``: the ingress bound to the detector deployment.

    A detector replica runs ``inference_threads`` images at once; unless that is given, it is
    the replica's CPUs (``ray_replica_cpus``, at least 1), not the cores of the machine that
    builds the application.
    """
    if "inference_threads" not in settings.model_fields_set:
        threads = max(1, round(settings.ray_replica_cpus))
        settings = settings.model_copy(update={"inference_threads": threads})
    threads = settings.inference_threads
    autoscaling: dict[str, Any] = {
        "min_replicas": settings.ray_min_replicas,
        "max_replicas": max(settings.ray_max_replicas, settings.ray_min_replicas),
        "target_ongoing_requests": settings.ray_target_ongoing_requests or float(threads),
    }
    if settings.ray_initial_replicas is not None:
        autoscaling["initial_replicas"] = settings.ray_initial_replicas
    if not settings.ray_detector_deployment:
        # The models run in the ingress replicas, which take any request (uploads, listings)
        # and admit images by their own pool, as the plain service does.
        colocated = serve.deployment(
            name=INGRESS,
            autoscaling_config=autoscaling,
            max_ongoing_requests=settings.ray_max_ongoing_requests or _ingress_ongoing(settings),
            max_queued_requests=settings.ray_max_queued_requests,
            ray_actor_options={"num_cpus": settings.ray_replica_cpus},
        )(Ingress)
        alone: Application = colocated.bind(None, settings)
        return alone
    detector = serve.deployment(
        name=DETECTOR,
        autoscaling_config=autoscaling,
        # A replica takes what its threads run and one more, so none waits idle between two
        # requests; past that, requests go to another replica (which loads the model).
        max_ongoing_requests=settings.ray_max_ongoing_requests or threads + 1,
        max_queued_requests=settings.ray_max_queued_requests,
        ray_actor_options={"num_cpus": settings.ray_replica_cpus},
    )(DetectorReplica)
    ingress = serve.deployment(
        name=INGRESS,
        num_replicas=settings.ray_ingress_replicas,
        # The ingress waits on replicas; its own limits (pool, body budget) are the app's.
        max_ongoing_requests=_ingress_ongoing(settings),
        ray_actor_options={"num_cpus": 0},
    )(Ingress)
    application: Application = ingress.bind(detector.bind(settings), settings)
    return application


def _ingress_ongoing(settings: Settings) -> int:
    return max(settings.max_connections, 16)


def app(args: Mapping[str, Any]) -> Application:
    """Ray Serve's application builder: ``args`` are :class:`Settings` fields over the
    ``FACEFAAS_*`` environment of the process that builds the application."""
    return build(Settings(**dict(args)))
