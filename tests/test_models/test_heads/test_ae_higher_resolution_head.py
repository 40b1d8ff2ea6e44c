"""``AEHigherResolutionHead``: forward, initialisation, configuration, the level facts it
reads from the codec, and the loss (``predict`` in test_ae_higher_resolution_head_predict.py)."""
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpose.datasets.transforms import PackPoseInputs

from higherhrnet_plugin.models import AEHigherResolutionHead

K = 17


@pytest.fixture(autouse=True)
def mmpose_scope():
    """Build from mmpose's registries whatever default scope earlier tests left behind."""
    with DefaultScope.overwrite_default_scope('mmpose'):
        yield


# ----------------------------------------------------------------------------- forward / init


@pytest.mark.parametrize('tag_per_keypoint, tag_channels', [(True, K), (False, 1)])
def test_forward_shapes(tag_per_keypoint, tag_channels):
    head = AEHigherResolutionHead(tag_per_keypoint=tag_per_keypoint)
    head.eval()
    with torch.no_grad():
        outputs = head((torch.rand(2, 32, 16, 24), ))
    assert [tuple(o.shape) for o in outputs] == [(2, K + tag_channels, 16, 24), (2, K, 32, 48)]
    assert head.deconv_layers[0][0][0].in_channels == 32 + K + tag_channels


def test_forward_concatenates_features_before_prediction():
    head = AEHigherResolutionHead()
    head.eval()
    feats = torch.rand(1, 32, 8, 8)
    with torch.no_grad():
        y0, y1 = head((feats, ))
        expected = head.final_layers[1](head.deconv_layers[0](torch.cat((feats, y0), 1)))
    torch.testing.assert_close(y1, expected, rtol=0, atol=0)


def test_official_initialisation():
    torch.manual_seed(0)
    head = AEHigherResolutionHead(in_channels=48, deconv_out_channels=(48, ))
    head.init_weights()
    for conv in (head.final_layers[0], head.deconv_layers[0][0][0],
                 head.deconv_layers[0][3][0].conv2):  # BasicBlock convs too (official)
        assert conv.weight.std().item() == pytest.approx(0.001, rel=0.2)
    assert not head.final_layers[1].bias.any()
    bn = head.deconv_layers[0][1][0].bn1
    assert bn.weight.eq(1).all() and not bn.bias.any()


def test_invalid_configuration():
    with pytest.raises(ValueError, match='with_ae_loss needs 2 entries'):
        AEHigherResolutionHead(with_ae_loss=(True, ))
    with pytest.raises(ValueError, match='deconv kernel size'):
        AEHigherResolutionHead(deconv_kernel_sizes=(5, ))
    with pytest.raises(ValueError, match='final_kernel_size'):
        AEHigherResolutionHead(final_kernel_size=5)


# ---------------------------------------------------------------- one owner per level fact

CODEC = dict(type='MultiLevelAssociativeEmbedding', input_size=(64, 64),
             heatmap_sizes=((16, 16), (32, 32)))


def test_head_states_k_and_reads_the_tag_level_from_the_codec():
    head = AEHigherResolutionHead(num_keypoints=14, decoder=dict(CODEC, tag_level=1))
    assert head.with_ae_loss == (False, True)
    assert head.level_channels == (14, 28)
    assert head.loss_module.num_keypoints == 14
    assert head.loss_module.with_ae_loss == (False, True)
    # Without a codec: tags at level 0, the official layout.
    assert AEHigherResolutionHead(num_keypoints=14).loss_module.with_ae_loss == (True, False)


def test_restated_facts_must_agree():
    # Equal restatements (lists from a config file count as tuples) are accepted.
    head = AEHigherResolutionHead(with_ae_loss=[True, False],
                                  loss=dict(type='HigherHRNetLoss', num_keypoints=17,
                                            with_ae_loss=[True, False]),
                                  decoder=CODEC)
    assert head.loss_module.with_ae_loss == (True, False)
    with pytest.raises(ValueError, match=r"loss num_keypoints=17 disagrees with the head's "
                       r'num_keypoints=14'):
        AEHigherResolutionHead(num_keypoints=14,
                               loss=dict(type='HigherHRNetLoss', num_keypoints=17))
    with pytest.raises(ValueError, match=r"disagrees with the codec's tag_level=0"):
        AEHigherResolutionHead(with_ae_loss=(False, True), decoder=CODEC)
    with pytest.raises(ValueError, match='the codec has 2 heatmap_sizes, the head predicts 3'):
        AEHigherResolutionHead(num_deconv_layers=2, deconv_out_channels=(32, 32),
                               deconv_kernel_sizes=(4, 4), cat_output=(True, True),
                               decoder=CODEC)


