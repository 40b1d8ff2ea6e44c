"""mmpose's LoadImage that names the file and the problem when an image cannot be used."""
from typing import Optional

import mmcv
import numpy as np
from mmengine import fileio
from mmpose.datasets.transforms import LoadImage
from mmpose.registry import TRANSFORMS

from .bad_image_error import BadImageError

_JPEG_START, _JPEG_SCAN, _JPEG_END = b'\xff\xd8', b'\xff\xda', b'\xff\xd9'
_PNG_SIGNATURE, _PNG_END = b'\x89PNG\r\n\x1a\n', b'IEND'


@TRANSFORMS.register_module()
class CheckedLoadImage(LoadImage):
    """Load an image like mmpose's ``LoadImage``, or raise :class:`BadImageError`.

    mmpose's ``LoadImage`` fails on a missing file with a bare ``FileNotFoundError``, on an
    undecodable one with ``AssertionError: failed to load image``, and does not notice a
    truncated JPEG at all: OpenCV decodes what is there and fills the rest with grey, which
    then trains the model on a wrong image. This transform reads the same way (mmengine file
    backend, ``mmcv.imfrombytes`` with ``color_type`` and ``imdecode_backend``) and raises
    :class:`BadImageError` (path and reason) for a file that is

    - missing or unreadable, or empty;
    - truncated: a JPEG without an end-of-image marker after its last scan, a PNG without
      its ``IEND`` chunk;
    - not decodable as an image.

    :class:`~higherhrnet_plugin.datasets.ReliableDataset` turns the error into a skipped,
    counted sample. With the default ``color_type='color'``, grayscale, RGBA and 16-bit
    images load as 3-channel 8-bit BGR, as with ``LoadImage`` (OpenCV drops alpha and keeps
    the high byte of 16-bit values). An image given as an array in ``results['img']``
    (inference) is passed through as by ``LoadImage``.

    Required Keys:
        - img_path (unless ``img`` is given)

    Modified Keys:
        - img, img_shape, ori_shape

    Args:
        **kwargs: ``LoadImage``'s arguments (``to_float32``, ``color_type``,
            ``imdecode_backend``, ``backend_args``).
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']`` into ``results['img']``; raise if it is unusable."""
        if 'img' in results:
            return super().transform(results)
        img = self.read(results['img_path'])
        if self.to_float32:
            img = img.astype(np.float32)
        results.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
        return results

    def read(self, path: str) -> np.ndarray:
        """The decoded image at ``path``.

        Raises:
            BadImageError: If the file is missing, unreadable, empty, truncated or cannot be
                decoded.
        """
        data = self._read_bytes(path)
        problem = truncation(data)
        if problem:
            raise BadImageError(path, problem)
        try:
            img = mmcv.imfrombytes(data, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as error:  # PIL and turbojpeg raise; OpenCV returns None
            raise BadImageError(path, f'cannot be decoded: {error}') from error
        if img is None or img.size == 0:
            raise BadImageError(path, 'cannot be decoded as an image')
        return img

    def _read_bytes(self, path: str) -> bytes:
        try:
            data = fileio.get(path, backend_args=self.backend_args)
        except FileNotFoundError as error:
            raise BadImageError(path, 'file not found') from error
        except OSError as error:
            raise BadImageError(path, f'cannot be read: {error}') from error
        if not data:
            raise BadImageError(path, 'empty file')
        return data


def truncation(data: bytes) -> Optional[str]:
    """Why ``data`` is a truncated JPEG or PNG file, or ``None`` if it is not one.

    JPEG entropy-coded data never contains ``FF D9`` (a literal ``FF`` byte is stuffed as
    ``FF 00``), so a complete file has its end-of-image marker after the start of its last
    scan; trailing bytes after it (camera trailers) are allowed. A PNG ends with ``IEND``.
    """
    if data.startswith(_JPEG_START) and data.rfind(_JPEG_END) < data.rfind(_JPEG_SCAN):
        return 'truncated JPEG (no end-of-image marker after the last scan)'
    if data.startswith(_PNG_SIGNATURE) and _PNG_END not in data[-64:]:
        return 'truncated PNG (no IEND chunk at the end)'
    return None
