from .samplers import CanvasSizeBatchSampler
from .transforms import BottomupHeatmapMask, HigherHRNetResize

__all__ = ['HigherHRNetResize', 'BottomupHeatmapMask', 'CanvasSizeBatchSampler']
