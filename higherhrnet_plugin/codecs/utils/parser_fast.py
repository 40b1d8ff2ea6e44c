"""Fast grouping decoder: the official ``HeatmapParser`` maths, vectorised.

Computes what :func:`.parser_reference.parse_reference` (the official HigherHRNet
``HeatmapParser``, ``lib/core/group.py``, MIT licence) computes, with the same float32 and
float64 operations wherever they decide a result, but only where the result can change:

- candidates: instead of max-pooling the whole maps and running ``torch.topk`` (most of
  the official run time on CPU), only pixels above ``detection_threshold`` are visited (the
  official parser drops every other candidate); a pixel is kept when no pixel of its NMS
  window is larger, and the ``topk`` largest per keypoint are the candidates;
- grouping: persons are arrays (keypoints, running float32 tag sums equal to the official
  ``np.mean``) with the official first-tag-value keys in a dict beside them, so key
  collisions behave as officially. The official Munkres cost ``round(D) * 100 - value``
  adds the same value term to every complete assignment of its padded matrix, so its
  optima are the assignments with the least total ``round(D)``, and these often tie.
  ``scipy.optimize.linear_sum_assignment`` finds one; when every optimum joins the same
  pairs (checked exactly with dual potentials and alternating cycles, :func:`assign`) it is
  used, otherwise the official choice depends on Munkres' internals and Munkres (the
  official ``munkres`` package, same cost matrix) is run for that keypoint;
- adjust and instance scores: vectorised over all found keypoints;
- refine, ``refine_search='full'``: only missing keypoints, one keypoint map at a time, all
  persons missing it together, and only over the pixels that can still win
  (:class:`_RefineSearch`).

With ``refine_search='full'`` the result equals the reference, bit for bit and in the same
person order, except:

1. candidates of one keypoint with exactly equal heatmap values are ordered by pixel index
   (row-major) here and in ``torch.topk``'s unspecified order there; when more than ``topk``
   peaks exceed the threshold, ties at the cut may keep different pixels. The order decides
   the order in which new persons are created, hence the output order and, when more than
   ``max_num_people`` persons exist, which ones are matched against, and Munkres' tie
   choices;
2. ``detection_threshold`` must be >= 0 (the official parser accepts any value), and the
   maps must be finite.

``refine_search='peaks'`` (the default) differs from the official refine on purpose: for a
person missing keypoint k it scores only keypoint k's ``topk`` highest positive NMS peaks
(those of the candidate step, now also the ones below ``detection_threshold``) instead of
every pixel, with the official score ``value - round(||tag - mean tag||)`` (float32,
``np.round`` half to even, first maximum in raster order on ties), the official +-0.25
adjust and +0.5, vectorised over persons and peaks. Why: the official full-map argmax almost
always lands on a local maximum of keypoint k's heatmap near the person, and its exact
search costs up to hundreds of ms on a 704x512 map (whenever the score bound is <= 0 every
pixel remains a candidate). Differences arise only when the full-map winner is not among
those peaks (e.g. a slope pixel or a background pixel whose tag is closer to the mean tag
than any peak's, or a peak beyond the top ``topk``); a zero-valued official winner, which
fills nothing, can then become a filled peak, or the other way round. They touch only the
refined (missing) keypoints and their scores, never the instance scores (taken before
refine) nor the grouping.

Speed comes from skipping the full-map max-pool, ``linear_sum_assignment`` instead of
pure-Python Munkres on all but tied steps, and the pruned refine; a step with real ties
costs what the official one does.

Note:
    - keypoint number: K
    - heatmap size: (W, H)
    - tag dimension: L
    - person number: N
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from munkres import Munkres
from scipy.optimize import linear_sum_assignment

from .parser_common import (ArrayOrTensor, ParseResult, empty_result, prepare_maps,
                            resolve_keypoint_order)


REFINE_SEARCHES = ('peaks', 'full')


class Candidates(NamedTuple):
    """Above-threshold NMS peaks of one keypoint, ordered by value (descending).

    - flat (np.ndarray): int64 (C, ), pixel index y * W + x
    - values (np.ndarray): float32 (C, ), heatmap values
    - tags (np.ndarray): float32 (C, L), tags at the pixels
    """
    flat: np.ndarray
    values: np.ndarray
    tags: np.ndarray


def parse_fast(heatmaps: ArrayOrTensor,
               tags: ArrayOrTensor,
               *,
               nms_kernel: int = 5,
               topk: int = 30,
               detection_threshold: float = 0.1,
               tag_threshold: float = 1.0,
               max_num_people: int = 30,
               adjust: bool = True,
               refine: bool = True,
               refine_search: str = 'peaks',
               keypoint_order: Optional[Sequence[int]] = None) -> ParseResult:
    """Group keypoints into persons; same arguments and results as ``parse_reference``.

    See the module docstring for where the results may differ from the reference.

    Args:
        heatmaps (np.ndarray | Tensor): Aggregated heatmaps in shape (K, H, W), CPU.
        tags (np.ndarray | Tensor): Tags in shape (K, H, W, L), CPU.
        nms_kernel (int): NMS window size. Defaults to ``5``.
        topk (int): Candidates per keypoint. Defaults to ``30``.
        detection_threshold (float): Candidates need a heatmap value above it; must be
            >= 0. Defaults to ``0.1``.
        tag_threshold (float): Largest tag distance (exclusive) to join a person.
            Defaults to ``1.0``.
        max_num_people (int): Only the first persons created are matched against.
            Defaults to ``30``.
        adjust (bool): Quarter-pixel shift and +0.5 of the grouped keypoints.
            Defaults to ``True``.
        refine (bool): Fill missing keypoints from the maps. Defaults to ``True``.
        refine_search (str): ``'peaks'`` searches a missing keypoint among its ``topk``
            highest positive NMS peaks, ``'full'`` over the whole map as officially (exact,
            slower). Defaults to ``'peaks'``.
        keypoint_order (Sequence[int], optional): Grouping order; ``None`` for the official
            one (:func:`.parser_common.default_keypoint_order`). Defaults to ``None``.

    Returns:
        tuple:
        - keypoints (np.ndarray): float32 (N, K, 2), (x, y) in the maps' pixel frame
        - keypoint_scores (np.ndarray): float32 (N, K), heatmap values, 0 when not found
        - instance_scores (np.ndarray): float32 (N, ), mean keypoint value before refine
    """
    if detection_threshold < 0:
        raise ValueError(f'parse_fast needs detection_threshold >= 0, got {detection_threshold}')
    if refine_search not in REFINE_SEARCHES:
        raise ValueError(f'refine_search must be one of {REFINE_SEARCHES}, got {refine_search!r}')
    heatmaps, tags = prepare_maps(heatmaps, tags)
    order = resolve_keypoint_order(keypoint_order, heatmaps.shape[0])
    candidates = find_candidates(heatmaps, tags, nms_kernel, topk, detection_threshold)
    groups = _Groups(heatmaps.shape[0], tags.shape[-1], sum(len(c.flat) for c in candidates))
    for k in order:
        groups.add_keypoint(k, candidates[k], tag_threshold, max_num_people)
    if groups.size == 0:
        return empty_result(heatmaps.shape[0])

    flat, values, person_tags = groups.result()
    width = heatmaps.shape[2]
    keypoints = np.stack([flat % width, flat // width], axis=-1).astype(np.float32)
    found = values > 0
    if adjust:
        keypoints[found] = quarter_pixel(heatmaps, np.nonzero(found)[1], flat[found])
    instance_scores = values.mean(axis=1)
    if refine and refine_search == 'full':
        fill_missing(keypoints, values, flat, person_tags, heatmaps, tags)
    elif refine:
        peaks = refine_peaks(heatmaps, tags, candidates, (values == 0).any(axis=0), nms_kernel,
                             topk, detection_threshold)
        fill_missing_from_peaks(keypoints, values, person_tags, heatmaps, peaks)
    return keypoints, values, instance_scores


def find_candidates(heatmaps: np.ndarray, tags: np.ndarray, nms_kernel: int, topk: int,
                    threshold: float) -> List[Candidates]:
    """The official NMS + top-k candidates, restricted to values above ``threshold`` >= 0.

    A pixel is an NMS peak when it is >= every pixel of its ``nms_kernel`` window inside the
    map (the official max-pool pads with -inf): :func:`nms_filter`.

    Args:
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
        tags (np.ndarray): Tags in shape (K, H, W, L).
        nms_kernel (int): Odd NMS window size.
        topk (int): Maximum candidates per keypoint.
        threshold (float): Candidates need a value above it.

    Returns:
        List[Candidates]: K candidate sets.
    """
    num_keypoints, height, width = heatmaps.shape
    above = np.flatnonzero(heatmaps.reshape(-1) > threshold)
    k, pixel = np.divmod(above, height * width)
    k, flat, values = nms_filter(heatmaps, k, pixel, nms_kernel)
    return rank_peaks(tags, range(num_keypoints), k, flat, values, topk)


def nms_filter(heatmaps: np.ndarray, k: np.ndarray, flat: np.ndarray,
               nms_kernel: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixels that are >= every pixel of their ``nms_kernel`` window inside the map.

    Neighbours are compared one offset at a time on the shrinking set of survivors;
    offsets outside the map are clamped onto the map, which stays inside the window.

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


def rank_peaks(tags: np.ndarray, keypoints: Sequence[int], k: np.ndarray, flat: np.ndarray,
               values: np.ndarray, topk: int) -> List[Candidates]:
    """The ``topk`` largest peaks of each of ``keypoints``, by value then pixel index.

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
    return candidates


