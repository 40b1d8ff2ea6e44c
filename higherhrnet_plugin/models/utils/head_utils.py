"""Helpers of :class:`AEHigherResolutionHead`: argument checks, per-level targets, cropping and
resizing of the level outputs at test time."""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import Tensor

# The head reads HRNet's 1/4 branch; every deconv layer halves the stride.
INPUT_STRIDE = 4

# Outputs of one forward pass: one (B, C_l, H_l, W_l) tensor per level.
LevelOutputs = List[Tensor]


def check_lengths(expected: int, **sequences: Sequence) -> None:
    """Raise if a per-layer/per-level argument does not have ``expected`` entries."""
    for name, value in sequences.items():
        if len(value) != expected:
            raise ValueError(f'{name} needs {expected} entries, got {tuple(value)}')


def level_fields(data_sample, level: int, num_levels: int) -> PixelData:
    """The ``PixelData`` of one level of a sample's multi-level targets."""
    gt_fields = data_sample.gt_fields
    if getattr(gt_fields, 'nlevel', None) != num_levels:
        raise ValueError(f'targets have {getattr(gt_fields, "nlevel", 1)} levels, '
                         f'the head predicts {num_levels}')
    return gt_fields[level]


def level_mask(fields: PixelData, output: Tensor) -> Tensor:
    """(H_l, W_l) supervision mask of a level; all ones if the pipeline made none."""
    if 'heatmap_mask' not in fields:
        return output.new_ones(output.shape[-2:], dtype=torch.bool)
    return fields.heatmap_mask.reshape(fields.heatmap_mask.shape[-2:])


def select_sample(scale_views: List[List[LevelOutputs]], index: int) -> List[List[LevelOutputs]]:
    """One sample's (1, C, H, W) slices of every scale, view and level."""
    return [[[level[index:index + 1] for level in levels] for levels in views]
            for views in scale_views]


def crop_levels(levels: LevelOutputs, canvas: Tuple[int, int], flipped: bool) -> LevelOutputs:
    """Cut a sample's canvas out of its (padded) level outputs.

    Batching pads on the right/bottom; the flipped input was mirrored after padding, so its
    canvas sits at the right edge of the flipped outputs.
    """
    width, height = canvas
    cropped = []
    for level_index, level in enumerate(levels):
        stride = INPUT_STRIDE / 2**level_index
        h, w = math.ceil(height / stride), math.ceil(width / stride)
        full_w = level.shape[-1]
        left = full_w - w if flipped else 0
        cropped.append(level[..., :h, left:left + w])
    return cropped


def resize_maps(maps: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize with ``align_corners=False`` (as both references); no-op on equal size."""
    size = tuple(int(v) for v in size)
    if tuple(maps.shape[-2:]) == size:
        return maps
    return F.interpolate(maps, size=size, mode='bilinear', align_corners=False)
