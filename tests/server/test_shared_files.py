"""Shared files as a library (:mod:`facefaas.registry.blobs`): bundles, job inputs and job
results in the registry's database, so registries and job stores with different data folders
(two machines) read the same files. Tests that take ``database_url`` run on SQLite and on
PostgreSQL; the race between a deletion and an upload of the same weights runs on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from facefaas.errors import JobNotFoundError, ModelNotFoundError
from facefaas.jobs import JobInput, JobStore, NewJob
from facefaas.models.bundle import read_bundle
from facefaas.models.manifest import ModelManifest
from facefaas.models.weights import MtcnnWeights
from facefaas.registry import Registry
from facefaas.registry.blobs import BlobStore, blobs, uses_database
from facefaas.registry.tables import make_engine

from .conftest import nudged

Weights = tuple[MtcnnWeights, ModelManifest]
Opener = Callable[..., Registry]


def _machines(url: str, tmp_path: Path) -> Iterator[Opener]:
    opened: list[Registry] = []

    def open_registry(name: str, shared_files: str = "database") -> Registry:
        registry = Registry.open(tmp_path / name, url, shared_files)  # type: ignore[arg-type]
        opened.append(registry)
        return registry

    try:
        yield open_registry
    finally:
        for registry in opened:
            registry.close()


@pytest.fixture
def machine(database_url: str, tmp_path: Path) -> Iterator[Opener]:
    """``machine("a")``: a registry with shared files on the test's database and a data folder
    of its own, ``tmp_path/a``, as another machine would have (each database backend)."""
    yield from _machines(database_url, tmp_path)


@pytest.fixture
def pg_machine(postgres_url: str, tmp_path: Path) -> Iterator[Opener]:
    """:func:`machine` on PostgreSQL only."""
    yield from _machines(postgres_url, tmp_path)


def _stored(registry: Registry, owner: str) -> dict[str, str]:
    with registry.engine.connect() as conn:
        rows = conn.execute(sa.select(blobs.c.name, blobs.c.kind).where(blobs.c.owner == owner))
        return {name: kind for name, kind in rows}


@pytest.mark.parametrize(
    ("setting", "url", "database"),
    [("auto", None, False), ("auto", "sqlite:////srv/r.sqlite3", False),
     ("auto", "postgresql+psycopg://db/facefaas", True), ("local", "postgresql://db/f", False),
     ("database", None, True), ("database", "sqlite:///r.sqlite3", True)],
)  # fmt: skip
def test_shared_files_go_to_the_database_only_when_asked_or_on_a_database_server(
    setting: str, url: str | None, database: bool
) -> None:
    assert uses_database(setting, url) is database  # type: ignore[arg-type]


def test_the_embedded_default_keeps_its_files_in_the_data_folder(
    tmp_path: Path, weights: Weights
) -> None:
    registry = Registry.open(tmp_path / "data")
    try:
        assert registry.store.blobs is None
        record = registry.create(nudged(weights[0], 1), weights[1], source_format="t").record
        assert registry.bundle_path(record) == tmp_path / "data" / "models" / record.sha256
        assert not sa.inspect(registry.engine).has_table("blobs")
    finally:
        registry.close()


def test_a_bundle_uploaded_on_one_machine_is_materialized_on_another_private_and_equal(
    machine: Opener, weights: Weights
) -> None:
    a, b = machine("a"), machine("b")
    record = a.create(nudged(weights[0], 2), weights[1], source_format="t").record
    assert set(_stored(a, record.sha256).values()) == {"model"}
    assert not b.store.has(record.sha256)
    folder = b.bundle_path(b.get(record.id))
    assert folder == b.store.root / record.sha256
    original = a.bundle_path(record)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in original.iterdir())
    for path in folder.iterdir():
        assert path.read_bytes() == (original / path.name).read_bytes()
        assert path.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    assert read_bundle(folder).weights().digest() == record.sha256


def test_first_uses_at_once_in_one_data_folder_leave_one_complete_folder(
    machine: Opener, weights: Weights
) -> None:
    """Two processes sharing a data folder (``--workers 2``), two threads each, all asking at
    once for a bundle the folder has not got: one folder, complete, and no leftovers."""
    a = machine("a")
    record = a.create(nudged(weights[0], 11), weights[1], source_format="t").record
    readers = [machine("b"), machine("b")]  # one data folder, two registries
    start = threading.Barrier(4)
    paths: list[Path] = []

    def first_use(registry: Registry) -> None:
        start.wait()
        paths.append(registry.bundle_path(registry.get(record.id)))

    threads = [threading.Thread(target=first_use, args=(r,)) for r in readers * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(paths) == 4 and set(paths) == {readers[0].store.root / record.sha256}
    assert [p.name for p in readers[0].store.root.iterdir()] == [record.sha256]
    assert read_bundle(paths[0]).weights().digest() == record.sha256


@pytest.mark.parametrize("substitute", ["garbage", "another-models-network"])
def test_a_damaged_shared_copy_reads_as_missing_never_as_other_weights(
    machine: Opener, weights: Weights, substitute: str
) -> None:
    """Bytes that do not match their stored SHA-256, or another model's O-Net stored with its
    own SHA-256 (a consistent substitution): both are refused, the second by the weights'
    digest computed again."""
    a, c = machine("a"), machine("c")
    record = a.create(nudged(weights[0], 3), weights[1], source_format="t").record
    values: dict[str, object] = {"data": b"not the weights"}
    if substitute == "another-models-network":
        other = a.create(nudged(weights[0], 30), weights[1], source_format="t").record
        data = (a.bundle_path(other) / "onet.onnx").read_bytes()
        assert data != (a.bundle_path(record) / "onet.onnx").read_bytes()
        values = {"data": data, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    with a.engine.begin() as conn:
        conn.execute(
            blobs.update()
            .where(blobs.c.owner == record.sha256, blobs.c.name == "onet.onnx")
            .values(**values)
        )
    with pytest.raises(ModelNotFoundError, match="missing"):
        c.bundle_path(c.get(record.id))
    assert list(c.store.root.iterdir()) == []  # no folder, not even a temporary one


def test_a_removed_cache_folder_is_fetched_again_and_reconcile_finds_nothing_missing(
    machine: Opener, weights: Weights
) -> None:
    a = machine("a")
    record = a.create(nudged(weights[0], 4), weights[1], source_format="t").record
    a.store.remove(record.sha256)  # the cache emptied by hand: the database still has it
    assert a.reconcile().missing == []
    assert a.store.digests() == set()  # reconcile does not download every model
    assert a.bundle_path(record).is_dir()  # its first use does
    assert a.store.digests() == {record.sha256}


def test_models_sharing_weights_share_one_copy_until_the_last_is_deleted(
    machine: Opener, weights: Weights
) -> None:
    a, b = machine("a"), machine("b")
    w = nudged(weights[0], 5)
    first = a.create(w, weights[1], source_format="t").record
    second = b.create(w, weights[1], source_format="t").record
    names = set(_stored(a, first.sha256))
    assert names == {"pnet.onnx", "rnet.onnx", "onet.onnx", "manifest.json"}
    a.delete(first.id)
    assert set(_stored(a, first.sha256)) == names  # still used by the second
    b.delete(second.id)
    assert _stored(a, first.sha256) == {}
    assert not b.store.has(second.sha256)


def test_replacing_a_model_publishes_the_new_weights_and_drops_the_old(
    machine: Opener, weights: Weights
) -> None:
    a, b = machine("a"), machine("b")
    old, new = nudged(weights[0], 6), nudged(weights[0], 7)
    model_id = a.create(old, weights[1], source_format="t").record.id
    assert b.bundle_path(b.get(model_id)).name == old.digest()
    a.replace(model_id, new, weights[1], source_format="t")
    assert _stored(a, old.digest()) == {}
    assert b.bundle_path(b.get(model_id)).name == new.digest()


def test_switching_a_registry_to_shared_files_copies_its_bundles_into_the_database(
    machine: Opener, weights: Weights
) -> None:
    local = machine("a", "local")
    record = local.create(nudged(weights[0], 8), weights[1], source_format="t").record
    assert not sa.inspect(local.engine).has_table("blobs")
    local.close()
    shared = machine("a")
    assert shared.reconcile().missing == []
    assert set(_stored(shared, record.sha256)) == {
        "pnet.onnx", "rnet.onnx", "onet.onnx", "manifest.json"
    }  # fmt: skip
    other = machine("b")
    assert other.bundle_path(other.get(record.id)).is_dir()


def test_a_deletion_racing_an_upload_of_the_same_weights_never_strands_the_upload(
    pg_machine: Opener, weights: Weights
) -> None:
    """A deletes the last model of some weights while B (another data folder: the file lock
    does not reach it) uploads the same weights, B's commit coming between A's count of the
    weights' users and A's deletion of their blobs: B waits on the blobs' row lock, so B's model
    keeps its files. (Without the lock, B commits in the pause and A deletes B's files.)"""
    a, b, reader = pg_machine("a"), pg_machine("b"), pg_machine("reader")
    w = nudged(weights[0], 9)
    doomed = a.create(w, weights[1], source_format="t").record.id
    counted, uploaded = threading.Event(), threading.Event()

    def pause_before_deleting_blobs(_conn: object, _cursor: object, statement: str,
                                    *_: object) -> None:  # fmt: skip
        if statement.startswith("DELETE FROM blobs"):
            counted.set()
            uploaded.wait(timeout=1.5)

    sa.event.listen(a.engine, "before_cursor_execute", pause_before_deleting_blobs)
    deleter = threading.Thread(target=a.delete, args=(doomed,))
    deleter.start()
    try:
        assert counted.wait(timeout=30)
        survivor = b.create(w, weights[1], source_format="t").record
    finally:
        uploaded.set()
        deleter.join()
    assert set(_stored(reader, survivor.sha256)) == {
        "pnet.onnx", "rnet.onnx", "onet.onnx", "manifest.json"
    }  # fmt: skip
    assert reader.bundle_path(reader.get(survivor.id)).is_dir()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_jobs_inputs_and_results_are_blobs_that_go_with_the_job(
    database_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    engine = make_engine(database_url)
    shared = BlobStore(engine, clock=clock)
    submitter = JobStore(engine, tmp_path / "a", clock=clock, blobs=shared)
    worker = JobStore(engine, tmp_path / "b", clock=clock, blobs=shared)
    job = NewJob("address:test", "mtcnn", "detect", {}, lifetime=60)
    job_id, _, _ = submitter.create(
        job, [JobInput("photo.jpg", b"jpeg bytes"), JobInput("http://example.test/x.jpg")]
    )
    items = worker.claim("w", 2, 30)
    assert [worker.read_input(item) for item in items] == [b"jpeg bytes", None]
    worker.write_result(job_id, "0.json", b'{"faces": []}')
    worker.write_result(job_id, "0.json", b'{"faces": [1]}')  # a redone item replaces it
    for item in items:
        assert worker.complete("w", item, result={"file": f"{item.index}.json"})
    assert submitter.read_result(job_id, "0.json") == b'{"faces": [1]}'
    assert not (tmp_path / "a" / "jobs").exists() and not (tmp_path / "b" / "jobs").exists()

    clock.now += 61  # the job's lifetime after it ended
    assert worker.sweep() == 1
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(blobs)).scalar_one()
    assert left == 0
    with pytest.raises(JobNotFoundError):
        submitter.read_result(job_id, "0.json")
    worker.write_result(job_id, "1.json", b"{}")  # a worker late for a swept job: not kept
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(blobs)).scalar_one() == 0
    engine.dispose()


