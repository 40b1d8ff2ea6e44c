"""Candidates of the fast decoder: NMS peaks above a threshold and their top-k, per keypoint.

Part of :mod:`.grouping_fast` (see its docstring for how this matches the official parser).
"""
from typing import List, NamedTuple, Sequence, Tuple

import numpy as np

from .grouping_common import require_finite

# Above one pixel in this many, NMS compares whole maps at once (:func:`window_max`): cheaper
# than gathering every pixel's neighbours (a network early in training, many groups).
_DENSE_FRACTION = 8


class Candidates(NamedTuple):
    """Above-threshold NMS peaks of one keypoint, ordered by value (descending).

    - flat (np.ndarray): int64 (C, ), pixel index y * W + x
    - values (np.ndarray): float32 (C, ), heatmap values
    - tags (np.ndarray): float32 (C, L), tags at the pixels
    """
    flat: np.ndarray
    values: np.ndarray
    tags: np.ndarray


def find_candidates(heatmaps: np.ndarray, tags: np.ndarray, nms_kernel: int, topk: int,
                    threshold: float) -> List[Candidates]:
    """The official NMS + top-k candidates, restricted to values above ``threshold`` >= 0.

    A pixel is an NMS peak when it is >= every pixel of its ``nms_kernel`` window inside the
    map (the official max-pool pads with -inf): :func:`nms_filter`. Heatmaps with NaN or +Inf
    (anywhere) and candidates with non-finite tags raise a ``ValueError``; -Inf heat never
    passes the threshold and is allowed.

    Args:
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
        tags (np.ndarray): Tags in shape (K, H, W, L).
        nms_kernel (int): Odd NMS window size.
        topk (int): Maximum candidates per keypoint.
        threshold (float): Candidates need a value above it (compared in float64, as
            officially: :func:`float32_threshold`).

    Returns:
        List[Candidates]: K candidate sets.
    """
    num_keypoints, height, width = heatmaps.shape
    heat = heatmaps.reshape(-1)
    # "not <=" rather than ">": NaN and +Inf come along and are refused here, for free.
    above = np.flatnonzero(~(heat <= float32_threshold(threshold)))
    require_finite(heat[above], heatmaps, 'heatmaps')
    k, pixel = np.divmod(above, height * width)
    k, flat, values = nms_filter(heatmaps, k, pixel, nms_kernel)
    return rank_peaks(tags, range(num_keypoints), k, flat, values, topk)


def float32_threshold(threshold: float) -> np.float32:
    """The largest float32 t <= ``threshold``: a float32 x is > t exactly when x > ``threshold``.

    The official parser compares float64 values with the threshold, so float32(0.1) =
    0.10000000149 passes 0.1. numpy compares a float32 array with a Python float in float32,
    where 0.1 becomes that same float32 and it would not; comparing with t gives the float64
    answer at float32 speed.

    Args:
        threshold (float): The threshold.

    Returns:
        np.float32: t.
    """
    rounded = np.float32(threshold)
    if float(rounded) > threshold:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return rounded


