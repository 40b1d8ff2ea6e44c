"""Encoding side of MultiLevelAssociativeEmbedding: targets checked against hand-computed values.

Most cases use a 64x64 input with levels of 16x16 (R = 1/4) and 32x32 (R = 1/2), sigma 2:
the Gaussian patch is 15x15, g(dx, dy) = exp(-(dx^2 + dy^2) / 8), peak 1.
"""
import numpy as np
import pytest

from higherhrnet_plugin.codecs import MultiLevelAssociativeEmbedding

from _codec_helpers import encode, g, make_codec


def test_shapes_and_dtypes():
    encoded = encode([[[40.0, 24.0], [8.0, 8.0], [0.0, 0.0]]] * 2)
    assert [hm.shape for hm in encoded['heatmaps']] == [(3, 16, 16), (3, 32, 32)]
    assert all(hm.dtype == np.float32 for hm in encoded['heatmaps'])
    assert encoded['keypoint_indices'].shape == (2, 3, 2)
    assert encoded['keypoint_indices'].dtype == np.int64
    assert encoded['keypoint_weights'].shape == (2, 3)
    assert encoded['keypoint_weights'].dtype == np.float32


def test_gaussian_values_and_window():
    # input (40, 24) -> level 0 (10, 6), level 1 (20, 12): fully inside the 32x32 map.
    hm0, hm1 = encode([[[40.0, 24.0]]])['heatmaps']
    assert hm0[0, 6, 10] == 1.0 and hm1[0, 12, 20] == 1.0
    assert hm1[0, 12, 21] == pytest.approx(g(1), abs=1e-7)
    assert hm1[0, 14, 20] == pytest.approx(g(2), abs=1e-7)
    assert hm1[0, 15, 23] == pytest.approx(g(3, 3), abs=1e-7)
    # The window is [x-7, x+7]: offset 7 is the last non-zero sample on each side.
    assert hm1[0, 12, 27] == pytest.approx(g(7), abs=1e-7) and hm1[0, 12, 28] == 0
    assert hm1[0, 12, 13] == pytest.approx(g(7), abs=1e-7) and hm1[0, 12, 12] == 0
    assert hm1[0, 5, 20] == pytest.approx(g(7), abs=1e-7) and hm1[0, 4, 20] == 0
    assert hm1[0, 19, 27] == pytest.approx(g(7, 7), abs=1e-9)
    one_axis = sum(g(d) for d in range(-7, 8))
    assert hm1.sum() == pytest.approx(one_axis**2, rel=1e-6)


def test_integer_truncation_not_rounding():
    # input (39.9, 27.9) -> level 0 (9.975, 6.975): int() gives cell (9, 6), not (10, 7).
    hm0 = encode([[[39.9, 27.9]]])['heatmaps'][0]
    assert np.unravel_index(hm0[0].argmax(), hm0[0].shape) == (6, 9)
    assert hm0[0, 6, 9] == 1.0


def test_negative_fraction_truncates_to_zero():
    # x = -2 -> level 0: -0.5, int() -> 0, kept; level 1: -1.0 -> -1, dropped.
    # y = 14.8 -> level 0: 3.7 -> 3.
    encoded = encode([[[-2.0, 14.8]]])
    hm0, hm1 = encoded['heatmaps']
    assert hm0[0, 3, 0] == 1.0
    assert hm0[0, 3, 1] == pytest.approx(g(1), abs=1e-7)
    assert not hm1.any()
    assert encoded['keypoint_indices'][0, 0].tolist() == [3 * 16 + 0, 1]
    assert encoded['keypoint_weights'][0, 0] == 1.0


def test_joint_at_border_is_clipped():
    # input (63.6, 0) -> level 0 (15.9, 0) -> cell (15, 0), last column and first row.
    hm0, hm1 = encode([[[63.6, 0.0]]])['heatmaps']
    assert hm0[0, 0, 15] == 1.0
    assert hm0[0, 0, 8] == pytest.approx(g(7), abs=1e-7) and hm0[0, 0, 7] == 0
    assert hm0[0, 7, 15] == pytest.approx(g(7), abs=1e-7) and hm0[0, 8, :].max() == 0
    one_axis = sum(g(d) for d in range(0, 8))
    assert hm0.sum() == pytest.approx(one_axis**2, rel=1e-6)
    assert hm1[0, 0, 31] == 1.0


@pytest.mark.parametrize('point',
                         [[64.0, 10.0], [10.0, 64.0], [-4.0, 10.0], [10.0, -4.0], [np.nan, 10.0]])
def test_out_of_map_is_skipped(point):
    encoded = encode([[point, [40.0, 24.0]]])
    assert not any(hm[0].any() for hm in encoded['heatmaps'])
    assert all(hm[1].max() == 1.0 for hm in encoded['heatmaps'])
    assert encoded['keypoint_indices'][0, 0].tolist() == [0, 0]
    assert encoded['keypoint_weights'][0].tolist() == [0.0, 1.0]


