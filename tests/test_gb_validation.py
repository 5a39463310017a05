"""The grain-boundary validation cases as tests: Whipple / Le Claire (time domain) and the resolved bicrystal."""

import re

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
    # the random-tip check is reported, not passed yet (open in issue 4: a boundary segment shorter than the
    # 8 nm voxels missing near a tip; docs/transport.md): its worst tip (4.58 % measured) must not grow
    random = [r for r in results if "random tips" in r.case]
    assert len(random) == 1, [r.line() for r in results]
    assert float(re.search(r"max spread ([0-9.]+)%", random[0].measured).group(1)) <= 5.0, random[0].line()
    assert all(r.passed for r in results if r not in random), [r.line() for r in results]


def test_hart_effective_diffusivity_in_regime_A(tmp_path):
    (result,) = gb_hart.run(tmp_path)
    assert result.passed, result.line()
