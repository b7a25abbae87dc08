"""The registry and the service on PostgreSQL (the scale-out database), when one can be started.

``postgres_url`` (tests/conftest.py) is a new database of the session's throwaway cluster, made
with ``initdb`` in a temporary folder and listening only on a Unix socket there; the tests skip,
saying why, where PostgreSQL or psycopg is not installed. The registry and jobs suites run on
PostgreSQL too (their ``database_url`` fixture); these are the whole service's checks.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from facefaas.settings import Settings

from .conftest import TEST_LIMITS, LiveServer, upload

pytestmark = pytest.mark.timeout(180)


def test_service_runs_on_postgres(
    postgres_url: str, tmp_path: Path, new_model: bytes, hopper: bytes
) -> None:
    # Stopped here, not at the session's end: the test's database is dropped after it.
    settings = Settings(**{**TEST_LIMITS, "data_dir": tmp_path, "database_url": postgres_url})
    server = LiveServer(settings).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            created = upload(http, new_model)
            model_id = created["model_id"]
            run = http.post(f"/api/run/{model_id}/detect", content=hopper)
            assert run.status_code == 200 and len(run.json()["faces"]) == 1
            assert http.get(f"/api/models/{model_id}").json()["usage"]["calls"] == 1
    finally:
        server.stop()
