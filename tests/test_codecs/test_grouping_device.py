"""The device path of the fast parser (peak table in torch), run on CPU tensors: it must give
the numpy path's candidates, refine peaks, positions and persons exactly."""
import numpy as np
import pytest
import torch

from higherhrnet_plugin.codecs import MultiLevelAssociativeEmbedding
from higherhrnet_plugin.codecs.utils.grouping_candidates import find_candidates
from higherhrnet_plugin.codecs.utils.grouping_device import (TensorPeaks, parse_fast_tensors,
                                                             peak_table)
from higherhrnet_plugin.codecs.utils.grouping_fast import parse_fast
from higherhrnet_plugin.codecs.utils.grouping_refine import quarter_pixel, refine_peaks

from test_grouping_fast import grid_maps  # noqa: E402  (pytest puts this folder on sys.path)


def random_maps(seed: int, num_keypoints: int = 5, size=(40, 56), tag_dim: int = 2):
    """Random maps with plateaus (quantised values: equal peaks) and negative values."""
    rng = np.random.default_rng(seed)
    heatmaps = (np.round(rng.normal(0.05, 0.1, (num_keypoints, ) + size) * 40) /
                40).astype(np.float32)
    tags = rng.normal(0, 2, (num_keypoints, ) + size + (tag_dim, )).astype(np.float32)
    return heatmaps, tags


def table_source(heatmaps: np.ndarray, tags: np.ndarray, topk: int,
                 threshold: float) -> TensorPeaks:
    table = peak_table(torch.from_numpy(heatmaps)[None], torch.from_numpy(tags)[None], 5, topk)
    return TensorPeaks({name: value[0].numpy()
                        for name, value in table.items()}, heatmaps.shape[2], threshold, tags.size)


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('topk, threshold', [(30, 0.1), (4, 0.1), (30, 0.0)])
def test_peak_table_equals_the_numpy_candidates_and_refine_peaks(seed, topk, threshold):
    heatmaps, tags = random_maps(seed)
    source = table_source(heatmaps, tags, topk, threshold)
    candidates = find_candidates(heatmaps, tags, 5, topk, threshold)
    for ours, want in zip(source.candidates(), candidates):
        for part, expected in zip(ours, want):
            np.testing.assert_array_equal(part, expected)
    needed = np.ones(len(heatmaps), bool)
    want_peaks = refine_peaks(heatmaps, tags, needed, 5, topk)
    ours_peaks = source.peaks(needed)
    assert sorted(ours_peaks) == sorted(want_peaks)
    for k, peaks in want_peaks.items():
        for part, expected in zip(ours_peaks[k], peaks):
            np.testing.assert_array_equal(part, expected)
        ks = np.full(len(peaks.flat), k)
        np.testing.assert_array_equal(source.subpixel(ks, peaks.flat),
                                      quarter_pixel(heatmaps, ks, peaks.flat))


@pytest.mark.parametrize('refine_search', ['peaks', 'full'])
@pytest.mark.parametrize('seed', range(3))
def test_device_path_equals_parse_fast(seed, refine_search):
    rng = np.random.default_rng(seed)
    maps = [random_maps(seed), random_maps(seed + 10)]
    maps.append(grid_maps(rng, 6, missing=0.2, weak=0.2, background=0.02)[:2])
    maps.append(grid_maps(rng, 6, missing=0.2, weak=0.2, background=0.02)[:2])
    for pair in maps[:2], maps[2:]:  # batches of two images of one size
        heatmaps, tags = zip(*pair)
        batch_heatmaps = torch.from_numpy(np.stack(heatmaps))
        batch_tags = torch.from_numpy(np.stack(tags))
        results = parse_fast_tensors(batch_heatmaps, batch_tags, refine_search=refine_search)
        for result, h, t in zip(results, heatmaps, tags):
            for got, want in zip(result, parse_fast(h, t, refine_search=refine_search)):
                np.testing.assert_array_equal(got, want)


def test_device_path_refuses_non_finite_maps_as_parse_fast():
    heatmaps, tags = random_maps(0)
    bad_heat = heatmaps.copy()
    bad_heat[1, 3, 4] = np.nan
    bad_tags = tags.copy()
    bad_tags[:, :, :, 0] = np.inf  # every candidate's tag
    for h, t in (bad_heat, tags), (heatmaps, bad_tags):
        with pytest.raises(ValueError) as expected:
            parse_fast(h, t)
        with pytest.raises(ValueError) as got:
            parse_fast_tensors(torch.from_numpy(h)[None], torch.from_numpy(t)[None])
        assert str(got.value) == str(expected.value)


def test_codec_batch_decode_takes_the_device_path_on_accelerators(monkeypatch):
    codec = MultiLevelAssociativeEmbedding(input_size=(56, 40), heatmap_sizes=[(56, 40)])
    heatmaps, tags = random_maps(1, num_keypoints=17)
    calls = []
    monkeypatch.setattr('higherhrnet_plugin.codecs.multi_level_associative_embedding._on_device',
                        lambda maps: calls.append(1) or True)
    batch = codec.batch_decode(torch.from_numpy(heatmaps)[None], torch.from_numpy(tags)[None])
    assert calls
    for got, want in zip(batch[0], codec.decode(heatmaps, tags)):
        np.testing.assert_array_equal(got, want)
