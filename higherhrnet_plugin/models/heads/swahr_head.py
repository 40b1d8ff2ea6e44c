"""HigherHRNet head with the scale branch of SWAHR.

Architecture follows SWAHR ("Rethinking the Heatmap Regression for Bottom-up Human Pose
Estimation", Luo et al., CVPR 2021; greatlog/SWAHR-HumanPose
``lib/models/pose_higher_hrnet.py`` ``_make_conv_scale_layers``, ``forward`` and
``init_weights``; test path ``lib/core/inference.py``); the code is written anew.
"""
from typing import Sequence

import torch
from mmpose.registry import MODELS
from mmpose.utils.typing import Features, OptConfigType, OptMultiConfig
from torch import Tensor, nn

from ..losses import SWAHRLoss
from ..utils.aggregation import FlipPair, LevelOutputs
from .ae_higher_resolution_head import AEHigherResolutionHead


@MODELS.register_module()
class SWAHRHead(AEHigherResolutionHead):
    """:class:`AEHigherResolutionHead` plus a per-keypoint scale map at every level (SWAHR).

    A subclass, not an option of the base head, because it changes the output layout (the
    scale map first) and the loss that reads it; the official head stays as it is.

    Every level l gets a branch ``conv_scale_layers[l]``: 1x1 conv to K channels, BN, ReLU,
    depth-wise 9x9 conv, applied to the features that ``final_layers[l]`` reads (the
    backbone's 1/4 features, then each deconv layer's output). The deconv layers still take
    the features concatenated with the heatmaps and tags only, as in SWAHR, so the weights of
    everything but the branches have the official shapes. Sub-module names equal SWAHR's
    (``conv_scale_layers.0.3.weight``), so its checkpoints load after a prefix mapping.

    Training (:meth:`forward`, :meth:`loss`) sees the scale maps; the test path
    (:meth:`predict`) drops them before aggregation, exactly as SWAHR's
    ``get_multi_stage_outputs`` does, so flip, multi-scale and grouping are the official ones.

    Note:
        - batch size: B
        - keypoint number: K
        - tag channels: T = K if ``tag_per_keypoint`` else 1

    Args:
        loss (dict, optional): Loss config; it must build a :class:`SWAHRLoss` (the only loss
            that reads the scale channels). ``None`` means ``dict(type='SWAHRLoss')``.
        init_cfg (dict | list, optional): ``None`` means the official initialisation of the
            base head, then SWAHR's: the last conv of every scale branch at 0, so training
            starts from s = 0, the plain Gaussian targets.
        **kwargs: As :class:`AEHigherResolutionHead`.

    .. _`SWAHR`: https://arxiv.org/abs/2012.15175
    """

    def __init__(self,
                 loss: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 **kwargs) -> None:
        super().__init__(loss=dict(type='SWAHRLoss') if loss is None else loss,
                         init_cfg=init_cfg,
                         **kwargs)
        if not isinstance(self.loss_module, SWAHRLoss):
            raise TypeError(f'{type(self).__name__} puts a scale map before the heatmaps; its '
                            f'loss must be a SWAHRLoss, got {type(self.loss_module).__name__}')
        self._zero_scale_init = init_cfg is None
        self.conv_scale_layers = nn.ModuleList(
            self._make_scale_branch(final_layer.in_channels, self.num_keypoints)
            for final_layer in self.final_layers)

    @staticmethod
    def _make_scale_branch(in_channels: int, num_keypoints: int) -> nn.Sequential:
        """Sequential(1x1 conv, BN, ReLU, depth-wise 9x9 conv): SWAHR's keys 0, 1, 3."""
        return nn.Sequential(
            nn.Conv2d(in_channels, num_keypoints, 1),
            nn.BatchNorm2d(num_keypoints),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_keypoints, num_keypoints, 9, padding=4, groups=num_keypoints))

    def init_weights(self) -> None:
        """The base head's init; with the default ``init_cfg`` the scale maps start at 0."""
        first_call = not self.is_init
        super().init_weights()
        if first_call and self._zero_scale_init:
            for branch in self.conv_scale_layers:
                nn.init.zeros_(branch[-1].weight)
                nn.init.zeros_(branch[-1].bias)

    def forward(self, feats: Sequence[Tensor]) -> LevelOutputs:
        """Predict the scale maps, heatmaps and tags of every level.

        Args:
            feats (Sequence[Tensor]): Backbone outputs; ``feats[0]`` is (B, C, H/4, W/4).

        Returns:
            List[Tensor]: Level l in shape (B, 2K + T, H_l, W_l) for AE levels (scale,
            heatmaps, tags), (B, 2K, H_l, W_l) otherwise. SWAHR's recipe: (B, 3K, H/4, W/4),
            (B, 2K, H/2, W/2).
        """
        x = feats[0]
        outputs = []
        for level, final_layer in enumerate(self.final_layers):
            if level > 0:
                if self.cat_output[level - 1]:
                    x = torch.cat((x, prediction), dim=1)
                x = self.deconv_layers[level - 1](x)
            prediction = final_layer(x)
            outputs.append(torch.cat((self.conv_scale_layers[level](x), prediction), dim=1))
        return outputs

    def drop_scale(self, outputs: LevelOutputs) -> LevelOutputs:
        """The level outputs without their K scale channels: the base head's layout."""
        return [output[:, self.num_keypoints:] for output in outputs]

    def forward_views(self, feats: Features, flip_test: bool) -> FlipPair:
        """As :meth:`AEHigherResolutionHead.forward_views`, without the scale maps.

        Every test-time reader of the network (:meth:`predict`, the ONNX export) comes through
        here, so aggregation, flip, multi-scale, decoding and export see the base head's layout.
        """
        pair = super().forward_views(feats, flip_test)
        return FlipPair(*(None if levels is None else self.drop_scale(levels) for levels in pair))
