"""schemathesis against the service's own OpenAPI document: no operation answers a 5xx.

Every operation of ``/openapi.json`` gets requests generated from its schema (valid and invalid
parameters, bodies of the declared media types), through ASGI on an app with a temporary data
folder. Operations on a model run in turn on the generated id, on the built-in ``mtcnn`` and on
a model of our own with its admin key, so the ones that change models are exercised past their
key checks (401, 403 and 404 are fine answers, as are 413, 415 and 422).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("fastapi", reason="the server extra is not installed")
schemathesis = pytest.importorskip("schemathesis")

from fastapi.testclient import TestClient  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from facefaas.server import create_app  # noqa: E402
from facefaas.settings import Settings  # noqa: E402
from fuzz.mutate import budget  # noqa: E402

MiB = 1024 * 1024
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def own_model() -> dict[str, str]:
    """Filled by ``api_schema``: the id and admin key of a model uploaded for these tests."""
    return {}


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory, own_model: dict[str, str]
) -> Iterator[Any]:
    settings_ = Settings(
        data_dir=tmp_path_factory.mktemp("openapi-data"), max_body_bytes=1 * MiB,
        max_pixels=1_000_000, max_model_bytes=8 * MiB, max_batch_items=4, rate_limit="",
        inference_threads=2, queue_size=16, log_level="error",
    )  # fmt: skip
    app = create_app(settings_)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the app's lifespan
    deadline = time.monotonic() + 60
    while not app.state.service.ready:
        assert time.monotonic() < deadline, "the app did not get ready in 60 s"
        time.sleep(0.1)
    client = TestClient(app, raise_server_exceptions=False)  # requests only: no second lifespan
    bundle = client.get("/api/models/mtcnn/bundle").content
    created = client.post(
        "/api/models", content=bundle, params={"name": "conformance"},
        headers={"content-type": "application/octet-stream"},
    )  # fmt: skip
    if created.status_code == 201:
        own_model.update(id=created.json()["model_id"], key=created.json()["admin_key"])
    yield schema


def _exercise(operation: Any, own_model: dict[str, str]) -> int:
    """Run one operation's generated cases; returns how many were sent."""
    modes = itertools.cycle(["generated", "builtin", "own"])
    sent = 0
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @budget(EXAMPLES_PER_OPERATION)
    @given(strategy)
    def run(case: Any) -> None:
        nonlocal sent
        if "model_id" in (case.path_parameters or {}):
            mode = next(modes)
            if mode == "builtin":
                case.path_parameters["model_id"] = "mtcnn"
            elif mode == "own" and own_model:
                case.path_parameters["model_id"] = own_model["id"]
                case.headers = {**(case.headers or {}), "X-API-Key": own_model["key"]}
        sent += 1
        case.call_and_validate(checks=[not_a_server_error])

    run()
    return sent


@pytest.mark.timeout(400)
def test_no_operation_answers_a_server_error(api_schema: Any, own_model: dict[str, str]) -> None:
    failures: list[str] = []
    sent: dict[str, int] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        try:
            sent[operation.label] = _exercise(operation, own_model)
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    print(f"{len(sent)} operations, {sum(sent.values())} requests, own model: {bool(own_model)}")
    assert len(sent) + len(failures) >= 20, "the OpenAPI document lost its operations"
    assert not failures, "\n\n".join(failures)
