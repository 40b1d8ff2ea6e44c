"""The compiled peak table equals its definition: the official max-pool NMS (-inf padding, a
pixel equal to its window maximum), positive values only, the ``topk`` largest by value then
pixel index; NaN and +Inf anywhere are refused."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from higherhrnet_plugin.codecs.utils.grouping_peaks import scan_peaks


def expected_table(heatmaps: np.ndarray, nms_kernel: int, topk: int):
    """(flat, values) of each map, from torch's max-pool as the official parser runs it."""
    heat = torch.from_numpy(heatmaps)[:, None]
    pooled = F.max_pool2d(heat, nms_kernel, 1, nms_kernel // 2)[:, 0].numpy()
    rows = []
    for k in range(len(heatmaps)):
        flat = np.flatnonzero((heatmaps[k] == pooled[k]) & (heatmaps[k] > 0))
        values = heatmaps[k].reshape(-1)[flat]
        order = np.lexsort((flat, -values))[:topk]
        rows.append((flat[order], values[order]))
    return rows


def assert_table(heatmaps: np.ndarray, nms_kernel: int, topk: int) -> None:
    table = scan_peaks(heatmaps, nms_kernel, topk)
    assert table.flat.shape == table.values.shape == (len(heatmaps), topk)
    for k, (flat, values) in enumerate(expected_table(heatmaps, nms_kernel, topk)):
        count = table.counts[k]
        assert count == len(flat)
        np.testing.assert_array_equal(table.flat[k, :count], flat)
        np.testing.assert_array_equal(table.values[k, :count], values)
        assert not table.flat[k, count:].any() and not table.values[k, count:].any()


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('nms_kernel', [1, 3, 5, 7])
def test_table_equals_the_max_pool_definition(seed, nms_kernel):
    rng = np.random.default_rng(seed)
    # Sizes around the 64-value blocks of the scan (a row ending inside a block, rows
    # narrower than a block, maps smaller than the window), quantised values (plateaus, ties
    # at the top-k cut), negative areas.
    height, width = rng.integers(1, 40), [1, 3, 63, 64, 65, 100, 130][seed]
    heatmaps = np.round(rng.normal(0.05, 0.1, (3, height, width)) * 30) / 30
    topk = int(rng.integers(1, 40))
    assert_table(heatmaps.astype(np.float32), nms_kernel, topk)


def test_table_of_smooth_maps_with_few_peaks():
    # Gaussian tails: many positive pixels, a few peaks, fewer than topk (the cut stays at 0).
    ys, xs = np.mgrid[:70, :150]
    heatmaps = np.zeros((2, 70, 150), np.float32)
    for x, y in [(20, 10), (100, 40), (140, 65)]:
        heatmaps[0] = np.maximum(heatmaps[0], np.exp(-((xs - x)**2 + (ys - y)**2) / 32))
    heatmaps[1, 30, 70:75] = 0.5  # a plateau: all five are peaks
    assert_table(heatmaps, 5, 30)
    table = scan_peaks(heatmaps, 5, 30)
    assert list(table.counts) == [3, 5]


def test_noise_maps_keep_the_topk_largest_peaks():
    heatmaps = np.random.default_rng(0).normal(0, 1, (2, 256, 300)).astype(np.float32)
    assert_table(heatmaps, 5, 30)


@pytest.mark.parametrize('bad', [np.nan, -np.nan, np.inf])
@pytest.mark.parametrize('where', [(0, 0, 0), (1, 20, 130), (1, 39, 149)])
def test_nan_and_inf_anywhere_are_refused(bad, where):
    heatmaps = np.random.default_rng(1).normal(0, 1, (2, 40, 150)).astype(np.float32)
    heatmaps[where] = bad
    heatmaps[0, 5, 5] = np.inf if bad != np.inf else np.nan
    with pytest.raises(ValueError, match=r'heatmaps hold 2 non-finite value\(s\)'):
        scan_peaks(heatmaps, 5, 30)


def test_minus_inf_and_empty_maps():
    heatmaps = np.full((2, 9, 70), -np.inf, np.float32)
    heatmaps[1] = 0  # zero is not positive
    table = scan_peaks(heatmaps, 5, 4)
    assert list(table.counts) == [0, 0]


@pytest.mark.parametrize('nms_kernel, topk', [(4, 30), (0, 30), (5, 0)])
def test_bad_options_are_refused(nms_kernel, topk):
    with pytest.raises(ValueError, match='nms_kernel|topk'):
        scan_peaks(np.zeros((1, 8, 8), np.float32), nms_kernel, topk)


@pytest.mark.parametrize('nms_kernel', [3, 5])
def test_peaks_on_block_edges_and_map_edges(nms_kernel):
    # The scan skips a 64-value block unless a pixel in it is >= its four neighbours: peaks on
    # the first and last column of a block (neighbours in the next block), on the map's edge
    # rows and columns, and plateaus across a block edge must all be found.
    ys, xs = np.mgrid[:9, :192]
    heatmaps = np.zeros((3, 9, 192), np.float32)
    for x, y in [(0, 0), (63, 4), (64, 8), (127, 0), (128, 5), (191, 8)]:
        heatmaps[0] = np.maximum(heatmaps[0], np.exp(-((xs - x)**2 + (ys - y)**2) / 8))
    heatmaps[1, 3, 62:66] = 0.5  # a plateau across the first block edge
    heatmaps[1, 0, 191] = heatmaps[1, 8, 0] = 0.25  # single pixels in the map's corners
    heatmaps[2] = 0.125  # a flat map: every pixel is a peak
    assert_table(heatmaps, nms_kernel, 40)
    counts = scan_peaks(heatmaps, nms_kernel, 40).counts
    assert list(counts) == [6, 6, 40]