def nms_filter(heatmaps: np.ndarray, k: np.ndarray, flat: np.ndarray,
               nms_kernel: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixels that are >= every pixel of their ``nms_kernel`` window inside the map.

    Neighbours are compared one offset at a time on the shrinking set of survivors;
    offsets outside the map are clamped onto the map, which stays inside the window. When the
    pixels are a large part of the maps, the window maxima of the whole maps are computed
    instead (the same comparison: a maximum is exact).

    Args:
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
        k (np.ndarray): int64 (P, ) keypoint of each pixel.
        flat (np.ndarray): int64 (P, ) pixel index y * W + x.
        nms_kernel (int): Odd NMS window size.

    Returns:
        tuple: ``k``, ``flat`` and float32 ``values`` of the peaks among the P pixels.
    """
    _, height, width = heatmaps.shape
    heat = heatmaps.reshape(-1)
    index = k * (height * width) + flat  # into heat
    values = heat[index]
    if len(index) * _DENSE_FRACTION > heat.size:  # most pixels: one pass over whole maps
        keypoints = np.unique(k)
        window = window_max(heatmaps[keypoints], nms_kernel // 2)
        slot = np.searchsorted(keypoints, k) * (height * width) + flat
        peak = values >= window.reshape(-1)[slot]
        return k[peak], flat[peak], values[peak]
    y, x = np.divmod(flat, width)
    radius = nms_kernel // 2
    # Interior pixels need no clamping: their neighbours are at fixed offsets of ``index``.
    inner = (y >= radius) & (y < height - radius) & (x >= radius) & (x < width - radius)
    inner_index, inner_values = index[inner], values[inner]
    border = ~inner
    k, y, x, border_values = k[border], y[border], x[border], values[border]
    offsets = sorted(((dy, dx) for dy in range(-radius, radius + 1)
                      for dx in range(-radius, radius + 1) if (dy, dx) != (0, 0)),
                     key=lambda o: abs(o[0]) + abs(o[1]))  # nearest neighbours prune most
    for dy, dx in offsets:
        peak = inner_values >= heat[inner_index + (dy * width + dx)]
        inner_index, inner_values = inner_index[peak], inner_values[peak]
        neighbours = heatmaps[k, np.clip(y + dy, 0, height - 1), np.clip(x + dx, 0, width - 1)]
        peak = border_values >= neighbours
        k, y, x, border_values = k[peak], y[peak], x[peak], border_values[peak]
    inner_k, inner_flat = np.divmod(inner_index, height * width)
    return (np.concatenate((inner_k, k)), np.concatenate((inner_flat, y * width + x)),
            np.concatenate((inner_values, border_values)))


def window_max(maps: np.ndarray, radius: int) -> np.ndarray:
    """(K, H, W) maximum of each pixel's (2r+1)^2 window inside the map (separable, exact).

    Args:
        maps (np.ndarray): (K, H, W) maps.
        radius (int): Window radius r.

    Returns:
        np.ndarray: (K, H, W) window maxima, same dtype.
    """
    result = maps
    for axis in (2, 1):  # rows, then columns of the row maxima
        source, result = result, result.copy()
        size = source.shape[axis]
        for d in range(1, min(radius, size - 1) + 1):
            head = [slice(None)] * 3
            tail = [slice(None)] * 3
            head[axis], tail[axis] = slice(d, None), slice(None, size - d)
            head, tail = tuple(head), tuple(tail)
            np.maximum(result[head], source[tail], out=result[head])
            np.maximum(result[tail], source[head], out=result[tail])
    return result


def rank_peaks(tags: np.ndarray, keypoints: Sequence[int], k: np.ndarray, flat: np.ndarray,
               values: np.ndarray, topk: int) -> List[Candidates]:
    """The ``topk`` largest peaks of each of ``keypoints``, by value then pixel index.

    Their tags must be finite (``ValueError`` otherwise).

    Args:
        tags (np.ndarray): Tags in shape (K, H, W, L).
        keypoints (Sequence[int]): The keypoints to return, ascending.
        k (np.ndarray): int64 (P, ) keypoint of each peak.
        flat (np.ndarray): int64 (P, ) pixel index y * W + x.
        values (np.ndarray): float32 (P, ) heatmap values.
        topk (int): Maximum peaks per keypoint.

    Returns:
        List[Candidates]: one candidate set per keypoint of ``keypoints``.
    """
    ranking = np.lexsort((flat, -values, k))  # by keypoint, value descending, pixel
    k, flat, values = k[ranking], flat[ranking], values[ranking]
    starts = np.searchsorted(k, keypoints, side='left')
    stops = np.searchsorted(k, keypoints, side='right')
    tags_flat = tags.reshape(tags.shape[0], -1, tags.shape[-1])
    candidates = []
    for j, start, stop in zip(keypoints, starts, stops):
        top = slice(start, min(stop, start + topk))
        candidates.append(Candidates(flat[top], values[top], tags_flat[j, flat[top]]))
        require_finite(candidates[-1].tags, tags, 'tags')
    return candidates
