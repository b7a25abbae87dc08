"""The registry as a library: ids, keys, store containment, crash consistency, the CLI commands.

The tests that take ``registry`` run on each database (``database_url``: SQLite, PostgreSQL).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from facefaas.errors import (
    AuthError,
    ForbiddenError,
    ModelConflictError,
    ModelNotFoundError,
)
from facefaas.models.manifest import ModelManifest
from facefaas.models.weights import MtcnnWeights
from facefaas.registry import ModelStore, Registry, check_model_id
from facefaas.registry import keys as keymod

from .conftest import nudged


@pytest.fixture
def registry(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    registry = Registry.open(tmp_path / "data", database_url)
    yield registry
    registry.close()


@pytest.fixture
def sqlite_registry(tmp_path: Path) -> Iterator[Registry]:
    """SQLite only: where bundles are also in the database (PostgreSQL), a folder removed by
    hand is fetched again rather than missing (registry/blobs.py has tests of its own)."""
    registry = Registry.open(tmp_path / "data")
    yield registry
    registry.close()


def test_a_model_is_created_configured_used_listed_and_deleted(
    registry: Registry, weights: tuple[MtcnnWeights, ModelManifest]
) -> None:
    w, manifest = nudged(weights[0], 10), weights[1]
    created = registry.create(w, manifest, source_format="t", private=True)
    model_id = created.record.id
    twin = registry.create(w, manifest, source_format="t").record.id
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


def test_builtin_model_is_registered_and_read_only(registry: Registry) -> None:
    record = registry.get("mtcnn")
    assert record.builtin and not record.private and record.admin_key_hash is None
    with pytest.raises(ModelConflictError):
        registry.delete("mtcnn")


def test_ids_are_random_and_say_nothing_about_the_weights(
    tmp_path: Path, weights: tuple[MtcnnWeights, ModelManifest]
) -> None:
    w, manifest = nudged(weights[0], 1), weights[1]
    records = []
    for name in ("a", "b"):
        registry = Registry.open(tmp_path / name)
        records.append(registry.create(w, manifest, source_format="test").record)
        registry.close()
    assert records[0].sha256 == records[1].sha256 == w.digest()
    assert records[0].id != records[1].id
    assert all(re.fullmatch(r"[0-9a-f]{16}", r.id) and r.id not in r.sha256 for r in records)


def test_the_same_weights_uploaded_twice_are_two_models_sharing_one_folder(
    registry: Registry, weights: tuple[MtcnnWeights, ModelManifest]
) -> None:
    w = nudged(weights[0], 2)
    first = registry.create(w, weights[1], source_format="test")
    second = registry.create(w, weights[1], source_format="test")
    assert first.record.id != second.record.id and first.admin_key != second.admin_key
    registry.delete(first.record.id)
    assert registry.bundle_path(second.record).is_dir()  # still used: kept


def test_keys_are_stored_hashed_and_checked(
    registry: Registry, weights: tuple[MtcnnWeights, ModelManifest]
) -> None:
    created = registry.create(nudged(weights[0], 3), weights[1], source_format="t", private=True)
    record = created.record
    assert created.admin_key and created.usage_key
    assert record.admin_key_hash == keymod.hash_key(created.admin_key) != created.admin_key
    assert keymod.key_matches(created.usage_key, record.usage_key_hash)
    assert not keymod.key_matches(created.usage_key, record.admin_key_hash)
    assert not keymod.key_matches(None, record.admin_key_hash)
    keymod.authorize([created.usage_key], [record.usage_key_hash], "run")
    with pytest.raises(ForbiddenError):
        keymod.authorize(["wrong"], [record.usage_key_hash], "run")
    with pytest.raises(AuthError) as missing:
        keymod.authorize([], [record.usage_key_hash], "run")
    assert missing.value.status == 401
    with registry.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT * FROM models").fetchall()
    assert created.admin_key not in repr(stored) and created.usage_key not in repr(stored)


def test_replace_and_delete_keep_the_store_in_step(
    registry: Registry, weights: tuple[MtcnnWeights, ModelManifest]
) -> None:
    first, second = nudged(weights[0], 4), nudged(weights[0], 5)
    model_id = registry.create(first, weights[1], source_format="t").record.id
    record = registry.replace(model_id, second, weights[1], source_format="t2", name="v2")
    assert (record.id, record.sha256, record.name) == (model_id, second.digest(), "v2")
    assert registry.store.digests() == {second.digest()}
    registry.delete(model_id)
    assert registry.store.digests() == set()
    with pytest.raises(ModelNotFoundError):
        registry.get(model_id)


def test_reconcile_removes_what_no_row_uses_and_reports_rows_without_files(
    sqlite_registry: Registry, weights: tuple[MtcnnWeights, ModelManifest]
) -> None:
    registry = sqlite_registry
    kept = registry.create(nudged(weights[0], 6), weights[1], source_format="t").record
    gone = registry.create(nudged(weights[0], 7), weights[1], source_format="t").record
    root = registry.store.root
    (root / ".half-written").mkdir()
    (root / ("e" * 64)).mkdir()
    (root / "stray.txt").write_text("x")
    registry.store.remove(gone.sha256)  # as if someone deleted the folder by hand
    result = registry.reconcile()
    assert sorted(result.removed) == sorted([".half-written", "e" * 64, "stray.txt"])
    assert result.missing == [gone.id]
    assert registry.store.digests() == {kept.sha256}
    with pytest.raises(ModelNotFoundError, match="missing"):
        registry.bundle_path(registry.get(gone.id))


@pytest.mark.parametrize("bad", ["../etc", "A" * 64, "abc", "0" * 63 + "/", ""])
def test_store_refuses_paths_that_are_not_digests(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ModelNotFoundError):
        ModelStore(tmp_path).path(bad)


@pytest.mark.parametrize(
    ("model_id", "ok"),
    [("mtcnn", True), ("0123456789abcdef", True), ("a.b-c_d", True), ("../x", False),
     ("UPPER", False), ("", False), ("a" * 65, False), ("-lead", False), ("a/b", False)],
)  # fmt: skip
def test_model_ids_are_parsed_strictly(model_id: str, ok: bool) -> None:
    if ok:
        assert check_model_id(model_id) == model_id
    else:
        with pytest.raises(ModelNotFoundError):
            check_model_id(model_id)


def test_usage_counters_add_up(
    registry: Registry, weights: tuple[MtcnnWeights, ModelManifest]
) -> None:
    model_id = registry.create(nudged(weights[0], 8), weights[1], source_format="t").record.id
    registry.record_usage(model_id, calls=2, faces=5, errors=1, latency_ms=30.0)
    registry.record_usage(model_id, calls=1, faces=1, errors=0, latency_ms=15.0)
    usage = registry.get(model_id).usage
    assert (usage.calls, usage.faces, usage.errors) == (3, 6, 1)
    assert usage.mean_latency_ms == pytest.approx(15.0)
    assert usage.last_used_at is not None and usage.last_used_at.tzinfo is not None


def test_cli_lists_and_removes_models(
    tmp_path: Path, weights: tuple[MtcnnWeights, ModelManifest]
) -> None:
    from facefaas.cli.registry import list_models, remove_models

    data = tmp_path / "data"
    registry = Registry.open(data)
    model_id = registry.create(nudged(weights[0], 9), weights[1], source_format="t").record.id
    registry.close()
    runner = CliRunner()
    table = runner.invoke(list_models, ["--data-dir", str(data)])
    assert table.exit_code == 0 and "mtcnn" in table.output and model_id in table.output
    lines = runner.invoke(list_models, ["--data-dir", str(data), "--json"]).output.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["mtcnn", "centerface", model_id]
    refused = runner.invoke(remove_models, [model_id, "--data-dir", str(data)], input="n\n")
    assert refused.exit_code == 0 and "removed" not in refused.output
    removed = runner.invoke(remove_models, [model_id, "--data-dir", str(data), "--yes"])
    assert removed.exit_code == 0 and f"removed {model_id}" in removed.output
    missing = runner.invoke(remove_models, ["nosuch", "--data-dir", str(data), "-y"])
    assert missing.exit_code != 0 and "no model" in missing.output
    assert model_id not in runner.invoke(list_models, ["--data-dir", str(data)]).output
