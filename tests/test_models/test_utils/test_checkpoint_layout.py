"""Tests of higherhrnet_plugin/models/utils/checkpoint_layout.py.

The published checkpoints cannot be downloaded here, so each family is rebuilt from the
official architecture (every key and shape of tests/_official_layout.py) with random,
distinct values: ``official`` (bare keys, fp32), ``official_fp16`` (``1.`` prefix, fp16
convolutions, fp32 BatchNorm, as the official FP16 wrapper saves them) and ``mmpose0x``
(``backbone.`` / ``keypoint_head.`` inside ``{'state_dict', 'meta'}``); ``swahr`` is the
official layout plus SWAHR's scale branch (``swahr_layout``), stored as the official one
(its tests: test_checkpoint_layout_swahr.py).
"""
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint
from mmpose.registry import MODELS
from torch import nn

import higherhrnet_plugin  # noqa: F401  (registers the plugin)
from higherhrnet_plugin.models.utils import (check_layout, convert_state_dict, detect_family,
                                             infer_arch, rename_key, to_plugin_layout,
                                             unwrap_state_dict)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _official_layout import official_layout, split_backbone_head, swahr_layout  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
W32_CONFIG = REPO / 'configs' / 'higherhrnet_w32_coco_512.py'
FAMILIES = ('official', 'official_fp16', 'mmpose0x')


def official_state_dict(width=32, num_keypoints=17, seed=0, device='cpu', swahr=False):
    """Official-layout (``swahr``: SWAHR-layout) fp32 state dict; random values
    (``device='meta'``: shapes only)."""
    gen = torch.Generator().manual_seed(seed)
    layout = (swahr_layout if swahr else official_layout)(width, num_keypoints)
    counts = torch.randperm(10**6, generator=gen)[:len(layout)] + 1
    state_dict = OrderedDict()
    for i, (key, shape) in enumerate(layout.items()):
        if device == 'meta':
            state_dict[key] = torch.empty(shape, device='meta', dtype=_dtype(key))
        elif key.endswith('num_batches_tracked'):
            state_dict[key] = counts[i].clone()
        else:
            state_dict[key] = torch.randn(shape, generator=gen)
    return state_dict


def _dtype(key):
    return torch.int64 if key.endswith('num_batches_tracked') else torch.float32


def publish(official, family):
    """``official`` as the published files of ``family`` store it."""
    if family in ('official', 'swahr'):
        return official
    if family == 'official_fp16':
        # network_to_half: everything .half() except BatchNorm (modules with running stats).
        bn = {k.rsplit('.', 1)[0] for k in official if k.endswith('running_mean')}
        return OrderedDict(
            (f'1.{k}', v if k.rsplit('.', 1)[0] in bn else v.half()) for k, v in official.items())
    if family == 'mmpose0x':
        head = ('final_layers', 'deconv_layers')
        state_dict = OrderedDict(
            (('keypoint_head.' if k.split('.')[0] in head else 'backbone.') + k, v)
            for k, v in official.items())
        meta = dict(mmcv_version='1.0.5', epoch=300, iter=385500, config='model = dict(...)')
        return dict(meta=meta, state_dict=state_dict)
    raise ValueError(family)


def expected_values(official, family):
    """Plugin key -> the float32 value that must arrive there."""
    plugin_keys = split_backbone_head(official)
    values = publish(official, family)
    values = values.get('state_dict', values)
    return OrderedDict((new, values[old].float() if values[old].is_floating_point() else
                        values[old]) for new, old in zip(plugin_keys, values))


@pytest.fixture(scope='module')
def official():
    return official_state_dict()


def _build(config):
    init_default_scope('mmpose')
    from mmengine.config import Config
    return MODELS.build(Config.fromfile(str(config)).model)


@pytest.fixture(scope='module')
def w32_model():
    return _build(W32_CONFIG)


