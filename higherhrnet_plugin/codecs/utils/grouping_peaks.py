"""The peak table of the fast decoder: each heatmap's ``topk`` highest positive NMS peaks.

One compiled pass over each map (numba) finds everything the fast parser reads from the
heatmaps: the candidates are the table's entries above the detection threshold (the
official parser drops every other NMS peak), the ``'peaks'`` refine searches the table
itself. Why compiled: the maps of a 704x512 canvas hold 6 million values; numpy needs one
pass per comparison and a gather per NMS neighbour, this pass reads each value once and
skips a block of 64 values with vectorised tests: when none is above the current cut, or
none is also >= its four nearest neighbours (a Gaussian's tail: positive, never a peak).

A pixel is a peak when it is >= every pixel of its ``nms_kernel`` window inside the map:
the official max-pool pads with -inf and keeps pixels equal to their window maximum, so all
pixels of a plateau are peaks. Entries are ordered by value (descending), then pixel index.
The cut rises as the table fills (a min-heap of the ``topk`` best peaks so far): a pixel is
tested for peak-ness only when it would enter the table, so a map costs one read plus a few
NMS tests, however many of its pixels are positive.

Note:
    - keypoint number: K
    - heatmap size: (W, H)
    - entries per keypoint: M = ``topk``
"""
from typing import NamedTuple

import numba
import numpy as np

from .grouping_common import non_finite_error

# Values tested at once for "any above the cut" (vectorised); a block with none is skipped.
_BLOCK = 64


class PeakTable(NamedTuple):
    """The ``topk`` highest positive NMS peaks of each heatmap.

    - flat (np.ndarray): int64 (K, M), pixel index y * W + x, by value (descending), then
      pixel index; entries beyond ``counts[k]`` are padding (0)
    - values (np.ndarray): float32 (K, M), heatmap values (padding 0)
    - counts (np.ndarray): int64 (K, ), entries that are peaks
    """
    flat: np.ndarray
    values: np.ndarray
    counts: np.ndarray


