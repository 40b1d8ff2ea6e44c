"""Tests of tools/flops.py: parameter and MAC counts in the official README's convention."""
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _tools import load_tool  # noqa: E402

CONFIGS = Path(__file__).parents[2] / 'configs'


flops = load_tool('flops')
pytestmark = pytest.mark.usefixtures('one_torch_thread')


# Head of W32: the transposed conv takes 32 features + 34 predictions (17 heatmaps + 17 tags)
# to 32 channels with a 4x4 kernel.
W32_DECONV_WEIGHTS = (32 + 34) * 32 * 4 * 4


class _Tiny(nn.Module):
    """conv 3->4 (3x3, bias) and a stride-2 transposed conv 4->2 (4x4), pose-estimator call."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.deconv = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, bias=False)

    def forward(self, inputs, data_samples=None):
        return self.deconv(self.conv(inputs))


def test_official_convention_on_a_hand_computed_model():
    counts = flops.official_macs(_Tiny(), torch.zeros(1, 3, 8, 8))
    # conv: 4*3*3*3 weights x 8*8 outputs (bias not counted); deconv: 4*2*4*4 x 16*16 outputs
    assert counts == dict(Conv2d=108 * 64, ConvTranspose2d=128 * 256, total=108 * 64 + 128 * 256)


def test_w32_512_reproduces_the_readme():
    result = flops.complexity(str(CONFIGS / 'higherhrnet_w32_coco_512.py'), with_mmengine=False)
    assert result['input_size'] == [512, 512]
    assert result['params'] == 28_645_331
    assert result['official_macs']['ConvTranspose2d'] == W32_DECONV_WEIGHTS * 256 * 256
    assert result['official_macs']['total'] / 1e9 == pytest.approx(47.9, rel=2e-3)
    assert result['readme_gmacs'] == 47.9


def test_w48_parameters():
    model = flops.build_network(flops.Config.fromfile(str(CONFIGS /
                                                          'higherhrnet_w48_coco_640.py')))
    assert flops.count_parameters(model) == 63_827_139


def test_mmengine_counts_the_transposed_conv_on_its_input_grid():
    counts = flops.mmengine_flops(_Tiny(), torch.zeros(1, 3, 8, 8))
    # conv as officially; deconv on its 8x8 input: a quarter of the official 128 * 16*16
    assert counts == dict(conv=108 * 64 + 128 * 64, total=108 * 64 + 128 * 64)


def test_mmengine_count_of_w32_at_128():
    # The official count minus 3/4 of the transposed conv, plus batch norm and upsampling.
    result = flops.complexity(str(CONFIGS / 'higherhrnet_w32_coco_512.py'), (128, 64))
    official, ours = result['official_macs'], result['mmengine_flops']
    assert official['ConvTranspose2d'] == W32_DECONV_WEIGHTS * 64 * 32  # 1/2-res output
    assert ours['conv'] == official['total'] - official['ConvTranspose2d'] * 3 // 4
    assert set(ours) == {'conv', 'batch_norm', 'upsample_nearest2d', 'total'}
    assert 'readme_gmacs' not in result


def test_command_line(capsys):
    assert flops.main(['--input', '128', '96', '--no-mmengine']) == 0
    out = capsys.readouterr().out
    assert 'input 128x96' in out and 'params: 28,645,331' in out and 'mmengine' not in out
    with pytest.raises(SystemExit):
        flops.parse_args(['--input', '1', '2', '3'])
