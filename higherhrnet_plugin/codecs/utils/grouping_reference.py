"""Reference grouping: the official HigherHRNet ``HeatmapParser``, written as its specification.

This module states, step by step and with the official data types, what ``HeatmapParser.parse``
of HRNet/HigherHRNet-Human-Pose-Estimation (``lib/core/group.py``, MIT licence; itself derived
from princeton-vl/pose-ae-train) computes for one image, so that its output equals the official
one bit for bit (``tools/check_official_parser.py`` runs both on the same maps). It is slow on
purpose (Python loops, the pure-Python ``munkres`` package, one full-map search per missing
keypoint) and is the oracle of :mod:`.grouping_fast`.

The official defaults are the function defaults here (``Params`` and ``TEST`` of the official
configs): NMS window 5, 30 candidates per keypoint, detection threshold 0.1, tag threshold 1,
30 persons matched against, ``USE_DETECTION_VAL=True``, ``IGNORE_TOO_MUCH=False``,
``TAG_PER_JOINT=True``, no centre keypoint.

1. **Candidates** (official ``top_k``): every pixel equal to the maximum of its 5x5 window
   survives NMS (all pixels of a plateau do), the others become 0; ``torch.topk`` keeps the 30
   largest values per keypoint, with the tags at those pixels
   (:func:`.grouping_common.official_candidates`).
2. **Grouping** (official ``match_by_tag``, :func:`match_by_tag`). Keypoints are visited in the
   grouping order; a keypoint's candidates are those with value > ``detection_threshold``
   (compared in float64), in ``topk`` order. Persons live in a dict, in creation order, keyed by
   the first tag value of the candidate that started them; each keeps K rows
   ``(x, y, value, tag...)`` and the list of its member tags in join order.

   - While there is no person, every candidate starts one.
   - Otherwise the candidates are matched to the first ``max_num_people`` persons. A person's
     tag is ``np.mean`` of its member tags (float32; numpy sums a float32 ``(n, 1)`` array
     pairwise for n >= 8, so the order and the array layout matter). With D the L2 distance
     (float64) between a candidate's tag and a person's tag, the cost is
     ``round(D) * 100 - value`` (``np.round``: half to even), padded with 1e10 columns when
     there are more candidates than persons; the ``munkres`` package minimises it.
   - Going through the assigned pairs by candidate: a candidate assigned to a real person
     with D < ``tag_threshold`` joins it (sets its row for this keypoint, appends its tag);
     every other candidate starts a person keyed by its first tag value. A key already in the
     dict is the official ``dict.setdefault``: that person's row for this keypoint is
     overwritten and its tag list restarts with this one tag.
3. **Adjust** (official ``adjust``, :func:`adjust_people`): every found keypoint (value > 0)
   moves from its pixel (x, y) to (x + 0.5 +- 0.25, y + 0.5 +- 0.25), +0.25 towards the larger
   of its two neighbours on that axis (neighbours clamped to the map; ties give -0.25).
4. **Instance score**: mean of the person's K values (0 for missing keypoints), in float32,
   taken after adjust and before refine.
5. **Refine** (official ``refine``, :func:`refine_person`): for each person, the mean tag
   (``np.mean``, float32) of its found keypoints in keypoint-index order, read on the tag maps
   at the truncated adjusted coordinates (that is, at the grouped pixels). For each missing
   keypoint k, the first pixel in raster order maximising
   ``heatmap[k] - round(||tags[k] - mean tag||)`` (float32, summed over the L channels); when
   its heatmap value is > 0 it fills the keypoint with that value, at the pixel adjusted as in
   step 3.

Where this differs from the official code, without changing any result on finite maps:

- refine searches the missing keypoints only (the official code searches every keypoint and
  then discards the results of the found ones);
- ``topk`` is capped by the number of pixels (the official ``torch.topk`` raises there);
- maps with NaN or Inf anywhere are refused with a ``ValueError`` that names the map and counts
  them (:func:`.grouping_common.require_finite`); the official parser has no defined result
  for them.

Note:
    - keypoint number: K
    - heatmap size: (W, H)
    - tag dimension: L
    - candidate number per keypoint: M
    - person number: N
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from munkres import Munkres

from .grouping_common import (ArrayOrTensor, ParseResult, empty_result, official_candidates,
                              official_costs, prepare_maps, require_finite, resolve_keypoint_order)


def parse_reference(heatmaps: ArrayOrTensor,
                    tags: ArrayOrTensor,
                    *,
                    nms_kernel: int = 5,
                    topk: int = 30,
                    detection_threshold: float = 0.1,
                    tag_threshold: float = 1.0,
                    max_num_people: int = 30,
                    adjust: bool = True,
                    refine: bool = True,
                    keypoint_order: Optional[Sequence[int]] = None) -> ParseResult:
    """Group keypoints into persons exactly as the official ``HeatmapParser.parse``.

    Args:
        heatmaps (np.ndarray | Tensor): Aggregated heatmaps in shape (K, H, W), CPU.
        tags (np.ndarray | Tensor): Tags in shape (K, H, W, L), CPU.
        nms_kernel (int): NMS window size. Defaults to ``5``.
        topk (int): Candidates per keypoint. Defaults to ``30``.
        detection_threshold (float): Candidates need a heatmap value above it.
            Defaults to ``0.1``.
        tag_threshold (float): Largest tag distance (exclusive) to join a person.
            Defaults to ``1.0``.
        max_num_people (int): Only the first persons created are matched against.
            Defaults to ``30``.
        adjust (bool): Quarter-pixel shift and +0.5 of the grouped keypoints.
            Defaults to ``True``.
        refine (bool): Fill missing keypoints from the maps. Defaults to ``True``.
        keypoint_order (Sequence[int], optional): Grouping order; ``None`` for the official
            one (:func:`.grouping_common.default_keypoint_order`). Defaults to ``None``.

    Returns:
        tuple:
        - keypoints (np.ndarray): float32 (N, K, 2), (x, y) in the maps' pixel frame
        - keypoint_scores (np.ndarray): float32 (N, K), heatmap values, 0 when not found
        - instance_scores (np.ndarray): float32 (N, ), mean keypoint value before refine
    """
    heatmaps, tags = prepare_maps(heatmaps, tags)
    require_finite(heatmaps, heatmaps, 'heatmaps')
    require_finite(tags, tags, 'tags')
    order = resolve_keypoint_order(keypoint_order, heatmaps.shape[0])
    candidates = official_candidates(heatmaps, tags, nms_kernel, topk)
    return parse_candidates(heatmaps,
                            tags,
                            candidates,
                            order,
                            detection_threshold=detection_threshold,
                            tag_threshold=tag_threshold,
                            max_num_people=max_num_people,
                            adjust=adjust,
                            refine=refine)


def parse_candidates(heatmaps: np.ndarray, tags: np.ndarray,
                     candidates: Tuple[np.ndarray, np.ndarray, np.ndarray], order: Sequence[int],
                     *, detection_threshold: float, tag_threshold: float, max_num_people: int,
                     adjust: bool, refine: bool) -> ParseResult:
    """Steps 2 to 5 (grouping, adjust, instance scores, refine) on given candidates.

    :func:`parse_reference` after its candidate step, for callers that find the official
    candidates another way (e.g. from an NMS map computed elsewhere).

    Args:
        heatmaps (np.ndarray): float32 heatmaps in shape (K, H, W), finite.
        tags (np.ndarray): float32 tags in shape (K, H, W, L), finite.
        candidates (tuple): ``values`` (K, M), ``locations`` (K, M, 2) and ``tags``
            (K, M, L), as :func:`.grouping_common.official_candidates` returns them.
        order (Sequence[int]): Grouping order of the keypoints.
        detection_threshold (float): Minimum (exclusive) candidate value.
        tag_threshold (float): Maximum (exclusive) tag distance to join a person.
        max_num_people (int): Number of persons (in creation order) matched against.
        adjust (bool): Quarter-pixel shift and +0.5 of the grouped keypoints.
        refine (bool): Fill missing keypoints from the maps.

    Returns:
        tuple: As :func:`parse_reference`.
    """
    people = match_by_tag(*candidates, order, detection_threshold, tag_threshold, max_num_people)
    if len(people) == 0:
        return empty_result(heatmaps.shape[0])
    if adjust:
        adjust_people(people, heatmaps)
    instance_scores = np.array([person[:, 2].mean() for person in people], dtype=np.float32)
    if refine:
        for person in people:
            refine_person(person, heatmaps, tags)
    return people[:, :, :2].copy(), people[:, :, 2].copy(), instance_scores


def match_by_tag(values: np.ndarray, locations: np.ndarray, candidate_tags: np.ndarray,
                 order: Sequence[int], detection_threshold: float, tag_threshold: float,
                 max_num_people: int) -> np.ndarray:
    """Official ``match_by_tag`` (step 2 of the module docstring): candidates into persons.

    Args:
        values (np.ndarray): Candidate heatmap values in shape (K, M).
        locations (np.ndarray): Candidate (x, y) pixels in shape (K, M, 2).
        candidate_tags (np.ndarray): Candidate tags in shape (K, M, L).
        order (Sequence[int]): Grouping order of the keypoints.
        detection_threshold (float): Minimum (exclusive) candidate value.
        tag_threshold (float): Maximum (exclusive) tag distance to join a person.
        max_num_people (int): Number of persons (in creation order) matched against.

    Returns:
        np.ndarray: float32 (N, K, 3 + L), rows (x, y, value, tag...) with zeros for
        keypoints a person lacks, persons in creation order.
    """
    num_keypoints, _, tag_dim = candidate_tags.shape
    people = _People(num_keypoints, tag_dim)
    for k in order:
        rows, tags = _detections(values[k], locations[k], candidate_tags[k], detection_threshold)
        if len(rows) == 0:
            continue
        if not people.rows:
            for row, tag in zip(rows, tags):
                people.start(k, row, tag)
            continue
        keys = list(people.rows)[:max_num_people]
        distances = np.linalg.norm(rows[:, None, 3:] - people.mean_tags(keys)[None], axis=2)
        for r, c in Munkres().compute(official_costs(distances, rows[:, 2]).tolist()):
            if c < len(keys) and distances[r, c] < tag_threshold:
                people.join(keys[c], k, rows[r], tags[r])
            else:
                people.start(k, rows[r], tags[r])
    return people.as_array()


def _detections(values: np.ndarray, locations: np.ndarray, tags: np.ndarray,
                threshold: float) -> Tuple[np.ndarray, np.ndarray]:
    """One keypoint's candidates above ``threshold``: float64 rows (C, 3 + L), tags (C, L).

    The rows are the official ``np.concatenate`` of int64 pixels, float32 values and float32
    tags, hence float64; the threshold is compared with the float64 value.
    """
    rows = np.concatenate((locations, values[:, None], tags), axis=1)
    keep = rows[:, 2] > threshold
    return rows[keep], tags[keep]


class _People:
    """The official ``joint_dict`` / ``tag_dict``: persons keyed by a first tag value.

    Args:
        num_keypoints (int): K.
        tag_dim (int): L.
    """

    def __init__(self, num_keypoints: int, tag_dim: int) -> None:
        self.shape = (num_keypoints, 3 + tag_dim)
        self.rows: Dict[float, np.ndarray] = {}  # insertion-ordered: creation order
        self.member_tags: Dict[float, List[np.ndarray]] = {}

    def start(self, k: int, row: np.ndarray, tag: np.ndarray) -> None:
        """A new person keyed by ``tag[0]``; an existing key re-uses that person and resets its
        tag list (the official ``dict.setdefault``)."""
        key = float(tag[0])
        self.rows.setdefault(key, np.zeros(self.shape))[k] = row
        self.member_tags[key] = [tag]

    def join(self, key: float, k: int, row: np.ndarray, tag: np.ndarray) -> None:
        """Keypoint ``k`` of person ``key``; its tag joins the person's tag list."""
        self.rows[key][k] = row
        self.member_tags[key].append(tag)

    def mean_tags(self, keys: Sequence[float]) -> np.ndarray:
        """float32 (G, L): ``np.mean`` of each person's member tags, as officially."""
        return np.array([np.mean(self.member_tags[key], axis=0) for key in keys])

    def as_array(self) -> np.ndarray:
        """float32 (N, K, 3 + L), persons in creation order."""
        if not self.rows:
            return np.zeros((0, ) + self.shape, np.float32)
        return np.array(list(self.rows.values()), dtype=np.float32)


