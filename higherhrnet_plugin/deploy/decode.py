"""Grouping of the exported graph's maps, in numpy (no torch).

``'fast'`` is :func:`..codecs.utils.grouping_fast.parse_fast` on the heatmaps and tags (it
finds its NMS peaks itself, exactly). ``'reference'`` is the official ``HeatmapParser``
(:mod:`..codecs.utils.grouping_reference`) with its one torch step, ``torch.topk`` on the NMS
map, replaced by :func:`topk_candidates` on the graph's ``peaks`` output, which is that NMS
map. Ties: ``torch.topk`` returns exactly equal values in an unspecified order, we return
them by pixel index (row-major), as the fast parser does. Only equal values above
``detection_threshold`` can change a result (every pixel of a plateau survives NMS, so a flat
peak gives equal candidates; below the threshold candidates are dropped, which covers the
zeros of suppressed pixels unless the threshold is negative): the order of new persons, and
hence Munkres' choice between equal costs.

Note:
    - keypoint number: K
    - map size: (W, H)
    - tag dimension: L
    - candidates per keypoint: M = min(topk, H*W)
"""
from typing import Optional, Sequence, Tuple

import numpy as np

from ..codecs.utils.grouping_common import (ParseResult, prepare_maps,
                                            require_finite, resolve_keypoint_order)
from ..codecs.utils.grouping_fast import parse_fast
from ..codecs.utils.grouping_reference import parse_candidates
from .deploy_settings import DeploySettings


def decode_maps(heatmaps: np.ndarray, tags: np.ndarray, peaks: np.ndarray,
                settings: DeploySettings) -> ParseResult:
    """Group one image's maps into persons with the model's decode settings.

    Args:
        heatmaps (np.ndarray): (K, H, W) aggregated heatmaps.
        tags (np.ndarray): (K, H, W, L) tags.
        peaks (np.ndarray): (K, H, W) NMS map of the heatmaps (the graph's ``peaks``).
        settings (DeploySettings): ``decode_mode`` and ``decode_options``.

    Returns:
        tuple:
        - keypoints (np.ndarray): float32 (N, K, 2), canvas pixels
        - keypoint_scores (np.ndarray): float32 (N, K)
        - instance_scores (np.ndarray): float32 (N, )
    """
    if settings.decode_mode == 'fast':
        return parse_fast(heatmaps, tags, **settings.decode_options)
    options = {k: v for k, v in settings.decode_options.items() if k != 'nms_kernel'}
    return parse_reference_from_peaks(heatmaps, tags, peaks, **options)


def topk_candidates(peaks: np.ndarray, tags: np.ndarray,
                    topk: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The M largest values of each keypoint's NMS map: ``official_candidates`` without torch.

    Args:
        peaks (np.ndarray): (K, H, W) NMS map.
        tags (np.ndarray): (K, H, W, L) tags.
        topk (int): Candidates per keypoint.

    Returns:
        tuple:
        - values (np.ndarray): float32 (K, M), descending; equal values by pixel index
        - locations (np.ndarray): int64 (K, M, 2), (x, y) pixels
        - candidate_tags (np.ndarray): float32 (K, M, L)
    """
    num_keypoints, height, width = peaks.shape
    flat_peaks = np.ascontiguousarray(peaks, dtype=np.float32).reshape(num_keypoints, -1)
    count = min(topk, height * width)
    # The M-th largest value; everything above it is in, ties at it by lowest pixel index.
    cut = np.partition(flat_peaks, flat_peaks.shape[1] - count, axis=1)[:, -count]
    flat = np.empty((num_keypoints, count), np.int64)
    for k, (row, value) in enumerate(zip(flat_peaks, cut)):
        above = np.flatnonzero(row > value)
        chosen = np.concatenate([above, np.flatnonzero(row == value)[:count - len(above)]])
        flat[k] = chosen[np.lexsort((chosen, -row[chosen]))]
    values = np.take_along_axis(flat_peaks, flat, axis=1)
    candidate_tags = np.take_along_axis(tags.reshape(num_keypoints, height * width, -1),
                                        flat[..., None],
                                        axis=1)
    return values, np.stack([flat % width, flat // width], axis=-1), candidate_tags


def parse_reference_from_peaks(heatmaps: np.ndarray,
                               tags: np.ndarray,
                               peaks: np.ndarray,
                               *,
                               topk: int = 30,
                               detection_threshold: float = 0.1,
                               tag_threshold: float = 1.0,
                               max_num_people: int = 30,
                               adjust: bool = True,
                               refine: bool = True,
                               keypoint_order: Optional[Sequence[int]] = None) -> ParseResult:
    """``parse_reference`` with its candidates read from an NMS map (see the module note).

    Steps 2-5 of :mod:`..codecs.utils.grouping_reference` (grouping, adjust, instance
    scores, refine) are its own functions; the arguments and results are
    ``parse_reference``'s, with ``peaks`` (K, H, W) the NMS map of ``heatmaps``.
    """
    heatmaps, tags = prepare_maps(heatmaps, tags)
    require_finite(heatmaps, heatmaps, 'heatmaps')
    require_finite(tags, tags, 'tags')
    order = resolve_keypoint_order(keypoint_order, heatmaps.shape[0])
    return parse_candidates(heatmaps, tags, topk_candidates(peaks, tags, topk), order,
                            detection_threshold=detection_threshold,
                            tag_threshold=tag_threshold, max_num_people=max_num_people,
                            adjust=adjust, refine=refine)
