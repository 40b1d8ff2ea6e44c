"""HigherHRNetLoss against hand-computed values and a loop transcription of the official AELoss.

AE cases use K = 2 keypoints on a 1x4 tag map, so the flat tag index of keypoint k at
column x is k*4 + x, and tag values are placed by hand.
"""
import math

import numpy as np
import pytest
import torch

from higherhrnet_plugin.models.losses import HigherHRNetLoss

K = 2


def make_loss(**kwargs) -> HigherHRNetLoss:
    cfg = dict(num_keypoints=K, push_loss_factor=1.0, pull_loss_factor=1.0)
    cfg.update(kwargs)
    return HigherHRNetLoss(**cfg)


def ae_inputs(tag_maps, requires_grad=False):
    """Two-level inputs whose heatmap losses are zero; tag_maps: per image, {flat index: tag}."""
    batch = len(tag_maps)
    level0 = torch.zeros(batch, 2 * K, 1, 4, dtype=torch.float64)
    for b, tags in enumerate(tag_maps):
        flat = level0[b, K:].view(-1)
        for index, value in tags.items():
            flat[index] = value
    level0.requires_grad_(requires_grad)
    outputs = [level0, torch.zeros(batch, K, 2, 8, dtype=torch.float64)]
    heatmaps = [torch.zeros(batch, K, 1, 4), torch.zeros(batch, K, 2, 8)]
    masks = [torch.ones(batch, 1, 4), torch.ones(batch, 2, 8)]
    return outputs, heatmaps, masks


# Image cases: (tag values, keypoint indices (N, K, 2), expected pull, push 'exp', push 'max').
NO_PERSON = ({}, np.zeros((0, K, 2), np.int64), 0.0, 0.0, 0.0)
NO_VISIBLE_JOINT = ({0: 7.0}, np.zeros((2, K, 2), np.int64), 0.0, 0.0, 0.0)
# One person, tags 1 and 3: mean 2, pull = ((1-2)^2 + (3-2)^2) / 2 = 1; no push.
ONE_PERSON = ({0: 1.0, 5: 3.0}, np.array([[[0, 1], [5, 1]]]), 1.0, 0.0, 0.0)
# Add a person with one tag 5 (pull 0): pull = (1 + 0) / 2; means 2 and 5, so the two ordered
# pairs give push = 0.5 * 2 exp(-9) / (2 * 1) ('exp') and max(0, 1 - 3) = 0 ('max').
TWO_PERSONS = ({
    0: 1.0,
    5: 3.0,
    2: 5.0
}, np.array([[[0, 1], [5, 1]], [[2, 1], [0, 0]]]), 0.5, 0.5 * math.exp(-9), 0.0)
# Means 0 (tags -1, 1: pull 1), 0.5 and 2 (pull 0); an all-invalid row between them is skipped.
# push 'exp' = 0.5 * 2 (e^-0.25 + e^-4 + e^-2.25) / (3 * 2); 'max' = 0.5 * 2 * 0.5 / 6.
THREE_PERSONS = ({
    0: -1.0,
    4: 1.0,
    1: 0.5,
    2: 2.0,
    6: 2.0
}, np.array([[[0, 1], [4, 1]], [[0, 0], [0, 0]], [[1, 1], [0, 0]],
             [[2, 1],
              [6, 1]]]), 1 / 3, (math.exp(-0.25) + math.exp(-4) + math.exp(-2.25)) / 6, 1 / 12)
CASES = [NO_PERSON, NO_VISIBLE_JOINT, ONE_PERSON, TWO_PERSONS, THREE_PERSONS]
CASE_IDS = ['0 persons', 'no visible joint', '1 person', '2 persons', '3 persons']


@pytest.mark.parametrize('ae_loss_type', ['exp', 'max'])
@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_ae_loss_single_image(case, ae_loss_type):
    tags, indices, pull, push_exp, push_max = case
    losses = make_loss(ae_loss_type=ae_loss_type)(*ae_inputs([tags]), [indices])
    assert losses['loss_pull'].item() == pytest.approx(pull, abs=1e-12)
    push = push_exp if ae_loss_type == 'exp' else push_max
    assert losses['loss_push'].item() == pytest.approx(push, abs=1e-12)