def scan_peaks(heatmaps: np.ndarray, nms_kernel: int, topk: int) -> PeakTable:
    """The peak table of C-contiguous float32 ``heatmaps``.

    NaN and +Inf anywhere raise a ``ValueError`` counting the non-finite values (the scan
    meets every one of them); -Inf is never positive and is allowed.

    Args:
        heatmaps (np.ndarray): float32 heatmaps in shape (K, H, W), C-contiguous.
        nms_kernel (int): Odd NMS window size.
        topk (int): Entries per keypoint, >= 1.

    Returns:
        PeakTable: The table.
    """
    if nms_kernel < 1 or nms_kernel % 2 == 0:
        raise ValueError(f'nms_kernel must be an odd positive size, got {nms_kernel}')
    if topk < 1:
        raise ValueError(f'topk must be >= 1, got {topk}')
    num_keypoints = heatmaps.shape[0]
    flat = np.zeros((num_keypoints, topk), np.int64)
    values = np.zeros((num_keypoints, topk), np.float32)
    counts = np.zeros(num_keypoints, np.int64)
    non_finite = _scan_maps(heatmaps, nms_kernel // 2, flat, values, counts)
    if non_finite:
        raise non_finite_error(heatmaps.size - np.count_nonzero(np.isfinite(heatmaps)),
                               heatmaps.size, 'heatmaps')
    # The heap holds the entries in heap order: sort them, padding last.
    padding = np.arange(topk)[None] >= counts[:, None]
    order = np.lexsort((flat, -values, padding), axis=1)
    flat, values = (np.take_along_axis(part, order, axis=1) for part in (flat, values))
    return PeakTable(flat, values, counts)


@numba.njit(cache=True, nogil=True)
def _scan_maps(heatmaps, radius, flat, values, counts):  # pragma: no cover (compiled)
    """Fill ``flat``, ``values`` (K, M) in heap order and ``counts``; return the NaN/+Inf count."""
    num_keypoints, height, width = heatmaps.shape
    non_finite = 0
    for k in range(num_keypoints):
        counts[k], bad = _scan_map(heatmaps[k].reshape(-1), width, radius, values[k], flat[k])
        non_finite += bad
    return non_finite


@numba.njit(cache=True, nogil=True)
def _scan_map(heat, width, radius, heap_values, heap_flat):  # pragma: no cover (compiled)
    """One map's peaks into a min-heap of ``len(heap_values)`` entries: (count, NaN/+Inf)."""
    height = heat.size // width
    ys, xs = _window_offsets(radius)
    steps = ys * width + xs
    topk = len(heap_values)
    size = 0
    non_finite = 0
    cut = np.float32(0.0)  # entries must exceed it: 0 (positive), then the heap's worst value
    flags = np.ones(_BLOCK, np.bool_)  # pixels of the block that may enter the table
    for y in range(height):  # row by row: a pixel's column is known without a division
        row = y * width
        up = row - width if y > 0 else row  # outside the map: the row itself, never larger
        down = row + width if y < height - 1 else row
        for x0 in range(0, width, _BLOCK):
            x1 = min(x0 + _BLOCK, width)
            if x1 - x0 == _BLOCK:
                if not _any_above(heat[row + x0:row + x1], cut):
                    continue
                if radius > 0 and not _cross_peaks(heat, row, up, down, x0, width, cut, flags):
                    continue
            else:
                flags[:] = True
            for x in range(x0, x1):
                if not flags[x - x0]:
                    continue
                value = heat[row + x]
                if value <= cut:
                    continue
                if not value < np.inf:
                    non_finite += 1
                    continue
                if _is_peak(heat, row + x, x, y, value, width, height, radius, ys, xs, steps):
                    size = _heap_push(heap_values, heap_flat, size, value, row + x)
                    if size == topk:
                        cut = heap_values[0]
    return size, non_finite


@numba.njit(cache=True, nogil=True)
def _any_above(block, cut):  # pragma: no cover (compiled)
    """Whether a value of the block is not <= ``cut`` (NaN and +Inf are: the scan counts them)."""
    hit = False
    for j in range(_BLOCK):
        hit |= not block[j] <= cut
    return hit


@numba.njit(cache=True, nogil=True)
def _cross_peaks(heat, row, up, down, x0, width, cut, flags):  # pragma: no cover (compiled)
    """Flag the pixels of the block ``row + [x0, x0 + 64)`` that may be peaks above ``cut``;
    return whether any is.

    A peak is >= its four nearest neighbours inside the map: testing them for the whole block
    at once (vectorised) skips the rows of a Gaussian's tail, where every pixel is positive
    but none is a peak, and leaves a few pixels of the others to test in full. NaN and +Inf
    are flagged (every "not <" holds), so the scan still counts them. ``up``/``down`` are
    the offsets of the rows above and below, or ``row`` at the map's edge (a pixel never
    exceeds itself).
    """
    block = heat[row + x0:row + x0 + _BLOCK]
    above = heat[up + x0:up + x0 + _BLOCK]
    below = heat[down + x0:down + x0 + _BLOCK]
    hit = False
    for j in range(1, _BLOCK - 1):
        value = block[j]
        flag = ((not value <= cut) & (not value < block[j - 1]) & (not value < block[j + 1])
                & (not value < above[j]) & (not value < below[j]))
        flags[j] = flag
        hit |= flag
    for j, x in ((0, x0), (_BLOCK - 1, x0 + _BLOCK - 1)):  # neighbours beyond the block
        value = block[j]
        left = heat[row + x - 1] if x > 0 else value
        right = heat[row + x + 1] if x < width - 1 else value
        flag = ((not value <= cut) & (not value < left) & (not value < right)
                & (not value < above[j]) & (not value < below[j]))
        flags[j] = flag
        hit |= flag
    return hit


@numba.njit(cache=True, nogil=True)
def _window_offsets(radius):  # pragma: no cover (compiled)
    """(dy, dx) of the window without its centre, nearest first (they reject the most)."""
    ys = np.empty((2 * radius + 1)**2 - 1, np.int64)
    xs = np.empty_like(ys)
    n = 0
    for distance in range(1, 2 * radius + 1):
        for dx in range(-radius, radius + 1):
            for dy in range(-radius, radius + 1):
                if abs(dy) + abs(dx) == distance:
                    ys[n] = dy
                    xs[n] = dx
                    n += 1
    return ys, xs


@numba.njit(cache=True, nogil=True)
def _is_peak(heat, pixel, x, y, value, width, height, radius, ys, xs,
             steps):  # pragma: no cover (compiled)
    """Whether no pixel of the window inside the map exceeds ``value`` (at ``pixel`` = (x, y))."""
    if radius <= y < height - radius and radius <= x < width - radius:
        for j in range(len(steps)):  # interior: fixed steps, no bounds
            if heat[pixel + steps[j]] > value:
                return False
        return True
    for j in range(len(ys)):
        yy = y + ys[j]
        xx = x + xs[j]
        if 0 <= yy < height and 0 <= xx < width and heat[yy * width + xx] > value:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _worse(value_a, flat_a, value_b, flat_b):  # pragma: no cover (compiled)
    """Entry a ranks after entry b: smaller value, or equal value and larger pixel index."""
    return value_a < value_b or (value_a == value_b and flat_a > flat_b)


@numba.njit(cache=True, nogil=True)
def _heap_push(heap_values, heap_flat, size, value, pixel):  # pragma: no cover (compiled)
    """Add an entry to the min-heap (worst entry at the root), replacing the root when full."""
    if size < len(heap_values):
        i = size
        size += 1
        while i > 0:  # sift up
            parent = (i - 1) // 2
            if not _worse(value, pixel, heap_values[parent], heap_flat[parent]):
                break
            heap_values[i] = heap_values[parent]
            heap_flat[i] = heap_flat[parent]
            i = parent
    else:  # the new entry ranks before the root (it passed the cut): sift down from the root
        i = 0
        while True:
            child = 2 * i + 1
            if child >= size:
                break
            if child + 1 < size and _worse(heap_values[child + 1], heap_flat[child + 1],
                                           heap_values[child], heap_flat[child]):
                child += 1
            if not _worse(heap_values[child], heap_flat[child], value, pixel):
                break
            heap_values[i] = heap_values[child]
            heap_flat[i] = heap_flat[child]
            i = child
    heap_values[i] = value
    heap_flat[i] = pixel
    return size
