"""Shared files on PostgreSQL: what keeping bundles in the database costs.

On a throwaway PostgreSQL cluster (``tests/throwaway_servers.py``: needs initdb/pg_ctl):

1. ``create``: registering a model (the built-in MTCNN's weights, nudged) with the bundle
   published in the database (``shared_files=database``) against the data folder only
   (``shared_files=local``), same database.
2. ``first use``: ``Registry.bundle_path`` on a registry with an empty data folder (another
   machine): the bundle read from the database, every file's SHA-256 and the weights' digest
   checked, written and renamed; against a cached folder (the every-request path).
3. ``detector``: loading a ``Detector`` from the bundle, for scale.

    python benchmarks/shared_files.py            # 10 rounds
    python benchmarks/shared_files.py --rounds 30
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from throwaway_servers import PostgresCluster  # noqa: E402

from facefaas.detector import Detector  # noqa: E402
from facefaas.models.builtin import builtin_path  # noqa: E402
from facefaas.models.bundle import read_bundle  # noqa: E402
from facefaas.models.weights import MtcnnWeights  # noqa: E402
from facefaas.registry import Registry  # noqa: E402


def _ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:7.1f} ms  (min {min(samples) * 1000:.1f})"


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    folder = builtin_path("mtcnn")
    assert folder is not None
    bundle = read_bundle(folder)
    base = bundle.weights()

    def nudged(n: int) -> MtcnnWeights:
        onet = dict(base.onet)
        onet["fc6_2.bias"] = onet["fc6_2.bias"] + np.float32(n * 1e-3)
        return MtcnnWeights(pnet=dict(base.pnet), rnet=dict(base.rnet), onet=onet)

    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    cluster = PostgresCluster().start()
    try:
        url = cluster.url(cluster.new_database())
        tmp = Path(tempfile.mkdtemp(prefix="facefaas-bench-"))
        shared = Registry.open(tmp / "a", url, "database")
        local = Registry.open(tmp / "l", url, "local")
        create = {"database": [], "local": []}
        records = []
        for n in range(args.rounds):
            for name, registry in (("database", shared), ("local", local)):
                weights = nudged(2 * n + (name == "local"))
                create[name].append(
                    _timed(
                        lambda r=registry, w=weights: records.append(  # type: ignore[misc]
                            (r, r.create(w, bundle.manifest, source_format="b").record)
                        )
                    )
                )
        print(f"bundle of {size / 1e6:.2f} MB, PostgreSQL on a Unix socket, {args.rounds} rounds")
        print(f"create, shared_files=database: {_ms(create['database'])}")
        print(f"create, shared_files=local:    {_ms(create['local'])}")
        first, cached, load = [], [], []
        for i, (_registry, record) in enumerate(r for r in records if r[0] is shared):
            other = Registry.open(tmp / f"b{i}", url, "database")
            first.append(_timed(lambda o=other, r=record: o.bundle_path(r)))  # type: ignore[misc]
            cached.append(_timed(lambda o=other, r=record: o.bundle_path(r)))  # type: ignore[misc]
            path = other.bundle_path(record)
            load.append(_timed(lambda p=path: Detector(str(p)).close()))  # type: ignore[misc]
            other.close()
        print(f"first use on another data folder: {_ms(first)}")
        print(f"cached folder (every request):    {_ms(cached)}")
        print(f"Detector load from the folder:    {_ms(load)}")
        shared.close()
        local.close()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
