"""The conformance suite: every registered measure × variant × check.

Generated from the registry metadata; a new measure is covered as soon as it
is registered.  Invariance checks run under hypothesis-drawn seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import repscope
from repscope.testing import ALL_CHECKS, check_measure

CASES = [
    (info.name, variant)
    for info in repscope.list_measures()
    for variant in info.variants
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in p.items()) or 'default'}" for n, p in CASES]

FAST_CHECKS = [c for c in ALL_CHECKS if c not in ("invariances", "non_invariances")]


def _measure(name: str, variant: dict):
    cls = repscope.measure_class(name)
    extra = cls.example_params(48, np.random.default_rng(0))
    return repscope.measure(name, **{**extra, **variant})


@pytest.mark.parametrize(("name", "variant"), CASES, ids=IDS)
@pytest.mark.parametrize("check", FAST_CHECKS)
def test_property(name: str, variant: dict, check: str) -> None:
    report = check_measure(_measure(name, variant), checks=[check], raise_on_failure=False)
    assert report.ok, str(report)


@pytest.mark.parametrize(("name", "variant"), CASES, ids=IDS)
@given(seed=st.integers(0, 2**31 - 1))
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_invariances_both_ways(name: str, variant: dict, seed: int) -> None:
    report = check_measure(
        _measure(name, variant),
        checks=["invariances", "non_invariances"],
        seed=seed,
        raise_on_failure=False,
    )
    assert report.ok, str(report)


def test_registry_is_large_enough() -> None:
    assert len(repscope.list_measures()) >= 3
