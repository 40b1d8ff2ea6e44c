"""CheckedLoadImage: mmpose's LoadImage, with every unusable file named and explained."""
import cv2
import numpy as np
import pytest

from higherhrnet_plugin.datasets.transforms import BadImageError, CheckedLoadImage
from higherhrnet_plugin.datasets.transforms.checked_load_image import truncation

IMAGE = np.tile(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], (48, 1, 3))  # (48, 64, 3)
JPEG = cv2.imencode('.jpg', IMAGE)[1].tobytes()
PROGRESSIVE = cv2.imencode('.jpg', IMAGE, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
PNG = cv2.imencode('.png', IMAGE)[1].tobytes()


@pytest.mark.parametrize('data, reason', [
    (None, 'file not found'),
    (b'', 'empty file'),
    (b'GIF89a but not really', 'cannot be decoded as an image'),
    (JPEG[:-10], 'truncated JPEG (no end-of-image marker after the last scan)'),
    (PROGRESSIVE[:-200], 'truncated JPEG'),
    (PNG[:len(PNG) // 2], 'truncated PNG (no IEND chunk at the end)'),
])
def test_unusable_files_raise_with_path_and_reason(data, reason, tmp_path):
    path = tmp_path / 'image.jpg'
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(BadImageError) as error:
        CheckedLoadImage().transform(dict(img_path=str(path)))
    assert error.value.path == str(path) and error.value.reason.startswith(reason)
    assert str(error.value) == f'{path}: {error.value.reason}'


@pytest.mark.parametrize('data', [JPEG, PROGRESSIVE, JPEG + b'camera trailer', PNG])
def test_complete_files_load_like_mmpose(data, tmp_path):
    path = tmp_path / 'image.img'
    path.write_bytes(data)
    assert truncation(data) is None
    results = CheckedLoadImage().transform(dict(img_path=str(path)))
    assert results['img'].shape == (48, 64, 3) and results['img'].dtype == np.uint8
    assert results['img_shape'] == results['ori_shape'] == (48, 64)
    if data == PNG:
        np.testing.assert_array_equal(results['img'], IMAGE)


def test_arrays_pass_through():
    results = CheckedLoadImage().transform(dict(img=IMAGE.copy()))
    np.testing.assert_array_equal(results['img'], IMAGE)
    assert results['img_shape'] == results['ori_shape'] == (48, 64)


def test_to_float32(tmp_path):
    path = tmp_path / 'image.png'
    path.write_bytes(PNG)
    results = CheckedLoadImage(to_float32=True).transform(dict(img_path=str(path)))
    assert results['img'].dtype == np.float32


def test_error_survives_a_worker_reraise():
    """PyTorch re-raises a worker's error as ``type(error)(message)``."""
    error = BadImageError('Caught BadImageError in DataLoader worker process 0 ...')
    assert str(error) == error.path and error.reason is None
