import os

# keep worker processes and BLAS single-threaded in tests (2-core CI machine)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from hypothesis import settings  # noqa: E402

# deterministic property tests: the same examples on every run (CI must not flake on a new random draw)
settings.register_profile("esmsim", derandomize=True, deadline=None)
settings.load_profile("esmsim")

import functools  # noqa: E402

import pytest  # noqa: E402

# pytest.approx's default absolute tolerance (1e-12) would pass any two SI quantities below ~1e-12 (a
# response in m/V, a volume in m^3): comparisons here are relative unless a test names its own ``abs``
_approx = pytest.approx


@functools.wraps(_approx)
def _relative_approx(expected, rel=None, abs=None, nan_ok=False):  # noqa: A002 (pytest's own names)
    if abs is None:
        rel, abs = (1e-6 if rel is None else rel), 0.0
    return _approx(expected, rel=rel, abs=abs, nan_ok=nan_ok)


pytest.approx = _relative_approx
