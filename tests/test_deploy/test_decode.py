"""The torch-free decoding: candidates from the exported NMS map equal the official torch
top-k, and the reference/fast grouping equal the codec's parsers on the same maps."""
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from higherhrnet_plugin.codecs.utils.grouping_common import official_candidates
from higherhrnet_plugin.codecs.utils.grouping_fast import parse_fast
from higherhrnet_plugin.codecs.utils.grouping_reference import parse_reference
from higherhrnet_plugin.deploy import (DeploySettings, decode_maps, parse_reference_from_peaks,
                                       topk_candidates)
from higherhrnet_plugin.deploy.export import nms_peaks, nms_peaks_numpy

K, H, W = 17, 48, 64


def _maps(seed, num_tags=2):
    """Smooth random heatmaps (many local maxima above 0.1, no ties) and noisy tags."""
    rng = np.random.default_rng(seed)
    heatmaps = gaussian_filter(rng.random((K, H, W)), sigma=(0, 1.5, 1.5)).astype(np.float32)
    heatmaps = (heatmaps - heatmaps.min()) / (heatmaps.max() - heatmaps.min())
    tags = rng.normal(0, 0.6, (K, H, W, num_tags)).astype(np.float32)
    return heatmaps.astype(np.float32), tags


def _settings(decode_mode, **options):
    return DeploySettings(input_size=512, num_keypoints=K, flip_test=False,
                          flip_indices=tuple(range(K)), mean=(0, 0, 0), std=(1, 1, 1),
                          swap_channels=False, decode_mode=decode_mode,
                          decode_options=dict(nms_kernel=5, topk=30, **options))


def test_numpy_peaks_equal_the_graphs_nms():
    heatmaps, _ = _maps(0)
    heatmaps[3, 10, 10:12] = 2.0  # a two-pixel plateau: both survive
    expected = nms_peaks(torch.from_numpy(heatmaps)[None], 5)[0].numpy()
    np.testing.assert_array_equal(nms_peaks_numpy(heatmaps, 5), expected)
    assert (expected[3, 10, 10:12] == 2.0).all()


@pytest.mark.parametrize('seed', [0, 1])
def test_topk_candidates_equal_torch_topk(seed):
    heatmaps, tags = _maps(seed)
    peaks = nms_peaks_numpy(heatmaps, 5)
    assert (peaks > 0).sum(axis=(1, 2)).min() > 30  # the top-k cut falls among peaks
    for ours, official in zip(topk_candidates(peaks, tags, 30),
                              official_candidates(heatmaps, tags, 5, 30)):
        assert ours.dtype == official.dtype
        np.testing.assert_array_equal(ours, official)


def test_topk_candidates_order_equal_values_by_pixel_index():
    peaks = np.zeros((1, 6, 8), np.float32)
    peaks[0, 4, 4] = 0.9
    peaks[0, 1, 2] = peaks[0, 1, 1] = peaks[0, 3, 0] = 0.5  # a plateau and a third equal peak
    tags = np.arange(48, dtype=np.float32).reshape(1, 6, 8, 1)
    values, locations, candidate_tags = topk_candidates(peaks, tags, 3)
    assert values.tolist() == [[np.float32(0.9), 0.5, 0.5]]
    # (x, y): the 0.5 at row 1 before row 3, column 1 before column 2; the cut drops (0, 3).
    assert locations.tolist() == [[[4, 4], [1, 1], [2, 1]]]
    assert candidate_tags[0, :, 0].tolist() == [36, 9, 10]
    # More candidates than pixels: every pixel, zeros (suppressed) last by index.
    values, locations, _ = topk_candidates(peaks, tags, 100)
    assert values.shape == (1, 48) and locations[0, 4].tolist() == [0, 0]


@pytest.mark.parametrize('seed', [0, 1])
def test_reference_from_peaks_equals_parse_reference(seed):
    heatmaps, tags = _maps(seed)
    options = dict(detection_threshold=0.3, tag_threshold=1.0)
    ours = parse_reference_from_peaks(heatmaps, tags, nms_peaks_numpy(heatmaps, 5), **options)
    official = parse_reference(heatmaps, tags, **options)
    assert len(official[0]) >= 5  # persons were grouped and refined
    for a, b in zip(ours, official):
        np.testing.assert_array_equal(a, b)


def test_decode_maps_runs_the_settings_parser():
    heatmaps, tags = _maps(2)
    peaks = nms_peaks_numpy(heatmaps, 5)
    options = dict(detection_threshold=0.3, keypoint_order=list(range(K)))
    fast = decode_maps(heatmaps, tags, peaks, _settings('fast', refine_search='full', **options))
    reference = decode_maps(heatmaps, tags, peaks, _settings('reference', **options))
    expected = parse_fast(heatmaps, tags, nms_kernel=5, topk=30, refine_search='full', **options)
    for a, b, c in zip(fast, reference, expected):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)  # no ties: fast (full refine) is the reference