def test_random_values_are_distinct(official):
    # Equal values per key below mean "right parameter" only if no two tensors coincide.
    by_shape = {}
    for value in official.values():
        by_shape.setdefault(tuple(value.shape), []).append(value.numpy().tobytes())
    assert all(len(set(group)) == len(group) for group in by_shape.values())
    assert len(official) == 1810


@pytest.mark.parametrize('family', FAMILIES)
def test_convert_maps_every_tensor_to_its_parameter(official, family):
    published = publish(official, family)
    expected = expected_values(official, family)

    converted = convert_state_dict(published, expected=split_backbone_head(official))

    assert detect_family(published) == family
    assert list(converted) == list(expected)
    for key, value in converted.items():
        assert value.dtype == (torch.int64 if key.endswith('num_batches_tracked') else
                               torch.float32), key
        assert torch.equal(value, expected[key]), key


def test_fp16_family_really_is_half_precision(official):
    published = publish(official, 'official_fp16')
    assert published['1.final_layers.0.weight'].dtype == torch.float16
    assert published['1.deconv_layers.0.0.0.weight'].dtype == torch.float16
    assert published['1.bn1.weight'].dtype == torch.float32
    assert published['1.deconv_layers.0.0.1.running_var'].dtype == torch.float32
    # fp16 -> fp32 is exact: the converted value is the stored half value, not the original.
    converted = convert_state_dict(published)
    half = official['conv1.weight'].half().float()
    assert torch.equal(converted['backbone.conv1.weight'], half)
    assert not torch.equal(half, official['conv1.weight'])


@pytest.mark.parametrize('width,num_keypoints', [(32, 17), (48, 17), (32, 14), (48, 14)])
@pytest.mark.parametrize('family', FAMILIES)
def test_every_width_and_dataset_by_shape(family, width, num_keypoints):
    official = official_state_dict(width, num_keypoints, device='meta')
    published = publish(official, family)
    expected = split_backbone_head(official_layout(width, num_keypoints))

    converted = convert_state_dict(published, expected=expected)

    assert infer_arch(published) == infer_arch(converted) == (width, num_keypoints)
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected
    assert converted['head.deconv_layers.0.0.0.weight'].shape == (
        width + 2 * num_keypoints, width, 4, 4)


@pytest.mark.parametrize('wrap', [
    lambda sd: {'model': sd},
    lambda sd: {'state_dict': OrderedDict(('module.' + k, v) for k, v in sd.items())},
    lambda sd: OrderedDict(('module.' + k, v) for k, v in sd.items()),
])
def test_wrappers_and_dataparallel_prefix(wrap):
    official = official_state_dict(device='meta')
    for family in FAMILIES:
        published = publish(official, family)
        published = wrap(published.get('state_dict', published))
        assert detect_family(published) == family
        assert list(unwrap_state_dict(published))[0] in ('conv1.weight', '1.conv1.weight',
                                                         'backbone.conv1.weight')


def test_plugin_layout_passes_through(official):
    plugin = convert_state_dict(official)
    plugin['data_preprocessor.mean'] = torch.zeros(3)  # old mmpose 1.x files hold these

    assert detect_family(plugin) == 'plugin'
    again = convert_state_dict(plugin, expected=split_backbone_head(official))
    assert 'data_preprocessor.mean' not in again
    assert all(again[k] is plugin[k] for k in again)  # fp32 already: nothing copied


