"""Issue 2, item 7: the demo path shows grain-boundary contrast at D_gb/D = 1e4 and none at 1.

The contrast is the median, over tips within one voxel of a boundary, of the
amplitude divided by the interior amplitude of the same grain (see
validation/gb_contrast.py for why each bound is what it is).
"""

import numpy as np
import pytest

from esmsim_validation import gb_contrast


@pytest.fixture(scope="module")
def maps():
    return gb_contrast.maps(fast=True)


def test_fast_boundaries_are_bright(maps):
    assert gb_contrast.contrast(*maps[1e4]) > gb_contrast.FAST_MIN


def test_neutral_boundaries_are_invisible(maps):
    assert abs(gb_contrast.contrast(*maps[1.0]) - 1) < gb_contrast.NEUTRAL_TOL
    assert abs(gb_contrast.contrast(*maps["iso"]) - 1) < gb_contrast.ISO_TOL


def test_ground_truth_is_in_the_dataset(maps):
    ds = maps[1e4][0]
    for name in ("grain_id", "boundary_distance", "c_axis_inclination", "D_zz", "grain_labels", "boundary_mask",
                 "quaternion", "euler_bunge"):
        assert name in ds
    assert ds["amplitude"].attrs["units"] == "m/V"
    # boundary table: every adjacent pair once, areas add up to the boundary area of the film
    pairs = ds["boundary_grains"].values
    assert len({tuple(p) for p in pairs}) == len(pairs) and np.all(pairs[:, 0] < pairs[:, 1])
    assert np.all(ds["boundary_area"].values > 0)
    mis = np.degrees(ds["boundary_misorientation"].values)
    assert np.all((mis >= 0) & (mis <= 104.5))  # trigonal (32) maximum disorientation
    assert "out of the sample" in ds.attrs["sign_convention"]
