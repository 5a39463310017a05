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
    # the random-tip check is reported, not passed yet (open in issue 4; docs/transport.md). Of its 72 tips
    # one is over 3 % (6.99 %: 2 nm beside a boundary, on the other grain's 8 nm pixel); the first 24 are
    # the earlier set, whose two tips beside the 4 nm segment that the 8 nm film lacked (4.58 and 3.65 %)
    # the diagonal faces brought to 1 %: more than one tip over 3 % means something came back
    random = [r for r in results if "random tips" in r.case]
    assert len(random) == 1, [r.line() for r in results]
    assert int(re.search(r"72 random tips: .*?, ([0-9]+) over 3%", random[0].measured).group(1)) <= 1, random[0].line()
    assert float(re.search(r"max spread ([0-9.]+)%", random[0].measured).group(1)) <= 7.5, random[0].line()
    assert all(r.passed for r in results if r not in random), [r.line() for r in results]


def test_hart_effective_diffusivity_in_regime_A(tmp_path):
    (result,) = gb_hart.run(tmp_path)
    assert result.passed, result.line()
