"""Fast grouping decoder: the official ``HeatmapParser`` maths, vectorised.

Computes what :func:`.grouping_reference.parse_reference` (the official HigherHRNet
``HeatmapParser``, ``lib/core/group.py``, MIT licence) computes, with the same float32 and
float64 operations wherever they decide a result, but only where the result can change:

- candidates (:mod:`.grouping_candidates`): instead of max-pooling the whole maps and running
  ``torch.topk`` (most of the official run time on CPU), one compiled pass over each map
  (:mod:`.grouping_peaks`) keeps its ``topk`` highest positive NMS peaks (a pixel no pixel of
  its window exceeds); the candidates are those above ``detection_threshold`` (compared as
  the official float64 comparison does; the official parser drops every other candidate);
- grouping (:func:`group_candidates`): persons are arrays (keypoints, member tags in join
  order) with the official first-tag-value keys in a dict beside them, so key collisions
  behave as officially. A person's tag is ``np.mean`` over its member tags laid out as the
  official list -> array, recomputed only when they change (with one tag channel numpy sums
  8 or more values pairwise, so any other order of summation can flip a join at a distance
  of exactly ``tag_threshold``). Each keypoint's candidates are assigned by the official
  Munkres steps on the official cost matrix ``round(D) * 100 - value``
  (:mod:`.grouping_munkres`: the ``munkres`` package's algorithm step for step, compiled, so
  ties are broken as officially; the rounded distances tie often). With fewer than 8 tag
  maps the float64 distances, the costs and the steps run in one compiled call;
- adjust and instance scores: vectorised over all found keypoints;
- refine, ``refine_search='full'`` (:mod:`.grouping_refine`): only missing keypoints, one
  keypoint map at a time, all persons missing it together, and only over the pixels that
  can still win (:mod:`.grouping_refine_search`: compiled, over cells of tag space); mean
  tags again by ``np.mean`` in the official order.

With ``refine_search='full'`` the result equals the reference, bit for bit and in the same
person order, except:

1. candidates of one keypoint with exactly equal heatmap values are ordered by pixel index
   (row-major) here and in ``torch.topk``'s unspecified order there; when more than ``topk``
   peaks exceed the threshold, ties at the cut may keep different pixels. The order decides
   the order in which new persons are created, hence the output order and, when more than
   ``max_num_people`` persons exist, which ones are matched against, and Munkres' tie
   choices;
2. ``detection_threshold`` must be >= 0 (the official parser accepts any value);
3. NaN and Inf raise a ``ValueError`` (naming the map, counting its non-finite values) where
   the decoder reads them: NaN or +Inf anywhere in the heatmaps (the candidate scan meets
   every such pixel), non-finite tags of candidates, of refine peaks and of the pixels the
   full refine search scores. -Inf heat (it never passes the threshold) and tags never read
   are accepted; the reference refuses any. A check of every value would read the whole
   maps once more: about 6 ms for a 704x512 canvas on 2 CPU cores, more than the whole
   decoding of one person.

``refine_search='peaks'`` (the default) differs from the official refine on purpose: for a
person missing keypoint k it scores only keypoint k's ``topk`` highest positive NMS peaks
(the peak table of the candidate step, also below ``detection_threshold``) instead of every
pixel, with the official score ``value - round(||tag - mean tag||)`` (float32,
``np.round`` half to even, first maximum in raster order on ties), the official +-0.25
adjust and +0.5, vectorised over persons and peaks. Why: the official full-map argmax almost
always lands on a local maximum of keypoint k's heatmap near the person, and its exact
search reads the maps again for every missing keypoint. Differences arise only when the
full-map winner is not among those peaks (e.g. a slope pixel or a background pixel whose tag
is closer to the mean tag than any peak's, or a peak beyond the top ``topk``); a zero-valued
official winner, which fills nothing, can then become a filled peak, or the other way round.
They touch only the refined (missing) keypoints and their scores, never the instance scores
(taken before refine) nor the grouping.

Speed comes from the single compiled pass instead of the full-map max-pool and top-k,
compiled Munkres steps instead of pure-Python lists, and the pruned refine. Nothing here
imports torch; numba compiles the kernels on first use and caches them beside the modules.

Note:
    - keypoint number: K
    - heatmap size: (W, H)
    - tag dimension: L
    - person number: N
    - candidates of one keypoint: R; persons matched against: G
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numba
import numpy as np

from .grouping_candidates import Candidates, candidates_above
from .grouping_common import (ArrayOrTensor, ParseResult, empty_result, official_costs,
                              prepare_maps, resolve_keypoint_order)
from .grouping_munkres import START_MINIMUM, munkres_pairs, munkres_stars
from .grouping_peaks import scan_peaks
from .grouping_refine import MapPeaks, PeakSource, fill_missing, fill_missing_from_peaks

__all__ = [
    'REFINE_SEARCHES', 'parse_fast', 'check_fast_options', 'parse_from_candidates',
    'group_candidates', 'keypoint_positions', 'assign'
]

REFINE_SEARCHES = ('peaks', 'full')


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
            one (:func:`.grouping_common.default_keypoint_order`). Defaults to ``None``.

    Returns:
        tuple:
        - keypoints (np.ndarray): float32 (N, K, 2), (x, y) in the maps' pixel frame
        - keypoint_scores (np.ndarray): float32 (N, K), heatmap values, 0 when not found
        - instance_scores (np.ndarray): float32 (N, ), mean keypoint value before refine
    """
    check_fast_options(detection_threshold, refine_search)
    heatmaps, tags = prepare_maps(heatmaps, tags)
    order = resolve_keypoint_order(keypoint_order, heatmaps.shape[0])
    table = scan_peaks(heatmaps, nms_kernel, topk)
    source = MapPeaks(heatmaps, tags, table)
    return parse_from_candidates(candidates_above(table, tags, detection_threshold),
                                 source,
                                 order,
                                 tag_threshold=tag_threshold,
                                 max_num_people=max_num_people,
                                 adjust=adjust,
                                 refine=refine,
                                 refine_search=refine_search)


