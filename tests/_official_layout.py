"""State-dict layout of the official HigherHRNet model, generated without building it.

Written from the module definitions of the official ``lib/models/pose_higher_hrnet.py``
(HRNet/HigherHRNet-Human-Pose-Estimation), as summarised in docs/reference_spec.md
Appendix A. Keys carry no prefix, as in the official checkpoint files; shapes are tuples
(``()`` for ``num_batches_tracked``).

Usage::

    shapes = official_layout(width=32)           # OrderedDict key -> shape
    swahr_layout(width=32)                       # the same plus SWAHR's scale branch
    official_num_params(shapes)                  # 28,645,331 for width 32
    split_backbone_head(shapes)                  # keys that go under 'backbone.' / 'head.'
"""
import math
from collections import OrderedDict
from typing import Dict, List, Tuple

Shape = Tuple[int, ...]
Layout = 'OrderedDict[str, Shape]'

HEAD_MODULES = ('final_layers', 'deconv_layers', 'conv_scale_layers')
_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')


def _bn(layout: Layout, prefix: str, channels: int) -> None:
    for name in ('weight', 'bias', 'running_mean', 'running_var'):
        layout[f'{prefix}.{name}'] = (channels, )
    layout[f'{prefix}.num_batches_tracked'] = ()


def _conv(layout: Layout,
          prefix: str,
          c_out: int,
          c_in: int,
          kernel: int,
          bias: bool = False) -> None:
    layout[f'{prefix}.weight'] = (c_out, c_in, kernel, kernel)
    if bias:
        layout[f'{prefix}.bias'] = (c_out, )


def _basic_block(layout: Layout, prefix: str, c_in: int, channels: int) -> None:
    _conv(layout, f'{prefix}.conv1', channels, c_in, 3)
    _bn(layout, f'{prefix}.bn1', channels)
    _conv(layout, f'{prefix}.conv2', channels, channels, 3)
    _bn(layout, f'{prefix}.bn2', channels)


def _bottleneck(layout: Layout, prefix: str, c_in: int, planes: int, downsample: bool) -> None:
    _conv(layout, f'{prefix}.conv1', planes, c_in, 1)
    _bn(layout, f'{prefix}.bn1', planes)
    _conv(layout, f'{prefix}.conv2', planes, planes, 3)
    _bn(layout, f'{prefix}.bn2', planes)
    _conv(layout, f'{prefix}.conv3', 4 * planes, planes, 1)
    _bn(layout, f'{prefix}.bn3', 4 * planes)
    if downsample:
        _conv(layout, f'{prefix}.downsample.0', 4 * planes, c_in, 1)
        _bn(layout, f'{prefix}.downsample.1', 4 * planes)


def _transition(layout: Layout, prefix: str, previous: List[int], current: List[int]) -> None:
    for i, channels in enumerate(current):
        if i < len(previous):
            if channels != previous[i]:  # width change: 3x3 stride-1 conv
                _conv(layout, f'{prefix}.{i}.0', channels, previous[i], 3)
                _bn(layout, f'{prefix}.{i}.1', channels)
        else:  # new branch: chain of 3x3 stride-2 convs from the last previous branch
            for j in range(i + 1 - len(previous)):
                c_in = previous[-1]
                c_out = channels if j == i - len(previous) else c_in
                _conv(layout, f'{prefix}.{i}.{j}.0', c_out, c_in, 3)
                _bn(layout, f'{prefix}.{i}.{j}.1', c_out)


def _stage(layout: Layout, prefix: str, num_modules: int, channels: List[int], num_blocks: int,
           multiscale_output: bool) -> None:
    num_branches = len(channels)
    for m in range(num_modules):
        for b in range(num_branches):
            for k in range(num_blocks):
                _basic_block(layout, f'{prefix}.{m}.branches.{b}.{k}', channels[b], channels[b])
        last = m == num_modules - 1
        num_outputs = num_branches if (multiscale_output or not last) else 1
        for i in range(num_outputs):
            for j in range(num_branches):
                fuse = f'{prefix}.{m}.fuse_layers.{i}.{j}'
                if j > i:  # 1x1 conv + BN (+ parameter-free upsample)
                    _conv(layout, f'{fuse}.0', channels[i], channels[j], 1)
                    _bn(layout, f'{fuse}.1', channels[i])
                elif j < i:  # i - j stride-2 3x3 convs
                    for k in range(i - j):
                        c_out = channels[i] if k == i - j - 1 else channels[j]
                        _conv(layout, f'{fuse}.{k}.0', c_out, channels[j], 3)
                        _bn(layout, f'{fuse}.{k}.1', c_out)


def official_layout(width: int = 32, num_keypoints: int = 17) -> Layout:
    """Key -> shape of the official HigherHRNet-W``width`` (COCO recipe), in module order."""
    layout = OrderedDict()
    _conv(layout, 'conv1', 64, 3, 3)
    _bn(layout, 'bn1', 64)
    _conv(layout, 'conv2', 64, 64, 3)
    _bn(layout, 'bn2', 64)
    for k in range(4):
        _bottleneck(layout, f'layer1.{k}', 64 if k == 0 else 256, 64, downsample=k == 0)
    c2 = [width, 2 * width]
    c3 = [*c2, 4 * width]
    c4 = [*c3, 8 * width]
    _transition(layout, 'transition1', [256], c2)
    _stage(layout, 'stage2', 1, c2, 4, True)
    _transition(layout, 'transition2', c2, c3)
    _stage(layout, 'stage3', 4, c3, 4, True)
    _transition(layout, 'transition3', c3, c4)
    _stage(layout, 'stage4', 3, c4, 4, False)
    K = num_keypoints
    _conv(layout, 'final_layers.0', 2 * K, width, 1, bias=True)
    _conv(layout, 'final_layers.1', K, width, 1, bias=True)
    # ConvTranspose2d weights are (in, out, kH, kW); in = features + 1/4 prediction.
    layout['deconv_layers.0.0.0.weight'] = (width + 2 * K, width, 4, 4)
    _bn(layout, 'deconv_layers.0.0.1', width)
    for b in range(1, 5):
        _basic_block(layout, f'deconv_layers.0.{b}.0', width, width)
    return layout


def swahr_layout(width: int = 32, num_keypoints: int = 17) -> Layout:
    """:func:`official_layout` plus SWAHR's scale branch at both levels (greatlog/SWAHR-HumanPose
    ``_make_conv_scale_layers``): 1x1 conv W -> K with bias, BN, ReLU, depth-wise 9x9 conv with
    bias; SWAHR's HRNet changes add only parameter-free ReLU modules."""
    layout = official_layout(width, num_keypoints)
    K = num_keypoints
    for level in range(2):  # the deconv layer keeps the width: W channels at both levels
        prefix = f'conv_scale_layers.{level}'
        _conv(layout, f'{prefix}.0', K, width, 1, bias=True)
        _bn(layout, f'{prefix}.1', K)
        layout[f'{prefix}.3.weight'] = (K, 1, 9, 9)
        layout[f'{prefix}.3.bias'] = (K, )
    return layout


def official_num_params(layout: Layout) -> int:
    """Number of learnable parameters (BN running statistics excluded)."""
    return sum(math.prod(shape) for key, shape in layout.items() if not key.endswith(_BUFFERS))


def split_backbone_head(layout: Layout) -> Dict[str, Shape]:
    """The layout with the mmpose-1.x prefixes ``backbone.`` / ``head.`` added."""
    return {
        (f'head.{key}' if key.split('.')[0] in HEAD_MODULES else f'backbone.{key}'): shape
        for key, shape in layout.items()
    }