def adjust_people(people: np.ndarray, heatmaps: np.ndarray) -> None:
    """Official ``adjust``, in place: quarter-pixel shift towards the larger neighbour, +0.5.

    Args:
        people (np.ndarray): Grouped keypoints in shape (N, K, 3 + L); rows with value > 0
            hold integer pixels and are shifted.
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
    """
    for person in people:
        for k, row in enumerate(person):
            if row[2] > 0:
                row[0], row[1] = quarter_pixel(heatmaps[k], int(row[0]), int(row[1]))


def quarter_pixel(heatmap: np.ndarray, x: int, y: int) -> tuple:
    """Sub-pixel position of pixel (x, y): centre (+0.5) plus 0.25 towards the larger neighbour.

    Neighbours are clamped to the map; on ties (including both clamped to (x, y)) the shift
    is -0.25.

    Args:
        heatmap (np.ndarray): One heatmap in shape (H, W).
        x (int): Column.
        y (int): Row.

    Returns:
        tuple: (x', y') as Python floats.
    """
    height, width = heatmap.shape
    dx = 0.25 if heatmap[y, min(x + 1, width - 1)] > heatmap[y, max(x - 1, 0)] else -0.25
    dy = 0.25 if heatmap[min(y + 1, height - 1), x] > heatmap[max(y - 1, 0), x] else -0.25
    return x + 0.5 + dx, y + 0.5 + dy


def refine_person(person: np.ndarray, heatmaps: np.ndarray, tags: np.ndarray) -> None:
    """Official ``refine`` of one person, in place (step 5): fill its missing keypoints.

    Args:
        person (np.ndarray): Keypoints of one person in shape (K, 3 + L); value 0 = missing.
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
        tags (np.ndarray): Tags in shape (K, H, W, L).
    """
    found = [k for k in range(len(person)) if person[k, 2] > 0]
    # Truncating the adjusted coordinates gives back the grouped pixel.
    mean_tag = np.mean([tags[k, int(person[k, 1]), int(person[k, 0])] for k in found], axis=0)
    for k in range(len(person)):
        if person[k, 2] != 0:
            continue
        distances = ((tags[k] - mean_tag[None, None, :])**2).sum(axis=2)**0.5
        y, x = np.unravel_index(np.argmax(heatmaps[k] - np.round(distances)), heatmaps[k].shape)
        value = heatmaps[k, y, x]
        if value > 0:
            person[k, 0], person[k, 1] = quarter_pixel(heatmaps[k], int(x), int(y))
            person[k, 2] = value
