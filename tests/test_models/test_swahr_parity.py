"""SWAHR configs against SWAHR's own code on the same inputs.

- the network of a SWAHR config equals SWAHR's ``PoseHigherResolutionNet`` bit for bit with its
  weights (loaded through the checkpoint hook): mmpose's HRNet is unchanged by SWAHR's HRNet
  edits (ReLU modules put where the official code has ``None``, never called on the data
  path; unfused branches appended after a single-output stage, never read);
- :class:`SWAHRLoss` equals SWAHR's ``MultiLossFactory`` term by term, gradients included, on
  targets made by our codec.

SWAHR's modules are read at run time (``tests/_swahr_code.py``); skipped when they are absent.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from mmpose.registry import MODELS

import higherhrnet_plugin  # noqa: F401  (registers the plugin)
from higherhrnet_plugin.codecs import MultiLevelAssociativeEmbedding
from higherhrnet_plugin.models.losses import SWAHRLoss

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _data import CONFIG_DIR  # noqa: E402
from _swahr_code import load_swahr  # noqa: E402


def _stage(branches, modules, channels):
    return dict(NUM_MODULES=modules, NUM_BRANCHES=branches, BLOCK='BASIC',
                NUM_BLOCKS=[4] * branches, NUM_CHANNELS=channels[:branches], FUSE_METHOD='SUM')


def _swahr_cfg(width, num_keypoints):
    """The model and loss sections of SWAHR's ``experiments/*/higher_hrnet/w*_*.yaml``."""
    channels = [width * 2**i for i in range(4)]
    return ConfigDict(
        MODEL=dict(
            NUM_JOINTS=num_keypoints, TAG_PER_JOINT=True, INIT_WEIGHTS=False,
            EXTRA=dict(FINAL_CONV_KERNEL=1, PRETRAINED_LAYERS=['*'], STEM_INPLANES=64,
                       STAGE2=_stage(2, 1, channels), STAGE3=_stage(3, 4, channels),
                       STAGE4=_stage(4, 3, channels),
                       DECONV=dict(NUM_DECONVS=1, NUM_CHANNELS=[width], KERNEL_SIZE=[4],
                                   NUM_BASIC_BLOCKS=4, CAT_OUTPUT=[True]))),
        LOSS=dict(NUM_STAGES=2, WITH_HEATMAPS_LOSS=[True, True], HEATMAPS_LOSS_FACTOR=[1.0, 1.0],
                  WITH_AE_LOSS=[True, False], PUSH_LOSS_FACTOR=[1e-3, 1e-3],
                  PULL_LOSS_FACTOR=[1e-3, 1e-3], AE_LOSS_TYPE='exp'))


@pytest.fixture(scope='module')
def swahr_code(tmp_path_factory):
    folder = tmp_path_factory.mktemp('swahr')
    return (load_swahr('lib/models/pose_higher_hrnet.py', folder),
            load_swahr('lib/core/loss.py', folder))


@pytest.mark.parametrize('config,width,num_keypoints,params', [
    ('higherhrnet_w32_coco_512_swahr.py', 32, 17, 28_649_309),
    ('higherhrnet_w48_crowdpose_640_swahr.py', 48, 14, 63_825_814),
])
def test_network_equals_swahrs(swahr_code, config, width, num_keypoints, params):
    torch.manual_seed(0)
    swahr = swahr_code[0].PoseHigherResolutionNet(_swahr_cfg(width, num_keypoints)).eval()
    for name, tensor in swahr.state_dict().items():  # random weights and BN statistics
        if tensor.is_floating_point():
            tensor.copy_(torch.rand_like(tensor) * (0.5 if 'running_var' in name else 0.2) +
                         (0.75 if 'running_var' in name else -0.1))
    cfg = Config.fromfile(str(CONFIG_DIR / config))
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmpose'):
        model = MODELS.build(cfg.model).eval()
    model.load_state_dict(swahr.state_dict(), strict=True)  # SWAHR's keys, through the hook

    image = torch.randn(1, 3, 128, 192)
    with torch.no_grad():
        expected = swahr(image)
        outputs = model.head.forward(model.extract_feat(image))

    K = num_keypoints
    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(p.numel() for p in swahr.parameters()) == params
    assert [tuple(o.shape) for o in outputs] == [(1, 3 * K, 32, 48), (1, 2 * K, 64, 96)]
    assert all(e[:, :K].abs().max() > 1e-3 for e in expected)  # the scale maps are not zero
    for output, reference in zip(outputs, expected):
        assert torch.equal(output, reference)


def _targets(batch_size, num_keypoints, seed):
    """Targets of our codec for 4 random persons per image, a random mask, SWAHR's joints."""
    codec = MultiLevelAssociativeEmbedding(input_size=(128, 128),
                                           heatmap_sizes=((32, 32), (64, 64)), sigma=2)
    rng = np.random.default_rng(seed)
    heatmaps, masks, indices, joints = [[], []], [[], []], [], []
    for _ in range(batch_size):
        keypoints = rng.uniform(4, 124, (4, num_keypoints, 2)).astype(np.float32)
        encoded = codec.encode(keypoints, (rng.uniform(size=(4, num_keypoints)) > 0.2) * 1.0)
        for level in range(2):
            heatmaps[level].append(torch.from_numpy(encoded['heatmaps'][level]))
            masks[level].append(torch.from_numpy(rng.uniform(size=(32 << level, ) * 2) > 0.1))
        indices.append(torch.from_numpy(encoded['keypoint_indices']).long())
        padded = np.zeros((30, num_keypoints, 2), np.int64)  # SWAHR: MAX_NUM_PEOPLE rows
        padded[:4] = encoded['keypoint_indices']
        joints.append(padded)
    joints = torch.from_numpy(np.stack(joints))
    return ([torch.stack(h) for h in heatmaps], [torch.stack(m).float() for m in masks],
            indices, [joints, joints])


def test_loss_equals_swahrs(swahr_code):
    K, B = 17, 3
    heatmaps, masks, indices, joints = _targets(B, K, seed=0)
    assert all((h == 1).any() and (h == 0).any() for h in heatmaps)  # peaks and background
    gen = torch.Generator().manual_seed(0)
    outputs = [torch.randn(B, 3 * K, 32, 32, generator=gen) * 0.5,
               torch.randn(B, 2 * K, 64, 64, generator=gen) * 0.5]
    theirs_in = [o.clone().requires_grad_() for o in outputs]
    ours_in = [o.clone().requires_grad_() for o in outputs]

    heatmap, scale, push, pull = swahr_code[1].MultiLossFactory(_swahr_cfg(32, K))(
        theirs_in, heatmaps, masks, joints)
    # SWAHR's trainer averages every per-image term over the batch.
    theirs = dict(loss_heatmap_l0=heatmap[0].mean(), loss_heatmap_l1=heatmap[1].mean(),
                  loss_scale_l0=scale[0].mean(), loss_scale_l1=scale[1].mean(),
                  loss_push=push[0].mean(), loss_pull=pull[0].mean())
    ours = SWAHRLoss(num_keypoints=K)(ours_in, heatmaps, masks, indices)

    assert set(ours) == set(theirs)
    for name, value in theirs.items():
        assert value > 0, name
        torch.testing.assert_close(ours[name], value, rtol=0, atol=1e-6)
    sum(theirs.values()).backward()
    sum(ours.values()).backward()
    for mine, reference in zip(ours_in, theirs_in):
        torch.testing.assert_close(mine.grad, reference.grad, rtol=0, atol=1e-9)
