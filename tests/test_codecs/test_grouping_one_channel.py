"""One tag channel (no flip test): person tags are numpy means, summed pairwise from 8 tags on.

Persons placed exactly at the boundaries where the order of summation decides: a join at a
tag distance of exactly 1.0, a refine whose rounded distance is exactly 0.5. The fast parser
must equal the reference there, bit for bit and in the same person order.
"""
from typing import Tuple

import numpy as np
import pytest

from higherhrnet_plugin.codecs.utils.grouping_common import default_keypoint_order
from higherhrnet_plugin.codecs.utils.grouping_fast import parse_fast
from higherhrnet_plugin.codecs.utils.grouping_reference import parse_reference
from test_grouping_fast import Maps, grid_maps  # noqa: E402  (pytest's sys.path)


def official_mean(tags: np.ndarray) -> np.float32:
    """The official mean of float32 tags (n, ) with L = 1: ``np.mean`` of a list of (1, )."""
    return np.mean([tags[i:i + 1] for i in range(len(tags))], axis=0)[0]


def sequential_mean(tags: np.ndarray) -> np.float32:
    """float32 running sum / n: what the fast parser computed before it used np.mean."""
    total = np.float32(0)
    for tag in tags:
        total += tag
    return total / np.float32(len(tags))


def split_mean_tags(rng: np.random.Generator, n: int, low: float) -> np.ndarray:
    """n float32 tags in [low, low + 0.4] whose official and sequential means differ.

    About 4 in 10 draws of 8 or more tags do; the search is seeded, so deterministic.
    """
    for _ in range(200):
        tags = (low + 0.4 * rng.random(n)).astype(np.float32)
        if official_mean(tags) != sequential_mean(tags):
            return tags
    raise AssertionError('no list with differing means: numpy summed sequentially')


def one_apart(rng: np.random.Generator, n: int, low: float) -> Tuple[np.ndarray, np.float32]:
    """Tags as :func:`split_mean_tags` and a float32 tag exactly 1.0 from their official
    mean, on the side of the sequential mean (closer to it than 1.0)."""
    for _ in range(50):
        tags = split_mean_tags(rng, n, low)
        mean = official_mean(tags)
        step = np.float32(-1 if sequential_mean(tags) < mean else 1)
        if float(mean + step) - float(mean) == step:  # mean + 1 is not always a float32
            return tags, mean + step
    raise AssertionError('no tag exactly 1.0 from the mean')


def join_boundary_maps(rng: np.random.Generator,
                       num_persons: int,
                       low: float,
                       peak: float = 0.9) -> Maps:
    """Persons whose next candidate is exactly 1.0 from their official mean tag (L = 1).

    Person p: its first n_p (8..16) keypoints in grouping order carry tags in
    [low + 8p, low + 8p + 0.4] whose official mean m_p differs from the sequential one s_p in
    the last bit; keypoint n_p's candidate has tag m_p -+ 1 on the side of s_p. Officially
    D = 1.0 (not < 1): it starts a person; from s_p it would join. Expected: 2 P persons.
    Values are ``peak - 0.01 p`` (``peak - 0.1 - 0.01 p`` for the candidate at distance 1).
    """
    order = default_keypoint_order(17)
    heatmaps = np.zeros((17, 8, 6 * num_persons + 2), np.float32)
    tags = np.zeros((17, 8, 6 * num_persons + 2, 1), np.float32)
    for p in range(num_persons):
        n = int(rng.integers(8, 17))
        member_tags, decider = one_apart(rng, n, low + 8 * p)
        x = 3 + 6 * p
        for k, tag in zip(order[:n], member_tags):
            heatmaps[k, 3, x], tags[k, 3, x] = peak - 0.01 * p, tag
        heatmaps[order[n], 3, x], tags[order[n], 3, x] = peak - 0.1 - 0.01 * p, decider
    return heatmaps, tags