@pytest.mark.parametrize('batch_reduction, reduce', [('mean', np.mean), ('sum', np.sum)])
def test_ae_loss_batch_reduction_and_factors(batch_reduction, reduce):
    loss = make_loss(batch_reduction=batch_reduction, push_loss_factor=1e-3, pull_loss_factor=2.0)
    losses = loss(*ae_inputs([c[0] for c in CASES]), [torch.as_tensor(c[1]) for c in CASES])
    assert losses['loss_pull'].item() == pytest.approx(2.0 * reduce([c[2] for c in CASES]))
    assert losses['loss_push'].item() == pytest.approx(1e-3 * reduce([c[3] for c in CASES]))
    # The heatmap loss is a batch mean whatever batch_reduction says.
    assert set(losses) == {'loss_heatmap_l0', 'loss_heatmap_l1', 'loss_pull', 'loss_push'}


def test_ae_gradient_reaches_the_tags_through_the_mean_tag():
    """Two persons: A has tags t1 = 1, t3 = 3 (mean 2), B has t5 = 5.

    pull = ((t1-m)^2 + (t3-m)^2) / 2 / 2 persons: d/dt1 = -0.5, d/dt3 = +0.5.
    push = 0.5 exp(-(mA - mB)^2), d = mA - mB = -3: d push/d mA = -d exp(-d^2) = 3 e^-9, so
    1.5 e^-9 on each of A's tags (mean of 2) and -3 e^-9 on B's. Nothing elsewhere.
    """
    tags, indices = TWO_PERSONS[:2]
    outputs, heatmaps, masks = ae_inputs([tags], requires_grad=True)
    losses = make_loss()(outputs, heatmaps, masks, [indices])
    (losses['loss_pull'] + losses['loss_push']).backward()
    grad = outputs[0].grad
    expected = torch.zeros(2 * K, 1, 4, dtype=torch.float64)
    flat = expected[K:].view(-1)
    flat[0] = -0.5 + 1.5 * math.exp(-9)
    flat[5] = 0.5 + 1.5 * math.exp(-9)
    flat[2] = -3 * math.exp(-9)
    torch.testing.assert_close(grad[0], expected, rtol=0, atol=1e-12)


def test_heatmap_loss_hand_computed():
    """Masked MSE averaged over K*H*W (not over the mask), then over the batch."""
    outputs = [torch.zeros(2, 2 * K, 2, 3), torch.ones(2, K, 4, 6)]
    outputs[0][:, K:] = 9.0  # tag channels do not enter the heatmap loss
    gt0 = torch.zeros(2, K, 2, 3)
    gt0[0, 0, 0, 0] = gt0[0, 0, 1, 2] = gt0[0, 1, 1, 0] = 1.0
    gt0[1] = 0.5
    mask0 = torch.ones(2, 2, 3, dtype=torch.bool)
    mask0[0, 1, 2] = False  # hides one of image 0's three errors
    mask1 = torch.ones(2, 1, 4, 6)
    mask1[:, :, :2] = 0.0  # hides half of level 1
    heatmaps = [gt0, torch.zeros(2, K, 4, 6)]
    indices = [np.zeros((0, K, 2))] * 2
    losses = make_loss(heatmap_loss_factors=(1.0, 2.0))(outputs, heatmaps, [mask0, mask1], indices)
    # Image 0: 2 unmasked errors of 1 over 12 elements; image 1: 0.25 everywhere.
    assert losses['loss_heatmap_l0'].item() == pytest.approx((2 / 12 + 0.25) / 2)
    # Level 1: error 1 on the unmasked half, factor 2.
    assert losses['loss_heatmap_l1'].item() == pytest.approx(2.0 * 0.5)


def test_mask_layouts_agree():
    rng = torch.Generator().manual_seed(0)
    outputs = [torch.rand(3, 2 * K, 4, 5, generator=rng), torch.rand(3, K, 8, 10, generator=rng)]
    heatmaps = [torch.rand(3, K, 4, 5, generator=rng), torch.rand(3, K, 8, 10, generator=rng)]
    masks = [torch.rand(3, 4, 5, generator=rng) > 0.5, torch.rand(3, 8, 10, generator=rng) > 0.5]
    indices = [np.zeros((0, K, 2))] * 3
    loss = make_loss()
    as_bool = loss(outputs, heatmaps, masks, indices)
    as_float = loss(outputs, heatmaps, [m[:, None].float() for m in masks], indices)
    for level in range(2):
        key = f'loss_heatmap_l{level}'
        assert as_bool[key].item() == pytest.approx(as_float[key].item())
        expected = ((outputs[level][:, :K] - heatmaps[level])**2 * masks[level][:, None]).mean()
        assert as_bool[key].item() == pytest.approx(expected.item())


