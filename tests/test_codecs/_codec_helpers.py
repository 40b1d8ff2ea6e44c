"""Shared setup of the MultiLevelAssociativeEmbedding tests: a 64x64 input with levels of 16x16
(R = 1/4) and 32x32 (R = 1/2), sigma 2."""
import math

import numpy as np

from higherhrnet_plugin.codecs import MultiLevelAssociativeEmbedding

INPUT = (64, 64)
LEVELS = ((16, 16), (32, 32))


def g(dx: int, dy: int = 0) -> float:
    """Value of the sigma-2 Gaussian at offset (dx, dy) from its peak."""
    return math.exp(-(dx * dx + dy * dy) / 8.0)


def make_codec(**kwargs) -> MultiLevelAssociativeEmbedding:
    cfg = dict(input_size=INPUT, heatmap_sizes=LEVELS)
    cfg.update(kwargs)
    return MultiLevelAssociativeEmbedding(**cfg)


def encode(points, visible=None, codec=None, **kwargs):
    """Encode persons given as nested lists [[x, y] per keypoint] per person."""
    codec = codec or make_codec()
    keypoints = np.asarray(points, dtype=np.float32).reshape(len(points), -1, 2)
    if visible is not None:
        visible = np.asarray(visible, dtype=np.float32)
    return codec.encode(keypoints, visible, **kwargs)