class _Groups:
    """Persons being grouped: the official ``joint_dict``/``tag_dict`` as arrays.

    Args:
        num_keypoints (int): K.
        tag_dim (int): L.
        capacity (int): Upper bound on the person number (the candidate count).
    """

    def __init__(self, num_keypoints: int, tag_dim: int, capacity: int) -> None:
        self.size = 0
        self.flat = np.zeros((capacity, num_keypoints), np.int64)
        self.values = np.zeros((capacity, num_keypoints), np.float32)
        self.tags = np.zeros((capacity, num_keypoints, tag_dim), np.float32)
        self.tag_sums = np.zeros((capacity, tag_dim), np.float32)
        self.tag_counts = np.zeros(capacity, np.float32)
        self.keys: Dict[float, int] = {}

    def result(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel indices (N, K), values (N, K) and tags (N, K, L) of the persons."""
        n = self.size
        return self.flat[:n], self.values[:n], self.tags[:n]

    def add_keypoint(self, k: int, candidates: Candidates, tag_threshold: float,
                     max_num_people: int) -> None:
        """Assign the candidates of keypoint ``k`` to persons or start new ones."""
        num_candidates = len(candidates.flat)
        if num_candidates == 0:
            return
        columns = np.full(num_candidates, -1)
        if self.size > 0:
            grouped = min(self.size, max_num_people)
            # np.mean over a person's float32 tags == sequential float32 sum / count
            centres = self.tag_sums[:grouped] / self.tag_counts[:grouped, None]
            # float64 like the official candidate rows (x, y, value, tag...)
            distances = np.linalg.norm(candidates.tags[:, None].astype(np.float64) - centres[None],
                                       ord=2,
                                       axis=2)
            rows, cols = assign(distances, candidates.values, tag_threshold)
            close = distances[rows, cols] < tag_threshold
            columns[rows[close]] = cols[close]
        new_keys = [float(tag) for tag in candidates.tags[columns < 0, 0]]
        if len(set(new_keys)) == len(new_keys) and not any(key in self.keys for key in new_keys):
            self._join(k, candidates, np.nonzero(columns >= 0)[0], columns[columns >= 0])
            for row, key in zip(np.nonzero(columns < 0)[0], new_keys):
                self._start(k, candidates, row, key)
        else:  # a key collision: replay the official row-by-row dict updates
            for row, col in enumerate(columns):
                if col >= 0:
                    self._join(k, candidates, np.array([row]), np.array([col]))
                else:
                    self._start(k, candidates, row, float(candidates.tags[row, 0]))

    def _set(self, k: int, candidates: Candidates, rows, persons) -> None:
        self.flat[persons, k] = candidates.flat[rows]
        self.values[persons, k] = candidates.values[rows]
        self.tags[persons, k] = candidates.tags[rows]

    def _join(self, k: int, candidates: Candidates, rows: np.ndarray, persons: np.ndarray) -> None:
        self._set(k, candidates, rows, persons)
        self.tag_sums[persons] += candidates.tags[rows]
        self.tag_counts[persons] += 1

    def _start(self, k: int, candidates: Candidates, row: int, key: float) -> None:
        # An existing key re-uses its person and resets its tags (official dict.setdefault).
        person = self.keys.setdefault(key, self.size)
        if person == self.size:
            self.size += 1
        self._set(k, candidates, row, person)
        self.tag_sums[person] = candidates.tags[row]
        self.tag_counts[person] = 1


def assign(distances: np.ndarray, values: np.ndarray,
           tag_threshold: float) -> Tuple[np.ndarray, np.ndarray]:
    """Official candidate-to-person assignment; Munkres only where the optimum is ambiguous.

    The official cost ``round(D) * 100 - value`` is minimised over a square matrix (1e10
    columns or, inside Munkres, zero rows as padding) in which every candidate is assigned,
    so its value term is the same for every assignment: the optimal assignments are those
    with the least total ``round(D)``. ``linear_sum_assignment`` finds one. When all of them
    join (D < ``tag_threshold``) the same pairs (:func:`joins_are_forced`), it is used;
    otherwise the optimum is tied and the official choice is Munkres', which is then run on
    the official cost matrix.

    Args:
        distances (np.ndarray): float64 (R, G) tag distances, candidates by value.
        values (np.ndarray): float32 (R, ) candidate heatmap values.
        tag_threshold (float): Largest tag distance (exclusive) to join a person.

    Returns:
        tuple: ``rows``, ``cols`` (int arrays) of the assigned pairs inside the (R, G) matrix.
    """
    num_rows, num_cols = distances.shape
    size = max(num_rows, num_cols)
    rounded = np.zeros((size, size))
    rounded[:num_rows, :num_cols] = np.round(distances)
    joinable = np.zeros((size, size), bool)
    joinable[:num_rows, :num_cols] = distances < tag_threshold
    _, matched_cols = linear_sum_assignment(rounded)
    if joins_are_forced(rounded, joinable, matched_cols):
        rows = np.arange(num_rows)
        cols = matched_cols[:num_rows]
    else:
        costs = np.round(distances) * 100 - values[:, None].astype(np.float64)
        if num_rows > num_cols:
            costs = np.concatenate((costs, np.full((num_rows, num_rows - num_cols), 1e10)), 1)
        rows, cols = np.array(Munkres().compute(costs.tolist()), np.int64).reshape(-1, 2).T
    real = cols < num_cols
    return rows[real], cols[real]


def joins_are_forced(costs: np.ndarray, joinable: np.ndarray, matched_cols: np.ndarray) -> bool:
    """Whether every minimum-cost assignment contains the same joinable pairs.

    With an optimal assignment and its dual potentials (Bellman-Ford), the optimal
    assignments are the perfect matchings made of zero-reduced-cost ("tight") pairs. Another
    one exists through a pair exactly when the pair lies on an alternating cycle: in the
    graph of columns with an arc a -> c when the row matched to a is tight at c, a matched
    pair (r, a) can be left when a reaches itself, an unmatched tight pair (r, c) can be
    taken when c reaches the column matched to r.

    Args:
        costs (np.ndarray): (S, S) integer-valued costs (exact in float64).
        joinable (np.ndarray): (S, S) bool, pairs that would join.
        matched_cols (np.ndarray): (S, ) column of each row in an optimal assignment.

    Returns:
        bool: ``True`` when no joinable pair can enter or leave an optimal assignment.
    """
    size = len(costs)
    row_of = np.argsort(matched_cols)
    # Arc weights between columns: cost of moving row_of[a] from a to c.
    weights = costs[row_of] - costs[row_of, np.arange(size)][:, None]
    potentials = np.zeros(size)
    for _ in range(size):
        relaxed = np.minimum(potentials, (potentials[:, None] + weights).min(axis=0))
        if np.array_equal(relaxed, potentials):
            break
        potentials = relaxed
    tight = weights + potentials[:, None] - potentials[None] == 0
    np.fill_diagonal(tight, False)
    reach = tight.copy()
    while True:
        wider = reach | (reach.astype(np.int32) @ reach.astype(np.int32) > 0)
        if np.array_equal(wider, reach):
            break
        reach = wider
    join_by_col = joinable[row_of]  # row a: the row matched to column a
    on_cycle = (tight & reach.T).any(axis=1)
    leaves = np.diagonal(join_by_col) & on_cycle
    enters = join_by_col & tight & reach.T
    return not (leaves.any() or enters.any())


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
        search = _RefineSearch(heatmaps[k], tags[k])
        best = search.argmax(mean_tags[persons], [flat[p][values[p] > 0] for p in persons])
        found_values = search.heat[best]
        fill = found_values > 0
        persons, best = persons[fill], best[fill]
        keypoints[persons, k] = quarter_pixel(heatmaps, np.full(len(best), k), best)
        values[persons, k] = found_values[fill]


def refine_peaks(heatmaps: np.ndarray, tags: np.ndarray, candidates: List[Candidates],
                 needed: np.ndarray, nms_kernel: int, topk: int,
                 threshold: float) -> Dict[int, Candidates]:
    """The ``topk`` highest positive NMS peaks of each ``needed`` keypoint.

    A keypoint with ``topk`` candidates above ``threshold`` already has them. The others are
    searched again with lower thresholds (``threshold / 2``, ``/ 4``, ``/ 16``, then 0) until
    ``topk`` peaks are above the current one; each stage is exact, since every peak it
    misses is no larger than the peaks it found. Most maps stop at an early stage, sparing
    the NMS of the whole positive background. Peak-ness does not depend on the stage, so a
    stage tests only its new pixels, (stage, previous stage], and keeps the peaks found
    before; the maps are scanned twice at most (the first stage's range, then the rest),
    map by map without copying them.

    Args:
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
        tags (np.ndarray): Tags in shape (K, H, W, L).
        candidates (List[Candidates]): The K above-threshold candidate sets.
        needed (np.ndarray): bool (K, ), keypoints that some person misses.
        nms_kernel (int): NMS window size.
        topk (int): Peaks per keypoint.
        threshold (float): The detection threshold (>= 0).

    Returns:
        Dict[int, Candidates]: peaks of each needed keypoint, by value (descending).
    """
    peaks = {k: candidates[k] for k in np.nonzero(needed)[0]}
    pending = [k for k, c in peaks.items() if len(c.flat) < topk]
    # Peaks found so far, all of those above the last stage (k, flat, values): a pending
    # keypoint has fewer than topk above the detection threshold, i.e. all of them.
    found = [(np.full(len(peaks[k].flat), k), peaks[k].flat, peaks[k].values) for k in pending]
    upper, below = threshold, None
    for stage in (threshold / 2, threshold / 4, threshold / 16, 0.0):
        if not pending or stage >= threshold:
            break
        if upper == threshold:  # noisy maps often stop at the first stage: scan only its range
            k, flat, values = _pixels_between(heatmaps, pending, stage, upper)
        else:
            if below is None:  # the later stages share one scan
                below = _pixels_between(heatmaps, pending, 0.0, upper)
            new = below[2] > stage
            k, flat, values = (part[new] for part in below)
            below = tuple(part[~new] for part in below)
        # Peak-ness does not depend on the stage: only the pixels new to it are tested.
        found.append(nms_filter(heatmaps, k, flat, nms_kernel))
        k, flat, values = (np.concatenate(parts) for parts in zip(*found))
        peaks.update(zip(pending, rank_peaks(tags, pending, k, flat, values, topk)))
        upper = stage
        pending = [j for j in pending if len(peaks[j].flat) < topk]
        keep = np.isin(k, pending)
        found = [(k[keep], flat[keep], values[keep])]
        if below is not None:
            keep = np.isin(below[0], pending)
            below = tuple(part[keep] for part in below)
    return peaks


def _pixels_between(heatmaps: np.ndarray, keypoints: List[int], lower: float,
                    upper: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keypoint (P, ), flat pixel index (P, ) and value (P, ) of the values in (lower, upper]."""
    ks, flats = [], []
    for j in keypoints:  # map by map: no copy of the selected maps
        heat = heatmaps[j].reshape(-1)
        flat = np.flatnonzero((heat > lower) & (heat <= upper))
        ks.append(np.full(len(flat), j))
        flats.append(flat)
    k, flat = np.concatenate(ks), np.concatenate(flats)
    return k, flat, heatmaps.reshape(len(heatmaps), -1)[k, flat]


def fill_missing_from_peaks(keypoints: np.ndarray, values: np.ndarray, person_tags: np.ndarray,
                            heatmaps: np.ndarray, peaks: Dict[int, Candidates]) -> None:
    """Refine over peaks only (``refine_search='peaks'``), in place, for missing keypoints.

    Args:
        keypoints (np.ndarray): (N, K, 2) keypoints; missing ones are overwritten when found.
        values (np.ndarray): (N, K) heatmap values, 0 = missing; overwritten likewise.
        person_tags (np.ndarray): (N, K, L) tags of the grouped keypoints.
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
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
        best = np.where(top, peak.flat[None], np.iinfo(np.int64).max).min(axis=1)
        keypoints[persons, k] = quarter_pixel(heatmaps, np.full(len(best), k), best)
        values[persons, k] = heatmaps[k].reshape(-1)[best]


def _mean_found_tags(person_tags: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean tag of each person's found keypoints, summed in keypoint order in float32.

    That is the official ``np.mean(tags, axis=0)`` bit for bit (a sequential float32 sum).
    """
    found = values > 0
    sums = np.zeros(person_tags[:, 0].shape, np.float32)
    for k in range(person_tags.shape[1]):
        sums += np.where(found[:, k, None], person_tags[:, k], np.float32(0))
    return sums / found.sum(axis=1, keepdims=True).astype(np.float32)


class _RefineSearch:
    """Exact search of the first pixel maximising ``score = heat - round(||tag - mean||)``.

    The official refine scores every pixel of the map. Two bounds prune that exactly:

    - ``round(.) >= 0``, so a pixel never scores above its heat value: once some pixel
      scores ``b``, pixels with ``heat < b`` cannot reach it;
    - a pixel with ``round(d) = r`` scores at most ``max(heat) - r``, so only pixels with
      ``d <= floor(max(heat) - b) + 0.5``, hence ``|tag_0 - mean_0|`` as small, can reach it.

    ``b`` is the best score around the person's own keypoints (where its tags are). The
    remaining pixels (heat above ``b``, first tag channel in range, found by binary search
    in the channel sorted once per keypoint) are scored exactly and the first maximum in
    raster order is kept, as the official ``argmax`` does. All persons are processed at once.

    Args:
        heatmap (np.ndarray): One keypoint's heatmap in shape (H, W).
        tag_map (np.ndarray): Its tags in shape (H, W, L).
    """

    window = 4  # radius of the neighbourhoods scored around a person's keypoints
    margin = 1e-3  # covers float32 rounding between |tag_0 - mean_0| and the distance

    def __init__(self, heatmap: np.ndarray, tag_map: np.ndarray) -> None:
        self.shape = heatmap.shape
        self.heat = heatmap.reshape(-1)
        self.tags = tag_map.reshape(len(self.heat), -1)

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
        pixels = np.flatnonzero(self.heat >= bound.min())
        half_width = np.floor(self.heat[pixels].max() - bound) + 0.5 + self.margin
        order = np.argsort(self.tags[pixels, 0])
        sorted_tags = self.tags[pixels[order], 0]
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
