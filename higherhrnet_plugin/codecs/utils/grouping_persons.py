"""Persons from candidates: the official ``match_by_tag`` loop, compiled (numba).

Part of :mod:`.grouping_fast` (see its docstring for how this matches the official parser).
Why compiled: the loop runs once per keypoint with a dozen small numpy calls each (person
means, distances, costs, joins, starts); compiled, the whole grouping is one call.

The official loop, keypoint by keypoint in the grouping order:

1. the first ``max_num_people`` persons' tags: ``np.mean`` of each person's member tags
   (the official list -> array);
2. float64 distances of the keypoint's candidates to them, costs ``round(D) * 100 - value``
   padded with 1e10 columns, the ``munkres`` package's assignment
   (:func:`.grouping_munkres.munkres_stars`); a pair joins when its distance is below
   ``tag_threshold``;
3. row by row: a joined candidate becomes the person's keypoint and a member tag; any other
   starts a person keyed by its first tag value (an existing key re-uses that person and
   resets its member tags to this one, as the official ``dict.setdefault``).

The float32 means and float64 distances add their terms in numpy's order: ``np.mean`` over
the members of a (n, L) list -> array adds them one after another for L >= 2 (the reduced
axis is not the contiguous one) and pairwise for L = 1; ``np.linalg.norm`` over L values
adds in order below 8 values and pairwise from 8 (:func:`.grouping_common.numpy_sum`). Any
other order can flip a join at a distance of exactly ``tag_threshold``.

Note:
    - keypoint number: K
    - candidates per keypoint: M (at most), R (of one keypoint)
    - tag dimension: L
    - persons: N; matched against: G = min(N, ``max_num_people``)
"""
from typing import Sequence, Tuple

import numba
import numpy as np

from .grouping_common import PADDING_COST, numpy_sum
from .grouping_munkres import START_MINIMUM, munkres_stars

__all__ = ['group_persons', 'assign']