def test_invisible_keypoints_are_skipped():
    # mmpose visibility is in [0, 1]; anything > 0 counts as visible, as v > 0 officially.
    encoded = encode([[[40.0, 24.0], [8.0, 8.0], [20.0, 20.0]]], visible=[[0.0, 0.5, 1.0]])
    hm0 = encoded['heatmaps'][0]
    assert not hm0[0].any() and hm0[1, 2, 2] == 1.0 and hm0[2, 5, 5] == 1.0
    assert encoded['keypoint_weights'][0].tolist() == [0.0, 1.0, 1.0]
    assert encoded['keypoint_indices'][0, 0].tolist() == [0, 0]


def test_overlapping_persons_merge_by_max():
    # Level 1 cells (10, 10) and (12, 10): the middle pixel gets max(g(1), g(1)), not the sum.
    hm1 = encode([[[20.0, 20.0]], [[24.0, 20.0]]])['heatmaps'][1]
    assert hm1[0, 10, 11] == pytest.approx(g(1), abs=1e-7)
    assert hm1[0, 10, 10] == 1.0 and hm1[0, 10, 12] == 1.0
    assert hm1[0, 10, 9] == pytest.approx(g(1), abs=1e-7)  # max(g(1), g(3))
    assert hm1[0, 10, 14] == pytest.approx(g(2), abs=1e-7)  # max(g(4), g(2))


def test_indices_formula_keeps_keypoint_slots():
    # Tag level 1 (32x32): index = k*32*32 + y*32 + x; keypoint 0 invisible stays in slot 0.
    codec = make_codec(tag_level=1)
    encoded = encode(
        [[[10.0, 10.0], [20.0, 6.0], [63.0, 63.0]], [[2.0, 4.0], [80.0, 0.0], [0.0, 0.0]]],
        visible=[[0, 1, 1], [1, 1, 1]],
        codec=codec)
    assert encoded['keypoint_indices'].tolist() == [
        [[0, 0], [1 * 1024 + 3 * 32 + 10, 1], [2 * 1024 + 31 * 32 + 31, 1]],
        [[0 * 1024 + 2 * 32 + 1, 1], [0, 0], [2 * 1024, 1]],
    ]
    assert encoded['keypoint_weights'].tolist() == [[0, 1, 1], [1, 0, 1]]


def test_indices_non_square_map():
    # W = 16, H = 8 at level 0 of a 64x32 input: index = k*H*W + y*W + x.
    codec = MultiLevelAssociativeEmbedding(input_size=(64, 32), heatmap_sizes=((16, 8), (32, 16)))
    encoded = codec.encode(np.array([[[8.0, 4.0], [60.0, 28.0]]]), np.ones((1, 2)))
    assert [hm.shape for hm in encoded['heatmaps']] == [(2, 8, 16), (2, 16, 32)]
    assert encoded['keypoint_indices'][0].tolist() == [[1 * 16 + 2, 1], [128 + 7 * 16 + 15, 1]]


def test_more_than_max_num_people_truncates_indices_only():
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(0, 60, size=(35, 2, 2))
    keypoints[34, 0] = (44.0, 4.0)  # person 34 alone in cell (11, 1) of level 0
    keypoints[:34, 0, 1] = 40.0
    encoded = make_codec().encode(keypoints, np.ones((35, 2)))
    assert encoded['keypoint_indices'].shape == (30, 2, 2)
    assert encoded['keypoint_weights'].shape == (30, 2)
    assert encoded['heatmaps'][0][0, 1, 11] == 1.0
    few = make_codec(max_num_people=3).encode(keypoints, np.ones((35, 2)))
    np.testing.assert_array_equal(few['keypoint_indices'], encoded['keypoint_indices'][:3])


def test_no_person():
    encoded = make_codec().encode(np.zeros((0, 17, 2)), np.zeros((0, 17)))
    assert [hm.shape for hm in encoded['heatmaps']] == [(17, 16, 16), (17, 32, 32)]
    assert not any(hm.any() for hm in encoded['heatmaps'])
    assert encoded['keypoint_indices'].shape == (0, 17, 2)
    assert encoded['keypoint_weights'].shape == (0, 17)


