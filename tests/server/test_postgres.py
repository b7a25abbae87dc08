"""The registry and the service on PostgreSQL (the scale-out database), when one can be started.

A throwaway cluster is made with ``initdb`` in a temporary folder, listening only on a Unix
socket there; the tests skip, saying why, where PostgreSQL or psycopg is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from facefaas.models.builtin import builtin_path
from facefaas.models.bundle import read_bundle
from facefaas.models.manifest import ModelManifest
from facefaas.models.weights import MtcnnWeights
from facefaas.registry import Registry

from .conftest import ServerFactory, upload

pytestmark = pytest.mark.timeout(180)


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg", reason="psycopg (the postgres extra) is not installed")
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL's initdb/pg_ctl are not installed")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running as root without runuser to drop to the postgres user")
    # Not under pytest's tmp folder: that one is private to this user, and the server's isn't us.
    root = Path(tempfile.mkdtemp(prefix="facefaas-postgres-"))
    root.chmod(0o777)
    data, socket_dir = root / "data", root / "sock"
    socket_dir.mkdir()
    socket_dir.chmod(0o777)
    try:
        subprocess.run(
            _as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "facefaas", "--no-sync"]),
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = f"-k {socket_dir} -c listen_addresses='' -p 5433 -c fsync=off"
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-o", options, "-w", "-l",
                          str(root / "log"), "start"]),
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL cluster: {exc}")
    try:
        yield f"postgresql+psycopg://facefaas@/postgres?host={socket_dir}&port=5433"
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _weights(n: int) -> tuple[MtcnnWeights, ModelManifest]:
    folder = builtin_path("mtcnn")
    assert folder is not None
    bundle = read_bundle(folder)
    w = bundle.weights()
    onet = dict(w.onet)
    onet["fc6_3.bias"] = onet["fc6_3.bias"] + np.float32(n * 1e-3)
    return MtcnnWeights(pnet=dict(w.pnet), rnet=dict(w.rnet), onet=onet), bundle.manifest


def test_registry_runs_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "data", postgres_url)
    try:
        assert registry.engine.dialect.name == "postgresql"
        weights, manifest = _weights(1)
        created = registry.create(weights, manifest, source_format="t", private=True)
        model_id = created.record.id
        twin = registry.create(weights, manifest, source_format="t").record.id
        assert twin != model_id
        registry.delete(twin)
        registry.record_usage(model_id, calls=3, faces=4, errors=1, latency_ms=12.0)
        registry.set_config(model_id, {"max_faces": 2, "thresholds": [0.5, 0.6, 0.7]})
        record = registry.get(model_id)
        assert record.private and record.usage.calls == 3 and record.config["max_faces"] == 2
        assert record.created_at.tzinfo is not None
        assert [r.id for r in registry.list()] == ["mtcnn", "centerface", model_id]
        registry.delete(model_id)
        assert [r.id for r in registry.list()] == ["mtcnn", "centerface"]
    finally:
        registry.close()


def test_service_runs_on_postgres(
    postgres_url: str, start_server: ServerFactory, new_model: bytes, hopper: bytes
) -> None:
    server = start_server(database_url=postgres_url)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        created = upload(http, new_model)
        model_id = created["model_id"]
        run = http.post(f"/api/run/{model_id}/detect", content=hopper)
        assert run.status_code == 200 and len(run.json()["faces"]) == 1
        assert http.get(f"/api/models/{model_id}").json()["usage"]["calls"] == 1
