from .dataset_wrappers import ReliableDataset
from .samplers import CanvasSizeBatchSampler, ResumableSampler
from .transforms import BadImageError, BottomupHeatmapMask, CheckedLoadImage, HigherHRNetResize

__all__ = [
    'HigherHRNetResize', 'BottomupHeatmapMask', 'CanvasSizeBatchSampler', 'CheckedLoadImage',
    'BadImageError', 'ReliableDataset', 'ResumableSampler'
]
