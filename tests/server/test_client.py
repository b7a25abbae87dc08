"""`facefaas.Client` against a live server: library types back, errors as facefaas.errors."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facefaas import errors
from facefaas.client import Client
from facefaas.faces import Faces

from .conftest import LiveServer, MiB, ServerFactory

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def client(server: LiveServer) -> Iterator[Client]:
    with Client(server.url) as client:
        yield client


def test_detect_gives_the_same_faces_as_the_library(client: Client, hopper: bytes) -> None:
    from facefaas.detector import Detector

    remote = client.detect(hopper)
    local = Detector()(hopper)
    assert isinstance(remote, Faces) and len(remote) == len(local) == 1
    np.testing.assert_allclose(remote.boxes, local.boxes, atol=0.01)
    np.testing.assert_allclose(remote.scores, local.scores, atol=1e-5)


def test_detect_takes_paths_arrays_and_pil_images(
    client: Client, hopper: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "h.jpg"
    path.write_bytes(hopper)
    pil = Image.open(io.BytesIO(hopper))
    with open(path, "rb") as file:
        for image in (path, str(path), pil, np.asarray(pil.convert("RGB")), file):
            assert len(client.detect(image, min_size=20, thresholds=[0.6, 0.7, 0.7])) == 1


def test_detect_batch_and_pictures(client: Client, hopper: bytes, blank_png: bytes) -> None:
    assert [len(f) for f in client.detect_batch([hopper, blank_png])] == [1, 0]
    jpeg = client.annotate(hopper)
    assert jpeg[:2] == b"\xff\xd8"
    png = client.anonymize(hopper, method="pixelate", format="png")
    assert Image.open(io.BytesIO(png)).size == (128, 128)
    chips = client.crops(hopper, size=32)
    assert [Image.open(io.BytesIO(c)).size for c in chips] == [(32, 32)]


@pytest.mark.parametrize(
    ("call", "error", "attrs"),
    [
        (lambda c, img: c.detect(img, model="nosuchmodel"), errors.ModelNotFoundError, {}),
        (lambda c, img: c.detect(b"junk"), errors.ImageDecodeError, {}),
        (lambda c, img: c.detect(img, min_size=2), errors.ParameterError, {}),
        (lambda c, img: c.detect(b"\xff" * (MiB + 1)), errors.TooLargeError, {"limit": MiB}),
        (lambda c, img: c.delete_model("mtcnn", admin_key="x"), errors.ForbiddenError, {}),
        (lambda c, img: c.detect_batch([img, b"junk"]), errors.ImageDecodeError, {}),
    ],
)
def test_errors_come_back_as_facefaas_errors(
    client: Client, hopper: bytes, call: object, error: type[Exception], attrs: dict[str, object]
) -> None:
    with pytest.raises(error) as raised:
        call(client, hopper)  # type: ignore[operator]
    for name, value in attrs.items():
        assert getattr(raised.value, name) == value
    assert raised.value.status == error.status  # type: ignore[attr-defined]


def test_registry_calls(client: Client, new_model: bytes, hopper: bytes) -> None:
    created = client.upload_model(new_model, name="via-client", private=True)
    model_id = created["model_id"]
    with pytest.raises(errors.AuthError):
        client.detect(hopper, model=model_id)
    with Client(client.url, api_key=created["usage_key"]) as keyed:
        assert len(keyed.detect(hopper, model=model_id)) == 1
    assert client.set_config(model_id, {"max_faces": 1}, admin_key=created["admin_key"]) == {
        "min_size": None, "thresholds": None, "factor": None, "threshold": None,
        "nms_threshold": None, "input_size": None, "max_faces": 1, "score_threshold": None,
    }  # fmt: skip
    with pytest.raises(errors.AuthError):
        client.model(model_id)  # a private model's metadata needs one of its keys
    assert client.model(model_id, key=created["usage_key"])["name"] == "via-client"
    assert model_id not in {m["id"] for m in client.models()}
    assert model_id in {m["id"] for m in client.models(key=created["usage_key"])}
    client.delete_model(model_id, admin_key=created["admin_key"])
    with pytest.raises(errors.ModelNotFoundError):
        client.model(model_id)
    assert client.ready()


def test_rate_limit_error_carries_retry_after(
    start_server: ServerFactory, blank_png: bytes
) -> None:
    limited = start_server(rate_limit="1/minute")
    with Client(limited.url) as client:
        client.detect(blank_png)
        with pytest.raises(errors.RateLimitedError) as raised:
            client.detect(blank_png)
    assert raised.value.retry_after >= 1
