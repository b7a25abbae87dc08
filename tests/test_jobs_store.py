"""The job queue without a server: claims from several stores on one database are disjoint, a
lost claim is not recorded, leases run out, webhooks back off. Each test that takes
``database_url`` runs on SQLite and on PostgreSQL (where ``FOR UPDATE SKIP LOCKED`` is what
keeps the claims disjoint)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from facefaas.jobs import JobInput, JobStore, NewJob
from facefaas.jobs.webhooks import new_secret, sign, signature_headers, verify
from facefaas.registry.tables import make_engine


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _stores(url: str, tmp_path: Path, n: int, clock: Clock | None = None) -> list[JobStore]:
    kwargs = {"clock": clock} if clock else {}
    return [JobStore(make_engine(url), tmp_path, webhook_retry_seconds=10, **kwargs)
            for _ in range(n)]  # fmt: skip


def _job(store: JobStore, n: int, webhook: str | None = None) -> str:
    job = NewJob("address:test", "mtcnn", "detect", {}, 60, webhook)
    job_id, _, _ = store.create(job, [JobInput(f"http://example.test/{i}") for i in range(n)])
    return job_id


def test_workers_on_one_database_claim_disjoint_items(database_url: str, tmp_path: Path) -> None:
    stores = _stores(database_url, tmp_path, 4)
    job_id = _job(stores[0], 300, webhook="https://hooks.example.test/x")
    claimed: dict[str, list[int]] = {}
    start = threading.Barrier(len(stores))

    def work(name: str, store: JobStore) -> None:
        mine = claimed.setdefault(name, [])
        start.wait()  # all at once: the claims race
        while batch := store.claim(name, 4, 30):
            for item in batch:
                mine.append(item.index)
                assert store.complete(name, item, result={"file": "x"})

    threads = [threading.Thread(target=work, args=(f"w{i}", s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = sorted(i for indexes in claimed.values() for i in indexes)
    assert every == list(range(300))  # each item once, none twice
    assert sum(1 for indexes in claimed.values() if indexes) >= 2  # the work was shared
    status = stores[0].status(job_id)
    assert status["state"] == "done" and status["counts"]["done"] == 300
    due = [store.claim_webhooks(5, 60) for store in stores]
    assert sum(len(d) for d in due) == 1  # the job ended once: one event, claimed once


def test_an_expired_lease_is_claimed_again_and_the_old_claim_is_not_recorded(
    database_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    store, other = _stores(database_url, tmp_path, 2, clock)
    job_id = _job(store, 1)
    (item,) = store.claim("dead", 5, 2)
    assert other.claim("alive", 5, 2) == []  # leased
    clock.now += 3
    (again,) = other.claim("alive", 5, 2)
    assert again.index == item.index and again.attempts == 2
    assert not store.complete("dead", item, result={"file": "late"})
    assert other.complete("alive", again, result={"file": "x"})
    assert store.status(job_id)["state"] == "done"


def test_cancel_and_release(database_url: str, tmp_path: Path) -> None:
    (store,) = _stores(database_url, tmp_path, 1)
    job_id = _job(store, 4, webhook="https://hooks.example.test/x")
    (first,) = store.claim("w", 1, 30)
    store.release("w", [first.id])
    assert store.status(job_id)["counts"]["pending"] == 4
    (first,) = store.claim("w", 1, 30)
    status = store.cancel(job_id)
    assert status["counts"]["cancelled"] == 3
    assert status["state"] == "running"  # until the image already running has finished
    assert status["finished_at"] is None
    assert store.claim_webhooks(5, 60) == []  # no event before the job has ended
    assert store.complete("w", first, result={"file": "x"})  # a running item still finishes
    status = store.status(job_id)
    assert status["state"] == "cancelled" and status["counts"]["done"] == 1
    (event,) = store.claim_webhooks(5, 60)  # one event, sent once the job has ended
    body = json.loads(event.body)
    assert body["type"] == "job.cancelled" and body["data"]["counts"]["done"] == 1


def test_webhook_backoff_then_failure(database_url: str, tmp_path: Path) -> None:
    clock = Clock()
    (store,) = _stores(database_url, tmp_path, 1, clock)
    job_id = _job(store, 1, webhook="https://hooks.example.test/x")
    (item,) = store.claim("w", 1, 30)
    store.complete("w", item, error={"status": 422})
    assert store.status(job_id)["state"] == "failed"
    (due,) = store.claim_webhooks(5, 60)
    assert store.claim_webhooks(5, 60) == []  # claimed
    store.webhook_attempted(due, 500)
    clock.now += 0.5
    assert store.claim_webhooks(5, 60) == []  # backing off (1 s)
    clock.now += 1
    (retry,) = store.claim_webhooks(5, 60)
    assert retry.webhook_id == due.webhook_id and retry.body == due.body
    clock.now += 20  # past webhook_retry_seconds
    store.webhook_attempted(retry, None)
    assert store.status(job_id)["webhook"] == {"state": "failed", "attempts": 2,
                                               "last_status": None}  # fmt: skip


def test_standard_webhooks_signature() -> None:
    secret = new_secret()
    body = b'{"type":"job.completed"}'
    headers = {
        k.lower(): v for k, v in signature_headers(secret, "msg_1", 1700000000, body).items()
    }
    assert headers["webhook-signature"] == sign(secret, "msg_1", 1700000000, body)
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body + b" ")
    # The example of the Standard Webhooks specification.
    example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    payload = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(example, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, payload) == expected


def test_a_job_ends_at_its_last_item_and_fails_only_when_every_item_failed(
    database_url: str, tmp_path: Path
) -> None:
    (store,) = _stores(database_url, tmp_path, 1)
    mixed, all_failed = _job(store, 3), _job(store, 2)
    items = store.claim("w", 10, 30)
    assert [item.job_id for item in items] == [mixed] * 3 + [all_failed] * 2
    # Claiming marks each job running, the second job too (a store marks a job once).
    assert store.status(mixed)["state"] == store.status(all_failed)["state"] == "running"
    first, second, third, fourth, fifth = items
    assert store.complete("w", second, error={"status": 422})
    assert store.complete("w", first, result={"file": "0.json"})
    assert store.status(mixed)["state"] == "running"  # one item still open
    assert store.complete("w", third, error={"status": 422})
    status = store.status(mixed)
    assert status["state"] == "done" and status["counts"]["failed"] == 2
    assert status["finished_at"] is not None
    assert store.complete("w", fourth, error={"status": 422})
    assert store.status(all_failed)["state"] == "running"
    assert store.complete("w", fifth, error={"status": 422})
    assert store.status(all_failed)["state"] == "failed"
    third_job = _job(store, 1)
    (item,) = store.claim("w", 10, 30)
    assert item.job_id == third_job and store.status(third_job)["state"] == "running"


def test_items_of_an_ended_worker_of_this_host_are_given_back_at_once(
    database_url: str, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from facefaas.server.jobs import _HOST, _LIVE, _dead_here

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(ended.stdout)
    killed = f"{_HOST}:{dead_pid}:0000"
    alive = f"{_HOST}:{os.getppid()}:1111"  # the process that started this one still runs
    restarted = f"{_HOST}:{os.getpid()}:2222"  # a restart that got the killed one's pid
    elsewhere = f"another-host:{dead_pid}:3333"  # another machine's processes are not ours
    sibling = f"{_HOST}:{os.getpid()}:4444"  # another app's worker in this very process
    _LIVE.add(sibling)
    try:
        assert [_dead_here(w) for w in (killed, alive, restarted, sibling)] == [
            True, False, True, False
        ]  # fmt: skip
    finally:
        _LIVE.discard(sibling)

    (store,) = _stores(database_url, tmp_path, 1)
    job_id = _job(store, 5)
    for worker in (killed, alive, restarted, elsewhere):
        store.claim(worker, 1, 600)
    assert store.reclaim(f"{_HOST}:", _dead_here) == 2
    again = store.claim("next", 10, 600)
    assert len(again) == 3  # the two given back and the one never claimed
    assert sorted(item.attempts for item in again) == [1, 2, 2]  # the killed attempts count
    assert store.status(job_id)["counts"]["pending"] == 5  # nothing lost, nothing ended
