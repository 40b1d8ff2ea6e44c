"""SWAHRHead: the scale branch, its place in the outputs, its init and the test path without it.

Parity with SWAHR's own network is in tests/test_models/test_swahr_parity.py.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpose.structures import PoseDataSample
from torch import nn

from higherhrnet_plugin.models import AEHigherResolutionHead, SWAHRHead
from higherhrnet_plugin.models.losses import SWAHRLoss

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _tools import load_module  # noqa: E402

K = 17
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
CODEC = dict(type='MultiLevelAssociativeEmbedding', input_size=(64, 64),
             heatmap_sizes=((16, 16), (32, 32)))
# The packed-sample builder of the base head's tests; reuse rather than copy it.
base_cases = load_module('ae_head_cases', Path(__file__).parent / 'test_ae_higher_resolution_head.py')


@pytest.fixture(autouse=True)
def mmpose_scope():
    with DefaultScope.overwrite_default_scope('mmpose'):
        yield


def _heads(**kwargs):
    """A SWAHR head with random scale branches and the base head with its other weights."""
    torch.manual_seed(0)
    swahr = SWAHRHead(**kwargs)
    for branch in swahr.conv_scale_layers:  # non-zero scale maps, BN with statistics
        for tensor in branch.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5)
    base = AEHigherResolutionHead(**kwargs)
    shared = {k: v for k, v in swahr.state_dict().items() if not k.startswith('conv_scale')}
    base.load_state_dict(shared, strict=True)
    return swahr.eval(), base.eval()


def test_scale_branch_per_level():
    head = SWAHRHead(in_channels=8, deconv_out_channels=(6, ))
    for level, channels in enumerate((8, 6)):  # backbone features, then deconv output
        conv, bn, relu, depthwise = head.conv_scale_layers[level]
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (channels, K, (1, 1))
        assert conv.bias is not None and bn.num_features == K and isinstance(relu, nn.ReLU)
        assert (depthwise.in_channels, depthwise.out_channels, depthwise.groups) == (K, K, K)
        assert depthwise.kernel_size == (9, 9) and depthwise.padding == (4, 4)
    # The deconv layer reads features + heatmaps + tags, not the scale map (SWAHR).
    assert head.deconv_layers[0][0][0].in_channels == 8 + 2 * K


def test_outputs_are_scale_then_the_base_heads_outputs():
    swahr, base = _heads(in_channels=8, deconv_out_channels=(6, ))
    feats = (torch.rand(2, 8, 6, 10), )
    with torch.no_grad():
        outputs, expected = swahr(feats), base(feats)
        deconv_features = swahr.deconv_layers[0](torch.cat((feats[0], expected[0]), 1))
        scales = [swahr.conv_scale_layers[0](feats[0]),
                  swahr.conv_scale_layers[1](deconv_features)]

    assert [tuple(o.shape) for o in outputs] == [(2, 3 * K, 6, 10), (2, 2 * K, 12, 20)]
    for output, scale, prediction in zip(outputs, scales, expected):
        assert torch.equal(output[:, :K], scale)
        assert torch.equal(output[:, K:], prediction)
    assert all(scale.abs().min() > 0 for scale in scales)
    assert all(torch.equal(a, b) for a, b in zip(swahr.drop_scale(outputs), expected))


def test_swahr_initialisation_starts_from_the_plain_gaussians():
    torch.manual_seed(0)
    head = SWAHRHead(in_channels=48, deconv_out_channels=(48, ))
    head.init_weights()
    for branch in head.conv_scale_layers:
        assert branch[0].weight.std().item() == pytest.approx(0.001, rel=0.2)  # official
        assert branch[1].weight.eq(1).all() and not branch[1].bias.any()
        assert not branch[3].weight.any() and not branch[3].bias.any()  # SWAHR: zero
    head.eval()
    with torch.no_grad():
        outputs = head((torch.rand(1, 48, 4, 4), ))
    assert all(not output[:, :K].any() for output in outputs)  # s = 0 everywhere
    assert head.final_layers[0].weight.std().item() == pytest.approx(0.001, rel=0.2)


def test_explicit_init_cfg_is_left_alone():
    head = SWAHRHead(in_channels=8, deconv_out_channels=(8, ),
                     init_cfg=dict(type='Constant', layer='Conv2d', val=0.5, bias=0.25))
    head.init_weights()
    assert head.conv_scale_layers[1][3].weight.eq(0.5).all()
    assert head.conv_scale_layers[1][3].bias.eq(0.25).all()


def test_loss_is_swahrs_and_gets_k_and_the_tag_level():
    head = SWAHRHead(num_keypoints=14, decoder=dict(CODEC, tag_level=1))
    assert isinstance(head.loss_module, SWAHRLoss)
    assert head.loss_module.num_keypoints == 14
    assert head.loss_module.with_ae_loss == (False, True)
    with pytest.raises(TypeError, match='its loss must be a SWAHRLoss, got HigherHRNetLoss'):
        SWAHRHead(loss=dict(type='HigherHRNetLoss'))


def test_loss_reads_the_packed_targets():
    rng = np.random.default_rng(0)
    head = SWAHRHead(in_channels=8, deconv_out_channels=(8, ))
    feats = (torch.rand(2, 8, 8, 8), )
    packed = [base_cases._packed_sample(rng, n) for n in (3, 1)]

    losses = head.loss(feats, [sample for sample, _ in packed])

    outputs = head.forward(feats)
    heatmaps, masks = ([torch.from_numpy(np.stack([r[name][lv] for _, r in packed]))
                        for lv in range(2)] for name in ('heatmaps', 'heatmap_mask'))
    indices = [torch.from_numpy(r['keypoint_indices']) for _, r in packed]
    expected = head.loss_module(outputs, heatmaps, masks, indices)
    assert set(losses) == set(expected) == {'loss_heatmap_l0', 'loss_heatmap_l1', 'loss_scale_l0',
                                            'loss_scale_l1', 'loss_pull', 'loss_push'}
    for name in expected:
        torch.testing.assert_close(losses[name], expected[name])


@pytest.mark.parametrize('flip_test', [True, False])
def test_predict_drops_the_scale_maps(flip_test):
    """With the same weights the SWAHR head predicts what the base head predicts from the
    heatmaps and tags: flip, aggregation and grouping never see the scale maps."""
    swahr, base = _heads(in_channels=8, deconv_out_channels=(8, ), decoder=CODEC)
    gen = torch.Generator().manual_seed(1)
    feats = [(torch.rand(1, 8, 16, 16, generator=gen), ) for _ in range(2)]
    feats = feats if flip_test else feats[0]
    samples = [PoseDataSample(metainfo=dict(input_size=(64, 64), flip_indices=COCO_FLIP))]
    test_cfg = dict(flip_test=flip_test, output_heatmaps=True)

    with torch.no_grad():
        (pred, ), (fields, ) = swahr.predict(feats, samples, test_cfg)
        (expected, ), (expected_fields, ) = base.predict(feats, samples, test_cfg)

    assert fields.heatmaps.shape == (K, 64, 64)
    assert fields.tags.shape == ((2 if flip_test else 1) * K, 64, 64)
    assert torch.equal(fields.heatmaps, expected_fields.heatmaps)
    assert torch.equal(fields.tags, expected_fields.tags)
    np.testing.assert_array_equal(pred.keypoints, expected.keypoints)
    np.testing.assert_array_equal(pred.bbox_scores, expected.bbox_scores)
