from .bottomup_heatmap_mask import BottomupHeatmapMask
from .higher_hrnet_resize import HigherHRNetResize

__all__ = ['HigherHRNetResize', 'BottomupHeatmapMask']
