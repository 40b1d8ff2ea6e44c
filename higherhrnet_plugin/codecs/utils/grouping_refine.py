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

from .grouping_candidates import Candidates, table_entries
from .grouping_common import require_finite
from .grouping_peaks import PeakTable, scan_peaks


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
        search = _RefineSearch(heatmaps[k], tags[k], f'tags of keypoint {k}')
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
    mean_tags = _mean_found_tags(person_tags, values)
    missing = values == 0
    for k, peak in peaks.items():
        if len(peak.flat) == 0:
            continue
        persons = np.nonzero(missing[:, k])[0]
        # (P, C): the official float32 score, channels summed one after another
        squares = np.zeros((len(persons), len(peak.flat)), np.float32)
        for channel in range(peak.tags.shape[1]):
            squares += (peak.tags[None, :, channel] - mean_tags[persons, None, channel])**2
        scores = peak.values[None] - np.round(np.sqrt(squares))
        top = scores == scores.max(axis=1, keepdims=True)
        # the first maximum in raster order: the smallest pixel index among the top scores
        best = np.where(top, peak.flat[None], np.iinfo(np.int64).max).argmin(axis=1)
        keypoints[persons, k] = source.subpixel(np.full(len(best), k), peak.flat[best])
        values[persons, k] = peak.values[best]


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