def _official_ae(tags, joints, loss_type):
    """Loop transcription of the official per-image AELoss (reference_spec section 4)."""
    means, pull = [], 0.0
    for row in joints:
        person = [tags[i] for i, v in row if v > 0]
        if not person:
            continue
        mean = sum(person) / len(person)
        means.append(mean)
        pull += sum((t - mean)**2 for t in person) / len(person)
    n = len(means)
    if n == 0:
        return 0.0, 0.0
    if n == 1:
        return pull, 0.0
    if loss_type == 'exp':
        total = sum(math.exp(-(a - b)**2) for a in means for b in means)
    else:
        total = sum(max(0.0, 1 - abs(a - b)) for a in means for b in means)
    return pull / n, (total - n) / ((n - 1) * n) * 0.5


@pytest.mark.parametrize('ae_loss_type', ['exp', 'max'])
def test_ae_loss_matches_official_loops(ae_loss_type):
    rng = np.random.default_rng(0)
    batch, height, width = 4, 3, 5
    outputs = [
        torch.as_tensor(rng.normal(size=(batch, 2 * K, height, width)) * 0.8),
        torch.zeros(batch, K, 6, 10, dtype=torch.float64)
    ]
    heatmaps = [torch.zeros(batch, K, height, width), torch.zeros(batch, K, 6, 10)]
    masks = [torch.ones(batch, height, width), torch.ones(batch, 6, 10)]
    indices, expected = [], []
    for b, num_people in enumerate([0, 1, 3, 5]):
        cells = rng.integers(0, height * width, size=(num_people, K))
        valid = rng.random((num_people, K)) < 0.7
        rows = np.stack([np.arange(K) * height * width + cells, np.ones_like(cells)], -1)
        indices.append(rows * valid[..., None])
        flat_tags = outputs[0][b, K:].reshape(-1).tolist()
        expected.append(_official_ae(flat_tags, indices[-1].tolist(), ae_loss_type))
    losses = make_loss(ae_loss_type=ae_loss_type)(outputs, heatmaps, masks, indices)
    assert losses['loss_pull'].item() == pytest.approx(np.mean([e[0] for e in expected]))
    assert losses['loss_push'].item() == pytest.approx(np.mean([e[1] for e in expected]))


def test_default_factors_and_registry():
    from mmpose.registry import MODELS
    loss = MODELS.build(dict(type='HigherHRNetLoss', num_keypoints=K))
    assert loss.with_ae_loss == (True, False)
    losses = loss(*ae_inputs([TWO_PERSONS[0]]), [TWO_PERSONS[1]])
    assert losses['loss_pull'].item() == pytest.approx(1e-3 * 0.5)
    assert losses['loss_push'].item() == pytest.approx(1e-3 * 0.5 * math.exp(-9))


def test_no_ae_level():
    loss = make_loss(heatmap_loss_factors=(1.0, ), with_ae_loss=(False, ))
    losses = loss([torch.ones(1, K, 2, 2)], [torch.zeros(1, K, 2, 2)], [torch.ones(1, 2, 2)],
                  [np.zeros((0, K, 2))])
    assert losses == {'loss_heatmap_l0': pytest.approx(1.0)}


@pytest.mark.parametrize('kwargs, message', [
    (dict(num_keypoints=0), 'num_keypoints'),
    (dict(heatmap_loss_factors=(1.0, )), 'one entry per level'),
    (dict(with_ae_loss=(True, True)), 'at most one level'),
    (dict(ae_loss_type='abs'), 'ae_loss_type'),
    (dict(batch_reduction='median'), 'batch_reduction'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HigherHRNetLoss(**kwargs)


def test_bad_inputs():
    outputs, heatmaps, masks = ae_inputs([{}])
    indices = [np.zeros((0, K, 2))]
    loss = make_loss()
    with pytest.raises(ValueError, match='levels'):
        loss(outputs[:1], heatmaps, masks, indices)
    with pytest.raises(ValueError, match='differ'):
        loss(outputs, [heatmaps[0][:, :1], heatmaps[1]], masks, indices)
    with pytest.raises(ValueError, match='channels'):
        loss([outputs[0][:, :K], outputs[1]], heatmaps, masks, indices)
    with pytest.raises(ValueError, match='batch size'):
        loss(outputs, heatmaps, masks, indices * 2)
