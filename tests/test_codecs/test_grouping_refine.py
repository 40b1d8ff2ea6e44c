"""Refine of the fast parser: the ``'peaks'`` search among the peak table and the exact
full-map search (:mod:`grouping_refine`, :mod:`grouping_refine_search`)."""
import numpy as np
import pytest
import torch

from higherhrnet_plugin.codecs.utils.grouping_candidates import find_candidates
from higherhrnet_plugin.codecs.utils.grouping_fast import parse_fast
from higherhrnet_plugin.codecs.utils.grouping_reference import parse_reference
from higherhrnet_plugin.codecs.utils.grouping_refine import _mean_found_tags, refine_peaks
from higherhrnet_plugin.codecs.utils.grouping_refine_search import RefineSearch

from test_grouping_fast import assert_same_persons, grid_maps  # noqa: E402  (pytest's sys.path)


@pytest.mark.parametrize('scale', [0.02, 0.03, 0.09, 0.11])
def test_refine_peaks_are_the_top_positive_max_pool_peaks(scale):
    # Few peaks above the threshold (stages down to 0 are needed), values on a coarse grid
    # (ties at the top-k cut and plateaus), small maps (many border pixels).
    rng = np.random.default_rng(3)
    heatmaps = np.round(rng.random((6, 13, 17)) * 20).astype(np.float32) / 20 * scale
    heatmaps[1] -= 0.1 * scale  # negative pixels never count
    heatmaps[2, 6, 8] = 1.0  # one peak above the threshold
    heatmaps[5] = 0  # fewer than topk positive peaks: a corner, a plateau, a tiny one
    heatmaps[5, 12, 16], heatmaps[5, 7, 7:9], heatmaps[5, 2, 3] = 0.01, 0.003, 1e-6
    tags = rng.normal(0, 1, (6, 13, 17, 2)).astype(np.float32)
    topk, threshold = 8, 0.1
    candidates = find_candidates(heatmaps, tags, 5, topk, threshold)
    needed = np.array([True, True, True, False, True, True])
    peaks = refine_peaks(heatmaps, tags, needed, 5, topk)
    assert sorted(peaks) == [0, 1, 2, 4, 5]
    heat = torch.from_numpy(heatmaps)[:, None]
    pooled = torch.nn.functional.max_pool2d(heat, 5, 1, 2)[:, 0].numpy()
    for k, found in peaks.items():
        flat = np.flatnonzero((heatmaps[k] == pooled[k]) & (heatmaps[k] > 0))
        values = heatmaps[k].reshape(-1)[flat]
        expected = flat[np.lexsort((flat, -values))][:topk]  # by value, then pixel
        np.testing.assert_array_equal(found.flat, expected)
        np.testing.assert_array_equal(found.values, heatmaps[k].reshape(-1)[expected])
        np.testing.assert_array_equal(found.tags, tags[k].reshape(-1, 2)[expected])


@pytest.mark.parametrize('tag_dim', [1, 2, 3, 8, 9, 17])
def test_refine_search_equals_full_map_argmax(tag_dim):
    rng = np.random.default_rng(tag_dim)
    for trial in range(40):
        height, width = rng.integers(5, 40, 2)
        heatmap = (rng.random((height, width))**6).astype(np.float32)
        if trial % 3 == 0:
            heatmap[heatmap < 0.5] = 0  # exact ties at zero
        if trial % 3 == 1:
            heatmap -= 0.05  # negative values
        tag_map = rng.normal(0, 1.5, (height, width, tag_dim)).astype(np.float32)
        num_persons = rng.integers(1, 6)
        mean_tags = rng.normal(0, 2, (num_persons, tag_dim)).astype(np.float32)
        anchors = [rng.integers(0, height * width, rng.integers(1, 5)) for _ in mean_tags]
        if trial % 4 == 3:
            tag_map *= 3000  # cells of the search grid grow (at most 4 per pixel)
        search = RefineSearch(heatmap, tag_map, 'tags')
        for p, best in enumerate(search.argmax(mean_tags, anchors)):
            # the official expression on the whole map
            distances = ((tag_map - mean_tags[p][None, None, :])**2).sum(axis=2)**0.5
            assert best == np.argmax(heatmap - np.round(distances))


