"""The deployment files in deploy/ are what Ray and KubeRay accept, and say the same thing.

``serve deploy``'s config is checked by Ray Serve's own schema and its application is built from
its ``args``; the ``ray up`` file by Ray's cluster schema (with the defaults ``ray up`` adds);
the KubeRay manifest carries the same Serve config, at the Ray version the project installs, on
workers large enough for the replicas it asks for.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with the 'ray' extra")
pytest.importorskip("ray.serve", reason="the deploy files need the 'ray' extra")

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def _cpus(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _gib(quantity: str) -> float:
    units = {"Gi": 1.0, "Mi": 1 / 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    raise AssertionError(f"unexpected memory quantity {quantity!r}")


def test_the_serve_config_passes_serves_schema_and_builds_the_application() -> None:
    from ray.serve import Application
    from ray.serve.schema import ServeDeploySchema

    from facefaas.scale.serve import app
    from facefaas.settings import Settings

    config = _load("serve-config.yaml")
    schema = ServeDeploySchema.model_validate(config)
    (application,) = schema.applications
    assert application.import_path == "facefaas.scale.serve:app"
    args = config["applications"][0]["args"]
    settings = Settings(**args)  # every arg is a setting, and a valid one
    assert settings.inference_threads <= settings.ray_replica_cpus
    assert settings.ray_min_replicas <= settings.ray_max_replicas
    assert isinstance(app(args), Application)


def test_the_kuberay_manifest_serves_the_same_application_on_the_installed_ray() -> None:
    import ray

    service = _load("rayservice.yaml")
    assert service["apiVersion"] == "ray.io/v1" and service["kind"] == "RayService"
    spec = service["spec"]
    assert yaml.safe_load(spec["serveConfigV2"]) == _load("serve-config.yaml")
    cluster = spec["rayClusterConfig"]
    assert cluster["rayVersion"] == ray.__version__
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"rayproject/ray:{ray.__version__}-py311-cpu" in dockerfile
    assert f'"ray[serve,data]=={ray.__version__}"' in dockerfile

    args = yaml.safe_load(spec["serveConfigV2"])["applications"][0]["args"]
    (workers,) = cluster["workerGroupSpecs"]
    (container,) = workers["template"]["spec"]["containers"]
    limits = container["resources"]["limits"]
    assert _cpus(limits["cpu"]) >= args["ray_replica_cpus"], "a worker pod fits no replica"
    replicas_per_pod = _cpus(limits["cpu"]) // args["ray_replica_cpus"]
    # The sizing rule (docs/scale-out.md): each replica's memory budget, plus room for its
    # process and models, plus Ray's own processes, fits the pod.
    needed = replicas_per_pod * (args["memory_budget"] / 2**30 + 0.5) + 1.0
    assert _gib(limits["memory"]) >= needed
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    for group in (cluster["headGroupSpec"], workers):
        (pod,) = group["template"]["spec"]["containers"]
        assert pod["envFrom"] == [{"secretRef": {"name": "facefaas"}}]  # secrets, not literals
    assert not re.search(r"(?i)password|postgresql\+psycopg://\w+:\w", spec["serveConfigV2"])


def test_the_cluster_file_passes_rays_cluster_schema() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _load("cluster.yaml")
    validate_config(prepare_config(config))
    assert config["provider"]["type"] == "local"
    assert len(config["provider"]["worker_ips"]) == config["max_workers"]
    started = " ".join(config["head_start_ray_commands"])
    assert "--num-cpus=0" in started
