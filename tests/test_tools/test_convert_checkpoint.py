"""Tests of tools/convert_checkpoint.py on rebuilt published checkpoints and on bad files."""
import os
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint
from mmpose.registry import MODELS

import higherhrnet_plugin
from higherhrnet_plugin.compat.checkpoint_loader import trusted_load

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _tools import load_module, load_tool  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
DATA = REPO / '..' / 'shared' / 'data'
W32_512 = 'configs/higherhrnet_w32_coco_512.py'


tool = load_tool('convert_checkpoint')
# The published-family builders live with the layout tests; reuse rather than copy them.
layouts = load_module('checkpoint_layout_cases',
                TESTS / 'test_models' / 'test_utils' / 'test_checkpoint_layout.py')

PUBLISHED = {  # file name -> family, as the files are named by their publishers
    'pose_higher_hrnet_w32_512.pth': 'official',
    'pose_higher_hrnet_w32_640.pth': 'official_fp16',
    'higher_hrnet32_coco_512x512-8ae85183_20200713.pth': 'mmpose0x',
}


class Exploit:
    """Unpickling this would run code: the converter must refuse it."""
    ran = False

    def __setstate__(self, state):
        Exploit.ran = True


@pytest.fixture(scope='module')
def official():
    return layouts.official_state_dict(seed=1)


@pytest.fixture(scope='module')
def published_dir(official, tmp_path_factory):
    folder = tmp_path_factory.mktemp('published')
    for name, family in PUBLISHED.items():
        checkpoint = layouts.publish(official, family)
        if family == 'mmpose0x':  # mmcv metas hold numpy values
            checkpoint['meta']['hook_msgs'] = dict(best_score=np.float64(0.677),
                                                   scores=np.float32([0.6, 0.7]))
        # The official files predate torch 1.6: legacy (non-zip) serialisation.
        torch.save(checkpoint, folder / name,
                   _use_new_zipfile_serialization=family == 'official_fp16')
    return folder


def _config_for(name):
    """The default config: the one named by the input size in ``name`` if it exists."""
    sized = f'configs/higherhrnet_w32_coco_{"640" if "640" in name else "512"}.py'
    return sized if (REPO / sized).is_file() else W32_512


@pytest.mark.parametrize('name', PUBLISHED)
def test_converts_each_published_family(official, published_dir, tmp_path, name, capsys):
    dst = tmp_path / 'out' / 'converted.pth'

    assert tool.main([str(published_dir / name), str(dst)]) == 0

    checkpoint = trusted_load(str(dst), map_location='cpu')
    assert checkpoint['meta'] == dict(
        source=name, family=PUBLISHED[name], config=_config_for(name),
        converted_by=f'higherhrnet_plugin {higherhrnet_plugin.__version__}')
    expected = layouts.expected_values(official, PUBLISHED[name])
    assert list(checkpoint['state_dict']) == list(expected)
    for key, value in checkpoint['state_dict'].items():
        assert value.dtype == expected[key].dtype and torch.equal(value, expected[key]), key
    assert sorted(p.name for p in dst.parent.iterdir()) == ['converted.pth']
    assert dst.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's 0600
    assert f'{PUBLISHED[name]} checkpoint {name} converted' in capsys.readouterr().out


def test_converted_file_loads_strictly_into_the_model(official, published_dir, tmp_path):
    dst = tmp_path / 'w32.pth'
    tool.convert_checkpoint(published_dir / 'pose_higher_hrnet_w32_640.pth', dst,
                            config=REPO / W32_512)
    init_default_scope('mmpose')
    from mmengine.config import Config
    model = MODELS.build(Config.fromfile(str(REPO / W32_512)).model)

    load_checkpoint(model, str(dst), map_location='cpu', strict=True)

    expected = layouts.expected_values(official, 'official_fp16')
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_swahr_checkpoint_converts_for_the_swahr_config(tmp_path, capsys):
    swahr = layouts.official_state_dict(seed=3, swahr=True)
    src = tmp_path / 'pose_higher_hrnet_w32_512.pth'  # SWAHR's file name is the official one
    torch.save(swahr, src, _use_new_zipfile_serialization=False)
    dst = tmp_path / 'converted.pth'

    assert tool.main([str(src), str(dst)]) == 0

    checkpoint = trusted_load(str(dst), map_location='cpu')
    assert checkpoint['meta']['family'] == 'swahr'
    assert checkpoint['meta']['config'] == 'configs/higherhrnet_w32_coco_512_swahr.py'
    expected = layouts.expected_values(swahr, 'swahr')
    assert list(checkpoint['state_dict']) == list(expected)
    for key, value in checkpoint['state_dict'].items():
        assert torch.equal(value, expected[key]), key
    assert 'swahr checkpoint pose_higher_hrnet_w32_512.pth converted' in capsys.readouterr().out

    # With a HigherHRNet config the scale branch has no place: refused, saying which config fits.
    other = tmp_path / 'refused.pth'
    assert tool.main([str(src), str(other), '--config', str(REPO / W32_512)]) == 1
    assert 'use a SWAHR config' in capsys.readouterr().err
    assert not other.exists()


