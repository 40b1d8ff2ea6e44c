"""HRNet backbones of HigherHRNet, selected by width instead of a 40-line ``extra`` dict.

The stage layout is the one of the official HigherHRNet yaml files
(HRNet/HigherHRNet-Human-Pose-Estimation, ``experiments/coco/higher_hrnet/*.yaml``, MIT licence)
and of mmpose 0.x's ``higherhrnet_*`` configs. The network itself is mmpose's own
:class:`mmpose.models.backbones.HRNet`; nothing is re-implemented here.
"""
import copy
from typing import Dict

from mmpose.models.backbones import HRNet
from mmpose.registry import MODELS


def _stages(width: int) -> Dict[str, dict]:
    """``extra`` of an HRNet whose 1/4 branch has ``width`` channels (doubling per branch)."""
    channels = tuple(width * 2**i for i in range(4))
    return dict(
        stage1=dict(num_modules=1,
                    num_branches=1,
                    block='BOTTLENECK',
                    num_blocks=(4, ),
                    num_channels=(64, )),
        stage2=dict(num_modules=1,
                    num_branches=2,
                    block='BASIC',
                    num_blocks=(4, 4),
                    num_channels=channels[:2]),
        stage3=dict(num_modules=4,
                    num_branches=3,
                    block='BASIC',
                    num_blocks=(4, 4, 4),
                    num_channels=channels[:3]),
        # Only the 1/4 branch leaves the last module: the head upsamples from it.
        stage4=dict(num_modules=3,
                    num_branches=4,
                    block='BASIC',
                    num_blocks=(4, 4, 4, 4),
                    num_channels=channels,
                    multiscale_output=False))


#: Variant table (cf. timm's ``cfg_cls``): arch name -> HRNet ``extra``.
ARCH_SETTINGS: Dict[str, Dict[str, dict]] = {
    'w18': _stages(18),
    'w32': _stages(32),
    'w48': _stages(48),
}


@MODELS.register_module()
class HRNetPreset(HRNet):
    """mmpose's :class:`~mmpose.models.backbones.HRNet` built from a named width.

    The forward pass returns a 1-tuple with the highest-resolution branch, (B, C, H/4, W/4)
    with C = 18, 32 or 48, which is what :class:`AEHigherResolutionHead` consumes. Parameter
    and buffer names are mmpose's, which equal the official HigherHRNet ones (``conv1``,
    ``layer1.0.downsample.0``, ``stage4.2.fuse_layers.0.3.0.0``, ...), so official and
    mmpose 0.x checkpoints load after a pure prefix mapping.

    Args:
        arch (str): ``'w18'``, ``'w32'`` or ``'w48'``, see :data:`ARCH_SETTINGS`.
            Defaults to ``'w32'``.
        **kwargs: Every other :class:`HRNet` argument (``in_channels``, ``norm_cfg``,
            ``norm_eval``, ``with_cp``, ``frozen_stages``, ``init_cfg``, ...), passed through.

    Example:
        >>> import torch
        >>> self = HRNetPreset(arch='w32')
        >>> self.eval()
        >>> outputs = self(torch.rand(1, 3, 64, 64))
        >>> [tuple(out.shape) for out in outputs]
        [(1, 32, 16, 16)]
    """

    def __init__(self, arch: str = 'w32', **kwargs) -> None:
        if arch not in ARCH_SETTINGS:
            raise ValueError(
                f'Unknown HRNetPreset arch {arch!r}; expected one of {sorted(ARCH_SETTINGS)}')
        if 'extra' in kwargs:
            raise TypeError('HRNetPreset builds `extra` from `arch`; use HRNet for a custom one')
        super().__init__(extra=copy.deepcopy(ARCH_SETTINGS[arch]), **kwargs)
        self.arch = arch
