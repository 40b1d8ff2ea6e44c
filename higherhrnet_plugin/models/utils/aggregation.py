"""Test-time aggregation of HigherHRNet: resolution levels, flip and scales.

Pure functions over the head's outputs, as mmpose keeps its flip helpers in
``mmpose/models/utils/tta.py``. ``mode='official'`` follows the official code
(HRNet/HigherHRNet-Human-Pose-Estimation, ``lib/core/inference.py`` ``get_multi_stage_outputs``
and ``aggregate_results``, ``tools/valid.py``; MIT licence) operation for operation, so the
float results are the official ones; ``mode='mmpose0x'`` follows mmpose 0.x
(``mmpose/core/evaluation/bottom_up_eval.py``).

Official order of operations, for each scale s (largest first):

.. code-block:: none

    h   = (U(o_0[:, :K]) + o_1[:, :K]) / 2          # U: resize to the last level's size
    h_f = (flip(U(f_0))[:, :K][:, σ] + flip(f_1)[:, :K][:, σ]) / 2    # σ: flip_indices
    H_s = (P(h) + P(h_f)) / 2.0                      # P: resize to the scale-1 canvas
    final = H_s1; final += H_s2; ...; final / float(len(scales))
    tags  = [P(U(o_0)[:, K:]), P(flip(U(f_0))[:, K:][:, σ])] of scale 1, stacked on a last axis

with every resize bilinear, ``align_corners=False``; U skips the last level, P is applied
even where the size does not change (scale 2), as officially.

Note:
    - batch size: B
    - keypoint number: K
    - tag channels per AE level: T (K, or 1 for one shared tag map)
    - tag maps stacked for decoding: L (AE levels x views; 2 with flip test)
    - sizes are (W, H) pairs everywhere in this module, as mmpose's ``input_size``
"""
import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# The head reads HRNet's 1/4 branch; every deconv layer halves the stride.
INPUT_STRIDE = 4
AGGREGATION_MODES = ('official', 'mmpose0x')

# Outputs of one forward pass: one (B, C_l, H_l, W_l) tensor per level, heatmaps first.
LevelOutputs = List[Tensor]


class FlipPair(NamedTuple):
    """Level outputs of one scale: the original view and, with flip test, the flipped one.

    ``flipped`` holds the outputs for the mirrored input as the network gives them (not yet
    mirrored back); ``None`` without flip test.
    """
    original: LevelOutputs
    flipped: Optional[LevelOutputs] = None


class OutputLayout(NamedTuple):
    """Channel layout of the level outputs: K heatmaps, then tags at the AE levels.

    - num_keypoints (int): K
    - tag_levels (Tuple[bool, ...]): per level, whether channels K: hold tags
    - tag_per_keypoint (bool): T = K (permuted on flip) or T = 1 (shared map)
    """
    num_keypoints: int
    tag_levels: Tuple[bool, ...]
    tag_per_keypoint: bool = True