@pytest.mark.parametrize('key,family,renamed', [
    ('conv1.weight', 'official', 'backbone.conv1.weight'),
    ('stage4.2.fuse_layers.0.3.0.weight', 'official',
     'backbone.stage4.2.fuse_layers.0.3.0.weight'),
    ('deconv_layers.0.4.0.bn2.running_var', 'official',
     'head.deconv_layers.0.4.0.bn2.running_var'),
    ('1.final_layers.1.bias', 'official_fp16', 'head.final_layers.1.bias'),
    ('1.layer1.0.downsample.0.weight', 'official_fp16', 'backbone.layer1.0.downsample.0.weight'),
    ('keypoint_head.final_layers.0.weight', 'mmpose0x', 'head.final_layers.0.weight'),
    ('backbone.bn2.bias', 'mmpose0x', 'backbone.bn2.bias'),
    ('head.final_layers.0.bias', 'plugin', 'head.final_layers.0.bias'),
    ('data_preprocessor.mean', 'official', 'data_preprocessor.mean'),
    ('conv_scale_layers.1.3.bias', 'swahr', 'head.conv_scale_layers.1.3.bias'),
    ('deconv_layers.0.0.1.weight', 'swahr', 'head.deconv_layers.0.0.1.weight'),
    ('stage4.0.fuse_layers.0.1.1.weight', 'swahr', 'backbone.stage4.0.fuse_layers.0.1.1.weight'),
])
def test_rename_key(key, family, renamed):
    assert rename_key(key, family) == renamed


@pytest.mark.parametrize('family', FAMILIES)
def test_hook_renames_only_under_prefix(official, family):
    published = publish(official, family)
    published = published.get('state_dict', published)
    state_dict = OrderedDict(('pose.' + k, v) for k, v in published.items())
    other = torch.ones(2, dtype=torch.float16)
    state_dict['other.final_layers.0.weight'] = other

    to_plugin_layout(state_dict, 'pose.', {}, True, [], [], [])

    expected = expected_values(official, family)
    assert state_dict['other.final_layers.0.weight'] is other  # outside the prefix: untouched
    assert sorted(state_dict) == sorted(['other.final_layers.0.weight'] +
                                        ['pose.' + k for k in expected])
    for key, value in expected.items():
        assert state_dict['pose.' + key].dtype == value.dtype
        assert torch.equal(state_dict['pose.' + key], value), key


@pytest.mark.parametrize('state_dict', [
    OrderedDict([('backbone.conv1.weight', torch.ones(1, dtype=torch.float16)),
                 ('head.final_layers.0.weight', torch.ones(1, dtype=torch.float16))]),
    OrderedDict([('conv1.weight', torch.ones(1)), ('fc.weight', torch.ones(1))]),
    OrderedDict(),
])
def test_hook_leaves_plugin_and_unrelated_dicts_alone(state_dict):
    before = list(state_dict.items())
    to_plugin_layout(state_dict, '')
    after = list(state_dict.items())
    assert [k for k, _ in after] == [k for k, _ in before]
    assert all(a is b for (_, a), (_, b) in zip(after, before))


@pytest.mark.parametrize('family', FAMILIES)
def test_load_into_built_model_through_the_hook(official, w32_model, family):
    published = publish(official, family)
    published = published.get('state_dict', published)
    expected = expected_values(official, family)
    keys = list(published)

    w32_model.load_state_dict(published, strict=True)

    loaded = w32_model.state_dict()
    assert list(loaded) == list(expected)
    for key, value in loaded.items():
        assert torch.equal(value, expected[key]), key
    assert list(published) == keys  # torch hands the hook a copy: the caller's dict is intact


@pytest.mark.parametrize('family', FAMILIES)
def test_mmengine_load_checkpoint_from_file(official, w32_model, family, tmp_path):
    # The path users take: load_from / mim test --checkpoint with the published file.
    path = tmp_path / 'published.pth'
    torch.save(publish(official, family), path)
    with torch.no_grad():
        for param in w32_model.state_dict().values():
            param.zero_()

    load_checkpoint(w32_model, str(path), map_location='cpu', strict=True)

    expected = expected_values(official, family)
    for key, value in w32_model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_hook_on_a_nested_model(official, w32_model):
    wrapper = nn.ModuleDict({'pose': w32_model})
    published = publish(official, 'official_fp16')

    wrapper.load_state_dict({'pose.' + k: v for k, v in published.items()}, strict=True)

    expected = expected_values(official, 'official_fp16')
    assert torch.equal(w32_model.head.final_layers[0].weight,
                       expected['head.final_layers.0.weight'])
    assert torch.equal(w32_model.backbone.stage4[2].fuse_layers[0][3][0].weight,
                       expected['backbone.stage4.2.fuse_layers.0.3.0.weight'])


