"""Adjust and refine of the fast decoder (``refine_search='full'`` and ``'peaks'``).

Part of :mod:`.grouping_fast` (see its docstring for where ``'peaks'`` differs from the
official refine).

Note:
    - keypoint number: K
    - heatmap size: (W, H)
    - tag dimension: L
    - person number: N
"""
from typing import Dict, List, Protocol, Tuple

import numpy as np

from .grouping_candidates import Candidates, pad_candidates, table_entries
from .grouping_peaks import PeakTable, scan_peaks
from .grouping_refine_search import RefineSearch


def quarter_pixel(heatmaps: np.ndarray, k: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Centre (+0.5) plus 0.25 towards the larger neighbour, for many pixels at once.

    Neighbours are clamped to the map; ties give -0.25 (the official rule).

    Args:
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
        k (np.ndarray): Keypoint index of each pixel, shape (P, ).
        flat (np.ndarray): Pixel index y * W + x, shape (P, ).

    Returns:
        np.ndarray: float32 (P, 2) sub-pixel (x, y).
    """
    _, height, width = heatmaps.shape
    y, x = np.divmod(flat, width)
    right = heatmaps[k, y, np.minimum(x + 1, width - 1)] > heatmaps[k, y, np.maximum(x - 1, 0)]
    down = heatmaps[k, np.minimum(y + 1, height - 1), x] > heatmaps[k, np.maximum(y - 1, 0), x]
    shift = np.where(np.stack([right, down], axis=-1), 0.75, 0.25)
    return (np.stack([x, y], axis=-1) + shift).astype(np.float32)


class PeakSource(Protocol):
    """What the fast parser reads from the maps after finding the candidates.

    - ``width`` (int): W
    - ``subpixel(k, flat)``: float32 (P, 2) adjusted (x, y) of P pixels (:func:`quarter_pixel`)
    - ``peaks(needed)``: the ``topk`` highest positive NMS peaks of each needed keypoint,
      ``Dict[int, Candidates]`` by value (descending), then pixel index
    - ``maps()``: heatmaps (K, H, W) and tags (K, H, W, L) as numpy arrays (full refine)
    """
    width: int


class MapPeaks:
    """:class:`PeakSource` of numpy maps and their peak table.

    Args:
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
        tags (np.ndarray): Tags in shape (K, H, W, L).
        table (PeakTable): Their peak table (:func:`.grouping_peaks.scan_peaks`).
    """

    def __init__(self, heatmaps: np.ndarray, tags: np.ndarray, table: PeakTable) -> None:
        self.heatmaps, self.tags, self.table = heatmaps, tags, table
        self.width = heatmaps.shape[2]

    def subpixel(self, k: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """float32 (P, 2) adjusted positions of keypoint ``k`` (P, ) at pixels ``flat`` (P, )."""
        return quarter_pixel(self.heatmaps, k, flat)

    def peaks(self, needed: np.ndarray) -> Dict[int, Candidates]:
        """The table's entries of the ``needed`` (K, ) keypoints (:func:`refine_peaks`)."""
        return table_peaks(self.table, self.tags, needed)

    def maps(self) -> Tuple[np.ndarray, np.ndarray]:
        """The heatmaps and tags."""
        return self.heatmaps, self.tags


def fill_missing(keypoints: np.ndarray, values: np.ndarray, flat: np.ndarray,
                 person_tags: np.ndarray, heatmaps: np.ndarray, tags: np.ndarray) -> None:
    """The official ``refine``, in place, for the missing keypoints (value 0) only.

    Args:
        keypoints (np.ndarray): (N, K, 2) keypoints; missing ones are overwritten when found.
        values (np.ndarray): (N, K) heatmap values, 0 = missing; overwritten likewise.
        flat (np.ndarray): (N, K) grouped pixel indices y * W + x.
        person_tags (np.ndarray): (N, K, L) tags of the grouped keypoints.
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
        tags (np.ndarray): Tags in shape (K, H, W, L).
    """
    mean_tags = _mean_found_tags(person_tags, values)
    missing = values == 0
    for k in np.nonzero(missing.any(axis=0))[0]:
        persons = np.nonzero(missing[:, k])[0]
        search = RefineSearch(heatmaps[k], tags[k], f'tags of keypoint {k}')
        best = search.argmax(mean_tags[persons], [flat[p][values[p] > 0] for p in persons])
        found_values = search.heat[best]
        fill = found_values > 0
        persons, best = persons[fill], best[fill]
        keypoints[persons, k] = quarter_pixel(heatmaps, np.full(len(best), k), best)
        values[persons, k] = found_values[fill]


def refine_peaks(heatmaps: np.ndarray, tags: np.ndarray, needed: np.ndarray, nms_kernel: int,
                 topk: int) -> Dict[int, Candidates]:
    """The ``topk`` highest positive NMS peaks of each ``needed`` keypoint (``'peaks'`` refine).

    Args:
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W), C-contiguous float32.
        tags (np.ndarray): Tags in shape (K, H, W, L).
        needed (np.ndarray): bool (K, ), keypoints that some person misses.
        nms_kernel (int): NMS window size.
        topk (int): Peaks per keypoint.

    Returns:
        Dict[int, Candidates]: peaks of each needed keypoint, by value (descending), then
        pixel index.
    """
    return table_peaks(scan_peaks(heatmaps, nms_kernel, topk), tags, needed)


def table_peaks(table: PeakTable, tags: np.ndarray, needed: np.ndarray) -> Dict[int, Candidates]:
    """The peak table's entries of each ``needed`` (K, ) keypoint, tags checked finite."""
    return {
        int(k): table_entries(table, tags, k, int(table.counts[k]))
        for k in np.flatnonzero(needed)
    }


def fill_missing_from_peaks(keypoints: np.ndarray, values: np.ndarray, person_tags: np.ndarray,
                            source: PeakSource, peaks: Dict[int, Candidates]) -> None:
    """Refine over peaks only (``refine_search='peaks'``), in place, for missing keypoints.

    Args:
        keypoints (np.ndarray): (N, K, 2) keypoints; missing ones are overwritten when found.
        values (np.ndarray): (N, K) heatmap values, 0 = missing; overwritten likewise.
        person_tags (np.ndarray): (N, K, L) tags of the grouped keypoints.
        source (PeakSource): Sub-pixel positions of the winning peaks.
        peaks (Dict[int, Candidates]): Positive peaks of every keypoint some person misses.
    """
    keys = [k for k, peak in peaks.items() if len(peak.flat)]
    if not keys:
        return
    flat, heat, tags = pad_candidates([peaks[k] for k in keys], value_padding=-np.inf)
    persons, slots = np.nonzero(values[:, keys] == 0)  # every (person, missing keypoint)
    means = _mean_found_tags(person_tags, values)[persons]
    # (S, C) for all pairs at once: the official float32 score, channels summed one after
    # another; padding scores -inf
    squares = np.zeros(flat[slots].shape, np.float32)
    for channel in range(tags.shape[2]):
        squares += (tags[slots, :, channel] - means[:, None, channel])**2
    scores = heat[slots] - np.round(np.sqrt(squares))
    top = scores == scores.max(axis=1, keepdims=True)
    # the first maximum in raster order: the smallest pixel index among the top scores
    best = np.where(top, flat[slots], np.iinfo(np.int64).max).argmin(axis=1)
    k = np.array(keys)[slots]
    winners = flat[slots, best]
    keypoints[persons, k] = source.subpixel(k, winners)
    values[persons, k] = heat[slots, best]


def _mean_found_tags(person_tags: np.ndarray, values: np.ndarray) -> np.ndarray:
    """float32 (N, L): the official refine's ``np.mean`` of each person's found tags.

    The official code averages the list of found tags in keypoint-index order; numpy sums a
    float32 ``(n, 1)`` array pairwise for n >= 8, so only ``np.mean`` over that layout gives
    its bits. Persons with as many found keypoints are averaged together: axis 1 of a
    (P, n, L) array reduces each C-contiguous (n, L) block as the official array.
    """
    found = values > 0
    counts = found.sum(axis=1)
    means = np.zeros((len(values), person_tags.shape[2]), np.float32)
    for count in np.unique(counts):
        persons = np.flatnonzero(counts == count)
        found_tags = person_tags[persons][found[persons]].reshape(len(persons), count, -1)
        means[persons] = np.mean(found_tags, axis=1)
    return means
