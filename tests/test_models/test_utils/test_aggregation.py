"""Test-time aggregation functions against the official order of operations: written out, and
against the official functions themselves when their code is available."""
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from higherhrnet_plugin.models.utils import (FlipPair, OutputLayout, aggregate_flip,
                                             aggregate_levels, aggregate_scales, crop_to_canvas,
                                             unflip_levels)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _official_code import forget, import_official  # noqa: E402

K = 3
FLIP = [0, 2, 1]
LAYOUT = OutputLayout(num_keypoints=K, tag_levels=(True, False))


def _outputs(width, height, seed):
    """(1, 2K, H/4, W/4) and (1, K, H/2, W/2) outputs of a network on a (W, H) input."""
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.rand(1, 2 * K, height // 4, width // 4, generator=gen),
        torch.rand(1, K, height // 2, width // 2, generator=gen)
    ]


def _resize(maps, height, width):
    return F.interpolate(maps, size=(height, width), mode='bilinear', align_corners=False)


def _mirror(maps, with_tags):
    maps = maps.flip(-1)
    perm = FLIP + ([K + k for k in FLIP] if with_tags else [])
    return maps[:, perm]


def _official_scale(orig, flipped, height, width):
    """``get_multi_stage_outputs`` with flip and PROJECT2IMAGE, then the flip average."""
    half = orig[1].shape[-2:]
    heatmaps_avg = 0
    heatmaps_avg += _resize(orig[0], *half)[:, :K]
    heatmaps_avg += orig[1][:, :K]
    h = heatmaps_avg / 2
    tags = [_resize(orig[0], *half)[:, K:]]
    heatmaps_avg = 0
    up = _mirror(_resize(flipped[0], *half), with_tags=True)
    heatmaps_avg += up[:, :K]
    heatmaps_avg += _mirror(flipped[1], with_tags=False)
    h_f = heatmaps_avg / 2
    tags.append(up[:, K:])
    project = [_resize(m, height, width) for m in (h, h_f)]
    return (project[0] + project[1]) / 2.0, [_resize(t, height, width) for t in tags]


def test_multiscale_equals_the_official_order_bit_for_bit():
    """Scales 2, 1, 0.5 on a (64, 48) canvas: every scale projected (scale 2 by an identity
    resize), accumulated from the largest scale down in place, divided by float(len(S))."""
    width, height = 64, 48
    scales = [1.0, 2.0, 0.5]
    pairs = [
        FlipPair(_outputs(round(width * s), round(height * s), seed=2 * i),
                 _outputs(round(width * s), round(height * s), seed=2 * i + 1))
        for i, s in enumerate(scales)
    ]
    heatmaps, tags = aggregate_scales(pairs, scales, (width, height), LAYOUT, FLIP)

    final, tags_list = None, []
    for s in sorted(scales, reverse=True):
        pair = pairs[scales.index(s)]
        scale_heatmaps, scale_tags = _official_scale(pair.original, pair.flipped, height, width)
        if s == 1:
            tags_list = [t[..., None] for t in scale_tags]
        if final is None:
            final = scale_heatmaps
        else:
            final += scale_heatmaps
    final = final / float(len(scales))
    assert heatmaps.shape == (1, K, height, width)
    assert torch.equal(heatmaps, final)
    assert torch.equal(tags, torch.cat(tags_list, dim=4))


def test_scale_order_changes_the_float_sum():
    """The summation order matters in float32: the official order is the one pinned above."""
    maps = [torch.rand(1, K, 48, 64, generator=torch.Generator().manual_seed(s)) * 10**s
            for s in range(3)]
    forward = (maps[0] + maps[1] + maps[2]) / 3.0
    backward = (maps[2] + maps[1] + maps[0]) / 3.0
    assert not torch.equal(forward, backward)


def test_flip_of_a_mirrored_output_is_the_original():
    orig = _outputs(32, 16, seed=0)
    mirrored = [_mirror(orig[0], True), _mirror(orig[1], False)]
    heatmaps, tags = aggregate_flip(FlipPair(orig, mirrored), (32, 16), LAYOUT, FLIP)
    alone, alone_tags = aggregate_levels(orig, (32, 16), LAYOUT)
    torch.testing.assert_close(heatmaps, alone, rtol=0, atol=1e-6)
    assert len(tags) == 2
    torch.testing.assert_close(tags[1], tags[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(tags[0], alone_tags[0], rtol=0, atol=0)


def test_unflip_permutes_tags_only_at_tag_levels():
    levels = _outputs(16, 16, seed=3)
    unflipped = unflip_levels(levels, LAYOUT, FLIP)
    assert torch.equal(unflipped[0], _mirror(levels[0], with_tags=True))
    assert torch.equal(unflipped[1], _mirror(levels[1], with_tags=False))
    shared = OutputLayout(K, (True, False), tag_per_keypoint=False)
    level = torch.rand(1, K + 1, 4, 4)
    assert torch.equal(unflip_levels([level], shared, FLIP)[0][:, K:], level[:, K:].flip(-1))


def test_shared_tag_map_is_expanded_to_every_keypoint():
    shared = OutputLayout(K, (True, False), tag_per_keypoint=False)
    levels = [torch.rand(1, K + 1, 4, 8), torch.rand(1, K, 8, 16)]
    heatmaps, tags = aggregate_scales([FlipPair(levels)], [1], (32, 16), shared)
    assert heatmaps.shape == (1, K, 16, 32) and tags.shape == (1, K, 16, 32, 1)
    assert torch.equal(tags[:, 0], tags[:, 2])


def test_crop_to_canvas_cuts_padding_right_and_bottom_and_left_when_flipped():
    levels = [torch.arange(2 * 8 * 12.).reshape(2, 1, 8, 12)]
    pair = crop_to_canvas(FlipPair(levels, levels), 1, (40, 24))  # level 0: 10 x 6
    assert torch.equal(pair.original[0], levels[0][1:2, :, :6, :10])
    assert torch.equal(pair.flipped[0], levels[0][1:2, :, :6, 2:])
    assert crop_to_canvas(FlipPair(levels), 0, (40, 24)).flipped is None


def test_errors_name_the_problem():
    levels = _outputs(16, 16, seed=0)
    with pytest.raises(ValueError, match='aggregation must be one of'):
        aggregate_levels(levels, (16, 16), LAYOUT, mode='nearest')
    with pytest.raises(ValueError, match='flip_indices are needed'):
        aggregate_flip(FlipPair(levels, levels), (16, 16), LAYOUT)
    with pytest.raises(ValueError, match='scale 1 among them'):
        aggregate_scales([FlipPair(levels)], [2.0], (16, 16), LAYOUT)


# ------------------------------------------------------- against the official functions

@pytest.fixture(scope='module')
def official_inference(tmp_path_factory):
    """``lib/core/inference.py`` of the official code (see ``tests/_official_code.py``)."""
    root = tmp_path_factory.mktemp('official')
    # The only name inference.py imports from the official package.
    stubs = {'dataset.transforms': f'FLIP_CONFIG = {{"COCO": {FLIP}}}'}
    module = import_official(root, 'lib/core/inference.py', stubs)
    yield module
    forget(root, module, stubs)


def _official_cfg(scales, flip):
    return SimpleNamespace(
        DATASET=SimpleNamespace(NUM_JOINTS=K, DATASET='coco', WITH_CENTER=False),
        LOSS=SimpleNamespace(WITH_HEATMAPS_LOSS=(True, True), WITH_AE_LOSS=(True, False)),
        TEST=SimpleNamespace(WITH_HEATMAPS=(True, True), WITH_AE=(True, False), FLIP_TEST=flip,
                             PROJECT2IMAGE=True, SCALE_FACTOR=scales),
        MODEL=SimpleNamespace(TAG_PER_JOINT=True))


@pytest.mark.parametrize('scales,flip', [([2, 1, 0.5], True), ([1], True), ([1, 0.5], False)])
def test_equals_the_official_functions(official_inference, scales, flip):
    """``get_multi_stage_outputs`` + ``aggregate_results`` + ``/ float(len(S))`` as
    ``tools/valid.py`` calls them, on the same level outputs: equal bit for bit."""
    width, height = 96, 64
    pairs = [
        FlipPair(_outputs(round(width * s), round(height * s), seed=2 * i),
                 _outputs(round(width * s), round(height * s), seed=2 * i + 1) if flip else None)
        for i, s in enumerate(scales)
    ]
    heatmaps, tags = aggregate_scales(pairs, scales, (width, height), LAYOUT, FLIP)

    cfg = _official_cfg(scales, flip)
    final, tags_list = None, []
    for s in sorted(scales, reverse=True):
        pair = pairs[scales.index(s)]
        views = iter([list(pair.original), list(pair.flipped or [])])
        _, scale_heatmaps, scale_tags = official_inference.get_multi_stage_outputs(
            cfg, lambda image: next(views), torch.zeros(1, 3, 1, 1), flip, True, (width, height))
        final, tags_list = official_inference.aggregate_results(cfg, s, final, tags_list,
                                                                scale_heatmaps, scale_tags)
    assert torch.equal(heatmaps, final / float(len(scales)))
    assert torch.equal(tags, torch.cat(tags_list, dim=4))


@pytest.mark.parametrize('batch', [1, 3])
def test_tags_resized_in_place_equal_the_stacked_ones(batch):
    """At test time (no autograd) the tag maps are resized into one (L, B, T, H, W) tensor;
    with autograd (and when traced for export) they are resized and stacked: same values,
    and a permuted view in the first case (no stacking copy)."""
    width, height = 64, 48
    orig = [torch.cat([o] * batch) for o in _outputs(width, height, seed=5)]
    flipped = [torch.cat([o] * batch) for o in _outputs(width, height, seed=6)]
    with torch.no_grad():
        heatmaps, tags = aggregate_scales([FlipPair(orig, flipped)], [1], (width, height), LAYOUT,
                                          FLIP)
    graded = [[o.clone().requires_grad_() for o in view] for view in (orig, flipped)]
    want_heatmaps, want_tags = aggregate_scales([FlipPair(*graded)], [1], (width, height), LAYOUT,
                                                FLIP)
    assert torch.equal(heatmaps, want_heatmaps.detach())
    assert torch.equal(tags, want_tags.detach())
    assert tags.shape == (batch, K, height, width, 2)
    assert tags.stride(-1) == batch * K * height * width  # tag maps stacked first, then viewed
    assert want_tags.is_contiguous()
