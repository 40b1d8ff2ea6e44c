"""SWAHRLoss against values worked out by hand, and its relation to HigherHRNetLoss.

Parity with SWAHR's own ``MultiLossFactory`` is in tests/test_models/test_swahr_parity.py.
"""
import math

import pytest
import torch

from higherhrnet_plugin.models.losses import HigherHRNetLoss, SWAHRLoss

E1 = math.exp(-1)  # a Gaussian value with log(gt) = -1


def _one_level_loss(**kwargs):
    return SWAHRLoss(num_keypoints=1, heatmap_loss_factors=(1.0, ), with_ae_loss=(False, ),
                     **kwargs)


def _hand_case():
    """K = 1, one 2x2 map; channels (scale s, heatmap p); pixel (1, 1) is masked out.

    ====== ======== ===== ===== ==================================================== ========
    pixel  gt       s     p     target, weight                                        loss
    ====== ======== ===== ===== ==================================================== ========
    (0, 0) 0        0.7   0.2   s' = 0: target 0; weight |p| = 0.2                    0.008
    (0, 1) 1        0.5   0.6   log 1 = 0: target 1; weight |1 - p| = 0.4             0.064
    (1, 0) e^-1     -0.4  0.3   target e^-1 (1 + 0.4 + 0.08) = 0.5444616;             0.0415952
                                weight 0.7 e^-0.01 + 0.3 (1 - e^-0.01) = 0.6960199
    (1, 1) 0.5      0.9   0.1   masked                                                0
    ====== ======== ===== ===== ==================================================== ========
    """
    scale = torch.tensor([[0.7, 0.5], [-0.4, 0.9]])
    pred = torch.tensor([[0.2, 0.6], [0.3, 0.1]])
    output = torch.stack((scale, pred))[None].requires_grad_()
    target = torch.tensor([[[[0.0, 1.0], [E1, 0.5]]]])
    mask = torch.tensor([[[True, True], [True, False]]])
    return output, target, mask


def test_hand_computed_values_with_gt_zero_and_one():
    output, target, mask = _hand_case()

    losses = _one_level_loss()([output], [target], [mask], [])

    assert set(losses) == {'loss_heatmap_l0', 'loss_scale_l0'}
    # The four pixels of the table, averaged over K*H*W = 4 (not over the mask's sum).
    assert losses['loss_heatmap_l0'].item() == pytest.approx(
        (0.008 + 0.064 + 0.0415952 + 0) / 4, rel=1e-6)
    # s' = s on Gaussian pixels, 0 where gt = 0; the masked pixel drops out: (0.5^2 + 0.4^2) / 4.
    assert losses['loss_scale_l0'].item() == pytest.approx(0.1025, rel=1e-6)


def test_gradients_by_hand():
    output, target, mask = _hand_case()
    losses = _one_level_loss()([output], [target], [mask], [])
    sum(losses.values()).backward()
    grad_scale, grad_pred = output.grad[0]

    # gt = 0: the scale is zeroed there, no gradient; gt = 1: log(gt) = 0, so only the
    # regulariser, d(s^2 / 4)/ds = 0.5 * 0.5 / 1; masked pixel: nothing.
    assert grad_scale[0, 0].item() == 0
    assert grad_scale[0, 1].item() == pytest.approx(0.25, rel=1e-6)
    assert grad_scale[1, 1].item() == 0 and grad_pred[1, 1].item() == 0
    # gt = 0, p = 0.2: d(p^2 |p|)/dp / 4 = 3 p^2 / 4 (the weight is not detached).
    assert grad_pred[0, 0].item() == pytest.approx(3 * 0.2**2 / 4, rel=1e-6)
    # gt = 1, p = 0.6: d((p - 1)^2 (1 - p))/dp / 4 = -3 (1 - p)^2 / 4.
    assert grad_pred[0, 1].item() == pytest.approx(-3 * 0.4**2 / 4, rel=1e-6)
    # gt = e^-1: the heatmap term reaches s through the target (not detached either):
    # d target/ds = gt L + gt L^2 s = -1.4 e^-1, plus the regulariser's 2 s / 4.
    target, weight = 1.48 * E1, 0.7 * math.exp(-0.01) + 0.3 * (1 - math.exp(-0.01))
    assert grad_scale[1, 0].item() == pytest.approx(
        weight * 2 * (0.3 - target) * 1.4 * E1 / 4 + 2 * -0.4 / 4, rel=1e-5)


def test_factors_weight_their_own_terms():
    output, target, mask = _hand_case()
    plain = _one_level_loss()([output], [target], [mask], [])
    weighted = SWAHRLoss(num_keypoints=1, heatmap_loss_factors=(3.0, ), with_ae_loss=(False, ),
                         scale_loss_factor=0.5)([output], [target], [mask], [])
    torch.testing.assert_close(weighted['loss_heatmap_l0'], 3 * plain['loss_heatmap_l0'])
    torch.testing.assert_close(weighted['loss_scale_l0'], 0.5 * plain['loss_scale_l0'])


def test_zero_scale_and_exact_prediction_cost_nothing():
    """s = 0 leaves the Gaussian as it is; predicting it exactly costs 0 everywhere."""
    target = torch.rand(2, 3, 5, 5)
    target[:, :, 0] = 0
    output = torch.cat((torch.zeros_like(target), target), dim=1)
    losses = SWAHRLoss(num_keypoints=3, heatmap_loss_factors=(1.0, ),
                       with_ae_loss=(False, ))([output], [target], [torch.ones(2, 5, 5)], [])
    assert losses['loss_heatmap_l0'].item() == 0 and losses['loss_scale_l0'].item() == 0


def test_ae_terms_read_the_tags_after_the_scale_map():
    K = 3
    gen = torch.Generator().manual_seed(0)
    outputs = [torch.randn(2, 3 * K, 4, 4, generator=gen), torch.randn(2, 2 * K, 8, 8, generator=gen)]
    heatmaps = [torch.rand(2, K, 4, 4, generator=gen), torch.rand(2, K, 8, 8, generator=gen)]
    masks = [torch.ones(2, 4, 4), torch.ones(2, 8, 8)]
    indices = [torch.tensor([[[0, 1], [17, 1], [40, 1]], [[5, 1], [20, 1], [33, 0]]]),
               torch.tensor([[[3, 1], [30, 1], [47, 1]]])]

    swahr = SWAHRLoss(num_keypoints=K)(outputs, heatmaps, masks, indices)
    plain = HigherHRNetLoss(num_keypoints=K)([o[:, K:] for o in outputs], heatmaps, masks,
                                             indices)

    assert set(swahr) == {'loss_heatmap_l0', 'loss_heatmap_l1', 'loss_scale_l0',
                          'loss_scale_l1', 'loss_pull', 'loss_push'}
    for name in ('loss_pull', 'loss_push'):
        torch.testing.assert_close(swahr[name], plain[name], rtol=0, atol=0)
    assert swahr['loss_pull'] > 0 and swahr['loss_push'] > 0


def test_outputs_without_the_scale_map_are_rejected():
    with pytest.raises(ValueError, match=r'need K scale and K heatmap channels.*\(1, 1, 2, 2\)'):
        _one_level_loss()([torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 1, 2, 2)],
                          [torch.ones(1, 2, 2)], [])