def test_default_config_by_width_keypoints_and_file_name(tmp_path, monkeypatch):
    for name in ('higherhrnet_w32_coco_512.py', 'higherhrnet_w32_coco_640.py',
                 'higherhrnet_w48_coco_640.py', 'higherhrnet_w32_coco_512_udp.py',
                 'higherhrnet_w32_crowdpose_512.py', 'higherhrnet_w32_coco_512_swahr.py',
                 'higherhrnet_w48_coco_640_swahr.py', 'higherhrnet_w48_crowdpose_640_swahr.py'):
        (tmp_path / name).touch()
    monkeypatch.setattr(tool, 'CONFIG_DIR', tmp_path)

    pick = lambda *args: tool.default_config(*args).name  # noqa: E731
    assert pick(32, 17, 'pose_higher_hrnet_w32_512.pth') == 'higherhrnet_w32_coco_512.py'
    assert pick(32, 17, 'pose_higher_hrnet_w32_640.pth') == 'higherhrnet_w32_coco_640.py'
    assert pick(32, 17, 'higher_hrnet32_coco_640x640-a22fe938_20200712.pth') == \
        'higherhrnet_w32_coco_640.py'
    assert pick(32, 17, 'weights.pth') == 'higherhrnet_w32_coco_512.py'  # smallest size
    assert pick(32, 17, 'model_20200512.pth') == 'higherhrnet_w32_coco_512.py'  # not a size
    assert pick(48, 17, 'higher_hrnet48_coco_512x512-60fedcbc_20200712.pth') == \
        'higherhrnet_w48_coco_640.py'  # the only W48 config: same weights, other input size
    assert pick(32, 14, 'crowdpose.pth') == 'higherhrnet_w32_crowdpose_512.py'
    with pytest.raises(ValueError, match='no config .* width 48 and 14 keypoints; pass --config'):
        tool.default_config(48, 14, 'x.pth')
    # Weights with SWAHR's scale branch pick the _swahr configs only.
    assert pick(32, 17, 'pose_higher_hrnet_w32_512.pth', True) == \
        'higherhrnet_w32_coco_512_swahr.py'
    assert pick(48, 17, 'pose_higher_hrnet_w48_640.pth', True) == \
        'higherhrnet_w48_coco_640_swahr.py'
    assert pick(48, 14, 'crowdpose.pth', True) == 'higherhrnet_w48_crowdpose_640_swahr.py'
    with pytest.raises(ValueError, match='no SWAHR config .* width 32 and 14 keypoints'):
        tool.default_config(32, 14, 'x.pth', True)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return path


