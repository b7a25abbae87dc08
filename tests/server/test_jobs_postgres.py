"""The job queue on PostgreSQL (a throwaway cluster, as in test_postgres.py): workers claiming
at once with ``FOR UPDATE SKIP LOCKED`` get disjoint items; the job ends once; its webhook is
claimed by one worker."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from facefaas.jobs import JobInput, JobStore, NewJob
from facefaas.registry.tables import make_engine

from .test_postgres import postgres_url  # noqa: F401  (the cluster fixture)

pytestmark = pytest.mark.timeout(180)


def test_postgres_workers_claim_disjoint_items(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    stores = [JobStore(make_engine(postgres_url), tmp_path) for _ in range(4)]
    job = NewJob("address:test", "mtcnn", "detect", {}, 60, "https://hooks.example.test/x")
    job_id, _, _ = stores[0].create(job, [JobInput(f"http://example.test/{i}") for i in range(400)])
    claimed: dict[str, list[int]] = {}
    start = threading.Barrier(len(stores))

    def work(name: str, store: JobStore) -> None:
        mine = claimed.setdefault(name, [])
        start.wait()
        while batch := store.claim(name, 3, 30):
            for item in batch:
                mine.append(item.index)
                assert store.complete(name, item, result={"file": "x"})

    threads = [threading.Thread(target=work, args=(f"w{i}", s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = sorted(i for indexes in claimed.values() for i in indexes)
    assert every == list(range(400))
    assert sum(1 for indexes in claimed.values() if indexes) >= 2
    status = stores[0].status(job_id)
    assert status["state"] == "done" and status["counts"]["done"] == 400
    due = [store.claim_webhooks(5, 60) for store in stores]
    assert sum(len(d) for d in due) == 1  # one event, claimed once
