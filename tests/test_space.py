"""The search space's decoding never leaves the declared bounds, whatever floating point does."""

import pytest

from leanml.search.space import Dim


@pytest.mark.parametrize(
    "low, high", [(1e-4, 1e-1), (1e-5, 1e-2), (1e-4, 3e-2), (3e-4, 3e-2), (0.1, 0.7)]
)
@pytest.mark.parametrize("log", [True, False])
def test_the_unit_cube_corners_decode_inside_the_bounds(low, high, log):
    dim = Dim("x", "real", low, high, log)
    for u in (0.0, 1.0, -0.5, 1.5, 1 - 1e-16, 1e-16):
        value = dim.from_unit(u)
        assert low <= value <= high, (u, value)
        assert dim.contains(value)
    # the corners land within rounding of the bounds (1e-1 used to decode to 0.10000000000000006)
    assert dim.from_unit(1.0) == pytest.approx(high, rel=1e-12)
    assert dim.from_unit(0.0) == pytest.approx(low, rel=1e-12)