@pytest.mark.parametrize('seed', range(6))
def test_peaks_refine_equals_reference_when_winners_are_peaks(seed):
    # Every missing keypoint keeps a weak bump (0.05, below the threshold) in its person's
    # cell, whose tag is the person's: the full-map winner is that bump, a top-k peak. With
    # the margin no Gaussian tail above 0.05 reaches a neighbour's cell (e^(-36/8) < 0.05),
    # whose slope pixels would otherwise win there (the documented difference).
    rng = np.random.default_rng(100 + seed)
    for num_persons in rng.integers(1, 21, 3):
        heatmaps, tags = grid_maps(rng, num_persons, weak=0.2, margin=6.0)
        reference = parse_reference(heatmaps, tags)
        assert (reference[1] < 0.1).any()  # some keypoints were refined
        assert_same_persons(parse_fast(heatmaps, tags), reference)


def test_peaks_refine_differs_where_the_winner_is_no_peak():
    # Keypoint 0: one peak 0.9 (tag 0) -> person A. Keypoint 1: one peak 0.8 (tag 2), 2 away
    # from A's tag -> person B. Elsewhere the maps are 0 with tag 0.
    # A misses keypoint 1: the full map scores 0.8 - round(2) = -1.2 at the peak and
    # 0 - round(0) = 0 elsewhere, so the official winner is pixel (0, 0), value 0: no fill.
    # 'peaks' only sees the peak and fills it: (6, 6) + 0.5 - 0.25 (tied neighbours), 0.8.
    # B misses keypoint 0: the peak scores 0.9 - round(2) = -1.1, every other pixel
    # 0 - round(2) = -2: both searches fill (1.25, 1.25) with 0.9.
    heatmaps = np.zeros((2, 8, 8), np.float32)
    tags = np.zeros((2, 8, 8, 1), np.float32)
    heatmaps[0, 1, 1], heatmaps[1, 6, 6], tags[1, 6, 6] = 0.9, 0.8, 2.0
    reference = parse_reference(heatmaps, tags)
    full = parse_fast(heatmaps, tags, refine_search='full')
    peaks = parse_fast(heatmaps, tags)
    for got, want in zip(full, reference):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(reference[0], [[[1.25, 1.25], [0, 0]], [[1.25, 1.25],
                                                                         [6.25, 6.25]]])
    np.testing.assert_array_equal(reference[1], np.float32([[0.9, 0], [0.9, 0.8]]))
    np.testing.assert_array_equal(peaks[0], [[[1.25, 1.25], [6.25, 6.25]],
                                             [[1.25, 1.25], [6.25, 6.25]]])
    np.testing.assert_array_equal(peaks[1], np.float32([[0.9, 0.8], [0.9, 0.8]]))
    np.testing.assert_array_equal(peaks[2], reference[2])  # instance scores: before refine


def test_peaks_refine_ties_take_the_first_pixel():
    # Keypoint 1 of person A (tag 0) has two below-threshold peaks of equal value 0.05 and
    # tags 0.4 and -0.4 (both round to 0), far apart: the first in raster order wins, as
    # the official argmax; a third, higher peak with tag 1.6 scores 0.09 - 2 and loses.
    heatmaps = np.zeros((2, 12, 12), np.float32)
    tags = np.zeros((2, 12, 12, 1), np.float32)
    heatmaps[0, 5, 5] = 0.9
    for (y, x), value, tag in [((9, 2), 0.05, -0.4), ((3, 8), 0.05, 0.4), ((0, 0), 0.09, 1.6)]:
        heatmaps[1, y, x], tags[1, y, x] = value, tag
    peaks = parse_fast(heatmaps, tags)
    np.testing.assert_array_equal(peaks[0][0, 1], [8.25, 3.25])
    np.testing.assert_array_equal(peaks[1][0], np.float32([0.9, 0.05]))
    for got, want in zip(peaks, parse_reference(heatmaps, tags)):
        np.testing.assert_array_equal(got, want)


def test_refine_mean_tags_equal_official_list_means():
    # The fast refine averages persons with as many found keypoints in one np.mean over axis
    # 1 of a (P, n, L) array; each row must be the official np.mean of the person's list of
    # found tags in keypoint order. With L = 1 a sequential float32 sum would differ.
    rng = np.random.default_rng(0)
    for tag_dim in (1, 2, 3):
        person_tags = rng.normal(0, 3, (200, 17, tag_dim)).astype(np.float32)
        values = np.where(rng.random((200, 17)) < 0.3, 0, 0.5).astype(np.float32)
        values[np.arange(200), rng.integers(0, 17, 200)] = 0.5  # every person has one
        means = _mean_found_tags(person_tags, values)
        for mean, tags, found in zip(means, person_tags, values > 0):
            np.testing.assert_array_equal(mean, np.mean(list(tags[found]), axis=0))
