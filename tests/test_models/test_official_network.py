"""The network equals the official ``PoseHigherResolutionNet`` bit for bit with its weights.

The official module (``lib/models/pose_higher_hrnet.py``) is read at run time
(``tests/_official_code.py``); skipped when that code is absent.
"""
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from mmpose.registry import MODELS

import higherhrnet_plugin  # noqa: F401  (registers the plugin)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _data import CONFIG_DIR  # noqa: E402
from _official_code import forget, import_official  # noqa: E402


def _stage(branches, modules, channels):
    return dict(NUM_MODULES=modules, NUM_BRANCHES=branches, BLOCK='BASIC',
                NUM_BLOCKS=[4] * branches, NUM_CHANNELS=channels[:branches], FUSE_METHOD='SUM')


def _official_cfg(width):
    """The official ``experiments/coco/higher_hrnet/w{32,48}_*.yaml`` model section."""
    channels = [width * 2**i for i in range(4)]
    return ConfigDict(
        MODEL=dict(
            NUM_JOINTS=17, TAG_PER_JOINT=True, INIT_WEIGHTS=False,
            EXTRA=dict(FINAL_CONV_KERNEL=1, PRETRAINED_LAYERS=['*'], STEM_INPLANES=64,
                       STAGE2=_stage(2, 1, channels), STAGE3=_stage(3, 4, channels),
                       STAGE4=_stage(4, 3, channels),
                       DECONV=dict(NUM_DECONVS=1, NUM_CHANNELS=[width], KERNEL_SIZE=[4],
                                   NUM_BASIC_BLOCKS=4, CAT_OUTPUT=[True]))),
        LOSS=dict(WITH_AE_LOSS=[True, False], WITH_HEATMAPS_LOSS=[True, True]))


@pytest.fixture(scope='module')
def official_module(tmp_path_factory):
    root = tmp_path_factory.mktemp('official')
    module = import_official(root, 'lib/models/pose_higher_hrnet.py', {})
    yield module
    forget(root, module, {})


@pytest.mark.parametrize('config,width', [('higherhrnet_w32_coco_512.py', 32)])
def test_outputs_equal_the_official_module(official_module, config, width):
    torch.manual_seed(0)
    official = official_module.PoseHigherResolutionNet(_official_cfg(width)).eval()
    for name, tensor in official.state_dict().items():  # random weights and BN statistics
        if tensor.is_floating_point():
            tensor.copy_(torch.rand_like(tensor) * (0.5 if 'running_var' in name else 0.2) +
                         (0.75 if 'running_var' in name else -0.1))
    cfg = Config.fromfile(str(CONFIG_DIR / config))
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmpose'):
        model = MODELS.build(cfg.model).eval()
    # The official key layout, loaded strictly through the estimator's hook.
    model.load_state_dict(official.state_dict(), strict=True)

    image = torch.randn(1, 3, 128, 192)
    with torch.no_grad():
        expected = official(image)
        outputs = model.head.forward(model.extract_feat(image))
    assert [tuple(o.shape) for o in outputs] == [(1, 34, 32, 48), (1, 17, 64, 96)]
    assert expected[0].abs().max() > 1e-3  # not a trivially zero output
    for output, reference in zip(outputs, expected):
        assert torch.equal(output, reference)
