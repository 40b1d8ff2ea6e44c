"""A test-only transform that turns one image into NaN from its n-th load on (NaN loss)."""
from collections import Counter

import numpy as np
from mmcv.transforms import BaseTransform
from mmpose.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PoisonImageForTest(BaseTransform):
    """Set ``img`` to NaN for image ``img_id`` from its ``from_load``-th load in this process.

    Args:
        img_id (int): The image to poison.
        from_load (int): First load (1-based) that is poisoned.
    """

    def __init__(self, img_id: int, from_load: int) -> None:
        self.img_id, self.from_load = img_id, from_load
        self.loads = Counter()

    def transform(self, results: dict) -> dict:
        self.loads[results['img_id']] += 1
        if results['img_id'] == self.img_id and self.loads[self.img_id] >= self.from_load:
            results['img'] = np.full(results['img'].shape, np.nan, np.float32)
        return results
