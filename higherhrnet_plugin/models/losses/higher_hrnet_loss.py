"""Multi-resolution heatmap + associative-embedding loss of HigherHRNet.

Semantics follow the official ``HeatmapLoss``/``AELoss``/``MultiLossFactory``
(HRNet/HigherHRNet-Human-Pose-Estimation, ``lib/core/loss.py``, MIT licence); the code is
written anew, with the per-person loop of the AE loss vectorised.
"""
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
import torch
from mmpose.registry import MODELS
from torch import Tensor, nn

IndicesType = Union[Tensor, np.ndarray]


@MODELS.register_module()
class HigherHRNetLoss(nn.Module):
    """Masked heatmap MSE at every resolution plus the AE pull/push loss at the tag level(s).

    Note:
        - batch size: B
        - keypoint number: K
        - heatmap level: l, of size (H_l, W_l)
        - instance number of image b: N_b (rows of its ``keypoint_indices``)

    Per level l and image b, with ``pred = outputs[l][b, :K]`` and ``gt = heatmaps[l][b]``::

        loss_heatmap_l = factor_l * mean_{k,y,x} (pred - gt)^2 * mask[y, x]

    averaged over K*H*W (not over the mask's sum), then over the batch.

    At a level with the AE loss, the tags ``outputs[l][b, K:2K]`` are flattened to (K*H*W,)
    and read at the valid entries ``[index, 1]`` of ``keypoint_indices[b]`` (N_b, K, 2).
    Over the P persons of image b with at least one valid entry, with mean tag t_p (not
    detached) and valid tags T_p::

        pull = 1/P * sum_p mean_{t in T_p} (t - t_p)^2
        push = 0.5 / (P (P - 1)) * sum_{p != q} exp(-(t_p - t_q)^2)          ('exp')
        push = 0.5 / (P (P - 1)) * sum_{p != q} max(0, 1 - |t_p - t_q|)     ('max')

    with push = 0 when P < 2 and pull = 0 when P = 0; then ``loss_pull = pull_loss_factor *
    pull`` and ``loss_push = push_loss_factor * push`` reduced over the batch. This equals the
    official ``AELoss`` (which sums all ordered pairs and subtracts the diagonal's P ones).

    Args:
        num_keypoints (int): K. Defaults to ``17``.
        heatmap_loss_factors (Sequence[float]): Weight of the heatmap loss at each level.
            Defaults to ``(1.0, 1.0)``.
        with_ae_loss (Sequence[bool]): Whether each level predicts tags (channels K:2K) and is
            given the AE loss; at most one level, since the codec encodes indices for one.
            Defaults to ``(True, False)``.
        push_loss_factor (float): Weight of the push term. Defaults to ``1e-3``.
        pull_loss_factor (float): Weight of the pull term. Defaults to ``1e-3``.
        ae_loss_type (str): ``'exp'`` or ``'max'`` push. Defaults to ``'exp'``.
        batch_reduction (str): ``'mean'`` (official and mmpose 0.x) or ``'sum'`` (mmpose
            1.x's ``AssociativeEmbeddingLoss``) over the batch, for the AE terms. The
            heatmap loss is always averaged, as in all three. Defaults to ``'mean'``.
    """

    def __init__(self,
                 num_keypoints: int = 17,
                 heatmap_loss_factors: Sequence[float] = (1.0, 1.0),
                 with_ae_loss: Sequence[bool] = (True, False),
                 push_loss_factor: float = 1e-3,
                 pull_loss_factor: float = 1e-3,
                 ae_loss_type: str = 'exp',
                 batch_reduction: str = 'mean') -> None:
        super().__init__()
        if not isinstance(num_keypoints, int) or num_keypoints < 1:
            raise ValueError(f'num_keypoints must be a positive int, got {num_keypoints!r}')
        if len(heatmap_loss_factors) != len(with_ae_loss) or len(with_ae_loss) == 0:
            raise ValueError('heatmap_loss_factors and with_ae_loss need one entry per level, '
                             f'got {heatmap_loss_factors!r} and {with_ae_loss!r}')
        if sum(bool(flag) for flag in with_ae_loss) > 1:
            raise ValueError(f'at most one level can have the AE loss, got {with_ae_loss!r}')
        if ae_loss_type not in ('exp', 'max'):
            raise ValueError(f"ae_loss_type must be 'exp' or 'max', got {ae_loss_type!r}")
        if batch_reduction not in ('mean', 'sum'):
            raise ValueError(f"batch_reduction must be 'mean' or 'sum', got {batch_reduction!r}")
        self.num_keypoints = num_keypoints
        self.heatmap_loss_factors = tuple(float(f) for f in heatmap_loss_factors)
        self.with_ae_loss = tuple(bool(flag) for flag in with_ae_loss)
        self.push_loss_factor = float(push_loss_factor)
        self.pull_loss_factor = float(pull_loss_factor)
        self.ae_loss_type = ae_loss_type
        self.batch_reduction = batch_reduction

    def forward(self, outputs: List[Tensor], heatmaps: List[Tensor], masks: List[Tensor],
                keypoint_indices: Sequence[IndicesType]) -> Dict[str, Tensor]:
        """Compute the losses of a batch.

        Args:
            outputs (List[Tensor]): Head outputs per level, (B, C_l, H_l, W_l) with heatmaps
                in channels [0, K) and, at the AE level, tags in [K, 2K).
            heatmaps (List[Tensor]): Target heatmaps per level, (B, K, H_l, W_l).
            masks (List[Tensor]): Supervision masks per level, (B, H_l, W_l) or
                (B, 1, H_l, W_l), bool or float; 0 = ignored.
            keypoint_indices (Sequence[Tensor | np.ndarray]): One (N_b, K, 2) array per image,
                indices into the AE level's flattened (K, H, W) tag map.

        Returns:
            Dict[str, Tensor]: Scalars ``loss_heatmap_l{l}`` per level and, with an AE level,
            ``loss_pull`` and ``loss_push``.
        """
        num_levels = len(self.with_ae_loss)
        if not len(outputs) == len(heatmaps) == len(masks) == num_levels:
            raise ValueError(f'expected {num_levels} levels, got {len(outputs)} outputs, '
                             f'{len(heatmaps)} heatmaps and {len(masks)} masks')
        losses = {}
        for level in range(num_levels):
            losses[f'loss_heatmap_l{level}'] = self.heatmap_loss_factors[level] * (
                self._heatmap_loss(outputs[level], heatmaps[level], masks[level]).mean())
            if self.with_ae_loss[level]:
                pull, push = self._ae_loss(outputs[level], keypoint_indices)
                losses['loss_pull'] = self.pull_loss_factor * self._reduce(pull)
                losses['loss_push'] = self.push_loss_factor * self._reduce(push)
        return losses

    def _heatmap_loss(self, output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """Per-image masked MSE (B,), averaged over K*H*W."""
        pred = output[:, :self.num_keypoints]
        if pred.shape != target.shape:
            raise ValueError(f'predicted heatmaps {tuple(pred.shape)} and targets '
                             f'{tuple(target.shape)} differ')
        mask = mask.to(pred.dtype)
        if mask.dim() == 3:
            mask = mask.unsqueeze(1)
        return ((pred - target)**2 * mask).mean(dim=(1, 2, 3))

    def _ae_loss(self, output: Tensor,
                 keypoint_indices: Sequence[IndicesType]) -> Tuple[Tensor, Tensor]:
        """Per-image pull and push (B,) from the tag channels of one level."""
        batch_size = output.shape[0]
        if output.shape[1] < 2 * self.num_keypoints:
            raise ValueError(f'the AE level needs {2 * self.num_keypoints} channels, '
                             f'got {output.shape[1]}')
        if len(keypoint_indices) != batch_size:
            raise ValueError(f'got keypoint_indices for {len(keypoint_indices)} images, '
                             f'batch size is {batch_size}')
        tags = output[:, self.num_keypoints:2 * self.num_keypoints].reshape(batch_size, -1)
        per_image = [
            self._single_image_ae_loss(image_tags, indices)
            for image_tags, indices in zip(tags, keypoint_indices)
        ]
        pull, push = zip(*per_image)
        return torch.stack(pull), torch.stack(push)

    def _single_image_ae_loss(self, tags: Tensor, indices: IndicesType) -> Tuple[Tensor, Tensor]:
        """Pull and push of one image.

        Args:
            tags (Tensor): Flattened tag map (K*H*W,).
            indices (Tensor | np.ndarray): (N, K, 2) rows of ``[flat index, valid]``.

        Returns:
            tuple: pull and push, 0-dim tensors.
        """
        indices = torch.as_tensor(indices, device=tags.device).long()
        flat, valid = indices[..., 0], indices[..., 1] > 0  # (N, K)
        has_tags = valid.any(dim=1)  # persons without a valid entry are skipped
        flat, valid = flat[has_tags], valid[has_tags].to(tags.dtype)  # (P, K)
        num_persons = valid.shape[0]
        zero = tags.new_zeros(())
        if num_persons == 0:
            return zero, zero

        person_tags = tags[flat]  # (P, K)
        counts = valid.sum(dim=1)
        means = (person_tags * valid).sum(dim=1) / counts
        sq_dev = (person_tags - means[:, None])**2 * valid
        pull = (sq_dev.sum(dim=1) / counts).sum() / num_persons
        if num_persons < 2:
            return pull, zero

        diff = means[:, None] - means[None, :]
        if self.ae_loss_type == 'exp':
            similarity = torch.exp(-diff**2)
        else:
            similarity = torch.clamp(1 - diff.abs(), min=0)
        # The diagonal holds each person against itself (value 1): drop it, as official.
        push = (similarity.sum() - num_persons) / (num_persons * (num_persons - 1)) * 0.5
        return pull, push

    def _reduce(self, per_image: Tensor) -> Tensor:
        """Batch reduction of a per-image loss (B,)."""
        return per_image.mean() if self.batch_reduction == 'mean' else per_image.sum()
