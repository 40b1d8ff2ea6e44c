"""HigherHRNet's test step up to the decoder as one exportable module.

What runs on the device in the official test (HRNet/HigherHRNet-Human-Pose-Estimation,
``tools/valid.py``, MIT licence) and in :meth:`AEHigherResolutionHead.predict`: the network
on the image and, with flip test, on its mirror; the aggregation of both resolutions (and
both views) onto the input canvas by :func:`..models.utils.aggregate_scales`, the very
function the head calls; and the official NMS peak map of ``HeatmapParser.nms``. Grouping
stays outside, in numpy (:mod:`higherhrnet_plugin.deploy`), as OpenVINO's model zoo splits
HigherHRNet.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...models.utils import aggregate_scales


class InferenceGraph(nn.Module):
    """Network, flip test, aggregation and NMS peak map of one scale, for ONNX export.

    Note:
        - batch size: B
        - keypoint number: K
        - input canvas: (W, H), any size the test resize makes (multiples of 64)
        - tag maps stacked for decoding: L (AE levels x views; 2 with flip test)

    Args:
        model (nn.Module): A built HigherHRNet (``BottomupPoseEstimator``) in eval mode.
        flip_indices (Sequence[int], optional): Keypoint flip permutation; given, the graph
            runs the flip test. Defaults to ``None``.
        aggregation (str): ``'official'`` or ``'mmpose0x'`` (the head's
            ``test_cfg['aggregation']``). Defaults to ``'official'``.
        nms_kernel (int): Odd max-pool window of the peak map. Defaults to ``5``.
    """

    def __init__(self,
                 model: nn.Module,
                 flip_indices: Optional[Sequence[int]] = None,
                 aggregation: str = 'official',
                 nms_kernel: int = 5) -> None:
        super().__init__()
        self.model = model
        self.flip_indices = None if flip_indices is None else [int(i) for i in flip_indices]
        self.aggregation = aggregation
        self.nms_kernel = nms_kernel

    def forward(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Aggregated maps of normalised images.

        Args:
            inputs (Tensor): (B, 3, H, W) images, normalised as the model's data
                preprocessor does.

        Returns:
            tuple:
            - heatmaps (Tensor): (B, K, H, W)
            - tags (Tensor): (B, K, H, W, L)
            - peaks (Tensor): (B, K, H, W), heatmaps where they equal the maximum of their
              ``nms_kernel`` window, else 0 (:func:`nms_peaks`)
        """
        flip_test = self.flip_indices is not None
        # As BottomupPoseEstimator.predict: features of each view (two passes, not one batch
        # of 2B), then the head's own view reader (SWAHRHead drops its scale maps there).
        feats = self.model.extract_feat(inputs)
        if flip_test:
            feats = [feats, self.model.extract_feat(inputs.flip(-1))]
        pair = self.model.head.forward_views(feats, flip_test)
        canvas = (inputs.shape[-1], inputs.shape[-2])
        heatmaps, tags = aggregate_scales([pair], [1.0], canvas, self.model.head.layout,
                                          self.flip_indices, self.aggregation)
        return heatmaps, tags, nms_peaks(heatmaps, self.nms_kernel)


def nms_peaks(heatmaps: Tensor, kernel: int) -> Tensor:
    """The official ``HeatmapParser.nms``: keep values equal to their window's maximum.

    Every pixel of a plateau survives; padding never wins (``max_pool2d`` pads with -inf).

    Args:
        heatmaps (Tensor): (B, K, H, W) maps.
        kernel (int): Odd window size.

    Returns:
        Tensor: (B, K, H, W), ``heatmaps * (maxpool(heatmaps) == heatmaps)``.
    """
    window_max = F.max_pool2d(heatmaps, kernel, stride=1, padding=kernel // 2)
    return heatmaps * torch.eq(window_max, heatmaps).float()
