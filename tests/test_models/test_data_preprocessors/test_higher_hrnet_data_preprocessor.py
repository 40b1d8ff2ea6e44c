"""The official normalisation (torchvision's ToTensor + Normalize), bit for bit."""
import numpy as np
import pytest
import torch
from mmpose.models.data_preprocessors import PoseDataPreprocessor
from mmpose.structures import PoseDataSample
from torchvision import transforms

from higherhrnet_plugin.models import HigherHRNetDataPreprocessor

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def _every_pixel_value():
    """(H, W, 3) uint8 BGR image holding every value 0..255 in every channel."""
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    return np.stack([values, values[::-1], values.T], axis=-1)


def _official(image_bgr):
    """The official test transform of an RGB image: ToTensor, Normalize (ImageNet)."""
    rgb = np.ascontiguousarray(image_bgr[..., ::-1])
    pipeline = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    ])
    return pipeline(rgb)


def _preprocess(preprocessor, images):
    data = dict(inputs=[torch.from_numpy(i).permute(2, 0, 1).contiguous() for i in images],
                data_samples=[PoseDataSample() for _ in images])
    return preprocessor(data)['inputs']


def test_equals_torchvision_bit_for_bit_where_mmpose_does_not():
    image = _every_pixel_value()
    ours = _preprocess(HigherHRNetDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True),
                       [image])[0]
    assert torch.equal(ours, _official(image))
    mmpose = _preprocess(PoseDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True), [image])[0]
    differs = (mmpose != ours).float().mean().item()
    assert 0.2 < differs and (mmpose - ours).abs().max().item() < 1e-6


def test_batch_pads_after_normalising_and_mmpose_mode_is_posedatapreprocessor():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 64, 3), dtype=np.uint8),
              rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)]
    ours = _preprocess(HigherHRNetDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True,
                                                   pad_size_divisor=32), images)
    assert ours.shape == (2, 3, 64, 64)
    assert torch.equal(ours[0, :, :40, :64], _official(images[0]))
    assert not ours[0, :, 40:].any() and not ours[1, :, :, 48:].any()  # pad value 0

    kwargs = dict(mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=32)
    assert torch.equal(
        _preprocess(HigherHRNetDataPreprocessor(normalization='mmpose', **kwargs), images),
        _preprocess(PoseDataPreprocessor(**kwargs), images))


def test_bad_arguments():
    with pytest.raises(ValueError, match='normalization must be one of'):
        HigherHRNetDataPreprocessor(mean=MEAN, std=STD, normalization='imagenet')
    with pytest.raises(ValueError, match='needs mean and std'):
        HigherHRNetDataPreprocessor()
