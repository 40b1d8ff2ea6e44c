"""Scale-adaptive, weight-adaptive heatmap loss of SWAHR, with the AE loss of HigherHRNet.

Semantics follow SWAHR ("Rethinking the Heatmap Regression for Bottom-up Human Pose
Estimation", Luo et al., CVPR 2021; greatlog/SWAHR-HumanPose ``lib/core/loss.py``
``HeatmapLoss``, ``ScaleLoss``, ``MultiLossFactory``); the code is written anew.
"""
from typing import Dict, List, Sequence, Tuple

from mmpose.registry import MODELS
from torch import Tensor

from .higher_hrnet_loss import HigherHRNetLoss, IndicesType


@MODELS.register_module()
class SWAHRLoss(HigherHRNetLoss):
    """SWAHR's heatmap and scale losses per resolution plus HigherHRNet's AE loss.

    Reads the outputs of :class:`SWAHRHead`: at every level channels [0, K) hold the scale
    map s, [K, 2K) the heatmaps p and, at the AE level, [2K, 3K) the tags.

    Note:
        - batch size: B
        - keypoint number: K
        - heatmap level: l, of size (H_l, W_l)

    Per level and image, with the Gaussian target ``gt``, ``s' = s * [gt > 0]`` (the scale
    only acts on the Gaussian's pixels), ``L = log(gt)`` where ``gt > 0`` and 0 elsewhere::

        target = gt + gt * L * s' + 0.5 * gt * L^2 * s'^2
        weight = |1 - p| * gt^0.01 + |p| * (1 - gt^0.01)
        loss_heatmap_l = factor_l * mean_{k,y,x} (p - target)^2 * weight * mask
        loss_scale_l = scale_loss_factor * mean_{k,y,x} s'^2 * mask

    then averaged over the batch. ``target`` is the second-order expansion in s' of
    ``gt^(1 + s')``, a Gaussian of sigma ``sigma / sqrt(1 + s')``: the network picks each
    keypoint's sigma. ``weight`` is ``|1 - p|`` on the peak (gt = 1) and ``|p|`` on the
    background (gt = 0), so easy pixels weigh little. Nothing is detached, as in SWAHR: the
    heatmap loss reaches s through ``target`` and p through ``weight`` too.

    Args:
        scale_loss_factor (float): Weight of the scale regulariser. Defaults to ``1.0``
            (SWAHR adds it unweighted).
        **kwargs: As :class:`HigherHRNetLoss` (``num_keypoints``, ``heatmap_loss_factors``,
            ``with_ae_loss``, push / pull factors, ``ae_loss_type``, ``batch_reduction``).

    .. _`SWAHR`: https://arxiv.org/abs/2012.15175
    """

    def __init__(self, scale_loss_factor: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale_loss_factor = float(scale_loss_factor)

    def forward(self, outputs: List[Tensor], heatmaps: List[Tensor], masks: List[Tensor],
                keypoint_indices: Sequence[IndicesType]) -> Dict[str, Tensor]:
        """Compute the losses of a batch.

        Args:
            outputs (List[Tensor]): Head outputs per level, (B, 2K, H_l, W_l), or
                (B, 3K, H_l, W_l) at the AE level: scale, heatmaps, tags.
            heatmaps, masks, keypoint_indices: As :meth:`HigherHRNetLoss.forward`:
                (B, K, H_l, W_l) targets, (B, H_l, W_l) masks, one (N_b, K, 2) per image.

        Returns:
            Dict[str, Tensor]: Scalars ``loss_heatmap_l{l}`` and ``loss_scale_l{l}`` per
            level and, with an AE level, ``loss_pull`` and ``loss_push``.
        """
        losses = super().forward(outputs, heatmaps, masks, keypoint_indices)
        for level, (output, target, mask) in enumerate(zip(outputs, heatmaps, masks)):
            scale = self._gaussian_scale(output, target)
            losses[f'loss_scale_l{level}'] = self.scale_loss_factor * (
                (scale**2 * _as_weights(mask, scale)).mean(dim=(1, 2, 3)).mean())
        return losses

    def _heatmap_loss(self, output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """Per-image scale-adaptive, weight-adaptive loss (B,), averaged over K*H*W."""
        K = self.num_keypoints
        scale = self._gaussian_scale(output, target)
        pred = output[:, K:2 * K]
        log_gt = target.where(target > 0, target.new_ones(())).log()  # 0 off the Gaussians
        # Term by term as SWAHR writes it, so the float results match.
        scaled = target + target * log_gt * scale + 0.5 * target * log_gt**2 * scale**2
        gt_power = target**0.01
        weight = (1 - pred).abs() * gt_power + pred.abs() * (1 - gt_power)
        loss = (pred - scaled)**2 * weight * _as_weights(mask, pred)
        return loss.mean(dim=(1, 2, 3))

    def _ae_loss(self, output: Tensor,
                 keypoint_indices: Sequence[IndicesType]) -> Tuple[Tensor, Tensor]:
        """The AE loss of :class:`HigherHRNetLoss` on the channels after the scale map."""
        return super()._ae_loss(output[:, self.num_keypoints:], keypoint_indices)

    def _gaussian_scale(self, output: Tensor, target: Tensor) -> Tensor:
        """(B, K, H, W) predicted scale, zero where the target is 0."""
        scale = output[:, :self.num_keypoints]
        if output.shape[1] < 2 * self.num_keypoints or scale.shape != target.shape:
            raise ValueError(f'SWAHR outputs need K scale and K heatmap channels of the '
                             f'targets\' size {tuple(target.shape)}, got {tuple(output.shape)}')
        return scale * (target > 0).to(scale.dtype)


def _as_weights(mask: Tensor, like: Tensor) -> Tensor:
    """(B, 1, H, W) float mask from a (B, H, W) or (B, 1, H, W) bool or float one."""
    mask = mask.to(like.dtype)
    return mask.unsqueeze(1) if mask.dim() == 3 else mask
