"""The grain-boundary validation cases as tests: Whipple / Le Claire (time domain) and the resolved bicrystal."""

import pytest

from esmsim_validation import gb_hart, gb_resolved, gb_whipple


def test_slab_engine_reproduces_whipple_and_le_claire(tmp_path):
    results = gb_whipple.run(tmp_path)
    assert [r.case for r in results] == ["gb_whipple[profile]", "le_claire[engine vs exact]",
                                         "le_claire[true delta D_gb]"]
    assert all(r.passed for r in results), [r.line() for r in results]


@pytest.mark.slow
def test_slab_engine_matches_the_resolved_bicrystal(tmp_path):
    results = gb_resolved.run(tmp_path, fast=False)
    assert all(r.passed for r in results), [r.line() for r in results]


def test_hart_effective_diffusivity_in_regime_A(tmp_path):
    (result,) = gb_hart.run(tmp_path)
    assert result.passed, result.line()
