"""``munkres_pairs`` against the ``munkres`` package it reproduces, on matrices full of ties."""
import numpy as np
import pytest
from munkres import Munkres

from higherhrnet_plugin.codecs.utils.grouping_common import official_costs
from higherhrnet_plugin.codecs.utils.grouping_munkres import munkres_pairs


def package_pairs(costs: np.ndarray) -> np.ndarray:
    return np.array(Munkres().compute(costs.tolist()), np.int64).reshape(-1, 2)


def tied_costs(rng: np.random.Generator, kind: str) -> np.ndarray:
    """Official cost matrices (R x C, 1e10 padding when R > C) with many equal entries."""
    num_rows, num_cols = (int(v) for v in rng.integers(1, 16, 2))
    if kind == 'coarse':  # a few rounded distances, a few values: ties everywhere
        distances = rng.integers(0, 4, (num_rows, num_cols)).astype(float)
        values = rng.choice([0.25, 0.5, 0.75], num_rows)
    elif kind == 'duplicated persons':  # persons with equal tags, as crowded maps make them
        person_tags = rng.integers(0, 5, num_cols) + rng.normal(0, 0.1, num_cols)
        candidate_tags = rng.integers(0, 5, num_rows) + rng.normal(0, 0.1, num_rows)
        distances = np.abs(candidate_tags[:, None] - person_tags[None]) * np.sqrt(2)
        values = rng.choice([1.0, 0.99, 0.5], num_rows)
    else:  # continuous
        distances = np.abs(rng.normal(0, 2, (num_rows, num_cols)))
        values = rng.random(num_rows)
    return official_costs(distances, values.astype(np.float32))


@pytest.mark.parametrize('kind', ['coarse', 'duplicated persons', 'continuous'])
def test_munkres_pairs_equal_the_package(kind):
    rng = np.random.default_rng(0)
    for _ in range(150):
        costs = tied_costs(rng, kind)
        np.testing.assert_array_equal(munkres_pairs(costs), package_pairs(costs))


def test_munkres_pairs_follow_the_package_on_a_tie():
    # Every assignment costs 0: the package keeps its first stars, the diagonal, as we do;
    # a minimum-cost solver may return any permutation.
    costs = np.zeros((3, 3))
    np.testing.assert_array_equal(munkres_pairs(costs), [[0, 0], [1, 1], [2, 2]])
    # A rectangular matrix is padded with zero rows; only pairs inside it are returned.
    costs = np.array([[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(munkres_pairs(costs), package_pairs(costs))
    np.testing.assert_array_equal(munkres_pairs(costs), [[0, 1]])