def test_flip_bias_arithmetic():
    # After mmpose's flip x = 40 (it was 63 - 40 = 23). Official mirrors at each level:
    # level 0: 16 - 1 - 23/4 = 9.25 -> cell 9; level 1: 32 - 1 - 23/2 = 19.5 -> cell 19.
    # Without the bias: 40/4 = 10 and 40/2 = 20.  y (= 24) is untouched by a horizontal flip.
    biased = encode([[[40.0, 24.0]]], flip=True)
    assert biased['heatmaps'][0][0, 6, 9] == 1.0 and biased['heatmaps'][1][0, 12, 19] == 1.0
    assert biased['keypoint_indices'][0, 0, 0] == 6 * 16 + 9
    unbiased = encode([[[40.0, 24.0]]], codec=make_codec(flip_bias=False), flip=True)
    assert unbiased['heatmaps'][0][0, 6, 10] == 1.0 and unbiased['heatmaps'][1][0, 12, 20] == 1.0
    not_flipped = encode([[[40.0, 24.0]]], flip=False)
    assert not_flipped['heatmaps'][0][0, 6, 10] == 1.0


def test_flip_bias_shift_can_cross_a_cell_and_the_border():
    # x = 2.5 -> level 0: 0.625 - 0.75 = -0.125 -> int() 0, still on the map;
    # x = 1.0 -> level 1: 0.5 - 0.5 = 0 -> cell 0; x = 0 -> level 1: -0.5 -> int() 0.
    encoded = encode([[[2.5, 8.0], [1.0, 8.0]]], flip=True)
    hm0, hm1 = encoded['heatmaps']
    assert hm0[0, 2, 0] == 1.0 and hm1[1, 4, 0] == 1.0
    assert encode([[[0.0, 8.0]]], flip=True)['heatmaps'][1][0, 4, 0] == 1.0
    # x = 4.9 -> level 0: 1.225 - 0.75 = 0.475 -> cell 0 (cell 1 without the bias).
    assert encode([[[4.9, 8.0]]], flip=True)['heatmaps'][0][0, 2, 0] == 1.0


@pytest.mark.parametrize('direction, cell0', [('horizontal', (6, 9)), (None, (6, 9)),
                                              ('vertical', (5, 10)), ('diagonal', (5, 9))])
def test_flip_direction_picks_the_shifted_axis(direction, cell0):
    encoded = encode([[[40.0, 24.0]]], flip=True, flip_direction=direction)
    hm0 = encoded['heatmaps'][0][0]
    assert np.unravel_index(hm0.argmax(), hm0.shape) == cell0


def _official_targets(joints, output_res, sigma=2):
    """Loop transcription of the official generators (reference_spec section 3.5)."""
    size = 6 * sigma + 3
    grid = np.arange(0, size, 1, float)
    kernel = np.exp(-((grid[None] - 3 * sigma - 1)**2 + (grid[:, None] - 3 * sigma - 1)**2) /
                    (2 * sigma**2))
    hms = np.zeros((joints.shape[1], output_res, output_res), dtype=np.float32)
    rows = []
    for person in joints:
        row = []
        for k, (x, y, v) in enumerate(person):
            xi, yi = int(x), int(y)
            if v <= 0 or xi < 0 or yi < 0 or xi >= output_res or yi >= output_res:
                continue
            row.append(k * output_res**2 + yi * output_res + xi)
            for a in range(size):
                for b in range(size):
                    yy, xx = yi - 7 + a, xi - 7 + b
                    if 0 <= yy < output_res and 0 <= xx < output_res:
                        hms[k, yy, xx] = max(hms[k, yy, xx], kernel[a, b])
        rows.append(sorted(row))
    return hms, rows


@pytest.mark.parametrize('flip', [False, True])
def test_matches_official_generators_on_random_people(flip):
    """Random people at 512 -> (128, 256), compared with the official arithmetic.

    For flip, the official pipeline mirrors the unflipped level coordinates as R - 1 - x,
    while we get mmpose's input-resolution mirror 511 - x and shift it.
    """
    rng = np.random.default_rng(1 if flip else 0)
    num_people, num_keypoints = 6, 5
    unflipped = rng.uniform(-20, 530, size=(num_people, num_keypoints, 2))
    unflipped[0, :2] = [[-1.9, 100.0], [511.9, 3.99]]  # near the borders
    visibility = rng.integers(0, 3, size=(num_people, num_keypoints))  # COCO v in {0, 1, 2}
    codec = MultiLevelAssociativeEmbedding(input_size=(512, 512),
                                           heatmap_sizes=((128, 128), (256, 256)))
    ours_input = unflipped.copy()
    if flip:
        ours_input[..., 0] = 511 - ours_input[..., 0]
    encoded = codec.encode(ours_input, np.minimum(visibility, 1).astype(np.float32), flip=flip)

    for level, res in enumerate((128, 256)):
        joints = np.concatenate([unflipped * res / 512, visibility[..., None]], axis=-1)
        if flip:
            joints[..., 0] = res - 1 - joints[..., 0]
        hms, rows = _official_targets(joints, res)
        np.testing.assert_array_equal(encoded['heatmaps'][level], hms)
        if level == 0:
            ours = [sorted(i for i, v in row if v) for row in encoded['keypoint_indices']]
            assert ours == rows
