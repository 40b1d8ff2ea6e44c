"""Test-time resize of HigherHRNet.

Follows the official code (HRNet/HigherHRNet-Human-Pose-Estimation,
``lib/utils/transforms.py`` ``get_multi_scale_size`` / ``resize_align_multi_scale`` /
``get_affine_transform``, MIT licence); ``rounding='mmpose0x'`` follows mmpose 0.x
(``mmpose/datasets/pipelines/bottom_up_transform.py`` ``_get_multi_scale_size``).
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmpose.registry import TRANSFORMS

_ROUNDINGS = ('official', 'mmpose0x')


@TRANSFORMS.register_module()
class HigherHRNetResize(BaseTransform):
    """Resize the short side to ``input_size * s``, pad the long side to a multiple of 64.

    The image is centred on the canvas and zero-padded on both sides of the long axis
    (``cv2.warpAffine``, bilinear, constant 0 border), exactly as the official test code:

    .. code-block:: none

        c  = (int(w/2 + 0.5), int(h/2 + 0.5))             # round half up
        m  = (ms*I + 63) // 64 * 64                          # short side at the min scale ms
        short side' = int(m * s / ms)
        long side'  = int(((m / short * long + 63) // 64 * 64) * s / ms)
        x' = (x - c_x) * k + W'/2,  y' = (y - c_y) * k + H'/2,  k = short side' / short side

    (k is computed from the canvas, see ``get_affine_transform``; the matrix is built as the
    official one, from three float32 points with ``cv2.getAffineTransform``.) The long side
    is aligned at the minimum scale, so with ``aug_scales=(2, 0.5)`` the scale-1 canvas is a
    multiple of 128.

    ``rounding='mmpose0x'`` uses mmpose 0.x's rules instead: banker's rounding of the centre
    (``round(w/2)``: 1 px to the left when w = 1 mod 4) and ``ceil(x/64)*64`` alignment
    (64 px more padding when ``x mod 64`` is in (0, 1)).

    Required Keys:

        - img

    Modified Keys:

        - img
        - img_shape

    Added Keys:

        - input_size: canvas (W', H') at scale 1
        - input_center: centre c in image pixels
        - input_scale: (W'/k, H'/k), the canvas extent in image pixels; with these mmpose's
          ``kpt / input_size * input_scale + input_center - 0.5 * input_scale`` equals the
          official back-projection ``(x - W'/2) / k + c_x``
        - aug_scales (multi-scale only): the extra scales, as given
        - aug_imgs (multi-scale only): resized images of ``aug_scales``, same order. They go
          through the metainfo (list ``aug_scales`` and ``aug_imgs`` in
          ``PackPoseInputs.meta_keys``), read by :class:`HigherHRNet`. ``img`` stays the
          scale-1 image, because mmpose's packer cannot stack images of different sizes.

    Args:
        input_size (int): Network input size I (512 or 640). Defaults to ``512``.
        aug_scales (Sequence[float], optional): Extra test scales besides 1 (official
            ``TEST.SCALE_FACTOR`` minus 1.0), e.g. ``(2, 0.5)``. Defaults to ``None``.
        rounding (str): ``'official'`` or ``'mmpose0x'``. Defaults to ``'official'``.
    """

    def __init__(self,
                 input_size: int = 512,
                 aug_scales: Optional[Sequence[float]] = None,
                 rounding: str = 'official') -> None:
        super().__init__()
        if not isinstance(input_size, int) or input_size <= 0:
            raise ValueError(f'input_size must be a positive int, got {input_size!r}')
        if rounding not in _ROUNDINGS:
            raise ValueError(f'rounding must be one of {_ROUNDINGS}, got {rounding!r}')
        aug_scales = [float(s) for s in aug_scales or ()]
        if any(s <= 0 or s == 1 for s in aug_scales) or len(set(aug_scales)) < len(aug_scales):
            raise ValueError(f'aug_scales must be distinct positive scales other than 1, '
                             f'got {aug_scales}')
        self.input_size = input_size
        self.aug_scales = aug_scales
        self.rounding = rounding

    def transform(self, results: Dict) -> Dict:
        """Warp ``results['img']`` to the scale-1 canvas (and the extra scales)."""
        img = results['img']
        min_scale = min([1.0, *self.aug_scales])
        size, center, scale = self.get_size_center_scale(img.shape[:2], 1.0, min_scale)
        results['img'] = self._warp(img, size, center, scale)
        results['img_shape'] = size[::-1]
        results['input_size'] = size
        results['input_center'] = center
        results['input_scale'] = scale
        if self.aug_scales:
            results['aug_scales'] = list(self.aug_scales)
            results['aug_imgs'] = [
                self._warp(img, *self.get_size_center_scale(img.shape[:2], s, min_scale))
                for s in self.aug_scales
            ]
        return results

    def canvas_size(self, width: int, height: int) -> Tuple[int, int]:
        """Scale-1 canvas (W', H') that :meth:`transform` makes of a ``width`` x ``height``
        image, computed without the image (for samplers that batch equal canvases).

        Args:
            width (int): Image width w.
            height (int): Image height h.

        Returns:
            Tuple[int, int]: (W', H'), the ``input_size`` metainfo of that image.
        """
        min_scale = min([1.0, *self.aug_scales])
        size, _, _ = self.get_size_center_scale((height, width), 1.0, min_scale)
        return size

    def get_size_center_scale(self, img_hw: Tuple[int, int], current_scale: float,
                              min_scale: float) -> Tuple[Tuple[int, int], np.ndarray, np.ndarray]:
        """Canvas (W', H'), centre (c_x, c_y) and canvas extent in image pixels (W'/k, H'/k).

        The official ``get_multi_scale_size`` with its ``scale`` multiplied by 200.

        Args:
            img_hw (Tuple[int, int]): Image (h, w).
            current_scale (float): Scale s of this canvas.
            min_scale (float): Smallest test scale ms (where the long side is aligned).

        Returns:
            tuple:
            - size (Tuple[int, int]): (W', H')
            - center (np.ndarray): (2,) float64, integer valued
            - scale (np.ndarray): (2,) float64
        """
        h, w = img_hw
        short, long = (w, h) if w < h else (h, w)
        min_short = self._align(min_scale * self.input_size)
        short_resized = int(min_short * current_scale / min_scale)
        long_resized = int(self._align(min_short / short * long) * current_scale / min_scale)
        # The canvas extent keeps the canvas aspect, pinned to the short side. Same float
        # operations as the official code (units of 200 px) for bit-equal warp matrices.
        extent = (short / 200.0, long_resized / short_resized * short / 200.0)
        size = (short_resized, long_resized)
        if w >= h:
            size, extent = size[::-1], extent[::-1]
        center = np.array([self._half(w), self._half(h)], dtype=np.float64)
        return size, center, np.array(extent) * 200.0

    def _align(self, length: float) -> int:
        """Round a length up to a multiple of 64 (official: floor of x + 63)."""
        if self.rounding == 'official':
            return int((length + 63) // 64 * 64)
        return int(math.ceil(length / 64)) * 64

    def _half(self, length: int) -> int:
        """Integer centre of a side: half up (official) or half to even (mmpose 0.x)."""
        if self.rounding == 'official':
            return int(length / 2.0 + 0.5)
        return round(length / 2.0)

    @staticmethod
    def _warp(img: np.ndarray, size: Tuple[int, int], center: np.ndarray,
              scale: np.ndarray) -> np.ndarray:
        """``cv2.warpAffine`` to ``size`` with the official matrix (zero border)."""
        return cv2.warpAffine(img,
                              get_warp_matrix(center, scale[0], size),
                              size,
                              flags=cv2.INTER_LINEAR)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'aug_scales={self.aug_scales}, rounding={self.rounding!r})')


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
