"""The service on Ray Serve (``facefaas.scale.serve``), on a real two-node Ray cluster.

One local cluster (a head and a worker node on this machine, one CPU and 100 MB of object
store each, no dashboard) runs the application with two detector replicas and the HTTP proxy on
a loopback port, two ingress replicas behind it. Answers are compared with the library's, run
in this process; a detector replica is killed under load and must come back.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (the ray extra)")
serve = pytest.importorskip("ray.serve", reason="Ray Serve is not installed (ray[serve])")

from facefaas import functions  # noqa: E402
from facefaas.decode import load_image  # noqa: E402
from facefaas.detector import Detector  # noqa: E402
from facefaas.render import encode_image  # noqa: E402
from facefaas.request import OutputOptions  # noqa: E402

from .conftest import TEST_LIMITS, assert_problem, upload  # noqa: E402

MiB = 1024 * 1024
OBJECT_STORE = 100 * MiB
READY_SECONDS = 90.0
APP = "facefaas-test"


@dataclass
class RayApp:
    url: str
    http: httpx.Client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Replica:
    name: str
    node: str
    pid: int

    def cpu_ticks(self) -> int:
        """CPU time its process has used (Linux /proc), in clock ticks."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime


def _detector_actors() -> list[Replica]:
    """The live detector replica actors. From the GCS's actor table: the state API
    (ray.util.state) needs the dashboard, which these clusters do without."""
    from ray._private import state

    return [
        Replica(actor["Name"], actor["Address"]["NodeID"], actor["Pid"])
        for actor in state.actors().values()
        if actor["ActorClassName"] == f"ServeReplica:{APP}:facefaas-detector"
        and actor["State"] == "ALIVE"
    ]


def _detector_replicas() -> dict[str, int]:
    status = serve.status().applications[APP].deployments["facefaas-detector"]
    return dict(status.replica_states)


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"the Ray application was not ready in {READY_SECONDS:.0f} s")