def test_a_job_blob_whose_job_was_never_swept_expires_by_itself(
    database_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    engine = make_engine(database_url)
    shared = BlobStore(engine, clock=clock)
    expires = int(clock() * 1000) + 5_000
    with engine.begin() as conn:
        shared.add(conn, "job_gone", {"results/0.json": b"{}"}, kind="job-result",
                   expires_at_ms=expires)  # fmt: skip
        shared.add(conn, "f" * 64, {"manifest.json": b"{}"}, kind="model")
    assert shared.read("job_gone", "results/0.json") == b"{}"
    clock.now += 6
    assert shared.read("job_gone", "results/0.json") is None  # expired: gone for every read
    assert shared.sweep() == 1
    assert shared.names("job_gone") == set() and shared.names("f" * 64) == {"manifest.json"}
    engine.dispose()


def test_blob_bytes_are_stored_uncompressed_on_postgresql(pg_machine: Opener) -> None:
    """ONNX floats do not compress: PostgreSQL is told not to try (3x faster publishing)."""
    registry = pg_machine("a")
    with registry.engine.connect() as conn:
        storage = conn.exec_driver_sql(
            "SELECT attstorage FROM pg_attribute "
            "WHERE attrelid = 'blobs'::regclass AND attname = 'data'"
        ).scalar_one()
    assert storage == "e"  # EXTERNAL: out of line, uncompressed