def refine_boundary_maps(rng: np.random.Generator,
                         num_persons: int,
                         low: float,
                         peak: float = 0.9) -> Tuple[Maps, list]:
    """Persons whose refined keypoint is decided by np.round at exactly 0.5 (L = 1).

    Person p has keypoints 0..n_p-1 (tags with differing official and sequential means m_p,
    s_p) and misses keypoint n_p, whose map holds two weak pixels: A (0.05) with tag
    m_p +- 0.5 away from s_p, B (0.03) with tag m_p. Officially A's distance is 0.5,
    np.round(0.5) = 0, and A wins (0.05 > 0.03); from s_p it is 0.5 + 1 ulp, rounds to 1,
    and B would win. Found keypoints have value ``peak - 0.01 p``. Returns the maps and, per
    person, (n_p, A's adjusted position).
    """
    width = 12 * num_persons
    heatmaps = np.zeros((17, 12, width), np.float32)
    tags = np.full((17, 12, width, 1), 1000.0, np.float32)
    winners = []
    for p in range(num_persons):
        n = int(rng.integers(8, 17))
        found_tags = split_mean_tags(rng, n, low + 8 * p)
        mean = official_mean(found_tags)
        away = np.float32(0.5 if sequential_mean(found_tags) < mean else -0.5)
        assert float(mean + away) - float(mean) == away  # exact: the distance is 0.5
        x = 2 + 12 * p
        for k, tag in enumerate(found_tags):
            heatmaps[k, 2, x], tags[k, 2, x] = peak - 0.01 * p, tag
        heatmaps[n, 9, x], tags[n, 9, x] = 0.05, mean + away  # A
        heatmaps[n, 9, x + 6], tags[n, 9, x + 6] = 0.03, mean  # B
        winners.append((n, [x + 0.25, 9.25]))  # tied neighbours: -0.25 on both axes
    return (heatmaps, tags), winners


def side_by_side(*maps: Maps) -> Maps:
    """Maps placed left to right, padded at the bottom with zero heat and tag 1000."""
    height = max(heatmaps.shape[1] for heatmaps, _ in maps)
    padded = [(np.pad(heatmaps, ((0, 0), (0, height - heatmaps.shape[1]), (0, 0))),
               np.pad(tags, ((0, 0), (0, height - tags.shape[1]), (0, 0), (0, 0)),
                      constant_values=1000.0)) for heatmaps, tags in maps]
    return (np.concatenate([h for h, _ in padded], axis=2),
            np.concatenate([t for _, t in padded], axis=2))


@pytest.mark.parametrize('seed', range(4))
def test_fast_equals_reference_at_a_join_distance_of_exactly_one(seed):
    heatmaps, tags = join_boundary_maps(np.random.default_rng(seed), 3, 1.0)
    reference = parse_reference(heatmaps, tags, refine=False)
    assert len(reference[0]) == 6  # every decider started a person
    for got, want in zip(parse_fast(heatmaps, tags, refine=False), reference):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('refine_search', ['full', 'peaks'])
@pytest.mark.parametrize('seed', range(3))
def test_fast_refine_equals_reference_at_a_round_boundary(seed, refine_search):
    (heatmaps, tags), winners = refine_boundary_maps(np.random.default_rng(10 + seed), 3, 1.0)
    reference = parse_reference(heatmaps, tags)
    assert len(reference[0]) == 3
    for person, (n, position) in enumerate(winners):  # A won everywhere
        np.testing.assert_array_equal(reference[0][person, n], position)
        assert reference[1][person, n] == np.float32(0.05)
    for got, want in zip(parse_fast(heatmaps, tags, refine_search=refine_search), reference):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('seed', range(6))
def test_fast_equals_reference_with_one_tag_channel(seed):
    # Without flip test there is one tag channel. Random persons of 8 to 17 joints (missing
    # ones refined, tags near 0..60) beside persons at the join and round boundaries (tags
    # 200 and up): equal keypoints, scores, instance scores and person order. (All values
    # differ: equal ones would leave torch.topk's order open.)
    rng = np.random.default_rng(200 + seed)
    for num_persons in rng.integers(1, 31, 2):
        grid = grid_maps(rng, num_persons, missing=rng.uniform(0, 0.5), weak=0.1, tag_dim=1)
        heatmaps, tags = side_by_side(grid, join_boundary_maps(rng, 2, 201.0, peak=0.95),
                                      refine_boundary_maps(rng, 2, 301.0, peak=0.85)[0])
        reference = parse_reference(heatmaps, tags)
        assert len(reference[0]) >= num_persons + 6
        for got, want in zip(parse_fast(heatmaps, tags, refine_search='full'), reference):
            np.testing.assert_array_equal(got, want)
