"""Image <-> test canvas geometry of HigherHRNet, in numpy and OpenCV only (no torch).

The official test-time resize (HRNet/HigherHRNet-Human-Pose-Estimation,
``lib/utils/transforms.py`` ``get_multi_scale_size`` / ``resize_align_multi_scale`` /
``get_affine_transform``, MIT licence) and mmpose's back-projection of canvas keypoints
(``BottomupPoseEstimator.add_pred_to_datasample``). :class:`HigherHRNetResize` and the
torch-free deployment (:mod:`higherhrnet_plugin.deploy`) both call these functions, so a
deployed model sees the canvas the eager test pipeline makes, pixel for pixel.

``rounding='mmpose0x'`` follows mmpose 0.x (``bottom_up_transform.py``
``_get_multi_scale_size``): banker's rounding of the centre and ``ceil(x/64)*64``.
"""
import math
from typing import Sequence, Tuple

import cv2
import numpy as np

ROUNDINGS = ('official', 'mmpose0x')


def canvas_geometry(img_hw: Tuple[int, int],
                    input_size: int,
                    current_scale: float = 1.0,
                    min_scale: float = 1.0,
                    rounding: str = 'official') -> Tuple[Tuple[int, int], np.ndarray, np.ndarray]:
    """Canvas (W', H'), centre (c_x, c_y) and canvas extent in image pixels (W'/k, H'/k).

    The official ``get_multi_scale_size`` with its ``scale`` multiplied by 200: the short side
    becomes ``align(ms * I) * s / ms``, the long side is aligned to 64 at the minimum scale.

    Args:
        img_hw (Tuple[int, int]): Image (h, w).
        input_size (int): Network input size I.
        current_scale (float): Scale s of this canvas. Defaults to ``1.0``.
        min_scale (float): Smallest test scale ms (where the long side is aligned).
            Defaults to ``1.0``.
        rounding (str): ``'official'`` or ``'mmpose0x'``. Defaults to ``'official'``.

    Returns:
        tuple:
        - size (Tuple[int, int]): (W', H')
        - center (np.ndarray): (2,) float64, integer valued
        - scale (np.ndarray): (2,) float64
    """
    h, w = img_hw
    short, long = (w, h) if w < h else (h, w)
    min_short = align_to_64(min_scale * input_size, rounding)
    short_resized = int(min_short * current_scale / min_scale)
    long_resized = int(align_to_64(min_short / short * long, rounding) * current_scale / min_scale)
    # The canvas extent keeps the canvas aspect, pinned to the short side. Same float
    # operations as the official code (units of 200 px) for bit-equal warp matrices.
    extent = (short / 200.0, long_resized / short_resized * short / 200.0)
    size = (short_resized, long_resized)
    if w >= h:
        size, extent = size[::-1], extent[::-1]
    center = np.array([integer_center(w, rounding), integer_center(h, rounding)], dtype=np.float64)
    return size, center, np.array(extent) * 200.0


def align_to_64(length: float, rounding: str = 'official') -> int:
    """Round a length up to a multiple of 64 (official: floor of x + 63)."""
    if rounding == 'official':
        return int((length + 63) // 64 * 64)
    return int(math.ceil(length / 64)) * 64


def integer_center(length: int, rounding: str = 'official') -> int:
    """Integer centre of a side: half up (official) or half to even (mmpose 0.x)."""
    if rounding == 'official':
        return int(length / 2.0 + 0.5)
    return round(length / 2.0)


def warp_to_canvas(img: np.ndarray, size: Tuple[int, int], center: np.ndarray,
                   scale: np.ndarray) -> np.ndarray:
    """``cv2.warpAffine`` of ``img`` to ``size`` (W', H') with the official matrix.

    Bilinear, constant 0 border, as the official test code.
    """
    matrix = get_warp_matrix(center, scale[0], size)
    return cv2.warpAffine(img, matrix, size, flags=cv2.INTER_LINEAR)


def get_warp_matrix(center: np.ndarray, src_width: float, size: Tuple[int, int]) -> np.ndarray:
    """(2, 3) image -> canvas matrix of the official ``get_affine_transform`` (rot 0).

    Maps ``center`` to the canvas centre and a vertical segment of length ``src_width`` to
    one of length W'. Built from the same three float32 points through
    ``cv2.getAffineTransform`` (mmpose's ``get_warp_matrix`` uses horizontal points, which
    is equal up to float rounding).

    Args:
        center (np.ndarray): (2,) centre in image pixels.
        src_width (float): Canvas width in image pixels (W'/k).
        size (Tuple[int, int]): Canvas (W', H').

    Returns:
        np.ndarray: (2, 3) float64 affine matrix.
    """
    dst_w, dst_h = size
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + np.array([0, src_width * -0.5])
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + np.array([0, dst_w * -0.5])
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    return cv2.getAffineTransform(src, dst)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``b`` plus ``a - b`` rotated by 90 degrees (the official ``get_3rd_point``)."""
    direction = a - b
    return b + np.array([-direction[1], direction[0]], dtype=np.float32)


def canvas_to_image(keypoints: np.ndarray, input_size: Sequence[int], input_center: np.ndarray,
                    input_scale: np.ndarray) -> np.ndarray:
    """Canvas pixels -> image pixels, mmpose's ``add_pred_to_datasample`` expression.

    ``kpt / input_size * input_scale + input_center - 0.5 * input_scale``, evaluated with
    the same operands (``input_size`` a (W', H') tuple of ints), hence the same float64
    result bit for bit.

    Args:
        keypoints (np.ndarray): (..., 2) canvas (x, y).
        input_size (Sequence[int]): Canvas (W', H').
        input_center (np.ndarray): (2,) centre in image pixels.
        input_scale (np.ndarray): (2,) canvas extent in image pixels.

    Returns:
        np.ndarray: (..., 2) image (x, y), float64 for float32 ``keypoints``.
    """
    return keypoints / tuple(input_size) * input_scale + input_center - 0.5 * input_scale
