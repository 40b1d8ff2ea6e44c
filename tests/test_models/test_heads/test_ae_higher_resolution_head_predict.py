"""``AEHigherResolutionHead.predict``: flip and level aggregation in the official order,
batch padding, multi-scale, and decoding with the codec."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from mmpose.structures import PoseDataSample

from higherhrnet_plugin.models import AEHigherResolutionHead
from test_ae_higher_resolution_head import K, mmpose_scope  # noqa: F401  (autouse fixture)

COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


class RecordingDecoder:
    """Test double for the codec: records what it is given, returns one fixed person."""

    def __init__(self):
        self.calls = []

    def batch_decode(self, heatmaps, tags):
        self.calls.append((heatmaps.clone(), tags.clone()))
        keypoints = np.full((1, K, 2), 3.0, np.float32)
        scores = np.full((1, K), 0.5, np.float32)
        return [(keypoints, scores, np.float32([0.7]))] * heatmaps.shape[0]


def _head(**kwargs):
    head = AEHigherResolutionHead(**kwargs)
    head.decoder = RecordingDecoder()
    return head


def _up(maps, size):
    return F.interpolate(maps, size=size, mode='bilinear', align_corners=False)


def _mirror(maps):
    """Mirror a (B, C, H, W) output along W and swap left/right keypoint channels."""
    maps = maps.flip(-1)
    perm = COCO_FLIP + [K + i for i in COCO_FLIP][:maps.shape[1] - K]
    return maps[:, perm]


def _gaussian_outputs(h4, w4, seed=0):
    """Smooth (1, 2K, h4, w4) and (1, K, 2h4, 2w4) outputs: Gaussian peaks + smooth tags."""
    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(2 * h4), torch.arange(2 * w4), indexing='ij')
    centres = torch.rand(K, 2, generator=gen) * torch.tensor([2 * w4 - 1., 2 * h4 - 1.])
    half = torch.exp(-((xs - centres[:, :1, None])**2 + (ys - centres[:, 1:, None])**2) / 8)
    quarter = torch.exp(-((xs[::2, ::2] / 2 - centres[:, :1, None] / 2)**2 +
                          (ys[::2, ::2] / 2 - centres[:, 1:, None] / 2)**2) / 8)
    tags = torch.rand(K, 1, 1, generator=gen) + 0.01 * xs[::2, ::2] / 2
    return [torch.cat((quarter, tags))[None], half[None]]


def _metainfo(canvas, **extra):
    return dict(input_size=canvas, flip_indices=COCO_FLIP, **extra)


def _samples(*metainfos):
    return [PoseDataSample(metainfo=m) for m in metainfos]


def _predict(head, outputs, samples, **test_cfg):
    """predict() with ``forward`` replaced by the identity: feats *are* the level outputs."""
    head.forward = lambda feats: list(feats)
    return head.predict(outputs, samples, test_cfg=test_cfg)


def _official(orig, flipped, full):
    """Official aggregation of one scale, written out: returns heatmaps and [tag, tag_flip]."""
    half = tuple(orig[1].shape[-2:])
    h = (_up(orig[0], half)[:, :K] + orig[1]) / 2
    hf = (_mirror(_up(flipped[0], half))[:, :K] + _mirror(flipped[1])) / 2
    tags = [_up(_up(orig[0], half)[:, K:], full), _up(_mirror(_up(flipped[0], half))[:, K:], full)]
    return (_up(h, full) + _up(hf, full)) / 2, tags


def test_predict_flip_official_order():
    head = _head()
    orig, flipped = _gaussian_outputs(8, 12, seed=0), _gaussian_outputs(8, 12, seed=1)
    canvas = (48, 32)  # (W, H) = 4x the 1/4 level
    preds = _predict(head, [orig, flipped], _samples(_metainfo(canvas)), flip_test=True)

    heatmaps, tags = head.decoder.calls[0]
    expected_heatmaps, expected_tags = _official(orig, flipped, (32, 48))
    torch.testing.assert_close(heatmaps, expected_heatmaps, rtol=0, atol=1e-7)
    torch.testing.assert_close(tags, torch.stack(expected_tags, dim=-1), rtol=0, atol=1e-7)
    assert tags.shape == (1, K, 32, 48, 2)
    # Decoder results are passed through; person scores become bbox_scores.
    assert isinstance(preds[0], InstanceData)
    np.testing.assert_array_equal(preds[0].bbox_scores, np.float32([0.7]))
    assert preds[0].keypoints.shape == (1, K, 2)


def test_predict_without_flip():
    head = _head()
    orig = _gaussian_outputs(8, 12)
    _predict(head, orig, _samples(_metainfo((48, 32))), flip_test=False)
    heatmaps, tags = head.decoder.calls[0]
    expected = _up((_up(orig[0], (16, 24))[:, :K] + orig[1]) / 2, (32, 48))
    torch.testing.assert_close(heatmaps, expected, rtol=0, atol=1e-7)
    assert tags.shape == (1, K, 32, 48, 1)


@pytest.mark.parametrize('aggregation', ['official', 'mmpose0x'])
def test_flip_symmetric_outputs_give_the_unflipped_result(aggregation):
    head = _head()
    orig = _gaussian_outputs(8, 12)
    mirrored = [_mirror(level) for level in orig]  # what a flip-equivariant network outputs
    samples = _samples(_metainfo((48, 32)))
    _predict(head, [orig, mirrored], samples, flip_test=True, aggregation=aggregation)
    _predict(head, orig, samples, flip_test=False, aggregation=aggregation)
    (flip_heatmaps, flip_tags), (heatmaps, tags) = head.decoder.calls
    torch.testing.assert_close(flip_heatmaps, heatmaps, rtol=0, atol=1e-6)
    torch.testing.assert_close(flip_tags[..., 1], flip_tags[..., 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(flip_tags[..., :1], tags, rtol=0, atol=1e-6)


def test_mmpose0x_aggregation_resizes_directly_and_differs_slightly():
    head = _head()
    orig, flipped = _gaussian_outputs(8, 12, seed=0), _gaussian_outputs(8, 12, seed=1)
    samples = _samples(_metainfo((48, 32)))
    _predict(head, [orig, flipped], samples, flip_test=True, aggregation='mmpose0x')
    _predict(head, [orig, flipped], samples, flip_test=True, aggregation='official')
    (mm_heatmaps, mm_tags), (off_heatmaps, off_tags) = head.decoder.calls

    full = (32, 48)
    h = (_up(orig[0][:, :K], full) + _up(orig[1], full)) / 2
    hf = (_up(_mirror(flipped[0])[:, :K], full) + _up(_mirror(flipped[1]), full)) / 2
    torch.testing.assert_close(mm_heatmaps, (h + hf) / 2, rtol=0, atol=1e-7)
    torch.testing.assert_close(mm_tags[..., 1],
                               _up(_mirror(flipped[0])[:, K:], full),
                               rtol=0,
                               atol=1e-7)
    # Two 2x resizes vs one 4x resize of the 1/4 maps: small, non-zero difference.
    difference = (mm_heatmaps - off_heatmaps).abs().max().item()
    assert 1e-4 < difference < 2e-2
    assert (mm_tags - off_tags).abs().max().item() > 0


def _pad_like(levels, like, left):
    """Pad (right, or left for the mirrored input) and bottom with a loud value."""
    padded = []
    for level, ref in zip(levels, like):
        dw, dh = ref.shape[-1] - level.shape[-1], ref.shape[-2] - level.shape[-2]
        padded.append(F.pad(level, (dw, 0, 0, dh) if left else (0, dw, 0, dh), value=100.))
    return padded


def test_predict_crops_batch_padding():
    head = _head()
    big, big_flip = _gaussian_outputs(8, 12, seed=0), _gaussian_outputs(8, 12, seed=1)
    small, small_flip = _gaussian_outputs(6, 8, seed=2), _gaussian_outputs(6, 8, seed=3)
    # Batching pads the small input right/bottom; its flipped copy is mirrored after padding.
    orig_batch = [torch.cat(pair) for pair in zip(big, _pad_like(small, big, left=False))]
    flip_batch = [torch.cat(pair) for pair in zip(big_flip, _pad_like(small_flip, big, True))]

    _predict(head, [orig_batch, flip_batch],
             _samples(_metainfo((48, 32)), _metainfo((32, 24))),
             flip_test=True)
    _predict(head, [small, small_flip], _samples(_metainfo((32, 24))), flip_test=True)
    (_, _), (batched_heatmaps, batched_tags), (alone_heatmaps, alone_tags) = head.decoder.calls
    assert batched_heatmaps.shape == (1, K, 24, 32)
    torch.testing.assert_close(batched_heatmaps, alone_heatmaps, rtol=0, atol=0)
    torch.testing.assert_close(batched_tags, alone_tags, rtol=0, atol=0)


def test_multiscale_averages_heatmaps_and_keeps_scale_one_tags():
    head = _head()
    sizes = {1.0: (8, 12), 2.0: (16, 24), 0.5: (4, 6)}
    outputs = {
        s: (_gaussian_outputs(*hw, seed=i), _gaussian_outputs(*hw, seed=10 + i))
        for i, (s, hw) in enumerate(sizes.items())
    }
    feats = [list(outputs[s]) for s in (1.0, 2.0, 0.5)]  # estimator order: [1, *aug_scales]
    samples = _samples(_metainfo((48, 32), aug_scales=[2.0, 0.5]))
    _predict(head, feats, samples, flip_test=True, multiscale_test=True)

    heatmaps, tags = head.decoder.calls[0]
    full = (32, 48)
    per_scale = {s: _official(*outputs[s], full) for s in sizes}
    expected = (per_scale[2.0][0] + per_scale[1.0][0] + per_scale[0.5][0]) / 3
    torch.testing.assert_close(heatmaps, expected, rtol=0, atol=1e-7)
    torch.testing.assert_close(tags, torch.stack(per_scale[1.0][1], dim=-1), rtol=0, atol=1e-7)


def test_output_heatmaps_and_shared_tag():
    head = _head(tag_per_keypoint=False)
    orig, flipped = _gaussian_outputs(8, 12, seed=0), _gaussian_outputs(8, 12, seed=1)
    orig[0], flipped[0] = orig[0][:, :K + 1], flipped[0][:, :K + 1]  # one shared tag map
    preds, fields = _predict(head, [orig, flipped],
                             _samples(_metainfo((48, 32))),
                             flip_test=True,
                             output_heatmaps=True)
    heatmaps, tags = head.decoder.calls[0]
    assert tags.shape == (1, K, 32, 48, 2)
    assert tags.eq(tags[:, :1]).all()  # every keypoint reads the shared map
    expected_flip_tag = _up(_up(flipped[0], (16, 24)).flip(-1)[:, K:], (32, 48))
    torch.testing.assert_close(tags[0, 0, ..., 1], expected_flip_tag[0, 0], rtol=0, atol=1e-7)
    assert len(preds) == len(fields) == 1
    torch.testing.assert_close(fields[0].heatmaps, heatmaps[0])
    torch.testing.assert_close(fields[0].tags, tags[0].permute(3, 0, 1, 2).reshape(2 * K, 32, 48))


def _person_outputs(canvas_points, tag_of_x, canvas):
    """Level outputs whose aggregated maps peak at ``canvas_points`` (P, K, 2) (x, y)."""
    width, height = canvas
    levels = []
    for stride, channels in ((4, 2 * K), (2, K)):
        ys, xs = torch.meshgrid(torch.arange(height // stride),
                                torch.arange(width // stride),
                                indexing='ij')
        # Canvas pixel centre x maps to (x + 0.5) / stride - 0.5 on a level (align_corners off).
        centres = (canvas_points + 0.5) / stride - 0.5
        peaks = torch.exp(-((xs - centres[..., :1, None])**2 + (ys - centres[..., 1:, None])**2) /
                          (2 * (3 / stride)**2))
        level = torch.zeros(1, channels, height // stride, width // stride)
        level[0, :K] = peaks.amax(dim=0)
        if channels > K:  # tags: one value per canvas half
            level[0, K:] = tag_of_x((xs + 0.5) * stride - 0.5).float()
        levels.append(level)
    return levels


def test_predict_with_the_codec_groups_two_persons():
    from higherhrnet_plugin.codecs import MultiLevelAssociativeEmbedding

    head = AEHigherResolutionHead(decoder=dict(type='MultiLevelAssociativeEmbedding'))
    assert isinstance(head.decoder, MultiLevelAssociativeEmbedding)
    canvas = (96, 64)
    rng = np.random.default_rng(0)
    left = np.stack([rng.integers(6, 40, K), rng.integers(6, 58, K)], axis=-1)
    points = torch.from_numpy(np.stack([left, left + [48, 0]])).float()  # (2, K, 2)
    outputs = _person_outputs(points, lambda x: torch.where(x < 48, 1.0, 3.0), canvas)
    head.forward = lambda feats: list(feats)
    preds = head.predict(outputs, _samples(_metainfo(canvas)), test_cfg=dict(flip_test=False))

    keypoints = preds[0].keypoints[np.argsort(preds[0].keypoints[:, 0, 0])]
    assert keypoints.shape == (2, K, 2)
    # Peaks at integer canvas pixels; the decoder reports pixel centres (+0.5, +-0.25 adjust).
    np.testing.assert_allclose(keypoints, points.numpy() + 0.5, atol=0.75)
    # Person score = mean peak value; both persons are shifted copies of each other.
    scores = preds[0].bbox_scores
    assert scores.shape == (2, ) and scores[0] == pytest.approx(scores[1]) and scores[0] > 0.5


def test_predict_rejects_unknown_aggregation():
    head = _head()
    with pytest.raises(ValueError, match='aggregation'):
        _predict(head,
                 _gaussian_outputs(8, 12),
                 _samples(_metainfo((48, 32))),
                 aggregation='average')
