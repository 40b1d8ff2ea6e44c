"""SWAHR's published layout (the official one plus the scale branch) through
higherhrnet_plugin/models/utils/checkpoint_layout.py, and mix-ups with HigherHRNet weights."""
import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint

from higherhrnet_plugin.models.utils import convert_state_dict, detect_family, infer_arch
from _official_layout import official_layout, split_backbone_head, swahr_layout  # noqa: E402
from test_checkpoint_layout import (REPO, _build, expected_values,  # noqa: F401  (fixtures)
                                    official, official_state_dict, w32_model)

W32_SWAHR_CONFIG = REPO / 'configs' / 'higherhrnet_w32_coco_512_swahr.py'


@pytest.fixture(scope='module')
def swahr():
    return official_state_dict(seed=2, swahr=True)


@pytest.fixture(scope='module')
def w32_swahr_model():
    return _build(W32_SWAHR_CONFIG)


def test_swahr_family_maps_every_tensor_to_its_parameter(swahr):
    expected = expected_values(swahr, 'swahr')
    # Per level: 1x1 conv weight + bias, BN (5), depth-wise conv weight + bias.
    assert len(swahr) - len(official_layout()) == 2 * 9
    assert expected['head.conv_scale_layers.0.3.weight'].shape == (17, 1, 9, 9)

    converted = convert_state_dict(swahr, expected=split_backbone_head(swahr))

    assert detect_family(swahr) == 'swahr'
    assert detect_family({'state_dict': {'module.' + k: v for k, v in swahr.items()}}) == 'swahr'
    assert detect_family(converted) == 'plugin'  # our own SWAHR checkpoints
    assert infer_arch(swahr) == (32, 17)
    assert list(converted) == list(expected)
    for key, value in converted.items():
        assert torch.equal(value, expected[key]), key


@pytest.mark.parametrize('width,num_keypoints', [(48, 17), (48, 14)])
def test_swahr_family_by_shape(width, num_keypoints):
    swahr = official_state_dict(width, num_keypoints, device='meta', swahr=True)
    expected = split_backbone_head(swahr_layout(width, num_keypoints))

    converted = convert_state_dict(swahr, expected=expected)

    assert {k: tuple(v.shape) for k, v in converted.items()} == expected
    assert converted['head.conv_scale_layers.1.0.weight'].shape == (num_keypoints, width, 1, 1)


def test_swahr_checkpoint_loads_strictly_into_the_swahr_config(swahr, w32_swahr_model, tmp_path):
    # Built from the architecture: every tensor of the SWAHR layout has its place in the model.
    assert {k: tuple(v.shape) for k, v in w32_swahr_model.state_dict().items()} == \
        split_backbone_head(swahr_layout())
    path = tmp_path / 'pose_higher_hrnet_w32_512.pth'  # SWAHR names its files as the official
    torch.save(swahr, path)

    load_checkpoint(w32_swahr_model, str(path), map_location='cpu', strict=True)

    expected = expected_values(swahr, 'swahr')
    loaded = w32_swahr_model.state_dict()
    assert list(loaded) == list(expected)
    for key, value in loaded.items():
        assert torch.equal(value, expected[key]), key
    head = w32_swahr_model.head
    assert torch.equal(head.conv_scale_layers[1][3].bias, swahr['conv_scale_layers.1.3.bias'])
    assert torch.equal(head.final_layers[0].weight, swahr['final_layers.0.weight'])


def test_swahr_and_higherhrnet_weights_mixed_up_name_the_fix(swahr, official, w32_model,
                                                              w32_swahr_model):
    with pytest.raises(ValueError, match=r'18 unexpected \(head\.conv_scale_layers.*use a SWAHR '
                       r'config \(configs/\*_swahr\.py, head type SWAHRHead\)'):
        convert_state_dict(swahr, expected=w32_model.state_dict())
    with pytest.raises(ValueError, match=r'18 missing \(head\.conv_scale_layers.*The model has '
                       r"SWAHR's scale branch \(SWAHRHead\) and the checkpoint has none"):
        convert_state_dict(official, expected=w32_swahr_model.state_dict())
    with pytest.raises(RuntimeError, match='Unexpected key.*head.conv_scale_layers.0.0.weight'):
        w32_model.load_state_dict(swahr, strict=True)  # torch's own message, after the hook
