"""The measurement behind the tolerance defaults compares answers class by class."""
from __future__ import annotations

from tools.goldenset.measure import max_difference


def test_max_difference_over_the_classes_both_answers_hold():
    a = [[[1, 2, 3], [0.5, 0.3, 0.1]], [[4, 5, 6], [0.6, 0.2, 0.1]]]
    b = [[[2, 1, 7], [0.31, 0.49, 0.1]], [[4, 5, 6], [0.6, 0.2, 0.1]]]
    assert abs(max_difference(a, b) - 0.01) < 1e-12
    assert max_difference(a, a) == 0.0
