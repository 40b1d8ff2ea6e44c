"""Hand-worked cases for the reference (official) HeatmapParser.

Every expected number below is worked out by hand from the official rules
(HRNet/HigherHRNet-Human-Pose-Estimation ``lib/core/group.py``).
"""
from typing import Dict, Sequence, Tuple

import numpy as np
import pytest
import torch

from higherhrnet_plugin.codecs.utils.grouping_common import (COCO_KEYPOINT_ORDER,
                                                           default_keypoint_order,
                                                           resolve_keypoint_order)
from higherhrnet_plugin.codecs.utils.grouping_reference import parse_reference, quarter_pixel

Peak = Tuple[int, int, int, float, Sequence[float]]  # keypoint, x, y, value, tag


def peak_maps(height: int,
              width: int,
              num_keypoints: int,
              peaks: Sequence[Peak],
              tag_dim: int = 1,
              heat: Dict[Tuple[int, int, int], float] = None,
              tag_fill: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """Zero heatmaps with the given peaks (and extra (k, y, x) -> value pixels); tags filled
    with ``tag_fill`` except at the peaks."""
    heatmaps = np.zeros((num_keypoints, height, width), np.float32)
    tags = np.full((num_keypoints, height, width, tag_dim), tag_fill, np.float32)
    for (k, y, x), value in (heat or {}).items():
        heatmaps[k, y, x] = value
    for k, x, y, value, tag in peaks:
        heatmaps[k, y, x] = value
        tags[k, y, x] = tag
    return heatmaps, tags


def test_default_keypoint_order():
    assert default_keypoint_order(17) == COCO_KEYPOINT_ORDER
    # The official code walks the first K entries of the COCO order: CrowdPose (K = 14)
    # groups hips (11, 12) before the arms too; mmpose 0.x would use range(14).
    assert default_keypoint_order(14) == (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13)
    assert default_keypoint_order(13) == (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10)
    assert default_keypoint_order(12) == tuple(range(12))  # official would index out of range
    assert default_keypoint_order(21) == tuple(range(21))
    assert resolve_keypoint_order([1, 0], 2) == (1, 0)
    with pytest.raises(ValueError):
        resolve_keypoint_order([0, 0], 2)


def test_quarter_pixel_ties_and_borders():
    heatmap = np.array([[0.6, 0.5, 0.0], [0.1, 0.3, 0.3], [0.0, 0.3, 0.7]], np.float32)
    # right 0.5 > left (clamped to itself) 0.6? no -> -0.25; down 0.1 > up 0.6? no -> -0.25
    assert quarter_pixel(heatmap, 0, 0) == (0.25, 0.25)
    # left/right 0.1 vs 0.3 -> +0.25; up 0.5 vs down 0.3 -> -0.25
    assert quarter_pixel(heatmap, 1, 1) == (1.75, 1.25)
    # bottom-right corner: itself (clamped) 0.7 beats left 0.3 and up 0.3 -> +0.25 twice
    assert quarter_pixel(heatmap, 2, 2) == (2.75, 2.75)
    # equal neighbours -> -0.25
    assert quarter_pixel(np.ones((3, 3), np.float32), 1, 1) == (1.25, 1.25)


def test_adjust_and_instance_score():
    peaks = [(0, 3, 2, 0.9, [0.0]), (1, 0, 0, 0.6, [0.0]), (2, 7, 5, 0.7, [0.0])]
    heat = {
        (0, 2, 4): 0.4,
        (0, 2, 2): 0.2,
        (0, 1, 3): 0.3,
        (0, 3, 3): 0.3,  # x: +, y: tie -> -
        (1, 0, 1): 0.5,
        (1, 1, 0): 0.1,  # corner: clamped neighbour = the peak itself
        (2, 5, 6): 0.2,
        (2, 4, 7): 0.65,  # opposite corner: the peak beats both
    }
    heatmaps, tags = peak_maps(6, 8, 3, peaks, heat=heat)
    keypoints, scores, instance_scores = parse_reference(heatmaps, tags)
    np.testing.assert_array_equal(keypoints, [[[3.75, 2.25], [0.25, 0.25], [7.75, 5.75]]])
    np.testing.assert_array_equal(scores, np.float32([[0.9, 0.6, 0.7]]))
    assert instance_scores.dtype == np.float32
    np.testing.assert_array_equal(instance_scores, [np.float32([0.9, 0.6, 0.7]).mean()])

    keypoints, _, _ = parse_reference(heatmaps, tags, adjust=False)
    np.testing.assert_array_equal(keypoints, [[[3, 2], [0, 0], [7, 5]]])


@pytest.mark.parametrize('tag, joins', [(0.99, True), (-0.99, True), (1.0, False), (1.5, False)])
def test_tag_threshold_starts_new_person(tag, joins):
    peaks = [(0, 1, 1, 0.8, [0.0]), (1, 5, 4, 0.6, [tag])]
    heatmaps, tags = peak_maps(8, 8, 2, peaks)
    keypoints, scores, instance_scores = parse_reference(heatmaps, tags, refine=False)
    if joins:
        np.testing.assert_array_equal(keypoints, [[[1.25, 1.25], [5.25, 4.25]]])
        np.testing.assert_array_equal(scores, np.float32([[0.8, 0.6]]))
        np.testing.assert_allclose(instance_scores, [0.7])
    else:  # the new person comes second; its missing keypoint stays at (0, 0) with score 0
        np.testing.assert_array_equal(keypoints, [[[1.25, 1.25], [0, 0]], [[0, 0], [5.25, 4.25]]])
        np.testing.assert_array_equal(scores, np.float32([[0.8, 0], [0, 0.6]]))
        np.testing.assert_allclose(instance_scores, [0.4, 0.3])


def test_detection_threshold_is_strict_in_float64():
    # float32(0.1) = 0.10000000149 > 0.1; the float32 just below it is not a candidate.
    below = np.nextafter(np.float32(0.1), np.float32(0))
    peaks = [(0, 1, 1, 0.1, [0.0]), (1, 5, 5, below, [3.0])]
    heatmaps, tags = peak_maps(8, 8, 2, peaks)
    keypoints, scores, _ = parse_reference(heatmaps, tags, refine=False)
    np.testing.assert_array_equal(keypoints, [[[1.25, 1.25], [0, 0]]])
    np.testing.assert_array_equal(scores, np.float32([[0.1, 0]]))


def test_refine_fills_missing_keypoint_after_scoring():
    # Keypoint 1 has only a weak peak (0.05 < threshold) with a matching tag (|0.2| -> 0);
    # a stronger pixel (0.09) with tag distance 3 scores 0.09 - 3.
    peaks = [(0, 2, 2, 0.9, [0.0]), (1, 6, 3, 0.05, [0.2]), (1, 1, 6, 0.09, [3.0])]
    heat = {(1, 3, 7): 0.02, (1, 3, 5): 0.01}  # x: right > left -> +0.25; y: tie -> -0.25
    heatmaps, tags = peak_maps(8, 8, 2, peaks, heat=heat, tag_fill=0.2)
    keypoints, scores, instance_scores = parse_reference(heatmaps, tags)
    np.testing.assert_array_equal(keypoints, [[[2.25, 2.25], [6.75, 3.25]]])
    np.testing.assert_array_equal(scores, np.float32([[0.9, 0.05]]))
    np.testing.assert_allclose(instance_scores, [0.45])  # before refine


def test_refine_cost_is_rounded_distance_without_factor():
    # Two persons (tags 0 and 1.2, D = 1.2 >= 1). Each misses the other's keypoint, and the
    # only non-zero pixel of that map scores value - round(1.2) = value - 1 > 0 - 1 (the
    # zero pixels with the same tag distance), so each takes the other's keypoint. With
    # the grouping factor (x100) the value would not matter; here it decides.
    peaks = [(0, 1, 1, 0.9, [0.0]), (1, 6, 5, 0.7, [1.2])]
    heatmaps, tags = peak_maps(8, 8, 2, peaks)
    tags[0] = 0.0
    tags[1] = 1.2
    keypoints, scores, instance_scores = parse_reference(heatmaps, tags)
    np.testing.assert_array_equal(keypoints, [[[1.25, 1.25], [6.25, 5.25]]] * 2)
    np.testing.assert_array_equal(scores, np.float32([[0.9, 0.7]] * 2))
    np.testing.assert_allclose(instance_scores, [0.45, 0.35])


def test_refine_takes_first_maximum_and_needs_positive_value():
    # Equal weak peaks at (6, 1) and (2, 4): the first in raster order (row 1) wins.
    peaks = [(0, 3, 3, 0.9, [0.0]), (1, 6, 1, 0.05, [0.0]), (1, 2, 4, 0.05, [0.0])]
    heatmaps, tags = peak_maps(8, 8, 3, peaks)
    keypoints, scores, _ = parse_reference(heatmaps, tags)
    np.testing.assert_array_equal(keypoints[0, 1], [6.25, 1.25])
    assert scores[0, 1] == np.float32(0.05)
    # Keypoint 2's map is zero everywhere: its best value is 0, so it stays missing.
    np.testing.assert_array_equal(keypoints[0, 2], [0, 0])
    assert scores[0, 2] == 0


@pytest.mark.parametrize('max_num_people, num_persons', [(30, 61), (31, 60)])
def test_candidate_persons_truncated_to_max_num_people(max_num_people, num_persons):
    # Keypoint 0 starts 30 persons (tags 0, 2, ..., 58), keypoint 1 another 30 (tags 100,
    # ..., 158). Keypoint 2's peak has tag 100.25, near the 31st person's: it joins only when
    # the match considers more than the first 30 persons (mmpose 0.x never truncates). (Tag
    # 100 exactly would start a person keyed 100.0 and so land in the 31st one anyway.)
    spots = [(x, y) for y in range(2, 40, 4) for x in range(2, 64, 4)]
    peaks = [(0, *spots[i], 0.9 - 0.01 * i, [2.0 * i]) for i in range(30)]
    peaks += [(1, *spots[30 + i], 0.9 - 0.01 * i, [100 + 2.0 * i]) for i in range(30)]
    peaks += [(2, *spots[60], 0.5, [100.25])]
    heatmaps, tags = peak_maps(40, 64, 3, peaks)
    keypoints, scores, _ = parse_reference(heatmaps,
                                           tags,
                                           refine=False,
                                           max_num_people=max_num_people)
    assert len(keypoints) == num_persons
    x2, y2 = spots[60]
    owner = np.nonzero(scores[:, 2])[0]
    assert len(owner) == 1 and scores[owner[0], 2] == np.float32(0.5)
    np.testing.assert_array_equal(keypoints[owner[0], 2], [x2 + 0.25, y2 + 0.25])
    if num_persons == 60:  # joined the 31st person, created by keypoint 1's first candidate
        assert owner[0] == 30 and scores[30, 1] == np.float32(0.9)
    else:  # a person of its own, created last
        assert owner[0] == 60 and scores[60, :2].tolist() == [0, 0]


def test_key_collision_in_first_keypoint_overwrites():
    # Two candidates with the same first tag value 1.0 share the dict key: the second
    # (lower value) overwrites the first, leaving one person.
    peaks = [(0, 1, 1, 0.9, [1.0, 0.0]), (0, 6, 6, 0.8, [1.0, 5.0])]
    heatmaps, tags = peak_maps(8, 8, 2, peaks, tag_dim=2)
    keypoints, scores, instance_scores = parse_reference(heatmaps, tags, refine=False)
    np.testing.assert_array_equal(keypoints, [[[6.25, 6.25], [0, 0]]])
    np.testing.assert_array_equal(scores, np.float32([[0.8, 0]]))
    np.testing.assert_allclose(instance_scores, [0.4])


@pytest.mark.parametrize('first_tag, num_persons', [(0.0, 1), (0.5, 2)])
def test_key_collision_of_new_person_resets_tags(first_tag, num_persons):
    # Person A: keypoint 0, tag (0, 0). Keypoint 1's tag (first_tag, 3) is too far (D >= 3),
    # so it starts a person keyed by first_tag. With first_tag 0 that key is A's: A gets
    # keypoint 1 and its tag list is reset to [(0, 3)], so keypoint 2 (tag (0, 3)) joins A.
    # With first_tag 0.5 a person B is created and keypoint 2 joins B (D = 0.5).
    peaks = [(0, 1, 1, 0.9, [0.0, 0.0]), (1, 4, 1, 0.8, [first_tag, 3.0]),
             (2, 6, 6, 0.7, [0.0, 3.0])]
    heatmaps, tags = peak_maps(8, 8, 3, peaks, tag_dim=2)
    keypoints, scores, _ = parse_reference(heatmaps, tags, refine=False)
    if num_persons == 1:
        np.testing.assert_array_equal(scores, np.float32([[0.9, 0.8, 0.7]]))
        np.testing.assert_array_equal(keypoints, [[[1.25, 1.25], [4.25, 1.25], [6.25, 6.25]]])
    else:
        np.testing.assert_array_equal(scores, np.float32([[0.9, 0, 0], [0, 0.8, 0.7]]))


def test_no_candidates_gives_empty_result():
    heatmaps, tags = peak_maps(8, 8, 17, [], tag_dim=2)
    keypoints, scores, instance_scores = parse_reference(heatmaps, tags)
    assert keypoints.shape == (0, 17, 2) and scores.shape == (0, 17)
    assert instance_scores.shape == (0, )


def test_torch_and_numpy_inputs_agree():
    peaks = [(0, 1, 1, 0.8, [0.0, 0.1]), (1, 5, 4, 0.6, [0.3, 0.0]), (1, 2, 6, 0.5, [4.0, 4.0])]
    heatmaps, tags = peak_maps(8, 8, 2, peaks, tag_dim=2)
    expected = parse_reference(heatmaps, tags)
    for got, want in zip(parse_reference(torch.from_numpy(heatmaps), torch.from_numpy(tags)),
                         expected):
        np.testing.assert_array_equal(got, want)
    # (K, H, W) tags are read as L = 1
    one = parse_reference(heatmaps, tags[..., 0])
    for got, want in zip(one, parse_reference(heatmaps, tags[..., :1])):
        np.testing.assert_array_equal(got, want)
