"""Pieces shared by the reference and the fast grouping (``HeatmapParser``).

Both parsers follow ``HeatmapParser`` of the official HigherHRNet code
(HRNet/HigherHRNet-Human-Pose-Estimation, ``lib/core/group.py``, MIT licence). This module
holds what must be identical in both: input checking, the keypoint grouping order, the
official NMS + top-k candidate search, the official costs, numpy's summation order (for the
compiled kernels of the fast parser) and the packing of the results.

No module here imports torch: the maps may be numpy arrays or CPU tensors (read through
``.detach().cpu().numpy()``), and only :func:`official_candidates`, which runs the official
max-pool and ``torch.topk``, imports torch when it is called.

Note:
    - keypoint number: K
    - heatmap size: (W, H)
    - tag dimension: L (2 with flip test: original and flipped tags)
    - candidate number per keypoint: M (``topk``)
    - person number: N
"""
from typing import TYPE_CHECKING, Optional, Sequence, Tuple, Union

import numba
import numpy as np

if TYPE_CHECKING:
    import torch

ArrayOrTensor = Union[np.ndarray, 'torch.Tensor']
ParseResult = Tuple[np.ndarray, np.ndarray, np.ndarray]

# Cost of the padding columns when there are more candidates than persons (official value).
PADDING_COST = 1e10

# Official grouping order for COCO (``Params.joint_order``): nose, eyes, ears, shoulders,
# then the hips before the arms, then knees and ankles.
COCO_KEYPOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)


def default_keypoint_order(num_keypoints: int) -> Tuple[int, ...]:
    """Grouping order the official parser uses for ``num_keypoints`` keypoints.

    The official code always walks the first K entries of :data:`COCO_KEYPOINT_ORDER`. That
    is a permutation for K in 1..7 and 13..17 (CrowdPose, K = 14, is grouped in the order
    ``0..6, 11, 12, 7..10, 13``); for other K it would index out of range, and we fall back
    to ``range(K)``. mmpose 0.x uses ``range(K)`` for every K != 17, so for K in {13, 14}
    it differs from the official order.

    Args:
        num_keypoints (int): Number of keypoints K.

    Returns:
        Tuple[int, ...]: The order, a permutation of ``range(K)``.
    """
    head = COCO_KEYPOINT_ORDER[:num_keypoints]
    if sorted(head) == list(range(num_keypoints)):
        return head
    return tuple(range(num_keypoints))


def resolve_keypoint_order(keypoint_order: Optional[Sequence[int]],
                           num_keypoints: int) -> Tuple[int, ...]:
    """Return ``keypoint_order`` checked to be a permutation of ``range(K)``, or the default.

    Args:
        keypoint_order (Sequence[int], optional): Requested order; ``None`` for the official
            one (:func:`default_keypoint_order`).
        num_keypoints (int): Number of keypoints K.

    Returns:
        Tuple[int, ...]: The grouping order.
    """
    if keypoint_order is None:
        return default_keypoint_order(num_keypoints)
    order = tuple(int(k) for k in keypoint_order)
    if sorted(order) != list(range(num_keypoints)):
        raise ValueError(f'keypoint_order {order} is not a permutation of range({num_keypoints})')
    return order


def prepare_maps(heatmaps: ArrayOrTensor, tags: ArrayOrTensor) -> Tuple[np.ndarray, np.ndarray]:
    """Check the shapes and return float32 numpy views (or copies) of the maps.

    Finiteness is checked by the parsers (:func:`require_finite`), each where it reads.

    Args:
        heatmaps (np.ndarray | Tensor): Heatmaps in shape (K, H, W), CPU.
        tags (np.ndarray | Tensor): Tags in shape (K, H, W, L), or (K, H, W) for L = 1, CPU.

    Returns:
        tuple:
        - heatmaps (np.ndarray): float32 (K, H, W), C-contiguous
        - tags (np.ndarray): float32 (K, H, W, L), strided as given (float32 input: no copy)
    """
    heatmaps = np.ascontiguousarray(_to_numpy(heatmaps), dtype=np.float32)
    # Tags are read at a few pixels only: a strided view (the aggregation's permuted tags)
    # is used as it is, where a contiguous copy would cost more than the decoding.
    tags = np.asarray(_to_numpy(tags), dtype=np.float32)
    if tags.ndim == 3:
        tags = tags[..., None]
    if heatmaps.ndim != 3 or tags.ndim != 4 or tags.shape[:3] != heatmaps.shape:
        raise ValueError(f'Expected heatmaps (K, H, W) and tags (K, H, W, L), got '
                         f'{heatmaps.shape} and {tags.shape}')
    return heatmaps, tags


def _to_numpy(maps: ArrayOrTensor) -> np.ndarray:
    if hasattr(maps, 'detach'):  # a torch tensor, recognised without importing torch
        return maps.detach().cpu().numpy()
    return maps