def group_persons(flat: np.ndarray, values: np.ndarray, tags: np.ndarray, counts: np.ndarray,
                  order: Sequence[int], tag_threshold: float,
                  max_num_people: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The official ``match_by_tag`` on padded candidate arrays.

    Args:
        flat (np.ndarray): int64 (K, M) pixel indices y * W + x of the candidates, by value
            (descending); entries beyond ``counts[k]`` are ignored.
        values (np.ndarray): float32 (K, M) heatmap values.
        tags (np.ndarray): float32 (K, M, L) tags, finite.
        counts (np.ndarray): int64 (K, ) candidates of each keypoint.
        order (Sequence[int]): Grouping order of the keypoints.
        tag_threshold (float): Largest tag distance (exclusive) to join a person.
        max_num_people (int): Only the first persons created are matched against.

    Returns:
        tuple:
        - flat (np.ndarray): int64 (N, K), pixel index of each grouped keypoint
        - values (np.ndarray): float32 (N, K), heatmap values, 0 where a person has none
        - person_tags (np.ndarray): float32 (N, K, L), tags of the grouped keypoints
    """
    return _group(flat, values, tags, counts.astype(np.int64), np.asarray(order, np.int64),
                  float(tag_threshold), int(max_num_people), START_MINIMUM, PADDING_COST)


@numba.njit(cache=True, nogil=True)
def _group(flat, values, tags, counts, order, tag_threshold, max_num_people, start_minimum,
           padding_cost):  # pragma: no cover (compiled)
    """:func:`group_persons`; persons live in arrays of ``sum(counts)`` rows (an upper bound)."""
    num_keypoints, _, tag_dim = tags.shape
    capacity = counts.sum()
    person_flat = np.zeros((capacity, num_keypoints), np.int64)
    person_values = np.zeros((capacity, num_keypoints), np.float32)
    person_tags = np.zeros((capacity, num_keypoints, tag_dim), np.float32)
    # A person gains at most one member per keypoint after its start (one join per assigned
    # column; a start on its key resets the list to one), so K slots hold every list.
    members = np.zeros((capacity, num_keypoints, tag_dim), np.float32)
    member_counts = np.zeros(capacity, np.int64)
    means = np.zeros((capacity, tag_dim), np.float32)
    changed = np.zeros(capacity, np.bool_)
    keys = np.zeros(capacity)
    size = 0
    for k in order:
        num_rows = counts[k]
        if num_rows == 0:
            continue
        grouped = min(size, max_num_people)
        for person in range(grouped):
            if changed[person]:
                means[person] = _mean(members[person, :member_counts[person]])
                changed[person] = False
        columns = _match(tags[k, :num_rows], means[:grouped], values[k, :num_rows],
                         tag_threshold, start_minimum, padding_cost)
        for row in range(num_rows):
            person = columns[row]
            if person < 0:  # a start: the person of an equal key, else a new one
                key = np.float64(tags[k, row, 0])
                person = size
                for other in range(size):
                    if keys[other] == key:
                        person = other
                        break
                if person == size:
                    keys[size] = key
                    size += 1
                member_counts[person] = 0
            person_flat[person, k] = flat[k, row]
            person_values[person, k] = values[k, row]
            person_tags[person, k] = tags[k, row]
            members[person, member_counts[person]] = tags[k, row]
            member_counts[person] += 1
            changed[person] = True
    return person_flat[:size], person_values[:size], person_tags[:size]


def assign(distances: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The official candidate-to-person assignment: Munkres on the official cost matrix.

    The official cost ``round(D) * 100 - value`` often has several optimal assignments (equal
    rounded distances); the official one is whichever the ``munkres`` package's steps reach,
    so the same steps are run (:func:`.grouping_munkres.munkres_stars`). The grouping keeps
    the pairs whose distance is below ``tag_threshold``.

    Args:
        distances (np.ndarray): float64 (R, G) tag distances, candidates by value.
        values (np.ndarray): float32 (R, ) candidate heatmap values.

    Returns:
        tuple: ``rows``, ``cols`` (int64) of the assigned pairs inside the (R, G) matrix.
    """
    distances = np.ascontiguousarray(distances, np.float64)
    star_of_row = _assign(distances, np.asarray(values, np.float32), START_MINIMUM, PADDING_COST)
    rows = np.flatnonzero(star_of_row < distances.shape[1])
    return rows, star_of_row[rows]


@numba.njit(cache=True, nogil=True)
def _match(tags, centres, values, tag_threshold, start_minimum,
           padding_cost):  # pragma: no cover (compiled)
    """The person (column) of each candidate, -1 for none: :func:`assign` of the float64 tag
    distances, kept when the distance is below ``tag_threshold``."""
    num_rows, num_cols = len(tags), len(centres)
    columns = np.full(num_rows, -1, np.int64)
    if num_cols == 0:
        return columns
    distances = _distances(tags, centres)
    star_of_row = _assign(distances, values, start_minimum, padding_cost)
    for row in range(num_rows):
        col = star_of_row[row]
        if col < num_cols and distances[row, col] < tag_threshold:
            columns[row] = col
    return columns


@numba.njit(cache=True, nogil=True)
def _distances(tags, centres):  # pragma: no cover (compiled)
    """float64 (R, G) ``np.linalg.norm(tags[:, None] - centres[None], axis=2)`` in float64."""
    distances = np.empty((len(tags), len(centres)))
    squares = np.empty(tags.shape[1])
    for row in range(len(tags)):
        for col in range(len(centres)):
            total = 0.0  # below 8 squares numpy adds them in order: inline, no call
            for c in range(len(squares)):
                diff = np.float64(tags[row, c]) - np.float64(centres[col, c])
                squares[c] = diff * diff
                total += squares[c]
            if len(squares) >= 8:
                total = numpy_sum(squares)
            distances[row, col] = np.sqrt(total)
    return distances


@numba.njit(cache=True, nogil=True)
def _assign(distances, values, start_minimum, padding_cost):  # pragma: no cover (compiled)
    """The Munkres star of each row of the official costs (padded as ``official_costs``, then
    to a square with zero rows as the package)."""
    num_rows, num_cols = distances.shape
    size = max(num_rows, num_cols)
    matrix = np.zeros((size, size))
    for row in range(num_rows):
        for col in range(size):
            if col < num_cols:
                matrix[row, col] = np.rint(distances[row, col]) * 100 - np.float64(values[row])
            else:
                matrix[row, col] = padding_cost
    return munkres_stars(matrix, start_minimum)[:num_rows]


@numba.njit(cache=True, nogil=True)
def _mean(members):  # pragma: no cover (compiled)
    """``np.mean(members, axis=0)`` of float32 (n, L) members, as numpy computes it."""
    count, tag_dim = members.shape
    mean = np.zeros(tag_dim, np.float32)
    if tag_dim == 1:
        mean[0] = numpy_sum(members[:, 0])
    else:
        for member in range(count):
            for c in range(tag_dim):
                mean[c] += members[member, c]
    for c in range(tag_dim):
        mean[c] /= np.float32(count)
    return mean
