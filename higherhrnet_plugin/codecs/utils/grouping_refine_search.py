"""The exact refine search of the fast decoder (``refine_search='full'``).

Part of :mod:`.grouping_fast`: for each person missing a keypoint, the first pixel of that
keypoint's map maximising the official refine score, found without scoring every pixel.

Note:
    - tag dimension: L
    - persons searched at once: P
"""
from typing import List, NamedTuple

import numba
import numpy as np

from .grouping_common import numpy_sum, require_finite

__all__ = ['RefineSearch']


class RefineSearch:
    """Exact search of the first pixel maximising ``score = heat - round(||tag - mean||)``.

    The official refine scores every pixel of the map for every person. A score never
    exceeds its pixel's heat (``round(.) >= 0``), so once a person's best score is ``b``,
    pixels with heat below ``b`` cannot reach it (nor tie: equal scores go to the first
    pixel in raster order, as the official ``argmax``). The search (compiled, numba):

    1. ``b``: the best score within ``window`` pixels of the person's own keypoints (where
       its tags are);
    2. the pixels grouped in cells of the first two tag channels (one for L = 1) of side
       ``c``. A cell's bound is its hottest heat minus the rounded distance from the mean tag
       to the cell (a lower bound of its pixels' distances, by the same float32 operations);
       cells are visited best bound first until a bound falls below ``b``, a cell's pixels
       hottest first until one's heat minus the cell's rounded distance falls below ``b``.
       For L <= 2 a cell keeps only its pixels at most ``floor(c * sqrt(2) + 1.5)`` below
       its hottest: two pixels of a cell are at most ``c * sqrt(2)`` apart in tag, so their
       rounded distances differ by at most ``floor(c * sqrt(2) + 1)``, and the others score
       below the hottest pixel (ties included). With more tag maps it keeps all. A map
       holding a non-finite tag is scanned pixel by pixel instead.

    Scores are computed with the official float32 operations (channel squares summed as
    numpy sums them, square root, ``np.round`` half to even). Every tag it reads must be
    finite (a NaN would be the official winner), else ``ValueError``.

    Args:
        heatmap (np.ndarray): One keypoint's heatmap in shape (H, W).
        tag_map (np.ndarray): Its tags in shape (H, W, L), L <= 128.
        name (str): The tag map's name in error messages.
    """

    window = 4  # radius of the neighbourhoods scored around a person's keypoints

    def __init__(self, heatmap: np.ndarray, tag_map: np.ndarray, name: str) -> None:
        self.shape = heatmap.shape
        self.heat = np.ascontiguousarray(heatmap.reshape(-1))
        self.tags = tag_map.reshape(len(self.heat), -1)  # a view of strided tags: no copy
        if self.tags.shape[1] > 128:
            raise ValueError(f'refine_search="full" supports up to 128 tag maps, got '
                             f'{self.tags.shape[1]}')
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
        means = np.ascontiguousarray(mean_tags, dtype=np.float32)
        starts = np.cumsum([0] + [len(a) for a in anchors])
        best_scores = np.empty(len(means), np.float32)
        best = np.empty(len(means), np.int64)
        bad = _neighbourhood_best(self.heat, self.tags, means, np.concatenate(anchors), starts,
                                  self.shape[1], self.window, best_scores, best)
        if np.isfinite(self.tags).all():
            _scan_cells(self.heat, self.tags, means, *_TagGrid.build(self.heat, self.tags),
                        best_scores, best)
        else:
            bad += _scan_all_pixels(self.heat, self.tags, means, best_scores, best)
        if bad:
            require_finite(np.float32([np.nan]), self.tags, self.name)
        return best


@numba.njit(cache=True, nogil=True)
def _score(heat, tags, pixel, mean):  # pragma: no cover (compiled)
    """``heat - round(sqrt(sum((tag - mean)**2)))`` in the official float32 operations (the L
    squares summed in numpy's order, :func:`.grouping_common.numpy_sum`)."""
    num = len(mean)
    squares = np.empty(num, np.float32)
    for c in range(num):
        diff = tags[pixel, c] - mean[c]
        squares[c] = diff * diff
    return heat[pixel] - np.rint(np.sqrt(numpy_sum(squares)))


