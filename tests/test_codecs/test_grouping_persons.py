"""The compiled grouping adds its float terms in numpy's order, and groups as the reference."""
import numpy as np
import pytest

from higherhrnet_plugin.codecs.utils.grouping_fast import parse_fast
from higherhrnet_plugin.codecs.utils.grouping_persons import _distances, _mean, group_persons
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