def _shared_database(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings of a new database of the session's PostgreSQL, as every replica of a cluster
    shares one; none (each app's SQLite in its data folder) where PostgreSQL is missing."""
    try:
        cluster = request.getfixturevalue("postgres_cluster")
    except pytest.skip.Exception:
        return {}
    return {"database_url": cluster.url(cluster.new_database())}


@pytest.fixture(scope="module")
def ray_app(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[RayApp]:
    from ray.cluster_utils import Cluster

    from facefaas.scale.local import stop_handle_loop
    from facefaas.scale.serve import app

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": False,
            "object_store_memory": OBJECT_STORE,
        },
    )
    try:
        cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
        ray.init(address=cluster.address, log_to_driver=False)
        # What a `serve deploy` config file's args are: Settings fields, as text.
        args = {
            **{name: str(value) for name, value in TEST_LIMITS.items()},
            "inference_threads": "1",
            "queue_size": "8",
            "data_dir": str(tmp_path_factory.mktemp("ray-data")),
            "ray_min_replicas": "2",
            "ray_max_replicas": "2",
            "ray_replica_cpus": "0.5",
            # Two ingress replicas: an upload through one is called through either.
            "ray_ingress_replicas": "2",
            **_shared_database(request),
        }
        port = _free_port()
        # One proxy, on the head: both nodes share this machine's loopback ports.
        serve.start(http_options={"host": "127.0.0.1", "port": port}, proxy_location="HeadOnly")
        serve.run(app(args), name=APP, route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url)
        with httpx.Client(base_url=url, timeout=60) as http:
            yield RayApp(url, http)
    finally:
        try:
            serve.shutdown()
        finally:
            stop_handle_loop()
            ray.shutdown()
            cluster.shutdown()


@pytest.fixture(scope="module")
def batched_url(ray_app: RayApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second application on the cluster, with cross-request batching, at ``/batched``."""
    from facefaas.scale.serve import app

    args = {
        **_one_replica_args(str(tmp_path_factory.mktemp("ray-batched"))),
        "ray_replica_cpus": "0.5",
        "ray_batching": "true",
        "ray_max_ongoing_requests": "8",  # so that four requests can be on it, in one batch
        "ray_batch_size": "4",
        "ray_batch_wait": "0.2",  # long enough for concurrent requests to share a batch
    }
    serve.run(app(args), name=f"{APP}-batched", route_prefix="/batched")
    url = f"{ray_app.url}/batched"
    try:
        _wait_ready(url)
        yield url
    finally:
        serve.delete(f"{APP}-batched")


def _one_replica_args(data_dir: str) -> dict[str, str]:
    """An application's args (Settings fields as text, as a config file has them): the test
    limits, ``data_dir``, one detector replica of one thread."""
    return {
        **{name: str(value) for name, value in TEST_LIMITS.items()},
        "data_dir": data_dir,
        "inference_threads": "1",
        "ray_min_replicas": "1",
        "ray_max_replicas": "1",
    }


def _library(model: Path | str, data: bytes, function: str) -> Any:
    """What the library answers in this process: the faces' JSON, or the picture's bytes."""
    decoded = load_image(data)
    with Detector(str(model)) as detector:
        faces = detector.detect(decoded)
    if function == "detect":
        return faces.to_dict()["faces"]
    entry = functions.get_function(function)
    assert entry.encoding is not None
    return encode_image(entry.picture(decoded, faces, OutputOptions()), *entry.encoding)


def _answer(response: httpx.Response, function: str) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["faces"] if function == "detect" else response.content


def test_both_replicas_run_on_their_own_nodes(ray_app: RayApp) -> None:
    replicas = _detector_actors()
    assert len(replicas) == 2
    assert len({replica.node for replica in replicas}) == 2, "both replicas are on one node"


def _less_sure_model() -> bytes:
    """A bundle zip of the built-in weights whose O-Net is less sure of faces: every score
    below 1 changes, so its answers are told apart from the built-in's."""
    from facefaas.models.builtin import builtin_path
    from facefaas.models.bundle import read_bundle
    from facefaas.models.export import bundle_zip
    from facefaas.models.weights import MtcnnWeights

    folder = builtin_path("mtcnn")
    assert folder is not None
    bundle = read_bundle(folder)
    weights = bundle.weights()
    onet = dict(weights.onet)
    onet["fc6_1.bias"] = onet["fc6_1.bias"] + np.array([0.0, -0.5], np.float32)
    nudged = MtcnnWeights(pnet=dict(weights.pnet), rnet=dict(weights.rnet), onet=onet)
    return bundle_zip(nudged, bundle.manifest)


def test_built_in_and_uploaded_models_answer_concurrently_as_the_library(
    ray_app: RayApp, hopper: bytes, solvay: bytes, tmp_path: Path
) -> None:
    bundle = tmp_path / "uploaded.zip"
    bundle.write_bytes(_less_sure_model())
    uploaded = upload(ray_app.http, bundle.read_bytes())["id"]
    calls = [
        (model, image, function)
        for model in ("mtcnn", uploaded)
        for image in (hopper, solvay)
        for function in ("detect", "infer")
    ] * 2
    expected = {
        (model, image, function): _library(bundle if model == uploaded else model, image, function)
        for model, image, function in set(calls)
    }

    def call(model: str, image: bytes, function: str) -> Any:
        response = ray_app.http.post(f"/api/run/{model}/{function}", content=image)
        return _answer(response, function)

    with ThreadPoolExecutor(8) as workers:
        answers = list(workers.map(lambda c: call(*c), calls))
    for (model, image, function), got in zip(calls, answers, strict=True):
        assert got == expected[(model, image, function)], (model, function)
    # The nudged weights are another model: its scores differ from the built-in's somewhere.
    assert expected[(uploaded, solvay, "detect")] != expected[("mtcnn", solvay, "detect")]


def test_batched_requests_answer_as_the_library(
    ray_app: RayApp, batched_url: str, hopper: bytes, solvay: bytes
) -> None:
    calls = [(image, function) for image in (hopper, solvay) for function in ("detect", "infer")]
    calls = calls * 2
    expected = {call: _library("mtcnn", *call) for call in set(calls)}

    def call(image: bytes, function: str) -> Any:
        response = ray_app.http.post(f"{batched_url}/api/run/mtcnn/{function}", content=image)
        return _answer(response, function)

    with ThreadPoolExecutor(len(calls)) as workers:
        answers = list(workers.map(lambda c: call(*c), calls))
    for key, got in zip(calls, answers, strict=True):
        assert got == expected[key], key[1]


def test_without_a_detector_deployment_the_ingress_runs_the_models_as_the_library(
    ray_app: RayApp, tmp_path: Path, hopper: bytes, solvay: bytes
) -> None:
    from facefaas.scale.serve import app

    args = {
        **_one_replica_args(str(tmp_path)),
        "ray_replica_cpus": "0.25",
        "ray_detector_deployment": "false",
        "queue_size": "8",  # the ingress's own pool admits the images now
    }
    name = f"{APP}-colocated"
    serve.run(app(args), name=name, route_prefix="/colocated")
    try:
        _wait_ready(f"{ray_app.url}/colocated")
        deployments = serve.status().applications[name].deployments
        assert set(deployments) == {"facefaas"}
        calls = [
            (image, function) for image in (hopper, solvay) for function in ("detect", "infer")
        ]
        with ThreadPoolExecutor(len(calls)) as workers:
            responses = list(
                workers.map(
                    lambda c: ray_app.http.post(f"/colocated/api/run/mtcnn/{c[1]}", content=c[0]),
                    calls,
                )
            )
    finally:
        serve.delete(name)
    for (image, function), response in zip(calls, responses, strict=True):
        assert _answer(response, function) == _library("mtcnn", image, function), function


def test_past_the_replicas_queue_requests_get_503_and_the_rest_right_answers(
    ray_app: RayApp, tmp_path: Path, solvay: bytes
) -> None:
    from facefaas.scale.serve import app

    args = {
        **_one_replica_args(str(tmp_path)),
        "ray_replica_cpus": "0.25",
        "ray_max_ongoing_requests": "1",
        "ray_max_queued_requests": "1",
    }
    name = f"{APP}-small"
    serve.run(app(args), name=name, route_prefix="/small")
    try:
        _wait_ready(f"{ray_app.url}/small")
        expected = _library("mtcnn", solvay, "detect")
        with ThreadPoolExecutor(6) as workers:
            responses = list(
                workers.map(
                    lambda _: ray_app.http.post("/small/api/run/mtcnn/detect", content=solvay),
                    range(6),
                )
            )
    finally:
        serve.delete(name)
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 503 in statuses, statuses
    for response in responses:
        if response.status_code == 200:
            assert response.json()["faces"] == expected
        else:
            assert_problem(response, 503, "overloaded")
            assert int(response.headers["Retry-After"]) >= 1


def test_an_error_on_a_detector_replica_is_its_problem_status(
    ray_app: RayApp, hopper: bytes
) -> None:
    truncated = hopper[: len(hopper) // 3]  # its header plans; decoding fails on the replica
    response = ray_app.http.post("/api/run/mtcnn/detect", content=truncated)
    assert_problem(response, 400, "undecodable-image")
    batch = ray_app.http.post(
        "/api/batch/mtcnn/detect", files=[("a", ("a.jpg", hopper)), ("b", ("b.jpg", truncated))]
    )
    assert batch.status_code == 200, batch.text
    statuses = [item["status"] for item in batch.json()["results"]]
    assert statuses == [200, 400]


def test_a_killed_detector_replica_costs_no_wrong_answer_and_comes_back(
    ray_app: RayApp, solvay: bytes
) -> None:
    if not Path("/proc/self/stat").is_file():
        pytest.skip("finding the busy replica reads /proc (Linux)")
    expected = _library("mtcnn", solvay, "detect")
    killed: list[str] = []
    started = time.monotonic()

    def call(i: int) -> httpx.Response:
        if i == 8:
            # The replica that works hardest now holds the model: requests are on it.
            before = {replica: replica.cpu_ticks() for replica in _detector_actors()}
            time.sleep(0.5)
            victim = max(before, key=lambda replica: replica.cpu_ticks() - before[replica])
            ray.kill(ray.get_actor(victim.name, namespace="serve"), no_restart=True)
            killed.append(victim.name)
        return ray_app.http.post("/api/run/mtcnn/detect", content=solvay, timeout=60)

    with ThreadPoolExecutor(4) as workers:
        responses = list(workers.map(call, range(24)))
    assert time.monotonic() - started < 120, "requests hung"
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 12, statuses
    for response in responses:
        if response.status_code == 200:
            assert response.json()["faces"] == expected
        else:
            assert_problem(response, 503)
            assert "Retry-After" in response.headers

    def back() -> bool:
        names = {replica.name for replica in _detector_actors()}
        return len(names) == 2 and killed[0] not in names and _detector_replicas() == {"RUNNING": 2}

    deadline = time.monotonic() + 60
    while not back() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert back(), (_detector_actors(), _detector_replicas())
    response = ray_app.http.post("/api/run/mtcnn/detect", content=solvay)
    assert _answer(response, "detect") == expected


@pytest.mark.parametrize("flags", [["--replicas", "2"], ["--max-replicas", "3"]])
def test_replica_options_of_serve_need_ray(flags: list[str]) -> None:
    from click.testing import CliRunner

    from facefaas.cli import cli

    result = CliRunner().invoke(cli, ["serve", *flags])
    assert result.exit_code == 2
    assert "go with --ray" in result.output


def test_serve_run_builds_the_application_from_its_import_path_and_args(tmp_path: Path) -> None:
    # What `serve run facefaas.scale.serve:app ray_max_replicas=3` and `serve deploy` do.
    from ray._common.utils import import_attr
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    builder = import_attr("facefaas.scale.serve:app")
    application = call_user_app_builder_with_args_if_necessary(
        builder, {"data_dir": str(tmp_path), "ray_max_replicas": "3", "inference_threads": "2"}
    )
    assert isinstance(application, serve.Application)
    # The detector deployment bound as the ingress's first argument (Ray's private fields).
    detector = application._bound_deployment.init_args[0]._bound_deployment
    assert detector.name == "facefaas-detector"
    assert detector.max_ongoing_requests == 3  # inference_threads + 1
    autoscaling = detector._deployment_config.autoscaling_config
    assert (autoscaling.min_replicas, autoscaling.max_replicas) == (1, 3)
    assert autoscaling.target_ongoing_requests == 2.0  # inference_threads
    with pytest.raises(Exception, match="ray_max_replicas"):
        call_user_app_builder_with_args_if_necessary(builder, {"ray_max_replicas": "0"})


def test_a_detector_replica_runs_as_many_images_at_once_as_it_has_cpus(tmp_path: Path) -> None:
    from facefaas.scale.serve import app

    application = app({"data_dir": str(tmp_path), "ray_replica_cpus": "3"})
    detector = application._bound_deployment.init_args[0]._bound_deployment
    assert detector.init_args[0].inference_threads == 3
    assert detector.max_ongoing_requests == 4
    assert detector.ray_actor_options["num_cpus"] == 3
