"""Shared pieces of the fuzz tests: one CI budget, and outcome counts for the long campaign.

In the test suite every fuzz test runs a bounded, derandomized number of examples
(`fuzz_settings`), so CI time stays fixed and a failure reproduces on rerun. The campaign
(`python bench/fuzz_campaign.py --minutes 30`) feeds the same tests random buffers through
Hypothesis' `fuzz_one_input` for as long as it is given, and reports what each example
recorded with `outcome` (e.g. "asm.ok", "asm.error", "engine.fault", "engine.deadlock")."""

import collections

from hypothesis import HealthCheck, settings

OUTCOMES: collections.Counter = collections.Counter()


def outcome(name: str) -> None:
    """Count one example's outcome, named "<target>.<outcome>"."""
    OUTCOMES[name] += 1


def fuzz_settings(examples: int, **kw):
    """Settings for a fuzz test in CI: `examples` derandomized examples, no deadline (the
    first example may compile the engine), no example database written into the tree."""
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        **kw,
    )
