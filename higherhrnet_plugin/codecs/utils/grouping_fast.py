"""Fast grouping decoder: the official ``HeatmapParser`` maths, vectorised.

Computes what :func:`.grouping_reference.parse_reference` (the official HigherHRNet
``HeatmapParser``, ``lib/core/group.py``, MIT licence) computes, with the same float32 and
float64 operations wherever they decide a result, but only where the result can change:

- candidates (:mod:`.grouping_candidates`): instead of max-pooling the whole maps and running
  ``torch.topk`` (most of the official run time on CPU), one compiled pass over each map
  (:mod:`.grouping_peaks`) keeps its ``topk`` highest positive NMS peaks (a pixel no pixel of
  its window exceeds); the candidates are those above ``detection_threshold`` (compared as
  the official float64 comparison does; the official parser drops every other candidate);
- grouping (:func:`group_candidates`, :mod:`.grouping_persons`): the official loop over the
  keypoints, compiled in one call: persons are arrays (keypoints, member tags in join order)
  with the official first-tag-value keys beside them, so key collisions behave as
  officially. A person's tag is the mean of its member tags, added in numpy's order for the
  official list -> array (pairwise from 8 tags with one tag channel), recomputed only when
  they change; any other order of summation can flip a join at a distance of exactly
  ``tag_threshold``. Each keypoint's candidates are assigned by the official Munkres steps
  on the official cost matrix ``round(D) * 100 - value`` (:mod:`.grouping_munkres`: the
  ``munkres`` package's algorithm step for step, so ties are broken as officially; the
  rounded distances tie often);
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
   are accepted; the reference refuses any. A check of every value would read all the tags
   (L times the heatmaps' size), of which the decoder reads a few pixels.

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

Speed comes from the single compiled pass instead of the full-map max-pool and top-k, the
compiled grouping loop and Munkres steps instead of pure-Python lists, and the pruned refine. Nothing here
imports torch; numba compiles the kernels on first use and caches them beside the modules.

Note:
    - keypoint number: K
    - heatmap size: (W, H)
    - tag dimension: L
    - person number: N
    - candidates of one keypoint: R; persons matched against: G
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .grouping_candidates import Candidates, candidates_above, pad_candidates
from .grouping_common import (ArrayOrTensor, ParseResult, empty_result, prepare_maps,
                              resolve_keypoint_order)
from .grouping_peaks import scan_peaks
from .grouping_persons import group_persons
from .grouping_refine import MapPeaks, PeakSource, fill_missing, fill_missing_from_peaks

__all__ = [
    'REFINE_SEARCHES', 'parse_fast', 'check_fast_options', 'parse_from_candidates',
    'group_candidates', 'keypoint_positions'
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
    counts = np.array([len(found.flat) for found in candidates], np.int64)
    return group_persons(*pad_candidates(candidates), counts, order, tag_threshold,
                         max_num_people)


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
