"""oncolab.data.labs: flags of single values."""

from __future__ import annotations

import numpy as np
import pytest

from oncolab.data.labs import flag_value


@pytest.mark.parametrize("missing", [None, float("nan"), np.float32("nan"), np.float64("nan")])
def test_a_missing_value_of_any_float_type_is_not_measured(missing):
    assert flag_value("alp", missing) == "not measured"


def test_flags_follow_the_reference_range():
    assert flag_value("alp", 100.0) == "normal"
    assert flag_value("alp", np.float32(100.0)) == "normal"
    assert flag_value("alp", 10_000.0) in ("high", "critical")
    with pytest.raises(ValueError):
        flag_value("alp", -1.0)
