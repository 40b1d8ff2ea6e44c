from .transforms import BottomupHeatmapMask, HigherHRNetResize

__all__ = ['HigherHRNetResize', 'BottomupHeatmapMask']
