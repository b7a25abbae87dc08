"""Fuzz the service's JSON inputs through a real app, in process.

Any JSON body (and bodies that are not JSON) to the run routes (every function of the table),
the batch route and the run-defaults routes (``PUT /api/models/{id}/config`` and the seed's
``PUT /api/state/{id}``, with the model's admin key so the body is read): a 2xx, or a 4xx
problem+json; never a 5xx. Bodies start from valid ones and have fields set to any JSON value,
removed or added, so both the validation (`RunParams`, `ModelConfig`, `inputs._from_json`,
`read_files`) and the work behind it are reached.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from PIL import Image

from facefaas import functions
from fuzz.mutate import budget, json_objects, json_values, mutated

pytest.importorskip("fastapi", reason="the server extra is not installed")

from fastapi.testclient import TestClient

from facefaas.server import create_app
from facefaas.settings import Settings

MiB = 1024 * 1024
PROBLEM_JSON = "application/problem+json"


def _png(width: int, height: int) -> str:
    pixels = np.random.default_rng(width).integers(0, 255, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


IMAGES = (_png(16, 12), _png(48, 40), "data:image/png;base64," + _png(24, 24))
_RUN_KEYS = (
    "image", "min_size", "thresholds", "factor", "max_faces", "score_threshold", "format",
    "quality", "thickness", "landmarks", "scores", "strength", "margin", "color", "size",
    "align", "zip",
)  # fmt: skip
_CONFIG_KEYS = ("min_size", "thresholds", "factor", "max_faces", "score_threshold")


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, str]]:
    """The app on a temporary data folder, ready, with one uploaded model: (client, id, key)."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz-data"), max_body_bytes=1 * MiB,
        max_pixels=1_000_000, max_model_bytes=8 * MiB, max_batch_items=4, rate_limit="",
        inference_threads=2, queue_size=16, log_level="error",
    )  # fmt: skip
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the app did not get ready in 60 s"
            time.sleep(0.1)
        bundle = client.get("/api/models/mtcnn/bundle")
        assert bundle.status_code == 200
        created = client.post(
            "/api/models", content=bundle.content, params={"name": "fuzz"},
            headers={"content-type": "application/octet-stream"},
        )  # fmt: skip
        if created.status_code == 409:  # the built-in weights: already registered
            pytest.skip("cannot register a model of our own to hold an admin key")
        assert created.status_code == 201, created.text
        yield client, created.json()["model_id"], created.json()["admin_key"]


def _body(value: Any) -> st.SearchStrategy[bytes]:
    text = json.dumps(value).encode()
    return st.one_of(st.just(text), st.just(text), st.just(text), mutated([text], max_mutations=3))


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, bool]:
    """(method, path template, body, with the admin key)."""
    route = draw(st.sampled_from(["run", "run", "batch", "config", "state", "seed"]))
    if route in ("config", "state"):
        base = {"min_size": 20, "thresholds": [0.6, 0.7, 0.7], "factor": 0.709}
        value = draw(st.one_of(*[json_objects(base, _CONFIG_KEYS)] * 3, json_values()))
        path = "/api/models/{id}/config" if route == "config" else "/api/state/{id}"
        return "PUT", path, draw(_body(value)), True
    if route == "batch":
        base = {"images": list(IMAGES[:2]), "min_size": 12}
        value = draw(st.one_of(*[json_objects(base, ("images", *_CONFIG_KEYS))] * 3, json_values()))
        return "POST", "/api/batch/{model}/detect", draw(_body(value)), False
    image = draw(st.sampled_from(IMAGES))
    value = draw(st.one_of(*[json_objects({"image": image}, _RUN_KEYS)] * 3, json_values()))
    if route == "seed":
        return "POST", "/api/run/{model}/infer/bytes", draw(_body(value)), False
    function = draw(st.sampled_from(functions.names(aliases=True)))
    return "POST", f"/api/run/{{model}}/{function}", draw(_body(value)), False


@pytest.mark.timeout(300)
@budget(900)
@given(requests(), st.booleans())
def test_any_json_body_gets_a_2xx_or_a_4xx_problem(
    app_client: tuple[TestClient, str, str],
    request: tuple[str, str, bytes, bool],
    own_model: bool,
) -> None:
    client, model_id, admin_key = app_client
    method, template, body, admin = request
    path = template.format(id=model_id, model=model_id if own_model else "mtcnn")
    headers = {"content-type": "application/json"}
    if admin:
        headers["x-api-key"] = admin_key
    response = client.request(method, path, content=body, headers=headers)
    event(f"{template.split('/')[2]}: {response.status_code}")  # --hypothesis-show-statistics
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text[:200]
