"""Test-time resize of HigherHRNet.

Follows the official code (HRNet/HigherHRNet-Human-Pose-Estimation,
``lib/utils/transforms.py`` ``get_multi_scale_size`` / ``resize_align_multi_scale`` /
``get_affine_transform``, MIT licence); ``rounding='mmpose0x'`` follows mmpose 0.x
(``mmpose/datasets/pipelines/bottom_up_transform.py`` ``_get_multi_scale_size``). The
geometry itself is in :mod:`higherhrnet_plugin.structures.canvas_transforms` (no torch).
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmpose.registry import TRANSFORMS

# The geometry is torch-free, shared with the ONNX deployment (higherhrnet_plugin.deploy).
from ...structures.canvas_transforms import ROUNDINGS as _ROUNDINGS
from ...structures.canvas_transforms import canvas_geometry, warp_to_canvas
from ...structures.canvas_transforms import get_warp_matrix  # noqa: F401  (its former home)


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
        results['img'] = warp_to_canvas(img, size, center, scale)
        results['img_shape'] = size[::-1]
        results['input_size'] = size
        results['input_center'] = center
        results['input_scale'] = scale
        if self.aug_scales:
            results['aug_scales'] = list(self.aug_scales)
            results['aug_imgs'] = [
                warp_to_canvas(img, *self.get_size_center_scale(img.shape[:2], s, min_scale))
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
        return canvas_geometry(img_hw, self.input_size, current_scale, min_scale, self.rounding)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'aug_scales={self.aug_scales}, rounding={self.rounding!r})')

