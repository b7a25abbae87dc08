"""`ModelStore`: model bundles on disk, content-addressed by their weights digest.

Layout: ``<root>/<sha256>/{pnet,rnet,onet}.onnx, manifest.json`` (folders 0700, files 0600:
:mod:`~facefaas.registry.permissions`) where ``sha256`` is
:meth:`~facefaas.models.weights.MtcnnWeights.digest`. Folders are written atomically by
:func:`~facefaas.models.bundle.write_bundle` (a hidden temporary sibling renamed into place), so a
folder either is complete or is not there; hidden leftovers of a killed write are removed by
:meth:`ModelStore.clean`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from facefaas.errors import ModelNotFoundError
from facefaas.models.bundle import MANIFEST_FILE, write_bundle, write_networks
from facefaas.models.manifest import ModelManifest
from facefaas.models.weights import MtcnnWeights
from facefaas.registry.permissions import FOLDER_MODE, private_folder, private_tree

__all__ = ["ModelStore"]

log = logging.getLogger(__name__)

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class ModelStore:
    """Bundle folders under ``root``, one per distinct set of weights."""

    def __init__(self, root: Path) -> None:
        self.root = root
        private_folder(root)
        os.chmod(root, FOLDER_MODE)  # ours alone, even if an older facefaas made it

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
        shutil.rmtree(self.path(sha256), ignore_errors=True)

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
