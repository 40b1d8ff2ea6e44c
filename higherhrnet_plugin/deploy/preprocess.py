"""Image -> network input without torch, equal to the eager test pipeline bit for bit.

``LoadImage`` (OpenCV decode, BGR), ``HigherHRNetResize`` (the same geometry functions,
:mod:`..structures.canvas_transforms`) and the model's data preprocessor (channel swap, then
the float32 operations of ``HigherHRNetDataPreprocessor`` or mmpose's
``PoseDataPreprocessor``; IEEE float32 division and subtraction round the same in numpy and
torch). Canvases are multiples of 64, so the preprocessor's padding never applies.

Note:
    - image size: (w, h); canvas size: (W, H)
"""
from pathlib import Path
from typing import Tuple, Union

import cv2
import numpy as np

from ..structures.canvas_transforms import canvas_geometry, warp_to_canvas
from .deploy_error import DeployError
from .deploy_settings import DeploySettings

# Canvas (W, H), centre (2,) and extent (2,) in image pixels: what back-projection needs.
CanvasMeta = Tuple[Tuple[int, int], np.ndarray, np.ndarray]


def read_image(path: Union[str, Path]) -> np.ndarray:
    """(h, w, 3) BGR uint8 image, decoded as mmpose's ``LoadImage`` does (OpenCV, colour).

    Raises:
        DeployError: The file is missing or is not an image OpenCV can decode.
    """
    path = Path(path)
    if not path.is_file():
        raise DeployError(f'image not found: {path}')
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DeployError(f'not an image (cannot decode it): {path}')
    return image


def to_canvas(image: np.ndarray, settings: DeploySettings) -> Tuple[np.ndarray, CanvasMeta]:
    """Warp a BGR image onto its test canvas, as ``HigherHRNetResize`` at scale 1.

    Args:
        image (np.ndarray): (h, w, 3) uint8 BGR image.
        settings (DeploySettings): The model's settings (input size, rounding).

    Returns:
        tuple:
        - canvas (np.ndarray): (H, W, 3) uint8 image
        - meta (CanvasMeta): canvas size, centre and extent for :func:`canvas_to_image`
    """
    meta = canvas_geometry(image.shape[:2], settings.input_size, rounding=settings.rounding)
    return warp_to_canvas(image, *meta), meta


def normalize(canvas: np.ndarray, settings: DeploySettings) -> np.ndarray:
    """(H, W, 3) uint8 canvas -> (1, 3, H, W) float32 network input.

    ``'official'``: ``(x / 255 - float32(mean / 255)) / float32(std / 255)``; ``'mmpose'``:
    ``(x - float32(mean)) / float32(std)``; every operation in float32, in that order.
    """
    if settings.swap_channels:
        canvas = canvas[..., ::-1]
    images = canvas.transpose(2, 0, 1)[None].astype(np.float32)
    if settings.normalization == 'official':
        images = images / np.float32(255)
        mean = np.array([v / 255 for v in settings.mean], np.float32)
        std = np.array([v / 255 for v in settings.std], np.float32)
    else:
        mean = np.array(settings.mean, np.float32)
        std = np.array(settings.std, np.float32)
    return np.ascontiguousarray((images - mean[:, None, None]) / std[:, None, None])