@numba.njit(cache=True, nogil=True)
def _finite_tags(tags, pixel):  # pragma: no cover (compiled)
    for c in range(tags.shape[1]):
        if not np.isfinite(tags[pixel, c]):
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _neighbourhood_best(heat, tags, means, anchors, starts, width, radius, best_scores,
                        best):  # pragma: no cover (compiled)
    """Step 1: each person's best (score, first pixel) around its anchors; non-finite count."""
    height = len(heat) // width
    bad = 0
    for person in range(len(means)):
        best_scores[person] = -np.inf
        best[person] = len(heat)
        for a in range(starts[person], starts[person + 1]):
            y0, x0 = anchors[a] // width, anchors[a] % width
            for y in range(max(0, y0 - radius), min(height, y0 + radius + 1)):
                for x in range(max(0, x0 - radius), min(width, x0 + radius + 1)):
                    pixel = y * width + x
                    if not _finite_tags(tags, pixel):
                        bad += 1
                        continue
                    score = _score(heat, tags, pixel, means[person])
                    if score > best_scores[person] or (score == best_scores[person]
                                                       and pixel < best[person]):
                        best_scores[person] = score
                        best[person] = pixel
    return bad


@numba.njit(cache=True, nogil=True)
def _scan_all_pixels(heat, tags, means, best_scores, best):  # pragma: no cover (compiled)
    """Step 2 pixel by pixel (maps with non-finite tags); returns the non-finite tags read."""
    bad = 0
    for person in range(len(means)):
        mean = means[person]
        score_best, pixel_best = best_scores[person], best[person]
        for pixel in range(len(heat)):
            if heat[pixel] < score_best:
                continue
            if not _finite_tags(tags, pixel):
                bad += 1
                continue
            score = _score(heat, tags, pixel, mean)
            if score > score_best or (score == score_best and pixel < pixel_best):
                score_best, pixel_best = score, pixel
        best_scores[person], best[person] = score_best, pixel_best
    return bad


