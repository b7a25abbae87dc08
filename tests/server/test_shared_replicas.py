"""Two replicas on one PostgreSQL database, each with its own data folder (two machines): what
one is given, the other serves at once, from the files in the database (``shared_files``).

Each test starts two real servers on loopback ports; the database is the session's throwaway
PostgreSQL (``postgres_url``), skipped, saying why, where it cannot be started.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from facefaas.detector import Detector
from facefaas.registry.blobs import blobs

from .conftest import LiveServer, ServerFactory, upload

pytestmark = pytest.mark.timeout(240)

_REPLICA: dict[str, Any] = {"job_poll_interval": 0.05, "job_sweep_interval": 0.2}


Replicas = Callable[..., tuple[LiveServer, LiveServer]]


@pytest.fixture
def replicas(start_server: ServerFactory, postgres_url: str, tmp_path: Path) -> Iterator[Replicas]:
    """``replicas(**a_settings)``: servers A and B on this test's database, data folders
    ``tmp_path/a`` and ``tmp_path/b``; stopped when the test ends (before its database goes)."""
    started: list[LiveServer] = []

    def start(**a_settings: Any) -> tuple[LiveServer, LiveServer]:
        for name, extra in (("a", a_settings), ("b", {})):
            started.append(
                start_server(
                    database_url=postgres_url, data_dir=tmp_path / name, **_REPLICA, **extra
                )
            )
        return started[0], started[1]

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def _shifted_model(shift: float) -> bytes:
    """A bundle zip of the built-in weights with O-Net's box regression shifted by ``shift``:
    every box moves, so two shifts give two visibly different answers."""
    from facefaas.models.builtin import builtin_path
    from facefaas.models.bundle import read_bundle
    from facefaas.models.export import bundle_zip
    from facefaas.models.weights import MtcnnWeights

    folder = builtin_path("mtcnn")
    assert folder is not None
    bundle = read_bundle(folder)
    weights = bundle.weights()
    onet = dict(weights.onet)
    onet["fc6_2.bias"] = onet["fc6_2.bias"] + np.float32(shift)
    shifted = MtcnnWeights(pnet=dict(weights.pnet), rnet=dict(weights.rnet), onet=onet)
    return bundle_zip(shifted, bundle.manifest)


def _library_faces(model: bytes, image: bytes, tmp_path: Path) -> list[dict[str, Any]]:
    """What the library finds in ``image`` with the bundle zip ``model``."""
    path = tmp_path / f"model-{len(list(tmp_path.glob('model-*')))}.zip"
    path.write_bytes(model)
    with Detector(str(path)) as detector:
        faces: list[dict[str, Any]] = detector(image).to_dict()["faces"]
    return faces


def _faces(result: dict[str, Any]) -> dict[str, Any]:
    """The part of a detect answer the library's ``Faces.to_dict`` gives (the rest is timings
    and echoes of the request)."""
    assert result["model_id"] == "mtcnn"
    return {key: result[key] for key in ("width", "height", "faces")}


def _detect(server: LiveServer, model_id: str, image: bytes) -> httpx.Response:
    return httpx.post(f"{server.url}/api/run/{model_id}/detect", content=image, timeout=60)


def _model_blobs(server: LiveServer, digest: str) -> set[str]:
    with server.service.registry.engine.connect() as conn:
        query = sa.select(blobs.c.name).where(blobs.c.owner == digest)
        return set(conn.execute(query).scalars())


def test_a_model_uploaded_replaced_and_deleted_through_one_replica_reaches_the_other_at_once(
    replicas: Replicas, tmp_path: Path, solvay: bytes
) -> None:
    a, b = replicas()
    old, new = _shifted_model(0.01), _shifted_model(0.02)
    old_faces = _library_faces(old, solvay, tmp_path)
    new_faces = _library_faces(new, solvay, tmp_path)
    assert old_faces != new_faces  # else the replacement could not be seen

    with httpx.Client(base_url=a.url, timeout=60) as http:
        created = upload(http, old)
    model_id, admin = created["model_id"], {"Authorization": f"Bearer {created['admin_key']}"}
    digest = a.service.registry.get(model_id).sha256
    assert not (tmp_path / "b" / "models" / digest).exists()  # B has never seen the files

    first = _detect(b, model_id, solvay)  # at once: no wait, no retry
    assert first.status_code == 200, first.text
    assert first.json()["faces"] == old_faces
    cached = tmp_path / "b" / "models" / digest  # B's cache of the database's copy
    assert sorted(p.name for p in cached.iterdir()) == sorted(_model_blobs(a, digest))
    assert {oct(p.stat().st_mode & 0o777) for p in cached.iterdir()} == {"0o600"}

    replaced = httpx.put(
        f"{a.url}/api/models/{model_id}", files={"file": ("model.zip", new)}, headers=admin,
        timeout=60,
    )  # fmt: skip
    assert replaced.status_code == 200, replaced.text
    after = _detect(b, model_id, solvay)  # B's next request: the new weights
    assert after.status_code == 200 and after.json()["faces"] == new_faces
    assert _model_blobs(a, digest) == set()  # the old weights' files went with their last user
    digest = a.service.registry.get(model_id).sha256
    assert _model_blobs(a, digest)

    deleted = httpx.delete(f"{a.url}/api/models/{model_id}", headers=admin, timeout=30)
    assert deleted.status_code == 204
    gone = _detect(b, model_id, solvay)
    assert gone.status_code == 404, gone.text
    assert _model_blobs(a, digest) == set()


def test_a_job_submitted_through_one_replica_is_run_by_the_other_and_read_back_through_the_first(
    replicas: Replicas, tmp_path: Path, solvay: bytes, hopper: bytes, blank_png: bytes
) -> None:
    a, b = replicas(job_worker=False)
    images = {"solvay.jpg": solvay, "hopper.jpg": hopper, "blank.png": blank_png}
    response = httpx.post(
        f"{a.url}/api/jobs", files=[("file", (name, data)) for name, data in images.items()],
        data={"function": "detect"}, timeout=30,
    )  # fmt: skip
    assert response.status_code == 202, response.text
    job = response.json()
    auth = {"X-Job-Token": job["token"]}
    deadline = time.monotonic() + 120
    while True:
        status = httpx.get(f"{a.url}{job['status_url']}", headers=auth, timeout=30).json()
        if status["state"] not in ("queued", "running") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status["state"] == "done" and status["counts"]["done"] == len(images), status

    with Detector() as detector:
        expected = [detector(data).to_dict() for data in images.values()]
    lines = httpx.get(f"{a.url}{job['results_url']}", headers=auth, timeout=60).text.splitlines()
    assert [_faces(json.loads(line)["result"]) for line in lines] == expected
    archive = httpx.get(f"{a.url}{job['results_url']}?format=zip", headers=auth, timeout=60)
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        files = [json.loads(zipped.read(f"{i}.json")) for i in range(len(images))]
        assert [_faces(result) for result in files] == expected
        assert zipped.read("results.jsonl").decode().splitlines() == lines

    store = a.service.jobs.store
    with store.engine.connect() as conn:
        claimed_by = set(
            conn.execute(sa.text("SELECT claimed_by FROM job_items WHERE job_id = :j"),
                         {"j": job["job_id"]}).scalars()
        )  # fmt: skip
        kept = set(
            conn.execute(sa.select(blobs.c.name).where(blobs.c.owner == job["job_id"])).scalars()
        )
    assert claimed_by == {b.service.jobs.worker_id}  # A's worker is off: B ran every item
    assert kept == {f"inputs/{i}" for i in range(3)} | {f"results/{i}.json" for i in range(3)}
    for folder in (tmp_path / "a", tmp_path / "b"):
        assert not (folder / "jobs").exists()  # nothing of the job on either machine's disk


def test_ephemeral_values_written_through_one_replica_are_read_through_the_other(
    replicas: Replicas,
) -> None:
    a, b = replicas()
    stored = httpx.post(f"{a.url}/api/ephemeral_storage", json={"faces": [1, 2]}, timeout=30)
    assert stored.status_code == 201, stored.text
    key = stored.json()["key"]
    read = httpx.get(f"{b.url}/api/ephemeral_storage/{key}", timeout=30)
    assert read.status_code == 200 and read.json() == {"faces": [1, 2]}
    assert httpx.delete(f"{b.url}/api/ephemeral_storage/{key}", timeout=30).status_code == 204
    assert httpx.get(f"{a.url}/api/ephemeral_storage/{key}", timeout=30).status_code == 404
