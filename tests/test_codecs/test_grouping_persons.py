"""The compiled grouping: float terms added in numpy's order, the official Munkres assignment,
and persons as the reference groups them."""
import numpy as np
import pytest
from munkres import Munkres
from scipy.optimize import linear_sum_assignment

from higherhrnet_plugin.codecs.utils.grouping_common import official_costs
from higherhrnet_plugin.codecs.utils.grouping_fast import parse_fast
from higherhrnet_plugin.codecs.utils.grouping_persons import (_distances, _mean, assign,
                                                              group_persons)
from higherhrnet_plugin.codecs.utils.grouping_reference import parse_reference

from test_grouping_fast import assert_same_persons, grid_maps  # noqa: E402  (pytest's sys.path)


def spread(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Values of widely ranging magnitudes and both signs: summation order shows in the bits."""
    scale = 10.0**rng.integers(-3, 4, size=shape)
    return (rng.normal(size=shape) * scale).astype(dtype)


@pytest.mark.parametrize('tag_dim', [1, 2, 3, 8, 17])
def test_member_means_equal_numpy_means_of_the_official_lists(tag_dim):
    rng = np.random.default_rng(tag_dim)
    for _ in range(2000):
        members = spread(rng, (int(rng.integers(1, 18)), tag_dim), np.float32)
        official = np.mean(list(members), axis=0)  # the official tag_dict list -> array
        np.testing.assert_array_equal(_mean(members), official)


@pytest.mark.parametrize('tag_dim', [1, 2, 7, 8, 9, 16, 17])
def test_distances_equal_numpy_norms(tag_dim):
    # The official distances: np.linalg.norm over the last axis of float64 differences,
    # whose squares numpy adds pairwise from 8 tag channels on.
    rng = np.random.default_rng(tag_dim)
    tags, centres = spread(rng, (40, tag_dim), np.float32), spread(rng, (30, tag_dim), np.float32)
    official = np.linalg.norm(tags[:, None].astype(np.float64) - centres[None], ord=2, axis=2)
    np.testing.assert_array_equal(_distances(tags, centres), official)


@pytest.mark.parametrize('tag_dim', [1, 8, 9])
def test_fast_equals_reference_with_one_or_many_tag_channels(tag_dim):
    rng = np.random.default_rng(tag_dim)
    for num_persons in (3, 12, 30):
        heatmaps, tags = grid_maps(rng, num_persons, missing=0.2, weak=0.1, tag_dim=tag_dim)
        assert_same_persons(parse_fast(heatmaps, tags, refine_search='full'),
                            parse_reference(heatmaps, tags))


def test_a_start_on_an_existing_key_resets_that_person():
    # Keypoint 0 starts persons keyed 0 and 5. Keypoint 1: a candidate far from both (tag
    # 9) starts a person keyed 9; a second candidate with first tag 5 but a far second tag
    # (5, 20) is not joined (distance 15) and its start re-uses key 5: person 1 now holds
    # keypoint 1 and one member tag, (5, 20).
    flat = np.array([[10, 20], [30, 40]])
    values = np.float32([[0.9, 0.8], [0.7, 0.6]])
    tags = np.float32([[[0, 0], [5, 5]], [[9, 9], [5, 20]]])
    persons = group_persons(flat, values, tags, np.array([2, 2]), [0, 1], 1.0, 30)
    np.testing.assert_array_equal(persons[0], [[10, 0], [20, 40], [0, 30]])
    np.testing.assert_array_equal(persons[1], np.float32([[0.9, 0], [0.8, 0.6], [0, 0.7]]))
    np.testing.assert_array_equal(persons[2][1, 1], [5, 20])


def test_assign_joins_like_munkres():
    rng = np.random.default_rng(0)
    for _ in range(300):
        num_rows, num_cols = rng.integers(1, 9, 2)
        # coarse distances: many equal rounded costs
        distances = rng.integers(0, 8, (num_rows, num_cols)) * 0.45 + rng.uniform(0, .05)
        values = np.sort(rng.uniform(0.1, 1, num_rows).astype(np.float32))[::-1]
        costs = np.round(distances) * 100 - values[:, None]
        if num_rows > num_cols:
            costs = np.concatenate([costs, np.full((num_rows, num_rows - num_cols), 1e10)], 1)
        official = {(r, c)
                    for r, c in Munkres().compute(costs.tolist())
                    if c < num_cols and distances[r, c] < 1}
        rows, cols = assign(distances, values)
        ours = {(r, c) for r, c in zip(rows.tolist(), cols.tolist()) if distances[r, c] < 1}
        assert ours == official


# --- The value term of the official cost: constant only while values differ by < 100 ---


def test_assign_follows_munkres_when_values_outweigh_distances():
    # Two candidates, one person (R > G). Official costs round(D) * 100 - value: row 0
    # (D 0.9, value 150) costs 100 - 150 = -50, row 1 (D 0.4, value 0.5) costs -0.5, so
    # Munkres gives the person row 0; the least total round(D) would give it row 1.
    rows, cols = assign(np.array([[0.9], [0.4]]), np.float32([150, 0.5]))
    assert rows.tolist() == [0] and cols.tolist() == [0]


def test_assign_joins_like_munkres_with_values_spread_beyond_100():
    rng = np.random.default_rng(1)
    differs = 0
    for _ in range(300):
        num_cols = rng.integers(1, 6)
        num_rows = num_cols + rng.integers(1, 4)  # more candidates than persons
        distances = rng.integers(0, 6, (num_rows, num_cols)) * 0.45 + rng.uniform(0, .05)
        values = np.sort(rng.uniform(0.1, 300, num_rows).astype(np.float32))[::-1]
        official = joined(Munkres().compute(official_costs(distances, values).tolist()),
                          distances)
        assert joined(zip(*assign(distances, values)), distances) == official
        rounded = np.zeros((num_rows, num_rows))  # least total round(D), padding costs 0
        rounded[:, :num_cols] = np.round(distances)
        differs += joined(zip(*linear_sum_assignment(rounded)), distances) != official
    assert differs > 0  # the shortcut alone would have been wrong here


def joined(pairs, distances: np.ndarray) -> set:
    """The (row, column) pairs that join: a real column and a distance below 1."""
    return {(int(r), int(c))
            for r, c in pairs
            if c < distances.shape[1] and distances[r, c] < 1}


def test_fast_equals_reference_when_values_outweigh_distances():
    # Keypoint 0 starts person A (tag 0). Keypoint 1 has two candidates: value 150 with tag
    # 0.9 and value 0.5 with tag 0.4. Officially the first joins A (see above) and the
    # second starts a person keyed 0.4.
    heatmaps = np.zeros((2, 8, 12), np.float32)
    tags = np.zeros((2, 8, 12, 1), np.float32)
    for k, x, y, value, tag in [(0, 1, 1, 1.0, 0.0), (1, 2, 5, 150.0, 0.9),
                                (1, 9, 5, 0.5, 0.4)]:
        heatmaps[k, y, x], tags[k, y, x] = value, tag
    reference = parse_reference(heatmaps, tags, refine=False)
    np.testing.assert_array_equal(reference[1], np.float32([[1.0, 150.0], [0, 0.5]]))
    for got, want in zip(parse_fast(heatmaps, tags, refine=False), reference):
        np.testing.assert_array_equal(got, want)
