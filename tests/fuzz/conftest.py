"""Hypothesis settings of the fuzz targets: bounded and reproducible in CI, longer by hand.

By default every target runs a fixed number of examples, derandomized (the same inputs on every
run, so CI is reproducible), without an example database (nothing is written outside tmp).
``FACEFAAS_FUZZ_EXAMPLES=N`` runs ``N`` examples per target with random seeds instead, for
exploration by hand; a failure prints the ``@reproduce_failure`` blob that replays it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from fuzz.mutate import EXPLORE_ENV

_COMMON = {
    "database": None,
    "deadline": None,  # one slow input is not a finding; a wall-clock timeout guards hangs
    "print_blob": True,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
        HealthCheck.differing_executors,
    ],
}
settings.register_profile("facefaas-ci", derandomize=True, **_COMMON)
settings.register_profile("facefaas-explore", derandomize=False, **_COMMON)
settings.load_profile("facefaas-explore" if os.environ.get(EXPLORE_ENV) else "facefaas-ci")