# ----------------------------------------------------------------------------------- loss


def _packed_sample(rng, num_persons, with_mask=True):
    """A data sample packed by mmpose's PackPoseInputs from multi-level targets."""
    results = dict(
        img=np.zeros((32, 32, 3), np.uint8),
        heatmaps=[
            rng.random((K, 8, 8), dtype=np.float32),
            rng.random((K, 16, 16), dtype=np.float32)
        ],
        keypoint_indices=np.stack(
            [rng.integers(0, K * 64, (num_persons, K)),
             rng.integers(0, 2, (num_persons, K))],
            axis=-1),
        keypoint_weights=np.ones((num_persons, K), np.float32),
        label_mapping_table=dict(keypoint_indices='keypoint_indices',
                                 keypoint_weights='keypoint_weights'),
        field_mapping_table=dict(heatmaps='heatmaps', heatmap_mask='heatmap_mask'))
    if with_mask:
        results['heatmap_mask'] = [rng.random((8, 8)) > 0.3, rng.random((16, 16)) > 0.3]
    return PackPoseInputs()(results)['data_samples'], results


def test_loss_reads_multilevel_targets():
    rng = np.random.default_rng(0)
    head = AEHigherResolutionHead(in_channels=8, deconv_out_channels=(8, ))
    feats = (torch.rand(2, 8, 8, 8), )
    packed = [_packed_sample(rng, n) for n in (3, 1)]
    samples = [sample for sample, _ in packed]

    losses = head.loss(feats, samples)

    outputs = head.forward(feats)
    heatmaps = [
        torch.from_numpy(np.stack([r['heatmaps'][lv] for _, r in packed])) for lv in range(2)
    ]
    masks = [
        torch.from_numpy(np.stack([r['heatmap_mask'][lv] for _, r in packed])) for lv in range(2)
    ]
    indices = [torch.from_numpy(r['keypoint_indices']) for _, r in packed]
    expected = head.loss_module(outputs, heatmaps, masks, indices)
    assert losses.keys() == expected.keys() == {
        'loss_heatmap_l0', 'loss_heatmap_l1', 'loss_pull', 'loss_push'
    }
    for name in expected:
        torch.testing.assert_close(losses[name], expected[name])
    # Level 1 by hand: masked squared error averaged over B*K*H*W.
    manual = ((outputs[1] - heatmaps[1])**2 * masks[1][:, None]).mean()
    torch.testing.assert_close(losses['loss_heatmap_l1'], manual)


def test_loss_without_mask_supervises_everything():
    rng = np.random.default_rng(1)
    head = AEHigherResolutionHead(in_channels=8, deconv_out_channels=(8, ))
    feats = (torch.rand(1, 8, 8, 8), )
    sample, results = _packed_sample(rng, 2, with_mask=False)
    losses = head.loss(feats, [sample])
    output = head.forward(feats)[0][:, :K]
    manual = ((output - torch.from_numpy(results['heatmaps'][0])[None])**2).mean()
    torch.testing.assert_close(losses['loss_heatmap_l0'], manual)


def test_loss_rejects_level_mismatch():
    rng = np.random.default_rng(2)
    head = AEHigherResolutionHead(in_channels=8,
                                  num_deconv_layers=2,
                                  deconv_out_channels=(8, 8),
                                  deconv_kernel_sizes=(4, 4),
                                  cat_output=(True, True),
                                  with_ae_loss=(True, False, False),
                                  loss=dict(type='HigherHRNetLoss',
                                            heatmap_loss_factors=(1., 1., 1.),
                                            with_ae_loss=(True, False, False)))
    sample, _ = _packed_sample(rng, 1)
    with pytest.raises(ValueError, match='targets have 2 levels, the head predicts 3'):
        head.loss((torch.rand(1, 8, 8, 8), ), [sample])
