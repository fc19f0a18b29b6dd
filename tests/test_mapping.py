"""Layer-map rules, including N not a multiple of M, and index validation."""

import pytest

from tinydistill.errors import TinyDistillError
from tinydistill.mapping import explicit_map, last_map, resolve_map, uniform_map


@pytest.mark.parametrize("m,n", [(4, 12), (6, 12), (3, 6), (2, 6), (4, 4)])
def test_uniform_equals_tinybert_rule_when_n_is_a_multiple_of_m(m, n):
    k = n // m
    pairs = uniform_map(m, n)
    # TinyBERT: hidden j <-> j*k (1-based layer outputs); attention i <-> i*k + k - 1 (0-based attentions)
    assert pairs == [(j, j * k) for j in range(1, m + 1)]
    assert [t - 1 for _, t in pairs] == [i * k + k - 1 for i in range(m)]


def test_uniform_when_n_is_not_a_multiple_of_m_floors_and_ends_on_the_last_layer():
    assert uniform_map(4, 6) == [(1, 1), (2, 3), (3, 4), (4, 6)]  # floor(m * 6 / 4)
    assert uniform_map(5, 12) == [(1, 2), (2, 4), (3, 7), (4, 9), (5, 12)]
    assert uniform_map(6, 4) == [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 4)]  # deeper student: never layer 0


def test_last_and_explicit():
    assert last_map(4, 12) == [(4, 12)]
    assert resolve_map("last", 2, 6) == [(2, 6)]
    assert resolve_map([[1, 2], [2, 6]], 2, 6) == [(1, 2), (2, 6)]


@pytest.mark.parametrize(
    "pairs,msg",
    [
        ([[0, 1]], "student layer 0 is outside 1..2"),
        ([[3, 1]], "student layer 3 is outside 1..2"),
        ([[1, 7]], "teacher layer 7 is outside 1..6"),
        ([[1, 2], [1, 3]], "maps a student layer twice"),
        ([[1, 2, 3]], "must be \\[student_layer, teacher_layer\\]"),
        ([], "empty"),
    ],
)
def test_explicit_map_validation(pairs, msg):
    with pytest.raises(TinyDistillError, match=msg):
        explicit_map(pairs, 2, 6)


def test_unknown_map_name():
    with pytest.raises(TinyDistillError, match="unknown layer_map 'middle'"):
        resolve_map("middle", 2, 6)
