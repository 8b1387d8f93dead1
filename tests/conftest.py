"""Shared pytest configuration for ``tests/``: the hypothesis profiles (docs/testing.md).

* ``ci`` (the default): derandomized (the same examples on every run, no example database),
  a modest number of examples per property, no deadline (timings on a shared 2-core machine
  are noise). The whole property suite stays within 90 s on 2 cores.
* ``stress`` (opt-in, ``pytest --hypothesis-profile=stress``): 2,000 examples per property,
  randomized, failures saved in the local example database (``.hypothesis/``) and printed with
  a reproduction blob. Every counterexample it finds is kept as an ``@example`` in the test.

``HYPOTHESIS_PROFILE=stress`` in the environment selects a profile as well; the command-line
option wins.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: examples per property in the ``ci`` profile
CI_EXAMPLES = 100
#: examples per property in the ``stress`` profile
STRESS_EXAMPLES = 2000

settings.register_profile(
    "ci",
    max_examples=CI_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "stress",
    max_examples=STRESS_EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
