"""Candidates of the fast decoder: the top-k NMS peaks above a threshold, per keypoint.

Part of :mod:`.grouping_fast` (see its docstring for how this matches the official parser).
"""
from typing import List, NamedTuple, Sequence, Tuple

import numpy as np

from .grouping_common import require_finite
from .grouping_peaks import PeakTable, scan_peaks


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
    map (the official max-pool pads with -inf). Heatmaps with NaN or +Inf (anywhere) and
    candidates with non-finite tags raise a ``ValueError``; -Inf heat never passes the
    threshold and is allowed.

    Args:
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W), C-contiguous float32.
        tags (np.ndarray): Tags in shape (K, H, W, L).
        nms_kernel (int): Odd NMS window size.
        topk (int): Maximum candidates per keypoint.
        threshold (float): Candidates need a value above it (compared in float64, as
            officially: :func:`float32_threshold`).

    Returns:
        List[Candidates]: K candidate sets.
    """
    return candidates_above(scan_peaks(heatmaps, nms_kernel, topk), tags, threshold)


def candidates_above(table: PeakTable, tags: np.ndarray, threshold: float) -> List[Candidates]:
    """The entries of a peak table above ``threshold``, with their (checked) tags.

    The ``topk`` highest positive peaks include the ``topk`` highest peaks above any
    threshold >= 0, so these are the official candidates.

    Args:
        table (PeakTable): The maps' peak table (:func:`.grouping_peaks.scan_peaks`).
        tags (np.ndarray): Tags in shape (K, H, W, L).
        threshold (float): The detection threshold (>= 0).

    Returns:
        List[Candidates]: K candidate sets.
    """
    above = (table.values > float32_threshold(threshold)).sum(axis=1)
    return [table_entries(table, tags, k, int(count)) for k, count in enumerate(above)]


def table_entries(table: PeakTable, tags: np.ndarray, k: int, count: int) -> Candidates:
    """The first ``count`` entries of keypoint ``k`` with their tags (finite, else ValueError)."""
    flat = table.flat[k, :count]
    found = Candidates(flat, table.values[k, :count], tags[k].reshape(-1, tags.shape[-1])[flat])
    require_finite(found.tags, tags, 'tags')
    return found


def pad_candidates(candidates: Sequence[Candidates],
                   value_padding: float = 0.0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """G candidate sets as padded arrays, for the compiled and vectorised steps.

    Args:
        candidates (Sequence[Candidates]): G sets (G >= 1) of at most M entries each.
        value_padding (float): Value of the padding entries. Defaults to ``0.0``.

    Returns:
        tuple:
        - flat (np.ndarray): int64 (G, max(M, 1)), padding 0
        - values (np.ndarray): float32 (G, max(M, 1)), padding ``value_padding``
        - tags (np.ndarray): float32 (G, max(M, 1), L), padding 0
    """
    width = max(max(len(found.flat) for found in candidates), 1)
    flat = np.zeros((len(candidates), width), np.int64)
    values = np.full((len(candidates), width), value_padding, np.float32)
    tags = np.zeros((len(candidates), width, candidates[0].tags.shape[1]), np.float32)
    for row, found in enumerate(candidates):
        size = len(found.flat)
        flat[row, :size], values[row, :size], tags[row, :size] = found
    return flat, values, tags


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
