"""Data preprocessor normalising images with the official operations (torchvision's).

The official test and training code (HRNet/HigherHRNet-Human-Pose-Estimation,
``tools/valid.py``, ``lib/dataset/transforms``) normalises with torchvision's ``ToTensor`` and
``Normalize``: ``(x / 255 - mean / 255) / (std / 255)``. mmpose computes ``(x - mean) / std``,
which rounds differently for about half of the pixel values (1 ulp, up to 4.8e-7). That
changes the network outputs in the last bits, enough to move refined keypoints whose
full-map maximum is a near-tie (0.3 % of the joints on a crowded multi-scale image).
"""
from typing import Optional, Sequence, Union

import torch
from mmpose.models.data_preprocessors import PoseDataPreprocessor
from mmpose.registry import MODELS
from torch import Tensor

_NORMALIZATIONS = ('official', 'mmpose')


@MODELS.register_module()
class HigherHRNetDataPreprocessor(PoseDataPreprocessor):
    """mmpose's ``PoseDataPreprocessor`` with the official normalisation by default.

    ``normalization='official'``: each image is converted to RGB if asked, then
    ``x.float() / 255``, minus ``float32(mean / 255)``, divided by ``float32(std / 255)``,
    as torchvision's ``ToTensor`` + ``Normalize(mean=[0.485, 0.456, 0.406],
    std=[0.229, 0.224, 0.225])`` for the ImageNet statistics, bit for bit; padding, stacking
    and batch augments are mmpose's. ``normalization='mmpose'`` is ``PoseDataPreprocessor``.

    Args:
        mean (Sequence[float]): Pixel mean of the R, G, B channels (0-255 scale).
        std (Sequence[float]): Pixel standard deviation (0-255 scale).
        normalization (str): ``'official'`` or ``'mmpose'``. Defaults to ``'official'``.
        **kwargs: Other :class:`PoseDataPreprocessor` arguments.
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 normalization: str = 'official',
                 bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False,
                 **kwargs) -> None:
        if normalization not in _NORMALIZATIONS:
            raise ValueError(f'normalization must be one of {_NORMALIZATIONS}, '
                             f'got {normalization!r}')
        if normalization == 'official' and (mean is None or std is None):
            raise ValueError("normalization='official' needs mean and std")
        super().__init__(mean=mean, std=std, bgr_to_rgb=bgr_to_rgb, rgb_to_bgr=rgb_to_bgr,
                         **kwargs)
        self.normalization = normalization
        if normalization == 'official':
            # Normalised in cast_data instead, image by image, in torchvision's order.
            self._enable_normalize = False
            self._channel_conversion = False
            self._swap_channels = bgr_to_rgb or rgb_to_bgr
            self.register_buffer('unit_mean', _unit(mean), False)
            self.register_buffer('unit_std', _unit(std), False)

    def cast_data(self, data: Union[dict, list, tuple]) -> Union[dict, list, tuple]:
        """Move the data to the device and, officially, normalise the images there."""
        data = super().cast_data(data)
        if self.normalization == 'official' and isinstance(data, dict):
            inputs = data['inputs']
            if isinstance(inputs, Tensor):
                data['inputs'] = self.normalize(inputs)
            else:
                data['inputs'] = [self.normalize(image) for image in inputs]
        return data

    def normalize(self, images: Tensor) -> Tensor:
        """Officially normalised float images.

        Args:
            images (Tensor): (3, H, W) or (B, 3, H, W) images, 0-255.

        Returns:
            Tensor: float32 images of the same shape, RGB if the channels were swapped.
        """
        if self._swap_channels:
            images = images[..., [2, 1, 0], :, :]
        # In place after the first division: the same three operations, one new tensor.
        return (images.float() / 255).sub_(self.unit_mean).div_(self.unit_std)


def _unit(values: Sequence[float]) -> Tensor:
    """(3, 1, 1) float32 statistics on the 0-1 scale, as torchvision's ``Normalize`` holds."""
    return torch.tensor([v / 255 for v in values], dtype=torch.float32).view(-1, 1, 1)