def require_finite(values: np.ndarray, maps: np.ndarray, name: str) -> None:
    """Raise a ``ValueError`` naming ``maps`` and counting its NaN and Inf when ``values`` (read
    from ``maps``) hold one.

    Without it a NaN reaches the assignment as an unrelated error, or changes a result
    silently (it never passes a comparison).

    Args:
        values (np.ndarray): Values read from ``maps``, any shape.
        maps (np.ndarray): The map they were read from, counted only on failure.
        name (str): Its name in the message, e.g. ``'heatmaps'``.
    """
    if not np.isfinite(values).all():
        raise non_finite_error(maps.size - np.count_nonzero(np.isfinite(maps)), maps.size, name)


def non_finite_error(count: int, size: int, name: str) -> ValueError:
    """The error of :func:`require_finite` for a map ``name`` of ``size`` values, ``count`` of
    them NaN or Inf (also raised where the count was taken on a device)."""
    return ValueError(f'{name} hold {count} non-finite value(s) (NaN or Inf) of {size}; '
                      f'grouping needs finite maps')


def official_candidates(heatmaps: np.ndarray, tags: np.ndarray, nms_kernel: int,
                        topk: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keypoint candidates as the official ``HeatmapParser.top_k``: NMS, then top-k per keypoint.

    NMS keeps every pixel equal to the maximum of its ``nms_kernel`` window (so all pixels
    of a plateau survive) and zeroes the others; ``torch.topk`` then takes the M largest
    values of each keypoint's map, in its own order for equal values.

    Args:
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
        tags (np.ndarray): Tags in shape (K, H, W, L).
        nms_kernel (int): Odd NMS window size (the official padding is ``nms_kernel // 2``).
        topk (int): Candidates per keypoint, M = min(topk, H*W).

    Returns:
        tuple:
        - values (np.ndarray): float32 (K, M), NMS heatmap values, descending
        - locations (np.ndarray): int64 (K, M, 2), integer (x, y) pixel of each candidate
        - candidate_tags (np.ndarray): float32 (K, M, L), tags at those pixels
    """
    import torch  # only here: the rest of the grouping code runs without torch
    import torch.nn.functional as F

    num_keypoints, height, width = heatmaps.shape
    det = torch.from_numpy(heatmaps)[None]
    window_max = F.max_pool2d(det, nms_kernel, stride=1, padding=nms_kernel // 2)
    det_nms = (det * torch.eq(window_max, det).float())[0].reshape(num_keypoints, -1)
    values, flat = det_nms.topk(min(topk, height * width), dim=1)
    flat = flat.numpy()
    candidate_tags = np.take_along_axis(tags.reshape(num_keypoints, height * width, -1),
                                        flat[..., None],
                                        axis=1)
    locations = np.stack([flat % width, flat // width], axis=-1)
    return values.numpy(), locations, candidate_tags


def official_costs(distances: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The official Munkres cost matrix: ``round(D) * 100 - value``, padded with 1e10 columns.

    Args:
        distances (np.ndarray): float64 (R, G) tag distances D of R candidates to G persons.
        values (np.ndarray): (R, ) candidate heatmap values.

    Returns:
        np.ndarray: float64 (R, max(R, G)); columns beyond G (when R > G) cost 1e10.
    """
    costs = np.round(distances) * 100 - values[:, None].astype(np.float64)
    num_rows, num_cols = costs.shape
    if num_rows > num_cols:
        padding = np.full((num_rows, num_rows - num_cols), PADDING_COST)
        costs = np.concatenate((costs, padding), axis=1)
    return costs


def empty_result(num_keypoints: int) -> ParseResult:
    """Result with no person: keypoints (0, K, 2), keypoint scores (0, K), scores (0,)."""
    keypoints = np.zeros((0, num_keypoints, 2), np.float32)
    return keypoints, np.zeros((0, num_keypoints), np.float32), np.zeros((0, ), np.float32)


@numba.njit(cache=True, nogil=True)
def numpy_sum(terms):  # pragma: no cover (compiled)
    """numpy's sum of a contiguous run of 1 to 128 values, compiled: in order below 8 values,
    else in 8 interleaved partial sums combined pairwise, then the rest in order (the first
    level of numpy's pairwise sum). Accumulates in the dtype of ``terms``.

    Where the official parser sums along a contiguous axis (``np.linalg.norm`` over L tag
    channels, ``np.mean`` of one-channel tags), any other order can flip a result at a
    boundary (a join at a distance of exactly the threshold, a rounded distance at .5).
    """
    count = len(terms)
    if count < 8:
        total = terms.dtype.type(0)
        for i in range(count):
            total += terms[i]
        return total
    partial = terms[:8].copy()
    end = count - count % 8
    for i in range(8, end, 8):
        for j in range(8):
            partial[j] += terms[i + j]
    total = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) +
                                                                       (partial[6] + partial[7]))
    for i in range(end, count):
        total += terms[i]
    return total