def _truncated(source, zip_format):
    def make(path):
        torch.save(layouts.publish(source, 'official'), path,
                   _use_new_zipfile_serialization=zip_format)
        data = path.read_bytes()
        return _write(path, data[:len(data) // 2])
    return make


def _official_without(official, key):
    state_dict = OrderedDict(official)
    del state_dict[key]
    return state_dict


def _head_with(official, num_keypoints):
    state_dict = OrderedDict(official)
    state_dict['final_layers.0.weight'] = torch.zeros(2 * num_keypoints, 32, 1, 1)
    state_dict['final_layers.0.bias'] = torch.zeros(2 * num_keypoints)
    state_dict['final_layers.1.weight'] = torch.zeros(num_keypoints, 32, 1, 1)
    state_dict['final_layers.1.bias'] = torch.zeros(num_keypoints)
    state_dict['deconv_layers.0.0.0.weight'] = torch.zeros(32 + 2 * num_keypoints, 32, 4, 4)
    return state_dict


def _tiny(*names):
    return {'state_dict': OrderedDict((n, torch.zeros(1)) for n in names), 'meta': {}}


BAD = {  # case -> (writer of SRC, extra arguments, expected words in the error)
    'missing file': (None, [], 'does not exist'),
    'empty file': (lambda p: _write(p, b''), [], 'not a PyTorch checkpoint: it is empty'),
    'jpeg': (lambda p: _write(p, (DATA / 'coco' / '000000000785.jpg').read_bytes()), [],
             'not a PyTorch checkpoint: it is a JPEG image'),
    'text': (lambda p: _write(p, b'model = dict(type="HigherHRNet")\n'), [],
             "it is text (starts with 'model = '"),
    'truncated zip': ('truncated-zip', [], 'truncated or corrupted: its zip archive has no'),
    'truncated legacy': ('truncated-legacy', [], 'is truncated or corrupted: torch could not'),
    'pickled code': (lambda p: _write(p, {'state_dict': {}, 'x': Exploit()}), [],
                     'Exploit'),  # the rejected global is named
    'not a dict': (lambda p: _write(p, [torch.zeros(1)]), [], 'got a list'),
    'resnet': (lambda p: _write(p, _tiny('conv1.weight', 'layer4.0.conv1.weight', 'fc.weight')),
               [], 'ResNet'),
    'dekr': (lambda p: _write(p, _tiny('backbone.conv1.weight', 'head.heatmap_conv_layers.0.w')),
             [], 'DEKR'),
    'ae hrnet 1.x': (
        lambda p: _write(p, _tiny('backbone.conv1.weight', 'head.final_layer.weight')), [],
        'single-resolution associative-embedding HRNet'),
    'missing key': ('missing-key', [],
                    '1 missing (backbone.stage4.2.fuse_layers.0.3.1.running_var)'),
    'no config for K': ('k15', [], 'no config in'),
    'other K than config': ('k14', ['--config', str(REPO / W32_512)],
                            '5 with another shape (head.final_layers.0.weight: checkpoint '
                            '(28, 32, 1, 1) vs model (34, 32, 1, 1)'),
}


@pytest.mark.parametrize('case', BAD)
def test_bad_sources_fail_clearly_and_write_nothing(official, tmp_path, case, capsys):
    make, extra, words = BAD[case]
    src = tmp_path / 'src' / 'model.pth'
    src.parent.mkdir()
    makers = {
        'truncated-zip': _truncated(official, True),
        'truncated-legacy': _truncated(official, False),
        'missing-key': lambda p: _write(
            p, _official_without(official, 'stage4.2.fuse_layers.0.3.1.running_var')),
        'k15': lambda p: _write(p, _head_with(official, 15)),
        'k14': lambda p: _write(p, _head_with(official, 14)),
    }
    if make is not None:
        makers.get(make, make)(src)
    dst = tmp_path / 'dst' / 'converted.pth'

    assert tool.main([str(src), str(dst)] + extra) == 1

    error = capsys.readouterr().err
    assert error.startswith('convert_checkpoint: error: ') and words in error, error
    assert not dst.exists()
    assert not dst.parent.exists() or not list(dst.parent.iterdir())  # no temporary left
    assert not Exploit.ran


def test_existing_destination_needs_force(published_dir, tmp_path, capsys):
    src = published_dir / 'pose_higher_hrnet_w32_512.pth'
    dst = tmp_path / 'converted.pth'
    dst.write_bytes(b'keep me')

    assert tool.main([str(src), str(dst)]) == 1
    assert 'exists; pass --force to replace it' in capsys.readouterr().err
    assert dst.read_bytes() == b'keep me'

    assert tool.main([str(src), str(dst), '--force']) == 0
    assert trusted_load(str(dst))['meta']['family'] == 'official'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['converted.pth']


def test_failed_write_leaves_no_destination(published_dir, tmp_path, monkeypatch, capsys):
    def disk_full(obj, f):
        f.write(b'partial')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(tool.torch, 'save', disk_full)
    dst = tmp_path / 'converted.pth'

    assert tool.main([str(published_dir / 'pose_higher_hrnet_w32_512.pth'), str(dst)]) == 1

    assert 'No space left on device' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
