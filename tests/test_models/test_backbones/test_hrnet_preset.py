import sys
from pathlib import Path

import pytest
import torch
from mmengine.registry import DefaultScope

from higherhrnet_plugin.models import AEHigherResolutionHead, HRNetPreset
from higherhrnet_plugin.models.backbones.hrnet_preset import ARCH_SETTINGS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import _official_layout as official  # noqa: E402


@pytest.fixture(autouse=True)
def mmpose_scope():
    """Build from mmpose's registries whatever default scope earlier tests left behind."""
    with DefaultScope.overwrite_default_scope('mmpose'):
        yield


def _backbone_and_head(width: int):
    backbone = HRNetPreset(arch=f'w{width}')
    head = AEHigherResolutionHead(in_channels=width,
                                  deconv_out_channels=(width, ),
                                  loss=dict(type='HigherHRNetLoss'))
    return backbone, head


def _state_dict_shapes(backbone, head):
    shapes = {f'backbone.{k}': tuple(v.shape) for k, v in backbone.state_dict().items()}
    shapes.update({f'head.{k}': tuple(v.shape) for k, v in head.state_dict().items()})
    return shapes


@pytest.mark.parametrize('width, num_params', [(32, 28_645_331), (48, 63_827_139)])
def test_params_and_state_dict_equal_official(width, num_params):
    backbone, head = _backbone_and_head(width)
    layout = official.official_layout(width)

    assert official.official_num_params(layout) == num_params  # the generator matches the spec
    assert sum(p.numel()
               for p in backbone.parameters()) + sum(p.numel()
                                                     for p in head.parameters()) == num_params
    # Same keys (1810, buffers included), same shapes: official weights load by prefix only.
    assert _state_dict_shapes(backbone, head) == official.split_backbone_head(layout)


def test_head_keys_follow_official_nesting():
    _, head = _backbone_and_head(32)
    state = head.state_dict()
    assert state['deconv_layers.0.0.0.weight'].shape == (66, 32, 4, 4)
    assert state['deconv_layers.0.1.0.conv1.weight'].shape == (32, 32, 3, 3)
    assert state['deconv_layers.0.4.0.bn2.running_var'].shape == (32, )
    assert state['final_layers.0.weight'].shape == (34, 32, 1, 1)
    assert state['final_layers.1.bias'].shape == (17, )


@pytest.mark.parametrize('arch, width', [('w18', 18), ('w32', 32), ('w48', 48)])
def test_output_is_the_quarter_resolution_branch(arch, width):
    backbone = HRNetPreset(arch=arch)
    backbone.eval()  # mmpose's HRNet.train() returns None: no chaining
    with torch.no_grad():
        outputs = backbone(torch.rand(2, 3, 64, 96))
    assert isinstance(outputs, tuple) and len(outputs) == 1
    assert outputs[0].shape == (2, width, 16, 24)
    assert ARCH_SETTINGS[arch]['stage4']['num_channels'] == (width, 2 * width, 4 * width,
                                                             8 * width)


def test_backbone_and_head_output_shapes():
    backbone, head = _backbone_and_head(32)
    backbone.eval(), head.eval()
    with torch.no_grad():
        outputs = head(backbone(torch.rand(1, 3, 128, 192)))
    assert [tuple(o.shape) for o in outputs] == [(1, 34, 32, 48), (1, 17, 64, 96)]


def test_kwargs_pass_through_to_hrnet():
    backbone = HRNetPreset(arch='w18',
                           frozen_stages=1,
                           norm_eval=True,
                           in_channels=1,
                           norm_cfg=dict(type='BN', momentum=0.2))
    backbone.train()
    assert backbone.conv1.weight.shape == (64, 1, 3, 3)
    assert not any(p.requires_grad for p in backbone.layer1.parameters())
    assert all(p.requires_grad for p in backbone.stage2.parameters())
    assert not backbone.bn1.training  # norm_eval keeps BN statistics frozen
    assert backbone.stage2[0].branches[0][0].bn1.momentum == 0.2


def test_unknown_arch_and_explicit_extra_are_rejected():
    with pytest.raises(ValueError, match="Unknown HRNetPreset arch 'w64'"):
        HRNetPreset(arch='w64')
    with pytest.raises(TypeError, match='extra'):
        HRNetPreset(arch='w32', extra=ARCH_SETTINGS['w32'])


def test_presets_are_not_shared_between_instances():
    backbone = HRNetPreset(arch='w18')
    backbone.extra['stage2']['num_blocks'] = (1, 1)
    assert ARCH_SETTINGS['w18']['stage2']['num_blocks'] == (4, 4)
