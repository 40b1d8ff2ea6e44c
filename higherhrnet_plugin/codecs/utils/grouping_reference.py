"""Reference grouping decoder: the official HigherHRNet ``HeatmapParser``, step by step.

Re-implements ``HeatmapParser.parse`` of HRNet/HigherHRNet-Human-Pose-Estimation
(``lib/core/group.py``, MIT licence; itself derived from princeton-vl/pose-ae-train) for
one image, with the official data types, so that its output equals the official one
bit for bit. It is slow on purpose (Python loops, Munkres in pure Python, one full-map
search per missing keypoint) and serves as the oracle for :mod:`.grouping_fast`.

Steps (the official ones, with its constants as defaults):

1. candidates: 5x5 max-pool NMS keeping plateaus, ``torch.topk`` of 30 per keypoint
   (:func:`.grouping_common.official_candidates`);
2. grouping (``match_by_tag``): keypoints visited in the grouping order; candidates with
   value > ``detection_threshold``; the first visited keypoint with candidates starts one
   person per candidate. Later ones are matched by Munkres to the first
   ``max_num_people`` persons (in creation order) with cost ``round(D) * 100 - value``,
   D = L2 distance between the candidate tag and the mean tag of the person (``np.round``,
   half to even), padded with 1e10 columns when there are more candidates than persons.
   A pair joins when D < ``tag_threshold``; every other candidate starts a person keyed by
   its first tag value. Persons live in a dict keyed by that float, so a new key equal to an
   existing one overwrites that person's keypoint and resets its tag list, as officially;
3. adjust: x += 0.25 if heatmap[y, x+1] > heatmap[y, x-1] else -0.25 (neighbours clamped
   to the map, ties go to -0.25), the same for y, then +0.5 on both;
4. instance score: mean of the K keypoint values (0 for missing keypoints), taken here,
   after adjust and before refine;
5. refine: for each person, the mean tag of its found keypoints (tags read at the
   truncated adjusted coordinates) and, for every missing keypoint k, the first pixel of
   ``heatmap[k] - round(||tags[k] - mean tag||)`` with the largest value; it fills the
   keypoint (+0.5 and the +-0.25 rule) when its heatmap value is > 0.

The only change from the official code is that refine searches missing keypoints only
(the official code searches every keypoint and then discards the found ones' results), and
that ``topk`` is capped by the number of pixels (the official ``topk`` raises there).

Note:
    - keypoint number: K
    - heatmap size: (W, H)
    - tag dimension: L
    - candidate number per keypoint: M
    - person number: N
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
from munkres import Munkres

from .grouping_common import (ArrayOrTensor, ParseResult, empty_result, official_candidates,
                            prepare_maps, resolve_keypoint_order)

# Cost of the padding columns when there are more candidates than persons (official value).
_PADDING_COST = 1e10


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
    order = resolve_keypoint_order(keypoint_order, heatmaps.shape[0])
    values, locations, candidate_tags = official_candidates(heatmaps, tags, nms_kernel, topk)
    people = match_by_tag(values, locations, candidate_tags, order, detection_threshold,
                          tag_threshold, max_num_people)
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
    """Official ``match_by_tag``: group candidates into persons by their tags.

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
        keypoints a person lacks.
    """
    num_keypoints, _, tag_dim = candidate_tags.shape
    people: Dict[float, np.ndarray] = {}  # insertion-ordered, keyed by a first tag value
    member_tags: Dict[float, List[np.ndarray]] = {}

    def start_person(k: int, row: np.ndarray, tag: np.ndarray) -> None:
        # A key already present re-uses that person (the official dict.setdefault).
        key = float(tag[0])
        people.setdefault(key, np.zeros((num_keypoints, 3 + tag_dim)))[k] = row
        member_tags[key] = [tag]

    for k in order:
        # float64 rows (x, y, value, tag...) as the official np.concatenate produces
        rows = np.concatenate((locations[k], values[k][:, None], candidate_tags[k]), axis=1)
        keep = rows[:, 2] > detection_threshold
        rows, tags = rows[keep], candidate_tags[k][keep]
        if len(rows) == 0:
            continue
        if not people:
            for row, tag in zip(rows, tags):
                start_person(k, row, tag)
            continue

        keys = list(people)[:max_num_people]
        person_tags = np.array([np.mean(member_tags[key], axis=0) for key in keys])
        distances = np.linalg.norm(rows[:, None, 3:] - person_tags[None], ord=2, axis=2)
        costs = np.round(distances) * 100 - rows[:, 2:3]
        if len(rows) > len(keys):
            padding = np.full((len(rows), len(rows) - len(keys)), _PADDING_COST)
            costs = np.concatenate((costs, padding), axis=1)

        for r, c in Munkres().compute(costs.tolist()):
            if c < len(keys) and distances[r, c] < tag_threshold:
                people[keys[c]][k] = rows[r]
                member_tags[keys[c]].append(tags[r])
            else:
                start_person(k, rows[r], tags[r])

    if not people:
        return np.zeros((0, num_keypoints, 3 + tag_dim), np.float32)
    return np.array(list(people.values()), dtype=np.float32)


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
                x, y = int(row[0]), int(row[1])
                row[0], row[1] = quarter_pixel(heatmaps[k], x, y)


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
    """Official ``refine`` of one person, in place: fill its missing keypoints from the maps.

    Args:
        person (np.ndarray): Keypoints of one person in shape (K, 3 + L); value 0 = missing.
        heatmaps (np.ndarray): Heatmaps in shape (K, H, W).
        tags (np.ndarray): Tags in shape (K, H, W, L).
    """
    found = [k for k in range(len(person)) if person[k, 2] > 0]
    # Truncating the adjusted coordinates gives back the grouped pixel.
    found_tags = [tags[k, int(person[k, 1]), int(person[k, 0])] for k in found]
    mean_tag = np.mean(found_tags, axis=0)
    for k in range(len(person)):
        if person[k, 2] != 0:
            continue
        distances = ((tags[k] - mean_tag[None, None, :])**2).sum(axis=2)**0.5
        y, x = np.unravel_index(np.argmax(heatmaps[k] - np.round(distances)), heatmaps[k].shape)
        value = heatmaps[k, y, x]
        if value > 0:
            person[k, 0], person[k, 1] = quarter_pixel(heatmaps[k], int(x), int(y))
            person[k, 2] = value
