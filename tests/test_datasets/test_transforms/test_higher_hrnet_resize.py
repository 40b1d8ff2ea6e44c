import cv2
import numpy as np
import pytest

from higherhrnet_plugin.datasets.transforms import HigherHRNetResize


def _official_matrix(center, scale, size, inv=False):
    """Oracle: the official ``get_affine_transform`` at rot 0, scale in units of 200 px."""
    src_w = (scale * 200.0)[0]
    dst_w, dst_h = size
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = center
    src[1] = center + np.array([0, src_w * -0.5])
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + np.array([0, dst_w * -0.5], np.float32)
    for points in (src, dst):
        direction = points[0] - points[1]
        points[2] = points[1] + np.array([-direction[1], direction[0]], np.float32)
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def _official_size_center_scale(w, h, input_size, current_scale=1.0, min_scale=1.0):
    """Oracle: the official ``get_multi_scale_size`` (scale in units of 200 px)."""
    center = np.array([int(w / 2.0 + 0.5), int(h / 2.0 + 0.5)])
    min_input_size = int((min_scale * input_size + 63) // 64 * 64)
    if w < h:
        w_resized = int(min_input_size * current_scale / min_scale)
        h_resized = int(int((min_input_size / w * h + 63) // 64 * 64) * current_scale / min_scale)
        scale = np.array([w / 200.0, h_resized / w_resized * w / 200.0])
    else:
        h_resized = int(min_input_size * current_scale / min_scale)
        w_resized = int(int((min_input_size / h * w + 63) // 64 * 64) * current_scale / min_scale)
        scale = np.array([w_resized / h_resized * h / 200.0, h / 200.0])
    return (w_resized, h_resized), center, scale


def _image(w, h):
    rng = np.random.default_rng(w * 1000 + h)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _to_image(points, results):
    """mmpose's canvas -> image mapping (BottomupPoseEstimator.add_pred_to_datasample)."""
    return (points / np.array(results['input_size']) * results['input_scale'] +
            results['input_center'] - 0.5 * results['input_scale'])


# (w, h) -> canvas (W', H') and centre, official and mmpose 0.x rules, I = 512.
CASES = [
    # w = 425 = 1 mod 4: half-up 213 vs banker's 212; 512/425*640 = 770.8 -> 832 both.
    ((425, 640), (512, 832), (213, 320), (512, 832), (212, 320)),
    ((640, 425), (832, 512), (320, 213), (832, 512), (320, 212)),
    # 512/333*500 = 768.77: x mod 64 in (0, 1): official floor((x+63)/64) -> 768, ceil -> 832.
    ((333, 500), (512, 768), (167, 250), (512, 832), (166, 250)),
    ((640, 480), (704, 512), (320, 240), (704, 512), (320, 240)),
    ((427, 427), (512, 512), (214, 214), (512, 512), (214, 214)),
]


@pytest.mark.parametrize('img_wh, size, center, mm_size, mm_center', CASES)
def test_canvas_size_and_centre(img_wh, size, center, mm_size, mm_center):
    for rounding, (want_size, want_center) in [('official', (size, center)),
                                               ('mmpose0x', (mm_size, mm_center))]:
        results = HigherHRNetResize(512, rounding=rounding)(dict(img=_image(*img_wh)))
        assert results['input_size'] == want_size
        assert results['img_shape'] == want_size[::-1]
        assert results['img'].shape == (want_size[1], want_size[0], 3)
        np.testing.assert_array_equal(results['input_center'], want_center)


@pytest.mark.parametrize('img_wh', [case[0] for case in CASES])
def test_warp_equals_official(img_wh):
    img = _image(*img_wh)
    results = HigherHRNetResize(512)(dict(img=img))
    size, center, scale = _official_size_center_scale(*img_wh, 512)
    assert results['input_size'] == size
    np.testing.assert_array_equal(results['input_center'], center)
    np.testing.assert_array_equal(results['input_scale'], scale * 200.0)
    matrix = _official_matrix(center, scale, size)
    np.testing.assert_array_equal(results['img'], cv2.warpAffine(img, matrix, size))
    # Short side -> exactly 512: the scale factor k = 512 / short side.
    k = 512 / min(img_wh)
    np.testing.assert_allclose(matrix[:, :2], np.eye(2) * k, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize('img_wh', [case[0] for case in CASES])
def test_mmpose_back_projection_equals_official(img_wh):
    results = HigherHRNetResize(512)(dict(img=_image(*img_wh)))
    canvas_points = np.array([[0.0, 0.0], [17.25, 301.75], [511.5, 700.0], [263.0, 99.5]])
    # Official get_final_preds: inverse affine of the scale-1 canvas.
    size, center, scale = _official_size_center_scale(*img_wh, 512)
    inverse = _official_matrix(center, scale, size, inv=True)
    official = canvas_points @ inverse[:, :2].T + inverse[:, 2]
    np.testing.assert_allclose(_to_image(canvas_points, results), official, atol=1e-3)


def test_forward_then_back_recovers_a_point():
    img = np.zeros((640, 425, 3), np.uint8)
    img[400, 101] = 255  # a single bright pixel at (x=101, y=400)
    results = HigherHRNetResize(512)(dict(img=img))
    k = 512 / 425
    # x' = (x - c_x) k + W'/2 with c = (213, 320), canvas (512, 832)
    expected = np.array([(101 - 213) * k + 256, (400 - 320) * k + 416])
    warped = results['img'][..., 0].astype(float)
    ys, xs = np.nonzero(warped)
    centroid = np.array(
        [np.average(xs, weights=warped[ys, xs]),
         np.average(ys, weights=warped[ys, xs])])
    np.testing.assert_allclose(centroid, expected, atol=0.5)
    np.testing.assert_allclose(_to_image(expected, results), [101, 400], atol=1e-3)


def test_multiscale_aligns_long_side_at_min_scale():
    img = _image(425, 640)
    results = HigherHRNetResize(512, aug_scales=(2, 0.5))(dict(img=img))
    # min scale 0.5: short 256, long 256/425*640 = 385.5 -> 448; times s / 0.5.
    assert results['input_size'] == (512, 896)  # single scale would give (512, 832)
    assert results['img'].shape == (896, 512, 3)
    assert results['aug_scales'] == [2.0, 0.5]
    assert [im.shape[:2] for im in results['aug_imgs']] == [(1792, 1024), (448, 256)]
    for scale, image in zip((1.0, 2.0, 0.5), [results['img'], *results['aug_imgs']]):
        size, center, official_scale = _official_size_center_scale(425, 640, 512, scale, 0.5)
        matrix = _official_matrix(center, official_scale, size)
        np.testing.assert_array_equal(image, cv2.warpAffine(img, matrix, size))
    # Back-projection uses the scale-1 canvas.
    size, center, official_scale = _official_size_center_scale(425, 640, 512, 1.0, 0.5)
    np.testing.assert_array_equal(results['input_scale'], official_scale * 200.0)


def test_single_scale_sets_no_pyramid():
    results = HigherHRNetResize(640)(dict(img=_image(640, 480)))
    assert results['input_size'] == (896, 640)  # long side 640/480*640 = 853.3 -> 896
    assert 'aug_imgs' not in results and 'aug_scales' not in results


@pytest.mark.parametrize('kwargs', [
    dict(input_size=(512, 512)),
    dict(input_size=0),
    dict(rounding='ceil'),
    dict(aug_scales=(1, 2)),
    dict(aug_scales=(2, 2)),
    dict(aug_scales=(-1, ))
])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        HigherHRNetResize(**kwargs)