def check_fast_options(detection_threshold: float, refine_search: str) -> None:
    """Refuse the options :func:`parse_fast` does not support (``ValueError``)."""
    if detection_threshold < 0:
        raise ValueError(f'parse_fast needs detection_threshold >= 0, got {detection_threshold}')
    if refine_search not in REFINE_SEARCHES:
        raise ValueError(f'refine_search must be one of {REFINE_SEARCHES}, got {refine_search!r}')


def parse_from_candidates(candidates: List[Candidates], source: PeakSource, order: Sequence[int],
                          *, tag_threshold: float, max_num_people: int, adjust: bool, refine: bool,
                          refine_search: str) -> ParseResult:
    """Grouping, adjust, instance scores and refine of :func:`parse_fast` on found candidates.

    The maps are read through ``source`` only: the numpy maps (:class:`.MapPeaks`) or the
    peak table a device computed (:class:`.grouping_device.TensorPeaks`), which give the same
    answers, so both paths share every step from here on.

    Args:
        candidates (List[Candidates]): The K candidate sets (:func:`find_candidates`).
        source (PeakSource): Sub-pixel positions, refine peaks and, for ``'full'``, the maps.
        order (Sequence[int]): Grouping order of the keypoints.
        tag_threshold (float): Largest tag distance (exclusive) to join a person.
        max_num_people (int): Only the first persons created are matched against.
        adjust (bool): Quarter-pixel shift and +0.5 of the grouped keypoints.
        refine (bool): Fill missing keypoints.
        refine_search (str): ``'peaks'`` or ``'full'``.

    Returns:
        tuple: As :func:`parse_fast`.
    """
    flat, values, person_tags = group_candidates(candidates, order, tag_threshold, max_num_people)
    if len(flat) == 0:
        return empty_result(len(candidates))
    keypoints = keypoint_positions(source, flat, values, adjust)
    instance_scores = values.mean(axis=1)
    if refine and refine_search == 'full':
        fill_missing(keypoints, values, flat, person_tags, *source.maps())
    elif refine:
        peaks = source.peaks((values == 0).any(axis=0))
        fill_missing_from_peaks(keypoints, values, person_tags, source, peaks)
    return keypoints, values, instance_scores


