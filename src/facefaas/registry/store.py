"""`ModelStore`: model bundles on disk, content-addressed by their weights digest; with a
:class:`~facefaas.registry.blobs.BlobStore`, shared with every process through the database.

Layout: ``<root>/<sha256>/{pnet,rnet,onet}.onnx, manifest.json`` (folders 0700, files 0600:
:mod:`~facefaas.registry.permissions`) where ``sha256`` is
:meth:`~facefaas.models.weights.MtcnnWeights.digest`. Folders are written atomically by
:func:`~facefaas.models.bundle.write_bundle` (a hidden temporary sibling renamed into place), so a
folder either is complete or is not there; hidden leftovers of a killed write are removed by
:meth:`ModelStore.clean`.

Shared files (``shared_files = "database"``, the default on PostgreSQL): the database is where a
bundle lives, and each process's folder is only its cache. :meth:`ModelStore.publish` copies a
bundle's files into the ``blobs`` table inside the registry's transaction that commits the
model's row, so every replica can read a model the moment it can see it. A process that is asked
for a bundle it has not got (:meth:`ModelStore.fetch`) materializes it from the blobs once:
every file checked against the SHA-256 stored with it and the weights' digest computed again
(:func:`_weights_digest`) against the digest asked for, written into a hidden temporary folder
(files 0600) renamed into place.
Deleting the last model that uses a digest deletes its blobs (:meth:`ModelStore.forget`, in the
transaction that counted the users, under :meth:`ModelStore.lock`); other processes' cached
folders of it are unused from then on (requests read the model's row first) and removed by their
next startup's :meth:`ModelStore.clean`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from sqlalchemy.engine import Connection

from facefaas.errors import ModelNotFoundError
from facefaas.models.bundle import (
    MANIFEST_FILE,
    Bundle,
    read_bundle,
    write_bundle,
    write_networks,
)
from facefaas.models.manifest import ModelManifest
from facefaas.models.weights import MtcnnWeights
from facefaas.registry.blobs import BlobStore
from facefaas.registry.permissions import (
    FILE_MODE,
    FOLDER_MODE,
    private_folder,
    private_tree,
)

__all__ = ["ModelStore"]

log = logging.getLogger(__name__)

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _weights_digest(bundle: Bundle) -> str:
    """The digest a bundle's weights have, computed from its networks as the importers compute
    it: :meth:`MtcnnWeights.digest` for MTCNN, the SHA-256 of the one ONNX file of a
    single-network family (CenterFace); the manifest's claim only for a family with several
    networks other than MTCNN (none yet)."""
    if bundle.manifest.family == "mtcnn":
        return bundle.weights().digest()
    if len(bundle.networks) == 1:
        return hashlib.sha256(next(iter(bundle.networks.values()))).hexdigest()
    return bundle.manifest.weights_sha256


class ModelStore:
    """Bundle folders under ``root``, one per distinct set of weights; with ``blobs``, the
    folders are this process's cache of the bundles in the database (module docstring)."""

    def __init__(self, root: Path, blobs: BlobStore | None = None) -> None:
        self.root = root
        self.blobs = blobs
        private_folder(root)
        os.chmod(root, FOLDER_MODE)  # ours alone, even if an older facefaas made it
        self._fetching: dict[str, threading.Lock] = {}
        self._fetching_lock = threading.Lock()

    def path(self, sha256: str) -> Path:
        """The folder of a digest. Only 64 lowercase hex characters are accepted (containment)."""
        if not _DIGEST.match(sha256):
            raise ModelNotFoundError(f"not a weights digest: {sha256[:80]!r}")
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        return (self.path(sha256) / MANIFEST_FILE).is_file()

    def put(self, model: MtcnnWeights | Mapping[str, bytes], manifest: ModelManifest) -> str:
        """Store a model (if not stored yet) and return its digest: MTCNN weights, or the
        networks of another family as ONNX bytes (their digest is the manifest's)."""
        sha256 = model.digest() if isinstance(model, MtcnnWeights) else manifest.weights_sha256
        if not self.has(sha256):
            folder = self.path(sha256)
            if isinstance(model, MtcnnWeights):
                write_bundle(folder, model, replace(manifest, weights_sha256=sha256))
            else:
                write_networks(folder, model, manifest)
            private_tree(folder)  # the store folder is 0700: nobody else could see it before
        return sha256

    def remove(self, sha256: str) -> None:
        """Remove the local folder (only: see :meth:`forget` for the shared copy)."""
        shutil.rmtree(self.path(sha256), ignore_errors=True)

    # -- shared through the database -------------------------------------------------------

    def lock(self, conn: Connection, sha256: str) -> None:
        """Lock the digest's shared copy until ``conn``'s transaction ends (nothing without
        blobs): its users are counted, and it is published or forgotten, one process at a
        time."""
        if self.blobs is not None:
            self.blobs.lock(conn, sha256)

    def publish(self, conn: Connection, sha256: str) -> None:
        """Copy the local bundle of ``sha256`` into the database in ``conn``'s transaction (the
        one that commits the model's row), unless it is there already; nothing without blobs."""
        if self.blobs is None:
            return
        folder = self.path(sha256)  # checks the digest: the blobs' owner is a digest too
        stored = self.blobs.lock(conn, folder.name)
        files = {
            entry.name: entry.read_bytes()
            for entry in sorted(folder.iterdir())
            if entry.is_file() and entry.name not in stored
        }
        self.blobs.add(conn, sha256, files, kind="model")

    def forget(self, conn: Connection, sha256: str) -> None:
        """Delete the shared copy of ``sha256`` in ``conn``'s transaction (call it under
        :meth:`lock`, once no model uses the digest)."""
        if self.blobs is not None:
            self.blobs.delete(conn, self.path(sha256).name)

    def published(self, sha256: str) -> bool:
        """Whether the database holds the bundle (always False without blobs)."""
        return self.blobs is not None and MANIFEST_FILE in self.blobs.names(sha256)

    def available(self, sha256: str) -> bool:
        """Whether the bundle is here or can be fetched (without fetching it: a startup's
        reconcile must not download every model)."""
        return self.has(sha256) or self.published(sha256)

    def fetch(self, sha256: str) -> Path | None:
        """The bundle folder of ``sha256``, materialized from the database on first use;
        ``None`` when it is neither here nor there (or its shared copy is damaged)."""
        if self.has(sha256):
            return self.path(sha256)
        if self.blobs is None:
            return None
        with self._fetching_lock:
            lock = self._fetching.setdefault(sha256, threading.Lock())
        with lock:  # concurrent first calls for one bundle wait for one download
            if not self.has(sha256):
                self._materialize(self.blobs, sha256)
        with self._fetching_lock:
            self._fetching.pop(sha256, None)
        return self.path(sha256) if self.has(sha256) else None

    def _materialize(self, blobs: BlobStore, sha256: str) -> None:
        folder = self.path(sha256)
        files = blobs.read_owner(sha256)
        if files is None or MANIFEST_FILE not in files:
            return
        tmp = Path(tempfile.mkdtemp(prefix=f".{sha256}.", dir=self.root))  # clean() removes it
        try:
            for name, data in files.items():
                if "/" in name or name.startswith("."):
                    raise ModelNotFoundError(f"a bundle file named {name[:80]!r}")
                fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
            digest = _weights_digest(read_bundle(tmp))
            if digest != sha256:
                raise ModelNotFoundError(f"its weights are {digest[:80]!r}, not the digest's")
            private_tree(tmp)
            try:
                tmp.rename(folder)
            except OSError:  # another process of this data folder renamed its copy first
                if not self.has(sha256):
                    raise
        except Exception as exc:  # ONNX's own errors included: a damaged copy reads as missing
            log.error("model store: the shared copy of %s is unusable: %r", sha256, exc)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if self.has(sha256):
            log.info("model store: materialized %s from the database", sha256)

    def digests(self) -> set[str]:
        """Digests of the complete bundle folders in the store."""
        return {p.name for p in self.root.iterdir() if _DIGEST.match(p.name) and self.has(p.name)}

    def clean(self, keep: set[str]) -> list[str]:
        """Remove every entry that is not a complete folder named in ``keep``; return their names.

        Call it only while no upload is in progress (at startup): a write in progress is a hidden
        temporary folder, which this removes.
        """
        removed = []
        for entry in sorted(self.root.iterdir()):
            if entry.name in keep and self.has(entry.name):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry.name)
        if removed:
            log.warning("model store: removed %d orphaned entries: %s", len(removed), removed)
        return removed