def _keys(*names, shape=(1, )):
    return OrderedDict((name, torch.zeros(shape)) for name in names)


@pytest.mark.parametrize('checkpoint,message', [
    ([1, 2], 'got a list'),
    ('conv1.weight', 'got a str'),
    (OrderedDict(), 'empty'),
    ({'state_dict': {}}, 'empty'),
    ({'meta': {'epoch': 1}, 'conv1.weight': torch.zeros(1)}, "not name -> tensor (e.g. 'meta')"),
    (_keys('conv1.weight', 'layer2.0.conv1.weight', 'layer4.2.bn3.bias', 'fc.weight'), 'ResNet'),
    (_keys('backbone.conv1.weight', 'head.heatmap_conv_layers.0.weight',
           'head.offset_conv_layers.0.weight'), 'DEKR'),
    (_keys('backbone.conv1.weight', 'backbone.stage4.0.fuse_layers.0.1.0.weight',
           'head.final_layer.weight', 'head.final_layer.bias'), 'single-resolution'),
    (_keys('backbone.conv1.weight', 'keypoint_head.final_layer.weight'), 'single-resolution'),
    (_keys('conv1.weight', 'stage4.0.branches.0.0.conv1.weight', 'incre_modules.0.0.conv1.weight',
           'classifier.weight'), 'ImageNet HRNet classifier'),
    (_keys('conv1.weight', 'bn1.weight', 'stage4.0.branches.0.0.conv1.weight'), 'backbone only'),
    (_keys('backbone.conv1.weight', 'backbone.bn1.weight'), 'backbone only'),
    (_keys('encoder.layers.0.weight', 'decoder.weight'), "top-level names ['decoder', 'encoder']"),
])
def test_detect_family_rejects_other_models(checkpoint, message):
    with pytest.raises(ValueError, match='') as err:
        detect_family(checkpoint)
    assert message in str(err.value)


def test_detect_family_rejects_a_head_without_per_keypoint_tags():
    # Names of a HigherHRNet but 17 + 1 outputs at 1/4 (tag_per_joint=False).
    state_dict = official_state_dict(device='meta')
    state_dict['final_layers.0.weight'] = torch.empty(18, 32, 1, 1, device='meta')
    state_dict['deconv_layers.0.0.0.weight'] = torch.empty(50, 32, 4, 4, device='meta')
    with pytest.raises(ValueError, match=r'not those of a HigherHRNet head.*\(18, 32, 1, 1\)'):
        detect_family(state_dict)


def test_strict_check_names_missing_unexpected_and_mismatched():
    official = official_state_dict(device='meta')
    expected = split_backbone_head(official)
    del official['stage3.1.branches.2.3.bn2.running_var']
    official['deconv_layers.0.5.0.conv1.weight'] = torch.empty(3, device='meta')
    for key in ('conv1.weight', 'bn1.bias', 'bn2.bias', 'conv2.weight', 'layer1.0.conv1.weight',
                'layer1.0.conv2.weight', 'layer1.0.conv3.weight'):
        official[key] = torch.empty(7, device='meta')

    with pytest.raises(ValueError) as err:
        convert_state_dict(official, expected=expected)

    message = str(err.value)
    assert '1 missing (backbone.stage3.1.branches.2.3.bn2.running_var)' in message
    assert '1 unexpected (head.deconv_layers.0.5.0.conv1.weight)' in message
    assert '7 with another shape (backbone.conv1.weight: checkpoint (7,) vs model (64, 3, 3, 3)' \
        in message
    assert '... (2 more)' in message


def test_check_layout_accepts_an_exact_match():
    state_dict = _keys('a.weight', 'b.bias', shape=(2, 3))
    check_layout(state_dict, {'a.weight': (2, 3), 'b.bias': [2, 3]})