def group_candidates(candidates: List[Candidates], order: Sequence[int], tag_threshold: float,
                     max_num_people: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The official ``match_by_tag``: assign each keypoint's candidates to persons by tag.

    Args:
        candidates (List[Candidates]): The K candidate sets (:func:`find_candidates`).
        order (Sequence[int]): Grouping order of the keypoints.
        tag_threshold (float): Largest tag distance (exclusive) to join a person.
        max_num_people (int): Only the first persons created are matched against.

    Returns:
        tuple:
        - flat (np.ndarray): int64 (N, K), pixel index y * W + x of each grouped keypoint
        - values (np.ndarray): float32 (N, K), heatmap values, 0 where a person has none
        - person_tags (np.ndarray): float32 (N, K, L), tags of the grouped keypoints
    """
    tag_dim = candidates[0].tags.shape[1]
    groups = _Groups(len(candidates), tag_dim, sum(len(c.flat) for c in candidates))
    for k in order:
        groups.add_keypoint(k, candidates[k], tag_threshold, max_num_people)
    return groups.result()


def keypoint_positions(source: PeakSource, flat: np.ndarray, values: np.ndarray,
                       adjust: bool) -> np.ndarray:
    """(x, y) of the grouped keypoints, adjusted as officially (+0.5, +-0.25) if asked.

    Args:
        source (PeakSource): The maps' width and sub-pixel positions.
        flat (np.ndarray): int64 (N, K) pixel indices y * W + x.
        values (np.ndarray): float32 (N, K) values; only keypoints with value > 0 move.
        adjust (bool): Apply the official adjust.

    Returns:
        np.ndarray: float32 (N, K, 2).
    """
    width = source.width
    keypoints = np.stack([flat % width, flat // width], axis=-1).astype(np.float32)
    found = values > 0
    if adjust:
        keypoints[found] = source.subpixel(np.nonzero(found)[1], flat[found])
    return keypoints


class _Groups:
    """Persons being grouped: the official ``joint_dict``/``tag_dict`` as arrays.

    A person gains at most one member tag per keypoint (one per assigned column; a start that
    re-uses its key resets the list to one tag), so K slots hold every member list.

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
        self.member_tags = np.zeros((capacity, num_keypoints, tag_dim), np.float32)
        self.member_counts = np.zeros(capacity, np.int64)
        self.mean_tags = np.zeros((capacity, tag_dim), np.float32)
        self.changed = np.zeros(capacity, bool)  # member tags changed since their mean
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
            centres = self._person_tags(min(self.size, max_num_people))
            if centres.shape[1] < 8:  # numpy sums fewer than 8 squares in order: compiled
                columns = _match_by_tags(candidates.tags, centres, candidates.values,
                                         tag_threshold, START_MINIMUM)
            else:
                # float64 like the official candidate rows (x, y, value, tag...)
                distances = np.linalg.norm(candidates.tags[:, None].astype(np.float64) -
                                           centres[None],
                                           ord=2,
                                           axis=2)
                rows, cols = assign(distances, candidates.values)
                close = distances[rows, cols] < tag_threshold
                columns[rows[close]] = cols[close]
        new_keys = [float(tag) for tag in candidates.tags[columns < 0, 0]]
        if len(set(new_keys)) == len(new_keys) and not any(key in self.keys for key in new_keys):
            self._join(k, candidates, np.nonzero(columns >= 0)[0], columns[columns >= 0])
            self._start_new(k, candidates, np.nonzero(columns < 0)[0], new_keys)
        else:  # a key collision: replay the official row-by-row dict updates
            for row, col in enumerate(columns):
                if col >= 0:
                    self._join(k, candidates, np.array([row]), np.array([col]))
                else:
                    self._start(k, candidates, row, float(candidates.tags[row, 0]))

    def _person_tags(self, grouped: int) -> np.ndarray:
        """float32 (G, L): the official ``np.mean`` of each of the first G persons' member tags.

        Persons with as many members are averaged together: ``np.mean`` over axis 1 of a
        (P, n, L) array reduces each C-contiguous (n, L) block as it reduces the official
        list -> array (pinned by a test). With L >= 2 numpy adds the members one after
        another (the reduced axis is not the contiguous one; pairwise only for L = 1), so
        member lists padded with zeros give the same sums: all persons at once.
        """
        changed = np.flatnonzero(self.changed[:grouped])
        counts = self.member_counts[changed]
        if len(changed) and self.member_tags.shape[2] >= 2:
            members = self.member_tags[changed, :counts.max()]
            slots = np.arange(members.shape[1])[None, :, None]
            sums = np.add.reduce(np.where(slots < counts[:, None, None], members, 0), axis=1)
            self.mean_tags[changed] = sums / counts[:, None].astype(np.float32)
            self.changed[changed] = False
            return self.mean_tags[:grouped]
        for count in set(counts.tolist()):  # a few distinct counts: cheaper than np.unique
            persons = changed[counts == count]
            self.mean_tags[persons] = np.mean(self.member_tags[persons, :count], axis=1)
        self.changed[changed] = False
        return self.mean_tags[:grouped]

    def _set(self, k: int, candidates: Candidates, rows, persons) -> None:
        self.flat[persons, k] = candidates.flat[rows]
        self.values[persons, k] = candidates.values[rows]
        self.tags[persons, k] = candidates.tags[rows]

    def _join(self, k: int, candidates: Candidates, rows: np.ndarray, persons: np.ndarray) -> None:
        self._set(k, candidates, rows, persons)
        self.member_tags[persons, self.member_counts[persons]] = candidates.tags[rows]
        self.member_counts[persons] += 1
        self.changed[persons] = True

    def _start_new(self, k: int, candidates: Candidates, rows: np.ndarray,
                   keys: List[float]) -> None:
        """:meth:`_start` of ``rows`` whose ``keys`` are distinct and new: all at once."""
        persons = np.arange(self.size, self.size + len(rows))
        self.keys.update(zip(keys, persons.tolist()))
        self.size += len(rows)
        self._reset(k, candidates, rows, persons)

    def _start(self, k: int, candidates: Candidates, row: int, key: float) -> None:
        # An existing key re-uses its person and resets its tags (official dict.setdefault).
        person = self.keys.setdefault(key, self.size)
        if person == self.size:
            self.size += 1
        self._reset(k, candidates, row, person)

    def _reset(self, k: int, candidates: Candidates, rows, persons) -> None:
        """Persons whose one member is now the candidate at ``rows`` (a start)."""
        self._set(k, candidates, rows, persons)
        self.member_tags[persons, 0] = candidates.tags[rows]
        self.member_counts[persons] = 1
        self.changed[persons] = True


def assign(distances: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The official candidate-to-person assignment: Munkres on the official cost matrix.

    The official cost ``round(D) * 100 - value`` often has several optimal assignments (equal
    rounded distances); the official one is whichever the ``munkres`` package's steps reach,
    so the same steps are run (:func:`.grouping_munkres.munkres_pairs`: exact, compiled).

    Args:
        distances (np.ndarray): float64 (R, G) tag distances, candidates by value.
        values (np.ndarray): float32 (R, ) candidate heatmap values.

    Returns:
        tuple: ``rows``, ``cols`` (int arrays) of the assigned pairs inside the (R, G) matrix.
    """
    rows, cols = munkres_pairs(official_costs(distances, values)).T
    real = cols < distances.shape[1]
    return rows[real], cols[real]


@numba.njit(cache=True, nogil=True)
def _match_by_tags(tags, centres, values, tag_threshold, start_minimum):  # pragma: no cover
    """The person (column) of each candidate, -1 for none: :func:`assign` of the official
    float64 tag distances (L < 8 squares summed in order, as numpy does), kept when the
    distance is below ``tag_threshold``. Compiled: the same operations as the numpy path,
    without its dozen calls per keypoint."""
    num_rows, num_cols, tag_dim = len(tags), len(centres), tags.shape[1]
    distances = np.empty((num_rows, num_cols))
    for row in range(num_rows):
        for col in range(num_cols):
            total = 0.0
            for c in range(tag_dim):
                diff = np.float64(tags[row, c]) - np.float64(centres[col, c])
                total += diff * diff
            distances[row, col] = np.sqrt(total)
    size = max(num_rows, num_cols)
    matrix = np.zeros((size, size))  # official costs, padded as official_costs and Munkres
    for row in range(num_rows):
        for col in range(size):
            if col < num_cols:
                matrix[row, col] = np.rint(distances[row, col]) * 100 - np.float64(values[row])
            else:
                matrix[row, col] = 1e10
    star_of_row = munkres_stars(matrix, start_minimum)
    columns = np.full(num_rows, -1, np.int64)
    for row in range(num_rows):
        col = star_of_row[row]
        if col < num_cols and distances[row, col] < tag_threshold:
            columns[row] = col
    return columns