class _TagGrid(NamedTuple):
    """Pixels grouped by the cell of their first one or two tag channels (step 2).

    - size (float): cell side c, a power of two (cells are ``[i * c, (i + 1) * c)``)
    - low (np.ndarray): float32 (G, 2) lower corner of each occupied cell, hottest cell first
    - hottest (np.ndarray): float32 (G, ) hottest heat of each cell
    - bounds (np.ndarray): int64 (G, 2), the cell's kept pixels are
      ``pixels[bounds[g, 0]:bounds[g, 1]]``
    - pixels (np.ndarray): int64 flat pixel indices
    """
    size: float
    low: np.ndarray
    hottest: np.ndarray
    bounds: np.ndarray
    pixels: np.ndarray

    @classmethod
    def build(cls, heat: np.ndarray, tags: np.ndarray) -> '_TagGrid':
        """The grid of one map's (HW, ) heat and finite (HW, L) tags."""
        channels = min(2, tags.shape[1])
        low = np.array([tags[:, c].min() for c in range(channels)], np.float64)
        high = np.array([tags[:, c].max() for c in range(channels)], np.float64)
        size = 1.0  # doubled until the dense grid has at most 4 cells per pixel
        while np.prod(np.floor(high / size) - np.floor(low / size) + 1) > 4 * len(heat):
            size *= 2
        origin = np.zeros(2, np.int64)
        origin[:channels] = np.floor(low / size)
        extent = np.ones(2, np.int64)
        extent[:channels] = np.floor(high / size).astype(np.int64) - origin[:channels] + 1
        slack = np.inf if tags.shape[1] > 2 else np.floor(size * np.sqrt(2) + 1.5)
        hottest, starts, pixels = _group_cells(heat, tags, channels, size, origin, extent[1],
                                               int(extent.prod()), slack)
        occupied = np.flatnonzero(starts[1:] > starts[:-1])
        occupied = occupied[np.argsort(-hottest[occupied], kind='stable')]
        corner = np.stack([occupied // extent[1], occupied % extent[1]], axis=1) + origin
        return cls(size, (corner * size).astype(np.float32), hottest[occupied],
                   np.stack([starts[occupied], starts[occupied + 1]], axis=1), pixels)


@numba.njit(cache=True, nogil=True)
def _group_cells(heat, tags, channels, size, origin, columns, num_cells,
                 slack):  # pragma: no cover (compiled)
    """Hottest heat of each cell and its pixels within ``slack`` of it, grouped by cell."""
    ids = np.zeros(len(heat), np.int64)
    for pixel in range(len(heat)):
        # Division by a power of two and floor are exact: the cell is [i * c, (i + 1) * c).
        row = np.int64(np.floor(np.float64(tags[pixel, 0]) / size)) - origin[0]
        column = 0
        if channels == 2:
            column = np.int64(np.floor(np.float64(tags[pixel, 1]) / size)) - origin[1]
        ids[pixel] = row * columns + column
    hottest = np.full(num_cells, -np.inf, np.float32)
    for pixel in range(len(heat)):
        hottest[ids[pixel]] = max(hottest[ids[pixel]], heat[pixel])
    starts = np.zeros(num_cells + 1, np.int64)
    for pixel in range(len(heat)):
        if heat[pixel] >= hottest[ids[pixel]] - slack:
            starts[ids[pixel] + 1] += 1
    for cell in range(num_cells):
        starts[cell + 1] += starts[cell]
    fill = starts[:-1].copy()
    pixels = np.empty(starts[-1], np.int64)
    for pixel in range(len(heat)):
        if heat[pixel] >= hottest[ids[pixel]] - slack:
            pixels[fill[ids[pixel]]] = pixel
            fill[ids[pixel]] += 1
    for cell in range(num_cells):  # hottest first within each cell
        if starts[cell + 1] - starts[cell] > 1:
            members = pixels[starts[cell]:starts[cell + 1]].copy()
            pixels[starts[cell]:starts[cell + 1]] = members[np.argsort(-heat[members])]
    return hottest, starts, pixels


@numba.njit(cache=True, nogil=True)
def _scan_cells(heat, tags, means, size, low, hottest, bounds, pixels, best_scores,
                best):  # pragma: no cover (compiled)
    """Step 2 over the cells of a :class:`_TagGrid`; updates the bests in place."""
    size = np.float32(size)
    channels = min(2, tags.shape[1])
    bound = np.empty(len(hottest), np.float32)
    candidates = np.empty(len(hottest), np.int64)
    for person in range(len(means)):
        mean = means[person]
        score_best, pixel_best = best_scores[person], best[person]
        count = 0
        for cell in range(len(hottest)):
            # The distance from the mean to the cell by the score's own float32 operations on
            # the nearest edge values bounds its pixels' distances from below.
            total = np.float32(0.0)
            for c in range(channels):
                edge = low[cell, c]
                if mean[c] < edge:
                    diff = edge - mean[c]
                elif mean[c] > edge + size:
                    diff = mean[c] - (edge + size)
                else:
                    diff = np.float32(0.0)
                total += diff * diff
            bound[cell] = np.rint(np.sqrt(total))
            if hottest[cell] - bound[cell] >= score_best:
                candidates[count] = cell
                count += 1
        # Cells by the best score they could hold, best first, until none can reach the best.
        cells = candidates[:count]
        for cell in cells[np.argsort(bound[cells] - hottest[cells])]:
            if hottest[cell] - bound[cell] < score_best:
                break
            for slot in range(bounds[cell, 0], bounds[cell, 1]):
                pixel = pixels[slot]
                if heat[pixel] - bound[cell] < score_best:
                    break  # hottest first within the cell
                score = _score(heat, tags, pixel, mean)
                if score > score_best or (score == score_best and pixel < pixel_best):
                    score_best, pixel_best = score, pixel
        best_scores[person], best[person] = score_best, pixel_best
