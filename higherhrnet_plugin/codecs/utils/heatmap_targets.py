"""Training targets of HigherHRNet: multi-person Gaussian heatmaps and AE tag indices.

The arithmetic follows the official ``HeatmapGenerator`` and ``JointsGenerator``
(HRNet/HigherHRNet-Human-Pose-Estimation, ``lib/dataset/target_generators/target_generators.py``,
MIT licence); the code is written anew and vectorised where that stays readable.

Symbols used in this module:

    - N: number of persons
    - K: number of keypoints
    - H, W: height and width of one heatmap level
"""
from typing import Tuple

import numpy as np


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The official Gaussian patch: ``6*sigma + 3`` samples per side, peak 1 at ``3*sigma + 1``.

    For ``sigma=2`` it is a 15x15 patch whose centre is ``[7, 7]``. Kept in float64 as the
    official code; the heatmaps it is pasted into are float32.

    Args:
        sigma (float): Standard deviation in heatmap pixels.

    Returns:
        np.ndarray: The patch, in shape (S, S) with ``S = ceil(6*sigma + 3)``.
    """
    grid = np.arange(0, 6 * sigma + 3, 1, dtype=np.float64)
    centre = 3 * sigma + 1
    sq_dist = (grid[None, :] - centre)**2 + (grid[:, None] - centre)**2
    return np.exp(-sq_dist / (2 * sigma**2))


def keypoint_cells(keypoints: np.ndarray,
                   heatmap_size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Integer cells of keypoints, as the official ``int(x), int(y)``; whether each is on the map.

    ``int()`` truncates toward zero, so a coordinate in (-1, 0) falls in cell 0 and is kept,
    while -1.0 and below are dropped. Non-finite coordinates are off the map.

    Args:
        keypoints (np.ndarray): Coordinates in heatmap pixels, in shape (N, K, 2).
        heatmap_size (Tuple[int, int]): Map size (W, H).

    Returns:
        tuple:
        - cells (np.ndarray): Integer cells (x, y) in shape (N, K, 2), int64; 0 where off the map.
        - on_map (np.ndarray): Bool mask in shape (N, K).
    """
    w, h = heatmap_size
    with np.errstate(invalid='ignore'):
        truncated = np.trunc(keypoints[..., :2])
        on_map = ((truncated[..., 0] >= 0) & (truncated[..., 0] < w)
                  & (truncated[..., 1] >= 0) & (truncated[..., 1] < h))
    cells = np.where(on_map[..., None], truncated, 0).astype(np.int64)
    return cells, on_map


def multi_person_heatmaps(cells: np.ndarray, valid: np.ndarray, heatmap_size: Tuple[int, int],
                          kernel: np.ndarray, sigma: float) -> np.ndarray:
    """Paste one Gaussian per valid keypoint, merging persons by element-wise maximum.

    As the official ``HeatmapGenerator``: the patch covers cells
    ``[round(x - 3*sigma - 1), round(x + 3*sigma + 2))`` on each axis (``[x-7, x+8)`` for
    ``sigma=2``), clipped to the map, and overlapping persons take the maximum, not the sum.

    Args:
        cells (np.ndarray): Integer keypoint cells (x, y) in shape (N, K, 2).
        valid (np.ndarray): Whether to draw each keypoint, bool in shape (N, K).
        heatmap_size (Tuple[int, int]): Map size (W, H).
        kernel (np.ndarray): The patch from :func:`gaussian_kernel`.
        sigma (float): The ``sigma`` the patch was built with.

    Returns:
        np.ndarray: Heatmaps in shape (K, H, W), float32.
    """
    w, h = heatmap_size
    num_keypoints = cells.shape[1]
    heatmaps = np.zeros((num_keypoints, h, w), dtype=np.float32)
    for person, k in zip(*np.nonzero(valid)):
        x, y = cells[person, k]
        left, top = int(np.round(x - 3 * sigma - 1)), int(np.round(y - 3 * sigma - 1))
        right, bottom = int(np.round(x + 3 * sigma + 2)), int(np.round(y + 3 * sigma + 2))
        map_x0, map_x1 = max(0, left), min(right, w)
        map_y0, map_y1 = max(0, top), min(bottom, h)
        window = heatmaps[k, map_y0:map_y1, map_x0:map_x1]
        patch = kernel[map_y0 - top:map_y1 - top, map_x0 - left:map_x1 - left]
        np.maximum(window, patch, out=window)
    return heatmaps


def tag_indices(cells: np.ndarray, valid: np.ndarray, heatmap_size: Tuple[int, int]) -> np.ndarray:
    """Flat indices into the (K, H, W) tag map, as the official ``JointsGenerator``.

    Each keypoint gets ``[k*H*W + y*W + x, 1]`` when valid and ``[0, 0]`` otherwise.

    Unlike the official code, keypoint ``k`` stays in slot ``k`` instead of the valid ones
    being packed to the front of the row: the AE loss only looks at the set of valid entries
    of a row, so both layouts give the same loss.

    Args:
        cells (np.ndarray): Integer keypoint cells (x, y) in shape (N, K, 2).
        valid (np.ndarray): Bool mask in shape (N, K).
        heatmap_size (Tuple[int, int]): Size (W, H) of the map the tags are predicted on.

    Returns:
        np.ndarray: Indices in shape (N, K, 2), int64.
    """
    w, h = heatmap_size
    keypoint_ids = np.arange(cells.shape[1], dtype=np.int64)[None, :]
    flat = keypoint_ids * (h * w) + cells[..., 1] * w + cells[..., 0]
    return np.stack([flat, np.ones_like(flat)], axis=-1) * valid[..., None]