def resize_maps(maps: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize of (B, C, H, W) maps to ``size`` (W, H), ``align_corners=False``."""
    # No int(): when an ONNX export traces this, sizes read from a tensor's shape are symbolic
    # and int() would freeze them to the example's canvas (H and W must stay dynamic).
    width, height = size
    return F.interpolate(maps, size=(height, width), mode='bilinear', align_corners=False)


def map_size(maps: Tensor) -> Tuple[int, int]:
    """(W, H) of (..., H, W) maps (symbolic when exported, see :func:`resize_maps`)."""
    return maps.shape[-1], maps.shape[-2]


def crop_to_canvas(pair: FlipPair, index: int, canvas: Tuple[int, int]) -> FlipPair:
    """Sample ``index``'s (1, C_l, h_l, w_l) outputs, cut out of a padded batch.

    Batching pads on the right and bottom; the flipped input was mirrored after padding, so
    its canvas sits at the right edge of the flipped outputs.

    Args:
        pair (FlipPair): Batched level outputs of one scale.
        index (int): Sample index in the batch.
        canvas (Tuple[int, int]): The sample's canvas (W, H) at this scale.

    Returns:
        FlipPair: The sample's outputs, level l of size ceil(canvas / (4 / 2**l)).
    """

    def crop(levels: LevelOutputs, flipped: bool) -> LevelOutputs:
        cropped = []
        for level, output in enumerate(levels):
            stride = INPUT_STRIDE / 2**level
            width, height = (math.ceil(v / stride) for v in canvas)
            left = output.shape[-1] - width if flipped else 0
            cropped.append(output[index:index + 1, :, :height, left:left + width])
        return cropped

    flipped = None if pair.flipped is None else crop(pair.flipped, flipped=True)
    return FlipPair(crop(pair.original, flipped=False), flipped)


def unflip_levels(levels: LevelOutputs, layout: OutputLayout,
                  flip_indices: Sequence[int]) -> LevelOutputs:
    """Mirror flipped-view outputs along W and swap left/right keypoint channels.

    Args:
        levels (List[Tensor]): (B, C_l, H_l, W_l) outputs of the flipped view.
        layout (OutputLayout): Channel layout.
        flip_indices (Sequence[int]): Keypoint flip permutation σ (K entries).

    Returns:
        List[Tensor]: The outputs in the original view's frame and keypoint order.
    """
    K = layout.num_keypoints
    unflipped = []
    for level, has_tags in zip(levels, layout.tag_levels):
        tag_channels = list(range(K, level.shape[1]))
        if has_tags and layout.tag_per_keypoint:
            tag_channels = [tag_channels[i] for i in flip_indices]
        mirrored = level.flip(-1)
        # Whole channel planes copied in the new order: moving values, so the bits are those
        # of the official index; cheaper on CPU than a gather along the channels.
        unflipped.append(
            torch.cat([mirrored[:, c:c + 1] for c in [*flip_indices, *tag_channels]], dim=1))
    return unflipped


def aggregate_levels(levels: LevelOutputs,
                     canvas: Tuple[int, int],
                     layout: OutputLayout,
                     flip_indices: Optional[Sequence[int]] = None,
                     mode: str = 'official') -> Tuple[Tensor, List[Tensor]]:
    """Level-averaged heatmaps and per-AE-level tags of one view, on the canvas.

    Args:
        levels (List[Tensor]): (B, C_l, H_l, W_l) outputs of one view, as the network gives
            them.
        canvas (Tuple[int, int]): Size (W, H) to project to.
        layout (OutputLayout): Channel layout.
        flip_indices (Sequence[int], optional): Given for the flipped view: its outputs are
            mirrored and permuted back (after the resize to the last level, officially).
        mode (str): ``'official'`` or ``'mmpose0x'``. Defaults to ``'official'``.

    Returns:
        tuple:
        - heatmaps (Tensor): (B, K, H, W)
        - tags (List[Tensor]): one (B, T, H, W) map per AE level
    """
    _check_mode(mode)
    heatmaps, tags = _view_maps(levels, canvas, layout, flip_indices, mode)
    if mode == 'official':
        tags = [resize_maps(tag, canvas) for tag in tags]
    return heatmaps, tags


def _view_maps(levels: LevelOutputs, canvas: Tuple[int, int], layout: OutputLayout,
               flip_indices: Optional[Sequence[int]], mode: str) -> Tuple[Tensor, List[Tensor]]:
    """:func:`aggregate_levels` with the tags not yet projected in ``'official'`` mode."""
    if mode == 'official':
        # Resize to the highest-resolution level, mirror, average, then project.
        levels = [resize_maps(level, map_size(levels[-1])) for level in levels[:-1]] + levels[-1:]
        if flip_indices is not None:
            levels = unflip_levels(levels, layout, flip_indices)
        heatmaps, tags = _split_levels(levels, layout)
        return resize_maps(heatmaps, canvas), tags
    # mmpose 0.x: mirror at native resolution, resize every level straight to the canvas.
    if flip_indices is not None:
        levels = unflip_levels(levels, layout, flip_indices)
    return _split_levels([resize_maps(level, canvas) for level in levels], layout)


def _stack_tags(tags: List[Tensor], canvas: Tuple[int, int], mode: str) -> Tensor:
    """(B, T, H, W, L): the L tag maps on the canvas, stacked on a last axis.

    Returned as a permuted view of an (L, B, T, H, W) tensor into which each map is resized
    (in eager mode without autograd: torch's ``out=`` kernel), with no stacking copy: the
    two 704x512 tag maps of a flip test are the largest tensors of the aggregation, and
    stacking them on a last axis would copy them once more, value by value. Each map is
    resized by its own call, as officially: the float results of torch's bilinear kernel
    depend on the tensor it is given (its parallel split), so batching them would change the
    last bits.
    """
    if mode == 'official' and _eager(tags):
        width, height = canvas
        stacked = tags[0].new_empty((len(tags), *tags[0].shape[:2], height, width))
        for tag, out in zip(tags, stacked):
            # The kernel F.interpolate(size=...) calls, with the same arguments.
            torch.ops.aten.upsample_bilinear2d.out(tag, [height, width],
                                                   False,
                                                   None,
                                                   None,
                                                   out=out)
        return stacked.permute(1, 2, 3, 4, 0)
    if mode == 'official':
        tags = [resize_maps(tag, canvas) for tag in tags]
    return torch.stack(tags, dim=-1)


def _eager(tensors: List[Tensor]) -> bool:
    """Not traced, exported or compiled, and no autograd: ``out=`` kernels may be called."""
    tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return not tracing and not grad


def _split_levels(levels: LevelOutputs, layout: OutputLayout) -> Tuple[Tensor, List[Tensor]]:
    """Average the heatmaps of same-size levels (official: 0 + h_0 + h_1 ..., then / n)."""
    K = layout.num_keypoints
    heatmaps = levels[0][:, :K] + 0  # a new tensor, and -0.0 becomes 0.0 as in 0 + h_0
    for level in levels[1:]:  # in place: no temporary per level (same operations)
        heatmaps += level[:, :K]
    heatmaps /= len(levels)
    tags = [level[:, K:] for level, has_tags in zip(levels, layout.tag_levels) if has_tags]
    return heatmaps, tags


def aggregate_flip(pair: FlipPair,
                   canvas: Tuple[int, int],
                   layout: OutputLayout,
                   flip_indices: Optional[Sequence[int]] = None,
                   mode: str = 'official') -> Tuple[Tensor, List[Tensor]]:
    """Flip-averaged heatmaps and the tags of both views of one scale, on the canvas.

    Args:
        pair (FlipPair): Level outputs of one scale (one sample or an unpadded batch).
        canvas (Tuple[int, int]): Size (W, H) to project to (the scale-1 canvas).
        layout (OutputLayout): Channel layout.
        flip_indices (Sequence[int], optional): Needed when ``pair.flipped`` is given.
        mode (str): ``'official'`` or ``'mmpose0x'``. Defaults to ``'official'``.

    Returns:
        tuple:
        - heatmaps (Tensor): (B, K, H, W), ``(h + h_f) / 2.0`` with flip
        - tags (List[Tensor]): (B, T, H, W) maps, original view's AE levels first
    """
    heatmaps, tags = _flip_maps(pair, canvas, layout, flip_indices, mode, with_tags=True)
    return heatmaps, list(tags.unbind(-1))


def _flip_maps(pair: FlipPair, canvas: Tuple[int, int], layout: OutputLayout,
               flip_indices: Optional[Sequence[int]], mode: str,
               with_tags: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """:func:`aggregate_flip` with the tags stacked (:func:`_stack_tags`), or ``None``."""
    _check_mode(mode)
    heatmaps, tags = _view_maps(pair.original, canvas, layout, None, mode)
    if pair.flipped is not None:
        if flip_indices is None:
            raise ValueError('flip_indices are needed to aggregate a flipped view')
        flipped, flipped_tags = _view_maps(pair.flipped, canvas, layout, flip_indices, mode)
        # (h + h_f) / 2.0 in place: canvas-sized temporaries cost more than the arithmetic.
        heatmaps = heatmaps.add_(flipped).div_(2.0)
        tags = tags + flipped_tags
    return heatmaps, _stack_tags(tags, canvas, mode) if with_tags else None


def aggregate_scales(pairs: Sequence[FlipPair],
                     scales: Sequence[float],
                     canvas: Tuple[int, int],
                     layout: OutputLayout,
                     flip_indices: Optional[Sequence[int]] = None,
                     mode: str = 'official') -> Tuple[Tensor, Tensor]:
    """Average the flip-averaged heatmaps of every scale; stack the tags of scale 1.

    Args:
        pairs (Sequence[FlipPair]): Level outputs of each scale, unpadded (see
            :func:`crop_to_canvas`).
        scales (Sequence[float]): Scale of each entry of ``pairs``; must contain 1.
        canvas (Tuple[int, int]): Scale-1 canvas (W, H); every scale is projected to it.
        layout (OutputLayout): Channel layout.
        flip_indices (Sequence[int], optional): Needed with flipped views.
        mode (str): ``'official'`` or ``'mmpose0x'``. Defaults to ``'official'``.

    Returns:
        tuple:
        - heatmaps (Tensor): (B, K, H, W)
        - tags (Tensor): (B, K, H, W, L), a permuted view of a (B, L, K, H, W) tensor (see
          :func:`_stack_tags`); a shared tag map (T = 1) is expanded to K
    """
    if len(pairs) != len(scales) or 1 not in scales:
        raise ValueError(f'need one output per scale and scale 1 among them, got '
                         f'{len(pairs)} outputs for scales {list(scales)}')
    final, tags = None, None
    # Official: largest scale first, accumulated in place, divided by float(len(S)).
    for index in sorted(range(len(scales)), key=lambda i: -scales[i]):
        heatmaps, scale_tags = _flip_maps(pairs[index], canvas, layout, flip_indices, mode,
                                          scales[index] == 1)
        final = heatmaps if final is None else final.add_(heatmaps)
        if scale_tags is not None:
            tags = scale_tags
    final = final.div_(float(len(scales)))
    if not layout.tag_per_keypoint:
        # One shared tag map: every keypoint reads it (as the official parser's expand).
        tags = tags.expand(-1, layout.num_keypoints, -1, -1, -1)
    return final, tags


def _check_mode(mode: str) -> None:
    if mode not in AGGREGATION_MODES:
        raise ValueError(f'aggregation must be one of {AGGREGATION_MODES}, got {mode!r}')