class _RefineSearch:
    """Exact search of the first pixel maximising ``score = heat - round(||tag - mean||)``.

    The official refine scores every pixel of the map. Two bounds prune that exactly:

    - ``round(.) >= 0``, so a pixel never scores above its heat value: once some pixel
      scores ``b``, pixels with ``heat < b`` cannot reach it;
    - a pixel with ``round(d) = r`` scores at most ``max(heat) - r``, so only pixels with
      ``d <= floor(max(heat) - b) + 0.5``, hence ``|tag_0 - mean_0|`` as small, can reach it.

    ``b`` is the best score around the person's own keypoints (where its tags are), raised
    by the best score among the map's hottest pixels; when that exceeds the heat of every
    pixel left out, the winner is among them and the search ends there. The
    remaining pixels (heat above ``b``, first tag channel in range, found by binary search
    in the channel sorted once per keypoint) are scored exactly and the first maximum in
    raster order is kept, as the official ``argmax`` does. All persons are processed at once.
    Every tag it reads must be finite (a NaN would be the official winner), else ``ValueError``.

    Args:
        heatmap (np.ndarray): One keypoint's heatmap in shape (H, W).
        tag_map (np.ndarray): Its tags in shape (H, W, L).
        name (str): The tag map's name in error messages.
    """

    window = 4  # radius of the neighbourhoods scored around a person's keypoints
    margin = 1e-3  # covers float32 rounding between |tag_0 - mean_0| and the distance
    # Hottest-pixel probes (pixels per person) and the most scores one probe may cost: on maps
    # whose tags are far from every person's (a network early in training), the bounds
    # above prune nothing, and the winner is nearly always among the hottest pixels.
    probe_sizes = (1024, 16384, 131072)
    probe_budget = 1 << 22  # scores computed at once (memory)

    def __init__(self, heatmap: np.ndarray, tag_map: np.ndarray, name: str) -> None:
        self.shape = heatmap.shape
        self.heat = heatmap.reshape(-1)
        self.tags = tag_map.reshape(len(self.heat), -1)
        self.name = name

    def argmax(self, mean_tags: np.ndarray, anchors: List[np.ndarray]) -> np.ndarray:
        """Flat index (P, ) of the first best pixel for each of the (P, L) mean tags.

        Args:
            mean_tags (np.ndarray): (P, L) mean tags of the persons.
            anchors (List[np.ndarray]): P non-empty arrays, flat pixels of each person's
                keypoints.

        Returns:
            np.ndarray: int64 (P, ) flat pixel indices.
        """
        bound = self._neighbourhood_bound(mean_tags, anchors)
        best = np.zeros(len(mean_tags), np.int64)
        pending = self._probe_hottest(mean_tags, bound, best)
        if len(pending) < len(mean_tags):
            mean_tags, bound = mean_tags[pending], bound[pending]
        if len(pending):
            best[pending] = self._search_by_tag(mean_tags, bound)
        return best

    def _probe_hottest(self, mean_tags: np.ndarray, bound: np.ndarray,
                       best: np.ndarray) -> np.ndarray:
        """Score the hottest pixels first; settle the persons whose winner must be among them.

        When the best score b among the n hottest pixels exceeds the (n+1)-th heat value, no
        other pixel can reach b (a score never exceeds its heat). Raises ``bound`` in place,
        writes the settled persons' winners into ``best``; returns the unsettled persons.
        """
        pending = np.arange(len(mean_tags))
        for size in self.probe_sizes:
            if size >= len(self.heat) or len(pending) == 0:
                break
            hottest = np.argpartition(-self.heat, size)
            pixels, cut = hottest[:size], self.heat[hottest[size]]
            chunk = max(1, self.probe_budget // size)  # persons scored at once
            settled = np.concatenate([
                self._settle(pixels, cut, mean_tags, bound, best, pending[start:start + chunk])
                for start in range(0, len(pending), chunk)
            ])
            pending = pending[~settled]
        return pending

    def _settle(self, pixels: np.ndarray, cut: np.float32, mean_tags: np.ndarray,
                bound: np.ndarray, best: np.ndarray, persons: np.ndarray) -> np.ndarray:
        """One probe of ``pixels`` for ``persons``: bool (P, ), settled (see above)."""
        owners = np.repeat(np.arange(len(persons)), len(pixels))
        candidates = np.tile(pixels, len(persons))
        scores = self.scores(candidates, mean_tags[persons][owners])
        top = np.maximum.reduceat(scores, np.arange(0, len(scores), len(pixels)))
        bound[persons] = np.maximum(bound[persons], top)
        settled = top > cut
        best[persons[settled]] = _first_best(candidates, owners, scores, len(persons))[settled]
        return settled

    def _search_by_tag(self, mean_tags: np.ndarray, bound: np.ndarray) -> np.ndarray:
        """Flat index (P, ) of each person's first best pixel among those the bounds leave."""
        pixels = np.flatnonzero(self.heat >= bound.min())
        order = np.argsort(self.tags[pixels, 0])
        sorted_tags = self.tags[pixels[order], 0]
        require_finite(sorted_tags, self.tags, self.name)  # NaN would sort last, unseen
        half_width = np.floor(self.heat[pixels].max() - bound) + 0.5 + self.margin
        starts = np.searchsorted(sorted_tags, mean_tags[:, 0] - half_width, side='left')
        stops = np.searchsorted(sorted_tags, mean_tags[:, 0] + half_width, side='right')
        lengths = stops - starts
        owners = np.repeat(np.arange(len(mean_tags)), lengths)
        # concatenated ranges starts[p]:stops[p]
        positions = np.arange(lengths.sum()) - np.repeat(
            np.cumsum(lengths) - lengths - starts, lengths)
        candidates = pixels[order[positions]]
        keep = self.heat[candidates] >= bound[owners]
        return _first_best(candidates[keep], owners[keep],
                           self.scores(candidates[keep], mean_tags[owners[keep]]), len(mean_tags))

    def scores(self, pixels: np.ndarray, mean_tags: np.ndarray) -> np.ndarray:
        """Scores (S, ) of ``pixels`` (S, ) for their (S, L) mean tags, in official float32 ops.

        The official ``((tag - mean) ** 2).sum(axis=2) ** 0.5`` sums the L channels of each
        pixel; for L <= 2 that is ``d0 + d1`` exactly, computed here on channel planes.
        """
        tags = self.tags[pixels]
        require_finite(tags, self.tags, self.name)
        if tags.shape[1] > 2:
            squares = ((tags - mean_tags)**2).sum(axis=1)
        else:
            squares = (tags[:, 0] - mean_tags[:, 0])**2
            if tags.shape[1] == 2:
                squares += (tags[:, 1] - mean_tags[:, 1])**2
        return self.heat[pixels] - np.round(np.sqrt(squares))

    def _neighbourhood_bound(self, mean_tags: np.ndarray, anchors: List[np.ndarray]) -> np.ndarray:
        """Best score (P, ) within ``window`` pixels of each person's keypoints."""
        height, width = self.shape
        offsets = np.arange(-self.window, self.window + 1)
        counts = np.array([len(a) for a in anchors]) * len(offsets)**2
        anchors = np.concatenate(anchors)
        ys = np.clip(anchors[:, None] // width + offsets, 0, height - 1)
        xs = np.clip(anchors[:, None] % width + offsets, 0, width - 1)
        pixels = (ys[:, :, None] * width + xs[:, None, :]).reshape(-1)
        owners = np.repeat(np.arange(len(counts)), counts)
        scores = self.scores(pixels, mean_tags[owners])
        return np.maximum.reduceat(scores, np.cumsum(counts) - counts)


def _first_best(pixels: np.ndarray, owners: np.ndarray, scores: np.ndarray,
                num_owners: int) -> np.ndarray:
    """Per owner, the smallest pixel index among its highest scores.

    Args:
        pixels (np.ndarray): (S, ) flat pixel indices.
        owners (np.ndarray): (S, ) owner of each entry; every owner in ``range(num_owners)``
            has one (its bound pixel always qualifies).
        scores (np.ndarray): (S, ) scores.
        num_owners (int): Number of owners P.

    Returns:
        np.ndarray: int64 (P, ) flat pixel indices.
    """
    best_scores = np.full(num_owners, -np.inf, scores.dtype)
    np.maximum.at(best_scores, owners, scores)
    first = np.full(num_owners, np.iinfo(np.int64).max)
    top = scores == best_scores[owners]
    np.minimum.at(first, owners[top], pixels[top])
    return first
