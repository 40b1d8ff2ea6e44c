"""Hundreds of groups (a network early in training): the fast parser, both refine searches
and the device path give the reference's persons, bit for bit."""
import numpy as np
import pytest
import torch

from higherhrnet_plugin.codecs.utils.grouping_device import parse_fast_tensors
from higherhrnet_plugin.codecs.utils.grouping_fast import parse_fast
from higherhrnet_plugin.codecs.utils.grouping_reference import parse_reference


def many_group_maps(seed: int, size=(48, 64)):
    """Heat above the threshold nearly everywhere (many NMS peaks per map, 30 candidates for
    each of the 17 keypoints) and tags spread over hundreds of units, smooth in places: nearly
    every candidate starts a group, a few join, refine searches are far from any tag."""
    rng = np.random.default_rng(seed)
    height, width = size
    heatmaps = rng.uniform(-0.2, 0.6, (17, height, width)).astype(np.float32)
    coarse = rng.uniform(-300, 300, (17, height // 8, width // 8, 2))
    tags = np.kron(coarse, np.ones((1, 8, 8, 1))) + rng.normal(0, 0.3, (17, height, width, 2))
    return heatmaps, tags.astype(np.float32)


@pytest.mark.parametrize('seed', range(2))
def test_many_groups_equal_the_reference(seed):
    heatmaps, tags = many_group_maps(seed)
    reference = parse_reference(heatmaps, tags)
    assert len(reference[0]) >= 400
    for got, want in zip(parse_fast(heatmaps, tags, refine_search='full'), reference):
        np.testing.assert_array_equal(got, want)
    unrefined = parse_reference(heatmaps, tags, refine=False)
    for got, want in zip(parse_fast(heatmaps, tags, refine=False), unrefined):
        np.testing.assert_array_equal(got, want)
    peaks = parse_fast(heatmaps, tags)  # the peaks refine: grouping and scores as above
    np.testing.assert_array_equal(peaks[2], reference[2])
    (device, ) = parse_fast_tensors(torch.from_numpy(heatmaps)[None], torch.from_numpy(tags)[None])
    for got, want in zip(device, peaks):
        np.testing.assert_array_equal(got, want)
